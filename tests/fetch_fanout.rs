//! The `fetch` role's distribution on shaped links: a master and three slaves (devcloud's
//! image machines, each interface shaped to 200 Mbit/s by `netns.link`), an archive of
//! random bytes brought from the controller to the master, then to every slave by
//! `roles/fetch/files/fanout.sh`. Checked from outside the machines: every slave's copy
//! has the controller's SHA-256, the master's interface sent at most two copies (its
//! kernel counters, read in its namespace), and one slave was served by another; every
//! node unpacked the archive as soon as it had it (`fetch_unpack`), except one whose
//! install marker already names it; a rerun copies nothing, a corrupted copy is replaced,
//! and a slave that cannot take a copy fails the run with its address and the reason,
//! after the others got theirs.
//!
//! Needs root, sshd, mmdebstrap and apt-cacher-ng; skipped with the reason otherwise, but
//! failed when `CI` is set (`.ci/run` installs them).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::{Ssh, TestCloud};

/// The archive's size: 48 MiB, about 2 s per copy at 200 Mbit/s.
const SIZE: u64 = 48 << 20;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "`{cmd}`: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// The machine namespace whose external interface carries `floating_ip`.
fn namespace_of(cloud: &TestCloud, floating_ip: &str) -> String {
    cloud
        .namespaces()
        .into_iter()
        .find(|ns| {
            sh(&format!("ip -n {ns} -4 -o addr show 2>/dev/null || true"))
                .contains(&format!(" {floating_ip}/"))
        })
        .unwrap_or_else(|| panic!("no namespace has {floating_ip}"))
}

/// The copies fanout.sh reports in a `-v` log ("copied to DST from SRC in Ns"), as
/// (DST, SRC); each is in the log twice (`stdout` and `stdout_lines`).
fn copies(log: &str) -> BTreeSet<(String, String)> {
    log.split("copied to ")
        .skip(1)
        .filter_map(|rest| {
            let mut w = rest.split_whitespace();
            let to = w.next()?;
            (w.next()? == "from").then_some(())?;
            let from = w.next()?;
            (w.next()? == "in").then(|| (to.to_string(), from.to_string()))
        })
        .collect()
}

fn tx_bytes(ns: &str) -> u64 {
    sh(&format!(
        "ip netns exec {ns} cat /sys/class/net/eth0/statistics/tx_bytes"
    ))
    .parse()
    .unwrap()
}

#[test]
fn slaves_serve_each_other_and_the_master_sends_two_copies() {
    if let Some(why) = support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/mmdebstrap",
            "/usr/sbin/apt-cacher-ng",
        ],
        "apt-get install openssh-server mmdebstrap apt-cacher-ng",
    ) {
        assert!(std::env::var_os("CI").is_none(), "in CI: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let cloud = TestCloud::netns_images_shaped("f", (60, 10), "{rate_mbit: 200}");
    cloud.cluster(&[
        "launch",
        "fan",
        "-s",
        "3",
        "-a",
        "debian-12",
        "-k",
        "fan",
        "-t",
        "m1.small",
        "--cloud-only",
    ]);
    let master = cloud.cluster(&["get-master", "fan"]).trim().to_string();
    let ssh = Ssh::new(cloud.path("").as_path(), &cloud.key);
    ssh.wait(None, &master);
    let master_ns = namespace_of(&cloud, &master);

    // Every machine interface is shaped, at both ends.
    for ns in cloud.namespaces() {
        let q = sh(&format!("ip netns exec {ns} tc qdisc show dev eth0"));
        assert!(q.contains("tbf") && q.contains("rate 200Mbit"), "{ns}: {q}");
    }
    // On the host: the tenant veth of each of the 4 machines and the master's floating one.
    let host_ends = sh(&format!(
        "tc qdisc show | grep 'dev {}' | grep -c 'rate 200Mbit' || true",
        cloud.prefix
    ));
    assert_eq!(
        host_ends,
        "5",
        "host ends of the veths: {}",
        sh("tc qdisc show")
    );

    // A .tar.gz whose one file is random (so gzip keeps it at SIZE), for the early unpack.
    let archive = cloud.path("archive.tgz");
    let tree = cloud.path("tree");
    sh(&format!(
        "mkdir -p {t}/top && head -c {SIZE} /dev/urandom > {t}/top/payload && tar -czf {a} -C {t} top",
        t = tree.display(),
        a = archive.display()
    ));
    let payload = sh(&format!(
        "sha256sum < {}/top/payload | cut -d' ' -f1",
        tree.display()
    ));
    let want = sh(&format!(
        "sha256sum < {} | cut -d' ' -f1",
        archive.display()
    ));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book = cloud.path("fanout.yml");
    std::fs::write(
        &book,
        format!(
            "- import_playbook: {access}\n\
             - hosts: master:slaves\n  gather_facts: false\n  tasks:\n\
             \x20   - include_role: {{name: fetch}}\n      vars:\n\
             \x20       fetch_src: {src}\n        fetch_dir: /home/debian/cache\n\
             \x20       fetch_unpack: /home/debian/installed\n",
            access = repo.join("playbooks/cluster-access.yml").display(),
            src = archive.display()
        ),
    )
    .unwrap();
    let key = cloud.key.display().to_string();
    let roles = repo.join("roles").display().to_string();
    let play = || {
        // -v: the script's output (which node was copied from which) is in the log.
        cloud.run(&[
            "play",
            "-v",
            book.to_str().unwrap(),
            "-e",
            "cluster=fan",
            "--private-key",
            &key,
            "--roles-path",
            &roles,
        ])
    };

    // The master is "installed" already: its marker names this archive, so it unpacks
    // nothing; the slaves unpack their copies.
    let stamp = format!("archive.tgz {}", std::fs::metadata(&archive).unwrap().len());
    ssh.ok(
        None,
        &master,
        &format!("echo '{stamp}' > /home/debian/installed"),
    );

    let before = tx_bytes(&master_ns);
    let out = play();
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{log}");
    let sent = tx_bytes(&master_ns) - before;
    println!(
        "FIGURE fanout 1+3 at 200 Mbit/s: the master sent {:.2} copies",
        sent as f64 / SIZE as f64
    );
    // Two copies and the SSH and TCP overhead around them, never three.
    assert!(
        sent < 2 * SIZE + SIZE / 4,
        "the master sent {sent} bytes for a {SIZE}-byte archive:\n{log}"
    );
    let made = copies(&log);
    assert_eq!(made.len(), 3, "{log}");
    assert_eq!(
        made.iter().filter(|(_, from)| from == "master").count(),
        2,
        "{log}"
    );
    assert!(log.contains("master sent 2 copies"), "{log}");

    let slaves: Vec<String> = {
        let inv: serde_json::Value =
            serde_json::from_str(&cloud.cluster(&["cluster-inventory", "fan", "--list"])).unwrap();
        inv["slaves"]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                inv["_meta"]["hostvars"][h.as_str().unwrap()]["fixed_ip"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(slaves.len(), 3);
    let copy = "/home/debian/cache/archive.tgz";
    // The SHA-256 of a slave's copy, read through the master.
    let sum_on = |slave: &str| {
        ssh.ok(
            Some(&master),
            slave,
            &format!("sha256sum < {copy} | cut -d' ' -f1"),
        )
        .trim()
        .to_string()
    };
    for s in &slaves {
        ssh.wait(Some(&master), s);
        assert_eq!(sum_on(s), want, "the copy on {s}");
    }
    // Each slave unpacked its copy (top directory stripped, stamped), the master did not.
    let unpacked: BTreeSet<String> = log
        .split("unpacked archive.tgz on ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(
        unpacked,
        slaves.iter().cloned().collect::<BTreeSet<_>>(),
        "{log}"
    );
    for s in &slaves {
        let got = ssh.ok(
            Some(&master),
            s,
            &format!(
                "sha256sum < {copy}.unpacked/payload | cut -d' ' -f1; cat {copy}.unpacked/.spark-openstack-stamp"
            ),
        );
        assert_eq!(got.trim(), format!("{payload}\n{stamp}"), "unpacked on {s}");
    }
    assert_eq!(
        ssh.ok(
            None,
            &master,
            &format!("ls -d {copy}.unpacked 2>&1 || true")
        )
        .trim(),
        format!("ls: cannot access '{copy}.unpacked': No such file or directory"),
        "the installed master unpacks nothing"
    );

    // The third slave got its copy from one of the first two.
    let (to, from) = made.iter().find(|(_, from)| from != "master").unwrap();
    assert!(
        slaves.contains(to) && slaves.contains(from) && to != from,
        "{to} from {from}:\n{log}"
    );

    // A rerun finds every copy verified and sends nothing.
    let again = play();
    let again_log = text(&again.stdout);
    assert!(again.status.success(), "{again_log}");
    assert!(
        again_log.contains("every node already has archive.tgz") && copies(&again_log).is_empty(),
        "{again_log}"
    );

    // A copy that no longer verifies (same size, same time, one byte changed: what rsync's
    // quick check would keep) is replaced.
    ssh.ok(
        Some(&master),
        &slaves[1],
        &format!("t=$(stat -c %Y {copy}); printf X | dd of={copy} bs=1 seek=1000 conv=notrunc 2>/dev/null; touch -d @$t {copy}"),
    );
    let repaired = play();
    let repaired_log = text(&repaired.stdout);
    assert!(repaired.status.success(), "{repaired_log}");
    let remade = copies(&repaired_log);
    assert_eq!(remade.len(), 1, "{repaired_log}");
    assert!(
        remade.iter().all(|(to, _)| to == &slaves[1]),
        "{repaired_log}"
    );
    assert_eq!(sum_on(&slaves[1]), want);

    // A slave that cannot take a copy: the run fails naming it and why, after 3 tries;
    // the others keep theirs.
    ssh.ok(
        Some(&master),
        &slaves[2],
        &format!("rm {copy} && chmod 0500 /home/debian/cache"),
    );
    let failed = play();
    let failed_log = format!("{}{}", text(&failed.stdout), text(&failed.stderr));
    assert!(!failed.status.success(), "{failed_log}");
    assert!(
        failed_log.contains(&format!(
            "no copy of archive.tgz after 3 tries on {}",
            slaves[2]
        )),
        "{failed_log}"
    );
    assert!(failed_log.contains("Permission denied"), "{failed_log}");
    // Retried from another source, not from the one that just failed.
    let retried_from: BTreeSet<&str> = failed_log
        .split("(try ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().nth(2))
        .collect();
    assert!(
        retried_from.len() >= 2,
        "the retries came from {retried_from:?} only:\n{failed_log}"
    );
    for line in failed_log
        .lines()
        .filter(|l| l.contains("retrying") || l.contains("fatal"))
    {
        println!(
            "what the user sees: {}",
            line.chars().take(600).collect::<String>()
        );
    }
    for s in &slaves[..2] {
        assert_eq!(sum_on(s), want, "the copy on {s}");
    }
}
