//! `devcloud up --backend netns` end to end: servers made through the OpenStack API (with the
//! project's own cloud client) are real machines reached with OpenSSH as the image's user
//! (`debian`, with sudo; root is refused) — the master through its floating IP, the others
//! only through the master — once their boot delay is over. Nova shows a floating IP a few
//! seconds after Neutron; security groups are enforced inside the machines;
//! stop/start/delete act on them (stop leaves no process), and `devcloud down` leaves no
//! namespace, bridge, route or process behind.
//!
//! Needs root, `ip`, `sshd`, `ssh` and `ssh-keygen`; skipped with the reason otherwise, but
//! failed when `CI` is set (CI runs as root and must run it).

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use openstack_client::compute::{ServerCreate, ServerFilter};
use openstack_client::network::SecurityGroupRule;
use openstack_client::wait::Wait;
use openstack_client::{Cloud, LoadOptions, Service, config};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_spark-openstack");

fn skip_reason() -> Option<String> {
    support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/ssh-keygen",
            "/usr/bin/pgrep",
            "/usr/sbin/nft",
            "/usr/bin/python3",
        ],
        "apt-get install openssh-server procps nftables python3",
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
                "Host *\n  User debian\n  IdentityFile {k}\n  IdentitiesOnly yes\n  \
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
            args.extend(["-J".into(), format!("debian@{j}")]);
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

/// Connects to `ip:port` from the controller: true when something answered.
fn reachable(ip: &str, port: u16) -> bool {
    let addr: Ipv4Addr = ip.parse().unwrap();
    TcpStream::connect_timeout(&SocketAddr::from((addr, port)), Duration::from_secs(2)).is_ok()
}

/// Host PIDs of processes whose command line contains `needle`.
fn pgrep(needle: &str) -> String {
    text(&sh("pgrep", &["-f", needle]))
}

/// A shell test (run inside a machine) that `host:port` accepts a TCP connection.
fn probe(host: &str, port: u16) -> String {
    format!(
        "timeout 3 bash -c 'echo > /dev/tcp/{host}/{port}' 2>/dev/null && echo open || echo closed"
    )
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
    let octet = support::free_octet(100, 50);
    let prefix = format!("w{}", pid % 10000);
    let cfg_file = tmp.path().join("devcloud.yaml");
    std::fs::write(
        &cfg_file,
        format!(
            "boot_time: {{min_ms: 200, max_ms: 200}}\naction_time_ms: 200\n\
             netns: {{prefix: {prefix}, supernet: 10.{octet}.0.0/16, ssh_delay_s: [3, 5], \
             machine_fs: host}}\n"
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
    // A group whose members (only) reach each other's port 8124.
    let inner = rt
        .block_on(cloud.ensure_security_group("inner", "members only"))
        .unwrap();
    let mut peers = SecurityGroupRule::tcp_from_cidr(&inner.id, 8124, 8124, "0.0.0.0/0");
    peers.remote_ip_prefix = None;
    peers.remote_group_id = Some(inner.id.clone());
    rt.block_on(cloud.add_security_group_rule(&peers)).unwrap();
    let image = rt.block_on(cloud.find_image("debian-12")).unwrap();
    let flavor = rt.block_on(cloud.find_flavor("m1.tiny")).unwrap();
    let private = rt.block_on(cloud.find_network("private")).unwrap();
    let create = |name: &str, groups: &[&str]| ServerCreate {
        name: name.into(),
        image_id: Some(image.id.clone()),
        flavor_id: flavor.id.clone(),
        key_name: Some("wire".into()),
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        network_ids: vec![private.id.clone()],
        ..ServerCreate::default()
    };
    // The boot delay starts when devcloud boots a machine, after its create request: the
    // sound reference for "sshd does not answer yet" (ACTIVE may be seen seconds later on a
    // loaded machine).
    let created_at = std::time::Instant::now();
    let master = rt
        .block_on(cloud.create_server(&create("Wire Master", &["wire", "inner"])))
        .unwrap();
    let slave = rt
        .block_on(cloud.create_server(&create("wire-slave", &["wire", "inner"])))
        .unwrap();
    let outsider = rt
        .block_on(cloud.create_server(&create("wire-out", &["wire"])))
        .unwrap();
    let ids = vec![master.id.clone(), slave.id.clone(), outsider.id.clone()];
    let active = rt
        .block_on(cloud.wait_for_servers(&ids, "ACTIVE", &filter, wait))
        .unwrap();
    let active_at = std::time::Instant::now();
    let fixed = |id: &str| -> String {
        let s = active.iter().find(|s| s.id == id).unwrap();
        s.ips("fixed")[0].to_string()
    };
    let (master_ip, slave_ip) = (fixed(&master.id), fixed(&slave.id));
    let outsider_ip = fixed(&outsider.id);
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

    // ACTIVE, with the address on the machine, but still booting: port 22 refuses. Only an
    // attempt within 3 s of the create can be sure of that; a slower run says so.
    let float_addr: Ipv4Addr = float.parse().unwrap();
    let attempt =
        TcpStream::connect_timeout(&SocketAddr::from((float_addr, 22)), Duration::from_secs(2));
    if created_at.elapsed() < Duration::from_secs(3) {
        let err = attempt.expect_err("sshd answered during the boot delay");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
    } else {
        eprintln!(
            "note: {:.1} s after the create request, too late to see the boot delay refuse",
            created_at.elapsed().as_secs_f64()
        );
    }

    // Neutron lists the association at once; Nova's addresses show it only 1-3 s later.
    let listed = rt
        .block_on(cloud.list_floating_ips(&[("port_id", port.as_str())]))
        .unwrap();
    assert_eq!(listed[0].floating_ip_address, float);
    let shown = rt.block_on(cloud.get_server(&master.id)).unwrap();
    assert!(
        shown.ips("floating").is_empty(),
        "{:?}",
        shown.ips("floating")
    );
    let mut seen = false;
    for _ in 0..50 {
        let shown = rt.block_on(cloud.get_server(&master.id)).unwrap();
        if shown.ips("floating") == vec![float.as_str()] {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "Nova never showed the floating IP");

    // sshd answers once the boot delay (3-5 s after ACTIVE) is over.
    let mut up = false;
    for _ in 0..100 {
        if ssh.run(None, &float, "true").status.success() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(up, "sshd never answered");
    assert!(
        created_at.elapsed() >= Duration::from_millis(2900),
        "sshd answered {:?} after the create request, within the boot delay",
        created_at.elapsed()
    );
    // The others boot in parallel; their delay is over too after at most 5 s.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(active_at.elapsed()));

    // The master answers on its floating IP with its own hostname (from the server name),
    // as the image's user with passwordless sudo; root cannot log in.
    assert_eq!(ssh.ok(None, &float, "hostname"), "wire-master");
    assert_eq!(
        ssh.ok(None, &float, "id -un; sudo -n true && sudo -n id -un"),
        "debian\nroot"
    );
    let root = Command::new("ssh")
        .args(["-F", &ssh.config, "-l", "root", &float, "true"])
        .output()
        .unwrap();
    assert!(!root.status.success(), "root logged in: {root:?}");

    // Security groups are enforced in the machine: a port no rule opens is dropped...
    ssh.ok(
        None,
        &float,
        "for p in 8123 8124; do nohup python3 -m http.server $p >/dev/null 2>&1 </dev/null & done; sleep 1",
    );
    assert_eq!(ssh.ok(None, &float, &probe("127.0.0.1", 8123)), "open");
    assert!(!reachable(&float, 8123), "8123 reachable without a rule");
    // ...a rule opens it at once (from the controller's address)...
    let body = json!({"security_group_rule": {"security_group_id": sg.id, "direction": "ingress",
        "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 8123, "port_range_max": 8123,
        "remote_ip_prefix": format!("10.{octet}.255.1/32")}});
    let made = rt
        .block_on(cloud.call(
            Service::Network,
            reqwest::Method::POST,
            "/security-group-rules",
            Some(body),
        ))
        .unwrap();
    let rule: serde_json::Value = made.json().unwrap();
    let rule_id = rule["security_group_rule"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reachable(&float, 8123), "8123 closed after adding a rule");
    // ...and deleting the rule closes it again.
    rt.block_on(cloud.call(
        Service::Network,
        reqwest::Method::DELETE,
        &format!("/security-group-rules/{rule_id}"),
        None,
    ))
    .unwrap();
    assert!(
        !reachable(&float, 8123),
        "8123 still open after deleting the rule"
    );
    // remote_group_id: members of `inner` reach 8124, a machine outside it does not (nor
    // does the controller).
    assert_eq!(
        ssh.ok(Some(&float), &slave_ip, &probe(&master_ip, 8124)),
        "open"
    );
    assert_eq!(
        ssh.ok(Some(&float), &outsider_ip, &probe(&master_ip, 8124)),
        "closed"
    );
    assert!(!reachable(&float, 8124));
    // Putting the outsider's port into `inner` lets it in.
    let out_port = rt.block_on(cloud.server_ports(&outsider.id)).unwrap()[0]
        .id
        .clone();
    rt.block_on(cloud.call(
        Service::Network,
        reqwest::Method::PUT,
        &format!("/ports/{out_port}"),
        Some(json!({"port": {"security_groups": [sg.id, inner.id]}})),
    ))
    .unwrap();
    assert_eq!(
        ssh.ok(Some(&float), &outsider_ip, &probe(&master_ip, 8124)),
        "open"
    );
    // The slave's fixed IP is not reachable from the controller; through the master it is.
    let slave_addr: Ipv4Addr = slave_ip.parse().unwrap();
    let err =
        TcpStream::connect_timeout(&SocketAddr::from((slave_addr, 22)), Duration::from_secs(5))
            .expect_err("a fixed IP must not be reachable from the controller");
    assert_eq!(err.raw_os_error(), Some(libc::EHOSTUNREACH), "{err}");
    assert_eq!(ssh.ok(Some(&float), &slave_ip, "hostname"), "wire-slave");
    // The other way round, the slave (no floating IP) reaches what the controller serves on
    // the external network through the tenant network's router, masqueraded as the
    // router's external address, as a cloud's SNAT lets slaves reach its public endpoints.
    let listener = std::net::TcpListener::bind(format!("10.{octet}.255.1:0")).unwrap();
    let listening = listener.local_addr().unwrap().port();
    let accepted = std::thread::spawn(move || listener.accept().map(|(_, peer)| peer.ip()));
    assert_eq!(
        ssh.ok(
            Some(&float),
            &slave_ip,
            &probe(&format!("10.{octet}.255.1"), listening)
        ),
        "open"
    );
    assert_eq!(
        accepted.join().unwrap().unwrap().to_string(),
        format!("10.{octet}.255.254")
    );
    assert!(
        ssh.ok(Some(&float), &slave_ip, "ip -4 route show default")
            .starts_with(&format!("default via 10.{octet}.0.1 ")),
    );
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

    // os-stop kills the machine like a power-off (unreachable, nothing of it runs, also
    // what sudo/setsid/nohup started) and keeps /root; os-start boots it again, sshd after
    // the boot delay.
    ssh.ok(None, &float, "echo kept | sudo tee /root/marker >/dev/null");
    let sleeper = format!("sleep 6{}", pid % 100000);
    ssh.ok(
        None,
        &float,
        &format!("sudo setsid nohup {sleeper} >/dev/null 2>&1 </dev/null & sleep 0.3"),
    );
    assert!(!pgrep(&sleeper).is_empty());
    rt.block_on(cloud.stop_server(&master.id)).unwrap();
    rt.block_on(cloud.wait_for_servers(&ids[..1], "SHUTOFF", &filter, wait))
        .unwrap();
    assert_eq!(pgrep(&sleeper), "", "a process survived stop");
    assert_eq!(pgrep("http.server 812"), "", "the listeners survived stop");
    assert!(!ssh.run(None, &float, "true").status.success());
    rt.block_on(cloud.start_server(&master.id)).unwrap();
    rt.block_on(cloud.wait_for_servers(&ids[..1], "ACTIVE", &filter, wait))
        .unwrap();
    assert!(!reachable(&float, 22), "sshd answered right after start");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ssh.ok(None, &float, "sudo cat /root/marker"), "kept");

    // Disassociating takes the address off the machine; associating puts it back.
    rt.block_on(cloud.set_floating_ip_port(&fip.id, None))
        .unwrap();
    assert!(!ssh.run(None, &float, "true").status.success());
    rt.block_on(cloud.set_floating_ip_port(&fip.id, Some(&port)))
        .unwrap();
    // On a loaded machine the address can take up to about 30 s to answer again (seen
    // since machines have a default route through the tenant router; not yet explained,
    // see the stop-18 closing note): wait for it, as a client retrying would.
    let reassociated = std::time::Instant::now();
    while !ssh.run(None, &float, "true").status.success() {
        assert!(
            reassociated.elapsed() < Duration::from_secs(90),
            "the floating IP did not answer again within 90 s of being associated"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(ssh.ok(None, &float, "hostname"), "wire-master");

    // down waits for every machine process: a sleeper started with sudo is gone when it
    // returns (checked in down_and_check_clean by the state dir's processes, and here).
    ssh.ok(
        None,
        &float,
        &format!("sudo setsid nohup {sleeper} >/dev/null 2>&1 </dev/null & sleep 0.3"),
    );
    assert!(!pgrep(&sleeper).is_empty());

    // Deleting a server removes its machine.
    let before = text(&sh("ip", &["netns", "list"]));
    let slave_ns = format!("{prefix}-{}", &slave.id[..8]);
    assert!(before.contains(&slave_ns), "{before}");
    rt.block_on(cloud.delete_server(&slave.id)).unwrap();
    rt.block_on(cloud.wait_for_servers_deleted(&ids[1..2], &filter, wait))
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
    assert_eq!(ssh.ok(None, &float, "sudo cat /root/marker"), "kept");

    // down, even with the server already dead: everything it made on the host is gone.
    kill_server(&dir);
    down_and_check_clean(&dir, &prefix, octet);
    assert_eq!(pgrep(&sleeper), "", "a machine process survived down");
    assert!(!ssh.run(None, &float, "true").status.success());

    // The cloud's records outlive `down`: the next `up` rebuilds its ACTIVE server (a fresh
    // machine, like an instance rebuilt on a new host), floating IP included.
    up_again(&dir, &clouds);
    let mut back = None;
    // A bare `up` has no config file: the default boot delay (10-40 s) applies.
    for _ in 0..120 {
        let out = ssh.run(None, &float, "hostname; sudo ls /root");
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
        !netns.contains(&format!("{prefix}-")) && !netns.contains(&format!("{prefix}router")),
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
