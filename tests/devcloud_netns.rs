//! `devcloud up --backend netns` end to end: servers made through the OpenStack API (with the
//! project's own cloud client) are real machines reached with OpenSSH — the master through
//! its floating IP, the other only through the master — stop/start/delete act on them, and
//! `devcloud down` leaves no namespace, bridge, route or process behind.
//!
//! Needs root, `ip`, `sshd`, `ssh` and `ssh-keygen`; skipped with the reason otherwise, but
//! failed when `CI` is set (CI runs as root and must run it).

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use spark_openstack::cloud::compute::{ServerCreate, ServerFilter};
use spark_openstack::cloud::network::SecurityGroupRule;
use spark_openstack::cloud::wait::Wait;
use spark_openstack::cloud::{Cloud, LoadOptions, config};

const BIN: &str = env!("CARGO_BIN_EXE_spark-openstack");

fn skip_reason() -> Option<String> {
    support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/ssh-keygen",
            "/usr/bin/pgrep",
        ],
        "apt-get install openssh-server procps",
    )
}

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `devcloud down` on every exit path, so a failed assertion leaves nothing on the host.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["devcloud", "down", "--state-dir"])
            .arg(&self.0)
            .output();
    }
}

/// The OpenSSH client with a throw-away key and no host key checking, all in one `-F` file
/// so the second ssh that `-J` starts uses the same settings.
struct Ssh {
    config: String,
    public_key: String,
}

impl Ssh {
    fn new(dir: &Path) -> Self {
        let key = dir.join("id_ed25519");
        let k = key.to_str().unwrap();
        let out = sh("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", k]);
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let config = dir.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  User root\n  IdentityFile {k}\n  IdentitiesOnly yes\n  \
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  \
                 ConnectTimeout 10\n  LogLevel ERROR\n"
            ),
        )
        .unwrap();
        Ssh {
            config: config.to_str().unwrap().to_string(),
            public_key: std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap(),
        }
    }

    fn run(&self, jump: Option<&str>, host: &str, cmd: &str) -> Output {
        let mut args = vec!["-F".to_string(), self.config.clone()];
        if let Some(j) = jump {
            args.extend(["-J".into(), format!("root@{j}")]);
        }
        args.extend([host.to_string(), cmd.to_string()]);
        Command::new("ssh").args(&args).output().unwrap()
    }

    /// Trimmed stdout of `cmd`; fails the test with ssh's stderr otherwise.
    fn ok(&self, jump: Option<&str>, host: &str, cmd: &str) -> String {
        let out = self.run(jump, host, cmd);
        assert!(
            out.status.success(),
            "ssh {host} `{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text(&out).trim().to_string()
    }
}

fn devcloud(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .arg("devcloud")
        .args(args)
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn devcloud_netns_servers_are_machines_and_down_removes_everything() {
    if let Some(why) = skip_reason() {
        assert!(
            std::env::var_os("CI").is_none(),
            "devcloud netns test cannot run in CI: {why}"
        );
        eprintln!("SKIPPED devcloud netns test: {why}");
        return;
    }
    let pid = std::process::id();
    // Outside /tmp: machines get a private /tmp, and their files live under the state dir.
    let tmp = tempfile::Builder::new()
        .prefix("devcloud-netns-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = tmp.path().join("state");
    // A prefix and range of our own (the netns_machines test uses 150-249), so this never
    // clashes with a developer's devcloud or a parallel run.
    let octet = 100 + (pid % 50) as u8;
    let prefix = format!("w{}", pid % 10000);
    let cfg_file = tmp.path().join("devcloud.yaml");
    std::fs::write(
        &cfg_file,
        format!(
            "boot_time: {{min_ms: 200, max_ms: 200}}\naction_time_ms: 200\n\
             netns: {{prefix: {prefix}, supernet: 10.{octet}.0.0/16}}\n"
        ),
    )
    .unwrap();
    let clouds = tmp.path().join("clouds.yaml");
    let ssh = Ssh::new(tmp.path());
    let _down = Down(dir.clone());

    let out = Command::new(BIN)
        .args([
            "devcloud",
            "up",
            "--backend",
            "netns",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--state-dir")
        .arg(&dir)
        .arg("--config")
        .arg(&cfg_file)
        .arg("--clouds-yaml")
        .arg(&clouds)
        .output()
        .unwrap();
    assert!(out.status.success(), "devcloud up: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("devcloud backend: netns"),
        "{out:?}"
    );
    // The reject route for the whole range is in place before any machine exists.
    let routes = text(&sh("ip", &["route", "show", "table", "all"]));
    assert!(routes.contains(&format!("10.{octet}.0.0/16")), "{routes}");

    let env = BTreeMap::from([
        (
            "OS_CLIENT_CONFIG_FILE".to_string(),
            clouds.display().to_string(),
        ),
        ("OS_CLOUD".to_string(), "devcloud".to_string()),
    ]);
    let cloud_cfg = config::load(&LoadOptions::default(), &env).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cloud = rt.block_on(Cloud::connect(&cloud_cfg)).unwrap();
    let wait = Wait {
        timeout: Duration::from_secs(120),
        interval: Duration::from_millis(300),
    };
    let filter = ServerFilter::default();

    // What a cluster launch does: keypair, security group, servers, a floating IP.
    rt.block_on(cloud.create_keypair("wire", &ssh.public_key))
        .unwrap();
    let sg = rt
        .block_on(cloud.ensure_security_group("wire", "ssh in"))
        .unwrap();
    rt.block_on(
        cloud.add_security_group_rule(&SecurityGroupRule::tcp_from_cidr(
            &sg.id,
            22,
            22,
            "0.0.0.0/0",
        )),
    )
    .unwrap();
    let image = rt.block_on(cloud.find_image("debian-12")).unwrap();
    let flavor = rt.block_on(cloud.find_flavor("m1.tiny")).unwrap();
    let private = rt.block_on(cloud.find_network("private")).unwrap();
    let create = |name: &str| ServerCreate {
        name: name.into(),
        image_id: Some(image.id.clone()),
        flavor_id: flavor.id.clone(),
        key_name: Some("wire".into()),
        security_groups: vec!["wire".into()],
        network_ids: vec![private.id.clone()],
        ..ServerCreate::default()
    };
    let master = rt
        .block_on(cloud.create_server(&create("Wire Master")))
        .unwrap();
    let slave = rt
        .block_on(cloud.create_server(&create("wire-slave")))
        .unwrap();
    let ids = vec![master.id.clone(), slave.id.clone()];
    let active = rt
        .block_on(cloud.wait_for_servers(&ids, "ACTIVE", &filter, wait))
        .unwrap();
    let fixed = |id: &str| -> String {
        let s = active.iter().find(|s| s.id == id).unwrap();
        s.ips("fixed")[0].to_string()
    };
    let (master_ip, slave_ip) = (fixed(&master.id), fixed(&slave.id));
    assert!(
        master_ip.starts_with(&format!("10.{octet}.")),
        "{master_ip}"
    );

    let public = rt.block_on(cloud.external_network(Some("public"))).unwrap();
    let fip = rt.block_on(cloud.create_floating_ip(&public.id)).unwrap();
    let port = rt.block_on(cloud.server_ports(&master.id)).unwrap()[0]
        .id
        .clone();
    rt.block_on(cloud.set_floating_ip_port(&fip.id, Some(&port)))
        .unwrap();
    let float = fip.floating_ip_address.clone();
    assert!(float.starts_with(&format!("10.{octet}.255.")), "{float}");

    // The master answers on its floating IP with its own hostname (from the server name).
    assert_eq!(ssh.ok(None, &float, "hostname"), "wire-master");
    // The slave's fixed IP is not reachable from the controller; through the master it is.
    let slave_addr: Ipv4Addr = slave_ip.parse().unwrap();
    let err =
        TcpStream::connect_timeout(&SocketAddr::from((slave_addr, 22)), Duration::from_secs(5))
            .expect_err("a fixed IP must not be reachable from the controller");
    assert_eq!(err.raw_os_error(), Some(libc::EHOSTUNREACH), "{err}");
    assert_eq!(ssh.ok(Some(&float), &slave_ip, "hostname"), "wire-slave");
    assert!(
        ssh.ok(Some(&float), &slave_ip, "ip -4 -o addr show")
            .contains(&format!(" {slave_ip}/20 "))
    );

    // The console log carries the machine's real host key, as cloud-init prints it.
    let console = rt.block_on(cloud.console_output(&master.id, None)).unwrap();
    assert!(
        console.contains("-----BEGIN SSH HOST KEY KEYS-----"),
        "{console}"
    );
    let scan = text(&sh("ssh-keyscan", &["-T", "10", "-t", "ed25519", &float]));
    let blob = scan
        .lines()
        .find(|l| !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("ssh-keyscan found no ed25519 key");
    assert!(
        console.contains(blob),
        "host key {blob} not in console:\n{console}"
    );

    // os-stop kills the machine (unreachable) and keeps /root; os-start brings sshd back.
    ssh.ok(None, &float, "echo kept > /root/marker");
    rt.block_on(cloud.stop_server(&master.id)).unwrap();
    rt.block_on(cloud.wait_for_servers(&ids[..1], "SHUTOFF", &filter, wait))
        .unwrap();
    assert!(!ssh.run(None, &float, "true").status.success());
    rt.block_on(cloud.start_server(&master.id)).unwrap();
    rt.block_on(cloud.wait_for_servers(&ids[..1], "ACTIVE", &filter, wait))
        .unwrap();
    assert_eq!(ssh.ok(None, &float, "cat /root/marker"), "kept");

    // Disassociating takes the address off the machine; associating puts it back.
    rt.block_on(cloud.set_floating_ip_port(&fip.id, None))
        .unwrap();
    assert!(!ssh.run(None, &float, "true").status.success());
    rt.block_on(cloud.set_floating_ip_port(&fip.id, Some(&port)))
        .unwrap();
    assert_eq!(ssh.ok(None, &float, "hostname"), "wire-master");

    // Deleting a server removes its machine.
    let before = text(&sh("ip", &["netns", "list"]));
    let slave_ns = format!("{prefix}-{}", &slave.id[..8]);
    assert!(before.contains(&slave_ns), "{before}");
    rt.block_on(cloud.delete_server(&slave.id)).unwrap();
    rt.block_on(cloud.wait_for_servers_deleted(&ids[1..], &filter, wait))
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if !text(&sh("ip", &["netns", "list"])).contains(&slave_ns) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gone,
        "namespace {slave_ns} of the deleted server is still there"
    );
    assert!(!ssh.run(Some(&float), &slave_ip, "true").status.success());

    // A crashed devcloud restarted with a bare `up` (no --backend, no config) serves the
    // same netns setup again: the recorded choice and layout are reused.
    kill_server(&dir);
    up_again(&dir, &clouds);
    assert_eq!(ssh.ok(None, &float, "cat /root/marker"), "kept");

    // down, even with the server already dead: everything it made on the host is gone.
    kill_server(&dir);
    down_and_check_clean(&dir, &prefix, octet);
    assert!(!ssh.run(None, &float, "true").status.success());

    // The cloud's records outlive `down`: the next `up` rebuilds its ACTIVE server (a fresh
    // machine, like an instance rebuilt on a new host), floating IP included.
    up_again(&dir, &clouds);
    let mut back = None;
    for _ in 0..60 {
        let out = ssh.run(None, &float, "hostname; ls /root");
        if out.status.success() {
            back = Some(text(&out));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(back.as_deref().map(str::trim), Some("wire-master"));
    down_and_check_clean(&dir, &prefix, octet);
}

/// `devcloud up` with nothing but the state dir (and where to write clouds.yaml).
fn up_again(dir: &Path, clouds: &Path) {
    let out = Command::new(BIN)
        .args(["devcloud", "up", "--listen", "127.0.0.1:0", "--clouds-yaml"])
        .arg(clouds)
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "devcloud up again: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("devcloud backend: netns"),
        "{out:?}"
    );
}

/// `devcloud down`, then no namespace, interface, route or process of the setup is left.
fn down_and_check_clean(dir: &Path, prefix: &str, octet: u8) {
    let out = devcloud(&["down"], dir);
    assert!(out.status.success(), "devcloud down: {out:?}");
    assert!(text(&out).contains("machines removed"), "{out:?}");
    let netns = text(&sh("ip", &["netns", "list"]));
    assert!(
        !netns.contains(&format!("{prefix}-")),
        "namespaces left: {netns}"
    );
    let links = text(&sh("ip", &["-o", "link", "show"]));
    assert!(
        !links.contains(&format!(": {prefix}")),
        "interfaces left: {links}"
    );
    let routes = text(&sh("ip", &["route", "show", "table", "all"]));
    assert!(
        !routes.contains(&format!("10.{octet}.")),
        "routes left: {routes}"
    );
    let pgrep = sh("pgrep", &["-f", dir.to_str().unwrap()]);
    assert!(!pgrep.status.success(), "processes left: {}", text(&pgrep));
}

/// Kills the running `devcloud serve` hard, as a crash would (its machines live on).
fn kill_server(dir: &Path) {
    let pid: i32 = std::fs::read_to_string(dir.join("devcloud.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    // Bounded, and a zombie counts as dead (a container's pid 1 may never reap it).
    for _ in 0..200 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.rsplit(')').next().is_some_and(|r| r.starts_with(" Z")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("devcloud serve {pid} did not die");
}

#[test]
fn devcloud_backend_choice_is_recorded_and_checked() {
    let tmp = tempfile::Builder::new()
        .prefix("devcloud-choice-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = tmp.path().join("state");
    let _down = Down(dir.clone());
    let clouds = tmp.path().join("clouds.yaml");
    let up = |extra: &[&str]| {
        Command::new(BIN)
            .args(["devcloud", "up", "--listen", "127.0.0.1:0", "--clouds-yaml"])
            .arg(&clouds)
            .args(extra)
            .arg("--state-dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    // No --backend: records, and the message says so and how to get machines.
    let out = up(&[]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("devcloud backend: records"), "{err}");
    assert!(err.contains("--backend netns"), "{err}");
    let recorded = std::fs::read_to_string(dir.join("backend.json")).unwrap();
    assert!(recorded.contains("\"records\""), "{recorded}");
    // The seeded networks use the netns layout, whatever the backend.
    let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
    assert!(state.contains("10.213.0.0/20") && state.contains("10.213.255.0/24"));
    assert!(devcloud(&["down"], &dir).status.success());

    // The state dir belongs to records now: asking for netns is refused with the reason.
    let out = up(&["--backend", "netns"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("is served by backend `records`, not `netns`"),
        "{err}"
    );
}
