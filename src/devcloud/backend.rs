//! The seam between devcloud's API (records, status machine) and what a server *is*.
//!
//! devcloud decides when transitions happen (boot time, injected boot errors) and keeps the
//! records; a [`ServerBackend`] makes them real. [`RecordsBackend`] makes nothing real (a
//! server is its record, the console log is synthesized). A later backend can make each
//! server a network namespace running sshd at the server's fixed IP: it receives everything
//! it needs in [`MachineSpec`] and may fail a boot with a [`BackendFault`], which devcloud
//! turns into status ERROR with that fault.

use async_trait::async_trait;

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
    /// Base64 user data as given at create time.
    pub user_data: Option<String>,
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
