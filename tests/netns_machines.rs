//! End-to-end test of the netns backend: three real "machines" (namespaces + sshd) reached with
//! the real OpenSSH client as the image's user `debian` (sudo, no root login), checked for the
//! boot delay, isolation, stop/start (a power-off: no process survives) and a teardown that
//! leaves nothing.
//! Needs root, `ip`, `sshd`, `ssh` and `ssh-keygen`; skipped with the reason otherwise.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use devcloud::netns::{NetnsConfig, NetnsError, NetnsMachines};

/// Tears the setup down on every exit path (a failed assertion included), from the state file
/// alone, exactly like `devcloud down` in a new process would.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let torn_down = match NetnsMachines::open_existing(&self.0) {
            Ok(Some(m)) => m.teardown_all(),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = torn_down {
            eprintln!("cleanup of {}: {e}", self.0.display());
        }
    }
}

fn skip_reason() -> Option<String> {
    support::machine_test_blocker(
        &["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"],
        "apt-get install openssh-server",
    )
}

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// The OpenSSH client with a throw-away key and no host key checking, all in one `-F` file so
/// `-J` (which starts a second ssh) uses the same settings.
struct Ssh {
    config: String,
}

impl Ssh {
    fn new(dir: &Path) -> (Self, String) {
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
                 ConnectTimeout 20\n  LogLevel ERROR\n"
            ),
        )
        .unwrap();
        let public = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap();
        let ssh = Ssh {
            config: config.to_str().unwrap().to_string(),
        };
        (ssh, public)
    }

    fn run(&self, jump: Option<Ipv4Addr>, host: Ipv4Addr, cmd: &str) -> Output {
        let mut args = vec!["-F".to_string(), self.config.clone()];
        if let Some(j) = jump {
            args.extend(["-J".into(), format!("debian@{j}")]);
        }
        args.extend([host.to_string(), cmd.to_string()]);
        Command::new("ssh").args(&args).output().unwrap()
    }

    /// Like [`Ssh::run`] as another user.
    fn run_as(&self, user: &str, host: Ipv4Addr, cmd: &str) -> Output {
        let args = ["-F", &self.config, "-l", user, &host.to_string(), cmd];
        Command::new("ssh").args(args).output().unwrap()
    }

    /// Runs `cmd` and returns its trimmed stdout, failing the test with stderr otherwise.
    fn ok(&self, jump: Option<Ipv4Addr>, host: Ipv4Addr, cmd: &str) -> String {
        let out = self.run(jump, host, cmd);
        assert!(
            out.status.success(),
            "ssh {host} `{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// The key blob (second field) of a public key line.
fn key_blob(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Connects to port 22 once: Ok when something listens.
fn port22(ip: Ipv4Addr) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from((ip, 22)), Duration::from_secs(5))
}

/// Waits (bounded) until port 22 of `ip` accepts connections; returns how long that took.
fn wait_for_sshd(ip: Ipv4Addr) -> Duration {
    let start = std::time::Instant::now();
    while port22(ip).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sshd of {ip} never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// Host PIDs of processes whose command line contains `needle`.
fn pgrep(needle: &str) -> String {
    String::from_utf8_lossy(&sh("pgrep", &["-f", needle]).stdout).to_string()
}

fn keyscan(ip: Ipv4Addr) -> String {
    let out = sh(
        "ssh-keyscan",
        &["-T", "20", "-t", "ed25519", &ip.to_string()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().nth(2).unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn netns_machines_are_isolated_reachable_and_fully_removed() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED netns test: {why}");
        return;
    }
    let pid = std::process::id();
    let tmp = tempfile::Builder::new()
        .prefix("netns-test-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let state_dir = tmp.path().join("state");
    // A range and prefix of our own, so parallel runs and a real devcloud never clash.
    let octet = support::free_octet(200, 50);
    let cfg = NetnsConfig::with_range(&format!("n{}", pid % 10000), octet, &state_dir);
    let prefix = cfg.prefix.clone();
    let supernet = cfg.supernet.to_string();
    let _cleanup = Cleanup(state_dir.clone());
    let (ssh, public_key) = Ssh::new(tmp.path());

    let ip = |c: u8, d: u8| Ipv4Addr::new(10, octet, c, d);
    let (master_ip, s1_ip, s2_ip, float_ip) = (ip(0, 10), ip(0, 11), ip(0, 12), ip(255, 10));
    let mut m = NetnsMachines::open(cfg.clone()).unwrap();
    // Like a cloud VM: running at once, but sshd only after a boot delay.
    let delay = (Duration::from_secs(2), Duration::from_secs(3));
    m.set_ssh_delay(delay.0, delay.1).unwrap();
    m.create(
        "master-0001",
        "tc-master",
        master_ip,
        "debian",
        &public_key,
        None,
    )
    .unwrap();
    m.attach_floating("master-0001", float_ip).unwrap();
    assert!(m.info("master-0001").unwrap().running);
    let refused = port22(float_ip).expect_err("sshd must not answer during the boot delay");
    assert_eq!(
        refused.raw_os_error(),
        Some(libc::ECONNREFUSED),
        "{refused}"
    );
    let console = m.console_log("master-0001").unwrap();
    assert!(!console.contains("BEGIN SSH HOST KEY KEYS"), "{console}");
    m.create(
        "slave-0001",
        "tc-slave-1",
        s1_ip,
        "debian",
        &public_key,
        None,
    )
    .unwrap();
    m.create(
        "slave-0002",
        "tc-slave-2",
        s2_ip,
        "debian",
        &public_key,
        None,
    )
    .unwrap();
    let waited = wait_for_sshd(float_ip);
    assert!(waited + Duration::from_millis(500) >= delay.0, "{waited:?}");
    // The slaves boot in parallel; 4 s covers their delay.
    std::thread::sleep(Duration::from_secs(4));

    // The host forwards nothing that arrives on the devcloud bridges.
    for bridge in [cfg.tenant_bridge(), cfg.ext_bridge()] {
        let knob = format!("/proc/sys/net/ipv4/conf/{bridge}/forwarding");
        assert_eq!(
            std::fs::read_to_string(&knob).unwrap().trim(),
            "0",
            "{knob}"
        );
    }

    // Only the floating IP is reachable from the controller.
    assert_eq!(ssh.ok(None, float_ip, "hostname"), "tc-master");
    let err = TcpStream::connect_timeout(&SocketAddr::from((s1_ip, 22)), Duration::from_secs(5))
        .expect_err("a slave's fixed IP must not be reachable from the controller");
    assert_eq!(err.raw_os_error(), Some(libc::EHOSTUNREACH), "{err}");
    assert!(!ssh.run(None, s2_ip, "true").status.success());

    // Slaves answer through the master as jump host, each with its own hostname.
    assert_eq!(ssh.ok(Some(float_ip), s1_ip, "hostname"), "tc-slave-1");
    assert_eq!(ssh.ok(Some(float_ip), s2_ip, "hostname"), "tc-slave-2");
    // sshd is the first process of the machine's own PID namespace.
    assert_eq!(ssh.ok(None, float_ip, "cat /proc/1/comm"), "sshd");

    // The image's user logs in (its own user, home and key), with passwordless sudo; root
    // cannot log in at all, and the user does not exist on the host.
    assert_eq!(
        ssh.ok(None, float_ip, "id -un; echo $HOME; sudo -n id -un"),
        "debian\n/home/debian\nroot"
    );
    let root = ssh.run_as("root", float_ip, "true");
    assert!(!root.status.success(), "root logged in: {root:?}");
    let host_users = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!host_users.contains("/home/debian:"), "{host_users}");
    assert_eq!(
        ssh.ok(
            None,
            float_ip,
            "stat -c '%U %a' ~/.ssh ~/.ssh/authorized_keys"
        ),
        "debian 700\ndebian 600"
    );

    // /root is private per machine and never the real one.
    let marker = format!("netns-marker-{pid}");
    ssh.ok(
        None,
        float_ip,
        &format!("echo hi | sudo tee /root/{marker} >/dev/null"),
    );
    assert_eq!(
        ssh.ok(None, float_ip, &format!("sudo cat /root/{marker}")),
        "hi"
    );
    let probe = format!("sudo test -e /root/{marker} && echo yes || echo no");
    assert_eq!(ssh.ok(Some(float_ip), s1_ip, &probe), "no");
    assert!(!Path::new("/root").join(&marker).exists());
    let master = m.info("master-0001").unwrap();
    assert!(master.dir.join("root").join(&marker).exists());
    assert_eq!(master.user, "debian");
    // So is /home.
    ssh.ok(None, float_ip, &format!("echo hi > ~/{marker}"));
    let probe = format!("test -e ~/{marker} && echo yes || echo no");
    assert_eq!(ssh.ok(Some(float_ip), s1_ip, &probe), "no");

    // /etc/hosts edits stay on the machine that made them.
    let line = format!("{master_ip} spark-master-{pid}");
    ssh.ok(
        Some(float_ip),
        s1_ip,
        &format!("echo '{line}' | sudo tee -a /etc/hosts >/dev/null"),
    );
    assert!(
        ssh.ok(Some(float_ip), s1_ip, "cat /etc/hosts")
            .contains(&line)
    );
    assert!(!ssh.ok(None, float_ip, "cat /etc/hosts").contains(&line));
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .contains(&line)
    );

    // The console log carries the host key, as cloud-init prints it.
    let host_key = m.host_public_key("master-0001").unwrap();
    let console = m.console_log("master-0001").unwrap();
    assert!(console.contains("-----BEGIN SSH HOST KEY KEYS-----"));
    assert!(console.contains(&host_key));
    assert_eq!(keyscan(float_ip), key_blob(&host_key));

    // stop kills everything like a power-off: sshd, and what sudo, setsid and nohup started,
    // even a process that left the machine's network namespace. start boots again (sshd
    // after the delay) with the same key, /root and /home.
    let sleeper = format!("sleep 7{}", pid % 100000);
    let escaper = format!("sleep 8{}", pid % 100000);
    ssh.ok(
        None,
        float_ip,
        &format!(
            "sudo setsid nohup {sleeper} >/dev/null 2>&1 </dev/null & \
             sudo setsid nohup unshare -n {escaper} >/dev/null 2>&1 </dev/null & sleep 0.5"
        ),
    );
    assert!(!pgrep(&sleeper).is_empty(), "the sleeper did not start");
    assert!(!pgrep(&escaper).is_empty(), "the escaper did not start");
    m.stop("master-0001").unwrap();
    assert!(!m.is_running("master-0001").unwrap());
    assert_eq!(
        pgrep(&sleeper),
        "",
        "a sudo/setsid/nohup process survived stop"
    );
    assert_eq!(
        pgrep(&escaper),
        "",
        "a process in its own netns survived stop"
    );
    assert!(!ssh.run(None, float_ip, "true").status.success());
    m.start("master-0001").unwrap();
    let refused = port22(float_ip).expect_err("sshd must not answer right after start");
    assert_eq!(
        refused.raw_os_error(),
        Some(libc::ECONNREFUSED),
        "{refused}"
    );
    // Stopped during the boot delay: no sshd ever starts.
    m.stop("master-0001").unwrap();
    std::thread::sleep(delay.1 + Duration::from_secs(1));
    assert!(!m.is_running("master-0001").unwrap());
    assert!(port22(float_ip).is_err());
    m.start("master-0001").unwrap();
    wait_for_sshd(float_ip);
    assert_eq!(
        ssh.ok(
            None,
            float_ip,
            &format!("sudo cat /root/{marker}; cat ~/{marker}")
        ),
        "hi\nhi"
    );
    assert_eq!(keyscan(float_ip), key_blob(&host_key));

    // A new process (a restarted devcloud) finds the same machines, still running.
    drop(m);
    let mut m = NetnsMachines::open(cfg.clone()).unwrap();
    let listed = m.list().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|i| i.running), "{listed:?}");

    // delete removes one machine entirely; teardown removes all the rest.
    let slave2 = m.info("slave-0002").unwrap();
    m.delete("slave-0002").unwrap();
    assert!(!slave2.dir.exists());
    assert!(!netns_list().contains(&slave2.netns));
    m.teardown_all().unwrap();

    assert!(
        !netns_list().contains(&format!("{prefix}-")),
        "{}",
        netns_list()
    );
    let links = String::from_utf8_lossy(&sh("ip", &["-o", "link", "show"]).stdout).to_string();
    assert!(
        !links.contains(&format!(": {prefix}")),
        "interfaces left: {links}"
    );
    let routes = String::from_utf8_lossy(&sh("ip", &["route", "show"]).stdout).to_string();
    assert!(!routes.contains(&supernet), "routes left: {routes}");
    let octets = format!("10.{octet}.");
    assert!(!routes.contains(&octets), "routes left: {routes}");
    let pgrep = sh("pgrep", &["-f", state_dir.to_str().unwrap()]);
    assert!(
        !pgrep.status.success(),
        "processes left: {}",
        String::from_utf8_lossy(&pgrep.stdout)
    );
    assert!(!state_dir.exists());
}

/// The message of an error that must happen.
fn err<T>(r: Result<T, NetnsError>) -> String {
    match r {
        Ok(_) => panic!("bad input accepted"),
        Err(e) => e.to_string(),
    }
}

/// Removes a route on drop, so a failed assertion does not leave it in the host.
struct RouteGuard(String);

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let _ = sh("ip", &["route", "del", "blackhole", &self.0]);
    }
}

#[test]
fn netns_bad_input_is_refused_with_the_resource_at_fault() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED netns test: {why}");
        return;
    }
    let pid = std::process::id();
    let tmp = tempfile::Builder::new()
        .prefix("netns-errors-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let state_dir = tmp.path().join("state");
    let octet = support::free_octet(150, 50);
    let cfg = NetnsConfig::with_range(&format!("e{}", pid % 10000), octet, &state_dir);
    let _cleanup = Cleanup(state_dir.clone());

    // A state dir every machine would hide behind its private /tmp.
    let hidden = NetnsConfig {
        state_dir: std::env::temp_dir().join(format!("netns-hidden-{pid}")),
        ..cfg.clone()
    };
    assert!(err(NetnsMachines::open(hidden.clone())).contains("/tmp"));
    let _ = std::fs::remove_dir_all(&hidden.state_dir);

    // A range the host already routes somewhere is not fenced off.
    let taken = format!("10.{octet}.5.0/24");
    let out = sh("ip", &["route", "add", "blackhole", &taken]);
    assert!(out.status.success(), "{out:?}");
    let guard = RouteGuard(taken.clone());
    let mut m = NetnsMachines::open(cfg.clone()).unwrap();
    assert!(err(m.ensure_networks()).contains(&taken));
    drop(guard);

    let ip = |c: u8, d: u8| Ipv4Addr::new(10, octet, c, d);
    let e = err(m.create("a1", "ok", ip(255, 9), "debian", "ssh-ed25519 AAAA x", None));
    assert!(
        e.contains("not a host address of the tenant network"),
        "{e}"
    );
    let e = err(m.create(
        "a1",
        "bad host",
        ip(0, 9),
        "debian",
        "ssh-ed25519 AAAA x",
        None,
    ));
    assert!(e.contains("hostname `bad host`"), "{e}");
    assert!(err(m.attach_floating("nope", ip(255, 9))).contains("`nope`"));
    let e = err(m.create("a2", "ok", ip(0, 9), "bad user", "ssh-ed25519 AAAA x", None));
    assert!(e.contains("login user `bad user`"), "{e}");
    assert!(!netns_list().contains(&format!("{}-a2", cfg.prefix)));

    // One process at a time; and a state dir set up with other settings is not reused.
    let e = err(NetnsMachines::open(cfg.clone()));
    assert!(e.contains("in use by another process"), "{e}");
    drop(m);
    let other = NetnsConfig {
        sshd: "/bin/false".into(),
        ..cfg.clone()
    };
    let e = err(NetnsMachines::open(other.clone()));
    assert!(e.contains("other names or ranges"), "{e}");
    NetnsMachines::open(cfg.clone())
        .unwrap()
        .teardown_all()
        .unwrap();

    // sshd that does not start: the error says so and nothing of the machine stays behind.
    let mut broken = NetnsMachines::open(other).unwrap();
    let e = err(broken.create("b1", "b1", ip(0, 20), "debian", "ssh-ed25519 AAAA x", None));
    assert!(e.contains("sshd of machine `b1` did not start"), "{e}");
    assert!(broken.list().unwrap().is_empty());
    assert!(!netns_list().contains(&format!("{}-b1", cfg.prefix)));
    broken.teardown_all().unwrap();
}

fn netns_list() -> String {
    String::from_utf8_lossy(&sh("ip", &["netns", "list"]).stdout).to_string()
}
