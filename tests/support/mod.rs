//! Shared helpers for integration tests: real sshd hosts started through the testbed API.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use spark_openstack::connection::ConnectionSpec;
use spark_openstack::testbed::{HostOptions, Testbed, TestbedOptions};

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
