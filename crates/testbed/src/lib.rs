//! Real sshd hosts on this machine, for tests, benchmarks and devcloud's machines.
//!
//! Each host is a plain OpenSSH `sshd` on a loopback address with its own throw-away host
//! key, authorized_keys and log, all under one directory. Running as root, each sshd lives
//! in its own mount namespace with a private directory bind-mounted over `/root`, so hosts
//! do not see each other's files and a test can inspect what each "machine" wrote in
//! `DIR/hostN/root`. The directory also gets an Ansible inventory, a known_hosts file with
//! every host key (so strict checking works) and an `ssh_config` for plain OpenSSH.
//!
//! [`Testbed`] is an RAII guard: dropping it stops its sshds, unless [`Testbed::detach`]
//! was called (the CLI does, and `spark-openstack testbed down` stops them later).

mod files;
mod sshd;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use playbook_engine::connection::{ConnectionKind, ConnectionSpec, HostKeyPolicy};

/// The client key every host trusts, inside the testbed directory.
pub const CLIENT_KEY: &str = "id_ed25519";

/// One host to start.
#[derive(Clone, Debug)]
pub struct HostOptions {
    pub name: String,
    pub listen: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// sshd `LogLevel` (VERBOSE by default; DEBUG1 logs forwarded connections).
    pub log_level: String,
    /// Extra sshd_config lines.
    pub extra_config: Vec<String>,
}

impl HostOptions {
    pub fn new(name: impl Into<String>) -> Self {
        HostOptions {
            name: name.into(),
            listen: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            log_level: "VERBOSE".into(),
            extra_config: Vec::new(),
        }
    }
}

/// What to start, and where.
#[derive(Clone, Debug)]
pub struct TestbedOptions {
    pub dir: PathBuf,
    pub hosts: Vec<HostOptions>,
}

impl TestbedOptions {
    /// `count` hosts named `host1..hostN` on 127.0.0.1; with `base_port`, host `i` listens
    /// on `base_port + i - 1`, otherwise on free ports.
    pub fn new(dir: impl Into<PathBuf>, count: usize, base_port: Option<u16>) -> Self {
        let hosts = (1..=count)
            .map(|i| {
                let mut h = HostOptions::new(format!("host{i}"));
                if let Some(p) = base_port {
                    h.port = p.saturating_add(i as u16 - 1);
                }
                h
            })
            .collect();
        TestbedOptions {
            dir: dir.into(),
            hosts,
        }
    }
}

/// A running host.
#[derive(Clone, Debug)]
pub struct TestHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// The host's private directory (its `/root` when running as root).
    pub root: PathBuf,
    /// sshd's log (stderr of `sshd -D -e`).
    pub log: PathBuf,
    pub pid: u32,
}

/// Running sshd hosts; stops them on drop unless detached.
pub struct Testbed {
    pub dir: PathBuf,
    pub hosts: Vec<TestHost>,
    pub client_key: PathBuf,
    pub inventory: PathBuf,
    pub known_hosts: PathBuf,
    pub ssh_config: PathBuf,
    /// The login user (root when running as root, else the current user).
    pub user: String,
    children: Vec<std::process::Child>,
    detached: bool,
}

impl Testbed {
    /// Starts every host, waits until each answers with an SSH banner, and writes the
    /// inventory, known_hosts and ssh_config files.
    pub fn up(opts: &TestbedOptions) -> Result<Testbed> {
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("cannot create {}", opts.dir.display()))?;
        let dir = std::fs::canonicalize(&opts.dir)
            .with_context(|| format!("cannot resolve {}", opts.dir.display()))?;
        let client_key = dir.join(CLIENT_KEY);
        sshd::ensure_key(&client_key, "spark-openstack-testbed")?;
        let client_pub = std::fs::read_to_string(client_key.with_extension("pub"))
            .with_context(|| format!("cannot read {}.pub", client_key.display()))?;
        let isolate = sshd::can_isolate();
        let user = sshd::current_user();
        let mut tb = Testbed {
            client_key,
            inventory: dir.join("inventory.yml"),
            known_hosts: dir.join("known_hosts"),
            ssh_config: dir.join("ssh_config"),
            dir: dir.clone(),
            hosts: Vec::new(),
            user,
            children: Vec::new(),
            detached: false,
        };
        let mut host_keys = Vec::new();
        for h in &opts.hosts {
            let port = if h.port == 0 {
                sshd::free_port(h.listen)?
            } else {
                h.port
            };
            let started = sshd::start(&dir, h, port, &client_pub, isolate)?;
            host_keys.push(started.host_key_pub);
            tb.children.push(started.child);
            tb.hosts.push(started.host);
        }
        for h in &tb.hosts {
            sshd::wait_for_banner(h, Duration::from_secs(15))?;
        }
        files::write_all(&tb, &host_keys)?;
        Ok(tb)
    }

    /// Leaves the sshds running after this value is dropped.
    pub fn detach(mut self) -> Self {
        self.detached = true;
        self
    }

    /// Stops every sshd recorded under `dir` (from their pid files); returns how many.
    pub fn down(dir: &Path) -> Result<usize> {
        sshd::stop_all(dir)
    }

    /// A connection spec for host `i` that trusts exactly the testbed's host keys.
    pub fn spec(&self, i: usize) -> ConnectionSpec {
        let h = &self.hosts[i];
        ConnectionSpec {
            name: h.name.clone(),
            kind: ConnectionKind::Ssh,
            address: h.address.clone(),
            port: h.port,
            user: self.user.clone(),
            identity_files: vec![self.client_key.clone()],
            jump: None,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts_files: vec![self.known_hosts.clone()],
            connect_timeout: Duration::from_secs(10),
            connect_retries: 3,
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for child in &mut self.children {
            sshd::terminate(child.id());
            let _ = child.wait();
        }
    }
}
