//! Shared helpers for integration tests: real sshd hosts started through the testbed API.
#![allow(dead_code)]

pub mod api;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use playbook_engine::connection::ConnectionSpec;
use sshd_testbed::{HostOptions, Testbed, TestbedOptions};

/// Running hosts plus the temporary directory holding their keys, configs and roots.
/// Dropping it stops the sshds, then removes the directory.
pub struct Hosts {
    pub tb: Testbed,
    pub dir: tempfile::TempDir,
}

impl Hosts {
    /// The Ansible inventory listing every host in group `testhosts`.
    pub fn inventory(&self) -> PathBuf {
        self.tb.inventory.clone()
    }
    /// The private key every host accepts.
    pub fn key(&self) -> PathBuf {
        self.tb.client_key.clone()
    }
    /// What host `i` sees as its root user's home (`/root` inside its namespace).
    pub fn root(&self, i: usize) -> PathBuf {
        self.tb.hosts[i].root.clone()
    }
    /// A strict connection spec for host `i`.
    pub fn spec(&self, i: usize) -> ConnectionSpec {
        self.tb.spec(i)
    }
}

/// Starts `n` hosts on 127.0.0.1.
pub fn start(n: usize) -> Hosts {
    start_with(n, |_| {})
}

/// Starts `n` hosts after letting `tweak` adjust each host's options.
pub fn start_with(n: usize, tweak: impl Fn(&mut HostOptions)) -> Hosts {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut opts = TestbedOptions::new(dir.path(), n, None);
    opts.hosts.iter_mut().for_each(tweak);
    let tb = Testbed::up(&opts).unwrap_or_else(|e| panic!("testbed did not start: {e:#}"));
    Hosts { tb, dir }
}

/// Why a test that makes namespace machines cannot run here: not root, or one of `tools`
/// missing (with `install`, the command that brings it). `None` when it can run.
pub fn machine_test_blocker(tools: &[&str], install: &str) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    tools
        .iter()
        .find(|t| !Path::new(t).exists())
        .map(|t| format!("{t} missing ({install})"))
}

/// A second octet `x` in `first..first + count` whose `10.x.0.0/16` the host does not use
/// yet (no route or address in it), starting at one picked by the test's pid so parallel
/// runs spread out. devcloud refuses a range that is someone's network, and a bridge left
/// by a killed earlier run (or a developer's own devcloud) is exactly that: a test takes
/// the next free range instead of failing. When all are taken it returns the first pick,
/// and devcloud's error names the route in the way.
pub fn free_octet(first: u8, count: u8) -> u8 {
    let used = ["route", "addr"]
        .iter()
        .map(|what| {
            Command::new("ip")
                .args(["-4", "-o", what, "show"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        })
        .collect::<String>();
    let start = (std::process::id() % count as u32) as u8;
    let pick = |i: u8| first + (start + i) % count;
    (0..count)
        .map(pick)
        .find(|&o| {
            let net = format!("10.{o}.");
            !used.split_whitespace().any(|t| t.starts_with(&net))
        })
        .unwrap_or_else(|| pick(0))
}

pub const BIN: &str = env!("CARGO_BIN_EXE_spark-openstack");

/// A devcloud in a directory of its own, the one fixture of the tests that run the binary
/// against devcloud: a fresh ed25519 key, and the environment every command of a test runs
/// with (own HOME, clouds.yaml and known_hosts, no user config). `devcloud down` on drop,
/// so a failed assertion leaves nothing on the host. [`TestCloud::netns`] has machines
/// with sshd; [`TestCloud::records`] only API records (for `--cloud-only` tests).
pub struct TestCloud {
    pub dir: tempfile::TempDir,
    /// The user's private key (`<key>.pub` beside it).
    pub key: PathBuf,
    /// devcloud's name prefix for this test's namespaces, bridges and machines (netns).
    pub prefix: String,
    /// Second octet of the cloud's `10.x.0.0/16` (netns).
    pub octet: u32,
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["devcloud", "down", "--state-dir"])
            .arg(self.path("state"))
            .output();
    }
}

impl TestCloud {
    /// Starts the cloud, unkind as a real one but quicker: sshd answers 2-5 s after ACTIVE
    /// (a real VM takes 20-90 s), floating IPs reach Nova 1-3 s late, security groups are
    /// enforced and the images log in as their non-root `os_admin_user`. `tag` starts its name prefix and `octets` is the range of second
    /// octets (first, count) its `10.x.0.0/16` supernet is picked from, both of the
    /// calling test's own, so tests running at once never share a bridge or an address
    /// (the launch output test in cluster_devcloud: 20-39, devcloud_images: 40-49,
    /// spark_cluster: 50-59, fetch_fanout: 60-69, debian_modules: 70-79, devcloud_netns:
    /// 100-149, netns_machines: 150-249, tunnel: 250-254). Within it, [`free_octet`] skips
    /// a range the host already uses.
    pub fn netns(tag: &str, octets: (u8, u8)) -> TestCloud {
        Self::netns_with(tag, octets, "")
    }

    /// [`TestCloud::netns`] with more devcloud.yaml settings (`extra`, whole lines).
    /// Its machines share the host's filesystem (`machine_fs: host`): quick to boot, for
    /// tests of the cloud side and of the tool; the roles on a stock image are
    /// [`TestCloud::netns_images`]'s.
    pub fn netns_with(tag: &str, octets: (u8, u8), extra: &str) -> TestCloud {
        Self::netns_full(tag, octets, ", machine_fs: host", extra)
    }

    /// [`TestCloud::netns`] whose machines boot from images (`netns.machine_fs: image`):
    /// their own Debian root filesystem, packages through devcloud's apt cache.
    pub fn netns_images(tag: &str, octets: (u8, u8)) -> TestCloud {
        Self::netns_images_with(tag, octets, "")
    }

    /// [`TestCloud::netns_images`] with more devcloud.yaml settings (`extra`, whole lines).
    pub fn netns_images_with(tag: &str, octets: (u8, u8), extra: &str) -> TestCloud {
        Self::netns_full(tag, octets, ", machine_fs: image", extra)
    }

    /// [`TestCloud::netns_images`] whose machines' links are shaped: `link` is the
    /// `netns.link` mapping (`{rate_mbit: 200}`).
    pub fn netns_images_shaped(tag: &str, octets: (u8, u8), link: &str) -> TestCloud {
        Self::netns_full(
            tag,
            octets,
            &format!(", machine_fs: image, link: {link}"),
            "",
        )
    }

    fn netns_full(tag: &str, octets: (u8, u8), netns_extra: &str, extra: &str) -> TestCloud {
        let pid = std::process::id();
        let octet = free_octet(octets.0, octets.1) as u32;
        let prefix = format!("{tag}{}", pid % 10000);
        let config = format!(
            "boot_time: {{min_ms: 300, max_ms: 300}}\naction_time_ms: 200\n\
             netns: {{prefix: {prefix}, supernet: 10.{octet}.0.0/16, ssh_delay_s: [2, 5]\
             {netns_extra}}}\n{extra}"
        );
        Self::start(tag, &config, &["--backend", "netns"], prefix, octet)
    }

    /// A devcloud whose servers are records only (no machines), with `config` as its
    /// devcloud.yaml.
    pub fn records(config: &str) -> TestCloud {
        Self::start("rec", config, &[], String::new(), 0)
    }

    fn start(tag: &str, config: &str, backend: &[&str], prefix: String, octet: u32) -> TestCloud {
        // Outside /tmp: machines get a private /tmp, and their files live under the state dir.
        let dir = tempfile::Builder::new()
            .prefix(&format!("spark-{tag}-"))
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("devcloud.yaml"), config).unwrap();
        let key = dir.path().join("id_ed25519");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let w = TestCloud {
            dir,
            key,
            prefix,
            octet,
        };
        let state = w.path("state").display().to_string();
        let cfg = w.path("devcloud.yaml").display().to_string();
        let clouds = w.path("clouds.yaml").display().to_string();
        let mut args = vec!["devcloud", "up"];
        args.extend(backend);
        args.extend([
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            &state,
            "--config",
            &cfg,
            "--clouds-yaml",
            &clouds,
        ]);
        w.ok(&args);
        w
    }

    /// The base URL devcloud serves on (from its endpoint file).
    pub fn url(&self) -> String {
        std::fs::read_to_string(self.path("state").join("endpoint"))
            .expect("devcloud endpoint file")
            .trim()
            .to_string()
    }

    /// The seeded demo user's password, from the state file.
    pub fn password(&self) -> String {
        self.state()["users"][0]["password"]
            .as_str()
            .expect("password")
            .to_string()
    }

    /// A project-scoped API client for the demo user.
    pub async fn login(&self) -> api::Client {
        api::login(&self.url(), &self.password()).await
    }

    /// Stops devcloud and starts it again on the same state with `config`.
    pub fn restart(self, config: &str) -> TestCloud {
        let state = self.path("state").display().to_string();
        self.ok(&["devcloud", "down", "--state-dir", &state]);
        std::fs::write(self.path("devcloud.yaml"), config).unwrap();
        let cfg = self.path("devcloud.yaml").display().to_string();
        let clouds = self.path("clouds.yaml").display().to_string();
        self.ok(&[
            "devcloud",
            "up",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            &state,
            "--config",
            &cfg,
            "--clouds-yaml",
            &clouds,
        ]);
        self
    }

    /// (exit code, stdout, stderr) of a command.
    pub fn outcome(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Stdout of a command that must succeed, parsed as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
    }

    /// The whole cloud as devcloud's own state file has it: reading it through the client
    /// of the binary under test would be circular.
    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("state").join("state.json"))
            .expect("devcloud state.json");
        serde_json::from_str(&text).expect("state.json is JSON")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("OS_CLIENT_CONFIG_FILE", self.path("clouds.yaml"))
            .env("OS_CLOUD", "devcloud")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_DATA_HOME");
        c
    }

    /// A cluster command with the user's key (`-i` is global: it goes right after the
    /// command name, before any trailing arguments).
    pub fn cluster_cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.cmd(&args[..1]);
        c.arg("-i").arg(&self.key).args(&args[1..]);
        c
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().expect("run spark-openstack")
    }

    /// Stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.run(args))
    }

    /// Stdout of a cluster command (with the user's key) that must succeed.
    pub fn cluster(&self, args: &[&str]) -> String {
        succeeded(
            args,
            self.cluster_cmd(args)
                .output()
                .expect("run spark-openstack"),
        )
    }

    /// The network namespaces of this cloud's machines (`<prefix>-<server id>`).
    pub fn namespaces(&self) -> Vec<String> {
        let list = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|ns| ns.starts_with(&format!("{}-", self.prefix)))
            .map(String::from)
            .collect()
    }
}

/// Stdout of `out`, which must be a success (else every stream of it in the panic).
pub fn succeeded(args: &[&str], out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first line `r` prints within `limit`, read on a thread (the rest is drained, so the
/// writer never blocks on a full pipe).
pub fn first_line(r: impl std::io::Read + Send + 'static, limit: Duration) -> Option<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(r).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        lines.for_each(drop);
    });
    rx.recv_timeout(limit).ok()
}

/// `spark-openstack tunnel NAME --json` running in the background, killed on drop.
pub struct Tunnel {
    pub child: std::process::Child,
    /// What it printed: service name → `{url, local_port, remote}`.
    pub services: serde_json::Value,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestCloud {
    /// Starts `tunnel NAME --json` and waits for its line of services.
    pub fn tunnel(&self, cluster: &str) -> Tunnel {
        let mut child = self
            .cluster_cmd(&["tunnel", cluster, "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tunnel");
        let stdout = child.stdout.take().unwrap();
        let line = first_line(stdout, Duration::from_secs(60));
        let mut t = Tunnel {
            child,
            services: serde_json::Value::Null,
        };
        let line = line.unwrap_or_else(|| panic!("tunnel {cluster} printed no services"));
        t.services = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        t
    }

    /// The controller's address on the floating network (where the tests' connections come
    /// from), as a /32 for `--authorized-address`.
    pub fn controller_cidr(&self) -> String {
        format!("10.{}.255.1/32", self.octet)
    }
}

/// `GET path` over HTTP/1.0 on `127.0.0.1:port` (a tunnel's local end): (status line,
/// whole response, with bytes that are not UTF-8 replaced).
pub fn http_get(port: u16, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the tunnel");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    // Bytes, shown lossily: a response may be an image.
    let mut body = Vec::new();
    s.read_to_end(&mut body).expect("read the response");
    let resp = String::from_utf8_lossy(&body).into_owned();
    let status = resp.lines().next().unwrap_or_default().to_string();
    (status, resp)
}

/// OpenSSH as the image's user with the cluster's key; the jump host takes the same
/// settings from the same `-F` file.
pub struct Ssh {
    config: String,
}

impl Ssh {
    pub fn new(dir: &Path, key: &Path) -> Self {
        let config = dir.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host *\n  User debian\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  \
                 ConnectTimeout 10\n  LogLevel ERROR\n",
                key.display()
            ),
        )
        .unwrap();
        Ssh {
            config: config.display().to_string(),
        }
    }

    pub fn run(&self, jump: Option<&str>, host: &str, cmd: &str) -> Output {
        let mut c = Command::new("ssh");
        c.args(["-F", &self.config]);
        if let Some(j) = jump {
            c.args(["-J", &format!("debian@{j}")]);
        }
        c.args([host, cmd]).output().unwrap()
    }

    /// Trimmed stdout of `cmd`, which must succeed.
    pub fn ok(&self, jump: Option<&str>, host: &str, cmd: &str) -> String {
        let out = self.run(jump, host, cmd);
        assert!(
            out.status.success(),
            "ssh {host} `{cmd}` exited {:?}:\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until sshd answers (the boot delay), at most 90 s.
    pub fn wait(&self, jump: Option<&str>, host: &str) {
        let start = Instant::now();
        while !self.run(jump, host, "true").status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{host} never answered SSH"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
