//! The modules that change a whole machine, for real: two stock Debian 12 machines
//! (devcloud's image machines, each its own root filesystem, packages from Debian's archive
//! through the apt cache; never this host's packages or accounts). The same playbook runs
//! on one with spark-openstack's engine and on the other with ansible-playbook; every
//! task's outcome, the recap and the machine's state afterwards must be the same.
//!
//! First `apt` (`tests/fixtures/apt/apt.yml`: lists, installs, versions, removal; then
//! check mode and `--diff` on our side, and a second run that changes nothing), then
//! accounts, `package`, a live `sysctl` and `pam_limits` (`tests/fixtures/system/system.yml`).
//!
//! Needs root, sshd, mmdebstrap, apt-cacher-ng and ansible-playbook
//! (`ANSIBLE_PLAYBOOK_BIN`); skipped with the reason otherwise, but failed when `CI` is set.

mod support;

use std::path::Path;
use std::process::Command;

use support::TestCloud;

fn skip_reason() -> Option<String> {
    let blocker = support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/mmdebstrap",
            "/usr/sbin/apt-cacher-ng",
        ],
        "apt-get install openssh-server mmdebstrap apt-cacher-ng",
    );
    if blocker.is_some() {
        return blocker;
    }
    match std::env::var("ANSIBLE_PLAYBOOK_BIN") {
        Ok(p) if Path::new(&p).is_file() => None,
        _ => Some("ANSIBLE_PLAYBOOK_BIN does not name ansible-playbook".into()),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `changed` flag of each task in an outcomes file the playbook writes (a JSON list
/// of registered results), in task order.
fn changed_of(outcomes: &str) -> Vec<bool> {
    let v: serde_json::Value = serde_json::from_str(outcomes).expect("outcomes are JSON");
    v.as_array()
        .expect("outcomes are a list")
        .iter()
        .map(|o| o["changed"].as_bool().expect("each outcome has changed"))
        .collect()
}

/// The recap line of `host` (`ok=7 changed=3 ...`), spacing normalised.
fn recap(out: &str, host: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(host) && l.contains("ok="))
        .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no recap line for {host} in:\n{out}"))
}

#[test]
fn apt_installs_and_removes_as_ansible_does_on_a_stock_debian() {
    if let Some(why) = skip_reason() {
        assert!(std::env::var_os("CI").is_none(), "in CI: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let cloud = TestCloud::netns_images("a", (70, 10));
    cloud.cluster(&[
        "launch",
        "apt",
        "-s",
        "1",
        "-a",
        "debian-12",
        "-k",
        "apt",
        "-t",
        "m1.small",
        "--cloud-only",
    ]);
    // The cluster's inventory (the master by its floating IP, the slave through it) as a
    // YAML inventory file (JSON is YAML) both engines read.
    let inv: serde_json::Value =
        serde_json::from_str(&cloud.cluster(&["cluster-inventory", "apt", "--list"])).unwrap();
    let script = cloud.path("inventory.yml");
    std::fs::write(
        &script,
        serde_json::json!({"all": {"hosts": inv["_meta"]["hostvars"]}}).to_string(),
    )
    .unwrap();
    let key = cloud.key.display().to_string();
    let play = |extra: &[&str]| {
        let mut args = vec![
            "play",
            "-i",
            script.to_str().unwrap(),
            "--private-key",
            &key,
        ];
        args.extend_from_slice(extra);
        cloud.run(&args)
    };

    // Both machines start alike: Python and python3-apt (which Ansible's apt needs, and
    // would otherwise install itself, updating the lists on the way), then package lists
    // emptied and dated two hours back, so the first task has something to update.
    let setup = cloud.path("setup.yml");
    std::fs::write(
        &setup,
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    \
         - wait_for_connection: {timeout: 120}\n    - shell: |\n        \
         set -e\n        apt-get update -q >/dev/null\n        \
         DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-apt >/dev/null\n        \
         rm -rf /var/lib/apt/lists/*\n        touch -d '2 hours ago' /var/lib/apt/lists\n",
    )
    .unwrap();
    let out = play(&[setup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apt/apt.yml");
    let pb = playbook.to_str().unwrap();
    let ours = play(&[pb, "-l", "apt-master"]);
    let ours_out = text(&ours.stdout);
    assert!(ours.status.success(), "{ours_out}{}", text(&ours.stderr));

    // OpenSSH passes `-F` on to the ProxyJump connection (and nothing given with `-o`), so
    // the jump host gets the key, and its host key is not checked either (these machines
    // are new at every run).
    let ssh_config = cloud.path("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             LogLevel ERROR\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
        ),
    )
    .unwrap();
    let ansible_play = |pb: &str| {
        let out = Command::new(std::env::var("ANSIBLE_PLAYBOOK_BIN").unwrap())
            .args([
                "-i",
                script.to_str().unwrap(),
                "--private-key",
                &key,
                pb,
                "-l",
                "apt-slave-1",
            ])
            .env("HOME", cloud.path("home"))
            .env("ANSIBLE_SSH_ARGS", format!("-F {}", ssh_config.display()))
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_NOCOLOR", "1")
            .output()
            .unwrap();
        let text_out = text(&out.stdout);
        assert!(out.status.success(), "{text_out}{}", text(&out.stderr));
        text_out
    };
    let ansible_out = ansible_play(pb);

    // Every outcome, the recap and the packages: the same. Read back from both machines
    // (the slave has no address of its own) with a `fetch`.
    let results = cloud.path("results");
    let collect = cloud.path("collect.yml");
    std::fs::write(
        &collect,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    \
             - shell: dpkg-query -W -f '${{Package}} ${{db:Status-Abbrev}}\\n' hello tree sl > /tmp/apt-packages 2>/dev/null || true\n    \
             - fetch: {{src: /tmp/apt-outcomes.json, dest: '{d}/{{{{ inventory_hostname }}}}.json', flat: true}}\n    \
             - fetch: {{src: /tmp/apt-packages, dest: '{d}/{{{{ inventory_hostname }}}}.packages', flat: true}}\n",
            d = results.display()
        ),
    )
    .unwrap();
    let read = || {
        let out = play(&[collect.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let file = |n: &str| std::fs::read_to_string(results.join(n)).unwrap();
        (
            file("apt-master.json"),
            file("apt-slave-1.json"),
            file("apt-master.packages"),
            file("apt-slave-1.packages"),
        )
    };
    let (ours_outcomes, ansible_outcomes, ours_pkgs, ansible_pkgs) = read();
    assert_eq!(
        ours_outcomes, ansible_outcomes,
        "outcomes differ (ours, then ansible-playbook's)"
    );
    assert_eq!(ours_pkgs, ansible_pkgs);
    assert!(
        ours_pkgs.contains("hello ii"),
        "hello is not installed:\n{ours_pkgs}"
    );
    assert_eq!(
        changed_of(&ours_outcomes),
        [
            true, false, true, false, false, false, true, false, false, true, false, true
        ],
        "{ours_outcomes}"
    );
    assert_eq!(
        recap(&ours_out, "apt-master"),
        recap(&ansible_out, "apt-slave-1")
    );

    // Again: what is in place stays (the lists are fresh, hello and tree are installed);
    // only the removal and the reinstall after it change something.
    let again = play(&[pb, "-l", "apt-master"]);
    let again_out = text(&again.stdout);
    assert!(again.status.success(), "{again_out}");
    let (outcomes, _, _, _) = read();
    assert_eq!(
        changed_of(&outcomes),
        [
            false, false, false, false, false, false, false, false, false, true, false, true
        ],
        "{outcomes}"
    );

    // Check mode and --diff: apt-get's plan is shown, nothing is installed.
    let probe = cloud.path("probe.yml");
    std::fs::write(
        &probe,
        "- hosts: apt-master\n  gather_facts: false\n  become: true\n  tasks:\n    \
         - apt: {name: sl}\n",
    )
    .unwrap();
    let check = play(&["--check", "--diff", probe.to_str().unwrap()]);
    let check_out = text(&check.stdout);
    assert!(check.status.success(), "{check_out}");
    assert!(
        check_out.contains("The following NEW packages will be installed:")
            && check_out.contains("sl"),
        "no plan shown:\n{check_out}"
    );
    let (_, _, pkgs, _) = read();
    assert!(!pkgs.contains("sl ii"), "check mode installed sl:\n{pkgs}");

    // Accounts, `package`, a live sysctl and limits.conf (tests/fixtures/system): the same
    // outcomes and the same machine state from both engines.
    let system = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/system/system.yml");
    let system = system.to_str().unwrap();
    let ours = play(&[system, "-l", "apt-master"]);
    let ours_out = text(&ours.stdout);
    assert!(ours.status.success(), "{ours_out}{}", text(&ours.stderr));
    let ansible_out = ansible_play(system);
    let fetch_system = cloud.path("fetch-system.yml");
    std::fs::write(
        &fetch_system,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    \
             - fetch: {{src: /tmp/system-outcomes.json, dest: '{d}/{{{{ inventory_hostname }}}}.system.json', flat: true}}\n    \
             - fetch: {{src: /tmp/system-state, dest: '{d}/{{{{ inventory_hostname }}}}.state', flat: true}}\n",
            d = results.display()
        ),
    )
    .unwrap();
    let out = play(&[fetch_system.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let file = |n: &str| std::fs::read_to_string(results.join(n)).unwrap();
    let (ours_outcomes, ansible_outcomes) = (
        file("apt-master.system.json"),
        file("apt-slave-1.system.json"),
    );
    assert_eq!(
        ours_outcomes, ansible_outcomes,
        "outcomes differ (ours, then ansible-playbook's)"
    );
    assert_eq!(
        changed_of(&ours_outcomes),
        [
            true, false, true, true, // groups: create, again, new gid, system group
            true, false, true, true,
            false, // user: create, again, append, exact set, bad group
            true, false, true, false, // password, same hash, key pair, key kept
            true, true, true, false,
            true, // system user, check mode, removal, again, groupdel
            true, false, true, false, true, // package, again, sysctl, again, limits
            true, false, true, true, true, // mounted, again, unmounted, mounted, absent
            true, false, true, true // repository, again, re-enabled, removed
        ],
        "{ours_outcomes}"
    );
    let (ours_state, ansible_state) = (file("apt-master.state"), file("apt-slave-1.state"));
    assert_eq!(
        ours_state, ansible_state,
        "machine state differs (ours, then ansible-playbook's)"
    );
    assert_eq!(
        recap(&ours_out, "apt-master"),
        recap(&ansible_out, "apt-slave-1")
    );
    // And the state is what the playbook asked for, not merely the same mistake twice.
    for wanted in [
        "spark:x:1001:1001:Spark user:/home/spark:/bin/bash",
        "hadoop:2001:spark",
        "groups=1001(spark),2001(hadoop)",
        "/home/spark/.ssh 700 spark spark",
        "\n1\nnet.ipv4.ip_forward=1\n",
        "spark\t-\tnofile\t65536",
        "sl ii",
        "deb http://deb.debian.org/debian bookworm-updates main\n# kept comment\n",
    ] {
        assert!(
            ours_state.contains(wanted),
            "no {wanted:?} in:\n{ours_state}"
        );
    }
    // The tmpfs was mounted with its entry, unmounted, mounted again, then removed.
    assert!(
        ours_outcomes.contains("\"1\",\n            \"tmpfs /mnt/scratch tmpfs size=16m 0 0\""),
        "{ours_outcomes}"
    );
    for wanted in [
        "/proc/mounts:0\n/etc/fstab:0\n",
        "cannot access '/mnt/scratch'",
    ] {
        assert!(
            ours_state.contains(wanted),
            "no {wanted:?} in:\n{ours_state}"
        );
    }
    for unwanted in ["newbie", "hdfs:", "daemons", "backports"] {
        assert!(
            !ours_state.contains(unwanted),
            "{unwanted:?} in:\n{ours_state}"
        );
    }
}
