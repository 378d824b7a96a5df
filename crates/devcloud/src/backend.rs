//! The seam between devcloud's API (records, status machine) and what a server *is*.
//!
//! devcloud decides when transitions happen (boot time, injected boot errors) and keeps the
//! records; a [`ServerBackend`] makes them real. [`RecordsBackend`] makes nothing real (a
//! server is its record, the console log is synthesized). The netns backend
//! ([`super::netns_backend`]) makes each server a network namespace running sshd at the
//! server's fixed IP: it receives everything it needs in [`MachineSpec`] and may fail a boot
//! with a [`BackendFault`], which devcloud turns into status ERROR with that fault.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a backend needs to bring up one server.
#[derive(Clone, Debug)]
pub struct MachineSpec {
    pub id: String,
    pub name: String,
    /// Image name (e.g. `debian-12`), to pick a distribution flavour.
    pub image_name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    /// One entry per NIC, in order: the fixed IPv4 address, its prefix length and gateway.
    pub nics: Vec<Nic>,
    /// The keypair's public key, to authorize for the default user.
    pub public_key: Option<String>,
    /// The image's default (login) user: its `os_admin_user` property, else its `os_distro`
    /// (cloud images name the user after the distribution), else `cloud-user`.
    pub login_user: String,
    /// Base64 user data as given at create time.
    pub user_data: Option<String>,
    /// The floating IP associated with one of the server's ports, if any.
    pub floating_ip: Option<String>,
    /// What the server's security groups let in (see [`super::firewall`]).
    pub firewall: super::netns::Firewall,
    /// The flavor's ephemeral disk in GB (0: none).
    pub ephemeral_gb: u64,
    /// The volumes attached to the server, in attachment order.
    pub volumes: Vec<super::netns::VolumeRef>,
}

#[derive(Clone, Debug)]
pub struct Nic {
    pub mac: String,
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: Option<String>,
    pub network_name: String,
}

/// Why a backend operation failed; shown as the server's `fault`.
#[derive(Clone, Debug)]
pub struct BackendFault {
    pub code: u16,
    pub message: String,
}

/// Makes servers real. Calls for one server never overlap: devcloud serializes them through
/// the server's task_state.
#[async_trait]
pub trait ServerBackend: Send + Sync {
    /// Brings the machine up; the server goes ACTIVE on Ok, ERROR with the fault otherwise.
    async fn boot(&self, spec: &MachineSpec) -> Result<(), BackendFault>;
    /// Powers off (server goes SHUTOFF).
    async fn stop(&self, spec: &MachineSpec) -> Result<(), BackendFault>;
    /// Powers on again after a stop, or reboots (`hard` for HARD reboots).
    async fn start(&self, spec: &MachineSpec) -> Result<(), BackendFault>;
    async fn reboot(&self, spec: &MachineSpec, hard: bool) -> Result<(), BackendFault>;
    /// Releases everything; called once when the server is deleted (in any state).
    async fn delete(&self, spec: &MachineSpec) -> Result<(), BackendFault>;
    /// The serial console log so far.
    async fn console_log(&self, spec: &MachineSpec) -> Result<String, BackendFault>;
    /// A floating IP was associated with (`Some`) or removed from (`None`) one of the
    /// server's ports. Records have nothing to do; a backend with real networking moves the
    /// address. Called after the change is recorded, for servers that still exist.
    async fn floating_ip_changed(
        &self,
        _server_id: &str,
        _address: Option<&str>,
    ) -> Result<(), BackendFault> {
        Ok(())
    }
    /// Volume `volume` was attached to the server (recorded already): a backend with real
    /// machines plugs in a disk. An error undoes the attachment.
    async fn volume_attached(
        &self,
        _server_id: &str,
        _volume: &super::netns::VolumeRef,
    ) -> Result<(), BackendFault> {
        Ok(())
    }
    /// Volume `volume_id` was detached from the server.
    async fn volume_detached(
        &self,
        _server_id: &str,
        _volume_id: &str,
    ) -> Result<(), BackendFault> {
        Ok(())
    }
    /// Volume `volume_id` was deleted: its data goes.
    async fn volume_deleted(&self, _volume_id: &str) -> Result<(), BackendFault> {
        Ok(())
    }
    /// The ingress rules of every server (by id) as they are now; called whenever they may
    /// have changed. Records have nothing to enforce; a backend with real machines applies
    /// them (and the latest ones to machines it boots later).
    async fn firewalls_changed(
        &self,
        _firewalls: std::collections::BTreeMap<String, super::netns::Firewall>,
    ) -> Result<(), BackendFault> {
        Ok(())
    }
}

/// Servers are records only; the console log is what a cloud image's first boot prints.
#[derive(Debug, Default)]
pub struct RecordsBackend;

#[async_trait]
impl ServerBackend for RecordsBackend {
    async fn boot(&self, _spec: &MachineSpec) -> Result<(), BackendFault> {
        Ok(())
    }
    async fn stop(&self, _spec: &MachineSpec) -> Result<(), BackendFault> {
        Ok(())
    }
    async fn start(&self, _spec: &MachineSpec) -> Result<(), BackendFault> {
        Ok(())
    }
    async fn reboot(&self, _spec: &MachineSpec, _hard: bool) -> Result<(), BackendFault> {
        Ok(())
    }
    async fn delete(&self, _spec: &MachineSpec) -> Result<(), BackendFault> {
        Ok(())
    }
    async fn console_log(&self, spec: &MachineSpec) -> Result<String, BackendFault> {
        Ok(synthetic_console(spec))
    }
}

/// A plausible cloud-init boot log, so tools that scrape the console (for host keys or
/// "login:" prompts) have something realistic to parse.
pub fn synthetic_console(spec: &MachineSpec) -> String {
    let mut out = vec![
        "[    0.000000] Linux version 6.1.0-devcloud (devcloud@localhost) #1 SMP".to_string(),
        format!("[    0.000000] Memory: {}K available", spec.ram_mb * 1024),
        format!("[    0.010000] smpboot: Allowing {} CPUs", spec.vcpus),
        format!(
            "cloud-init[512]: Cloud-init v. 23.1 running 'init' for {}",
            spec.name
        ),
        "ci-info: +++++++++++++++++++++++Net device info+++++++++++++++++++++++".to_string(),
    ];
    for (i, nic) in spec.nics.iter().enumerate() {
        out.push(format!(
            "ci-info: | eth{i} | True | {}/{} | global | {} |",
            nic.ip, nic.prefix_len, nic.mac
        ));
    }
    out.push("-----BEGIN SSH HOST KEY FINGERPRINTS-----".to_string());
    out.push("256 SHA256:devcloudhostkey root@devcloud (ED25519)".to_string());
    out.push("-----END SSH HOST KEY FINGERPRINTS-----".to_string());
    out.push(format!(
        "cloud-init[700]: Cloud-init v. 23.1 finished. Datasource DataSourceOpenStack. Up 4.20 seconds ({})",
        spec.image_name
    ));
    out.push(String::new());
    out.push(format!("{} login: ", spec.name));
    out.join("\n")
}

/// Which backend serves a state dir. Chosen at the first `devcloud up`/`serve` and recorded
/// in `DIR/backend.json`, because the machines (and the ranges they use) outlive the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Servers are records only (no root needed).
    Records,
    /// Servers are network-namespace machines with sshd (needs root).
    Netns,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Records => "records",
            BackendKind::Netns => "netns",
        })
    }
}

/// What `DIR/backend.json` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendChoice {
    pub backend: BackendKind,
    /// The netns layout in use (names, ranges, where the machines live), so a restarted
    /// devcloud reuses it without its config file and `devcloud down` finds the machines
    /// even when the server is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<super::netns::NetnsConfig>,
}

impl BackendChoice {
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("backend.json")
    }

    /// The recorded choice; `None` for a state dir that has none yet (or predates it).
    pub fn load(dir: &Path) -> anyhow::Result<Option<BackendChoice>> {
        let path = Self::file(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("corrupt {}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create state dir {}: {e}", dir.display()))?;
        let path = Self::file(dir);
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }

    /// The backend to use for `dir` given the `--backend` flag: the flag, else the recorded
    /// choice, else records. A flag that contradicts the record is refused (the state's
    /// servers belong to the recorded backend), and so is netns without root.
    pub fn resolve(dir: &Path, flag: Option<BackendKind>) -> anyhow::Result<BackendKind> {
        let recorded = Self::load(dir)?.map(|c| c.backend);
        let kind = match (flag, recorded) {
            (Some(f), Some(r)) if f != r => anyhow::bail!(
                "state dir {} is served by backend `{r}`, not `{f}`; drop --backend, use \
                 another --state-dir, or remove this one (after `devcloud down`) to start over",
                dir.display()
            ),
            (Some(f), _) => f,
            (None, Some(r)) => r,
            (None, None) => BackendKind::Records,
        };
        if kind == BackendKind::Netns && !nix::unistd::geteuid().is_root() {
            anyhow::bail!(
                "--backend netns needs root (it creates network namespaces, bridges and \
                 routes); run as root, or use --backend records (servers as records only)"
            );
        }
        Ok(kind)
    }
}
