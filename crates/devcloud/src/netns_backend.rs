//! `devcloud --backend netns`: every server is a real machine made by [`NetnsMachines`] (own
//! network namespace at the server's fixed IP, hostname, /root and sshd accepting the
//! keypair's public key), and a floating IP is a second interface on the external bridge.
//!
//! [`NetnsMachines`] is synchronous (it runs `ip`, `unshare`, `sshd`) and keeps one state file,
//! so every call runs in `spawn_blocking` behind one mutex: operations on different servers are
//! serialized, which keeps the state file consistent and is fast enough for a test cloud.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::backend::{BackendFault, MachineSpec, ServerBackend};
use super::netns::{
    Firewall, ImageBoot, LinkShape, NetnsConfig, NetnsError, NetnsMachines, NewMachine, VolumeRef,
    hostname_from_name, image,
};

/// Machines boot from images (`netns.machine_fs: image`): where the images are, the proxy
/// an image build downloads through, and the apt proxy URL machines are given.
#[derive(Clone, Debug)]
pub struct Images {
    pub dir: std::path::PathBuf,
    pub build_proxy: String,
    pub machine_proxy: String,
}

/// The machines, plus floating IPs announced for servers whose machine does not exist yet
/// (associated while the server is still in BUILD); boot applies them.
struct Inner {
    machines: NetnsMachines,
    pending_floating: HashMap<String, Option<Ipv4Addr>>,
    /// The latest firewall of every server (from the last sync), and what each machine has.
    wanted_firewall: HashMap<String, Firewall>,
    applied_firewall: HashMap<String, Firewall>,
    /// `None`: machines share the host's filesystem.
    images: Option<Images>,
}

pub struct NetnsBackend {
    inner: Arc<Mutex<Inner>>,
}

impl NetnsBackend {
    /// Opens (or resumes) the setup and makes sure its networks exist, so a missing
    /// privilege or tool is reported when devcloud starts rather than at the first boot.
    /// The reject route for the whole range is installed before either bridge.
    /// Every boot starts sshd after a random delay between `ssh_delay_min` and `_max`.
    pub fn open(
        cfg: NetnsConfig,
        ssh_delay_min: Duration,
        ssh_delay_max: Duration,
        images: Option<Images>,
        link: Option<LinkShape>,
    ) -> Result<Self, NetnsError> {
        let mut machines = NetnsMachines::open(cfg)?;
        machines.set_ssh_delay(ssh_delay_min, ssh_delay_max)?;
        machines.set_link(link)?;
        machines.ensure_networks()?;
        Ok(NetnsBackend {
            inner: Arc::new(Mutex::new(Inner {
                machines,
                pending_floating: HashMap::new(),
                wanted_firewall: HashMap::new(),
                applied_firewall: HashMap::new(),
                images,
            })),
        })
    }

    /// Runs `f` on the machines in a blocking thread, one call at a time.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<R, NetnsError> + Send + 'static,
    ) -> Result<R, BackendFault> {
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await;
        match joined {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(fault(e.to_string())),
            Err(e) => Err(fault(format!("machine operation panicked: {e}"))),
        }
    }
}

fn fault(message: String) -> BackendFault {
    BackendFault {
        code: 500,
        message: format!("netns machine: {message}"),
    }
}

fn parse_ip(what: &str, text: &str) -> Result<Ipv4Addr, NetnsError> {
    text.parse()
        .map_err(|_| NetnsError::Invalid(format!("{what} `{text}` is not an IPv4 address")))
}

impl Inner {
    fn exists(&self, id: &str) -> bool {
        self.machines.info(id).is_ok()
    }

    /// Creates the machine from the spec (replacing a half-made one left by a crash) and
    /// attaches its floating IP: the latest one announced, else the one in the spec.
    fn create(&mut self, spec: &MachineSpec) -> Result<(), NetnsError> {
        let nic = spec.nics.first().ok_or_else(|| {
            NetnsError::Invalid(format!("server {} has no network port", spec.id))
        })?;
        let fixed = parse_ip("fixed IP", &nic.ip)?;
        if self.exists(&spec.id) {
            self.machines.delete(&spec.id)?;
        }
        let keys = spec.public_key.clone().unwrap_or_default();
        // The firewall is in place before sshd can start: the latest synced one, else the
        // one the spec was made with.
        let firewall = self
            .wanted_firewall
            .get(&spec.id)
            .cloned()
            .unwrap_or_else(|| spec.firewall.clone());
        self.applied_firewall.remove(&spec.id);
        let image = match &self.images {
            Some(im) => Some(ImageBoot {
                rootfs: image::ensure(&im.dir, &spec.image_name, &im.build_proxy)?,
                apt_proxy: im.machine_proxy.clone(),
            }),
            None => None,
        };
        self.machines.create_machine(
            &spec.id,
            NewMachine {
                hostname: &hostname_from_name(&spec.name),
                fixed_ip: fixed,
                user: &spec.login_user,
                authorized_keys: &keys,
                firewall: Some(&firewall),
                image,
                ephemeral_gb: spec.ephemeral_gb,
                volumes: spec.volumes.clone(),
            },
        )?;
        self.applied_firewall.insert(spec.id.clone(), firewall);
        let floating = match self.pending_floating.remove(&spec.id) {
            Some(announced) => announced,
            None => spec
                .floating_ip
                .as_deref()
                .map(|a| parse_ip("floating IP", a))
                .transpose()?,
        };
        if let Some(ip) = floating {
            self.machines.attach_floating(&spec.id, ip)?;
        }
        Ok(())
    }
}

#[async_trait]
impl ServerBackend for NetnsBackend {
    async fn boot(&self, spec: &MachineSpec) -> Result<(), BackendFault> {
        let spec = spec.clone();
        self.run(move |m| m.create(&spec)).await
    }

    async fn stop(&self, spec: &MachineSpec) -> Result<(), BackendFault> {
        let id = spec.id.clone();
        self.run(move |m| match m.exists(&id) {
            true => m.machines.stop(&id),
            false => Ok(()),
        })
        .await
    }

    /// Starts sshd again; a server whose machine is gone (torn down by `devcloud down`)
    /// gets a new one, as a cloud would rebuild an instance after losing its host.
    async fn start(&self, spec: &MachineSpec) -> Result<(), BackendFault> {
        let spec = spec.clone();
        self.run(move |m| match m.exists(&spec.id) {
            true => m.machines.start(&spec.id),
            false => m.create(&spec),
        })
        .await
    }

    async fn reboot(&self, spec: &MachineSpec, _hard: bool) -> Result<(), BackendFault> {
        let spec = spec.clone();
        self.run(move |m| match m.exists(&spec.id) {
            true => m.machines.reboot(&spec.id),
            false => m.create(&spec),
        })
        .await
    }

    async fn delete(&self, spec: &MachineSpec) -> Result<(), BackendFault> {
        let id = spec.id.clone();
        self.run(move |m| {
            m.pending_floating.remove(&id);
            m.wanted_firewall.remove(&id);
            m.applied_firewall.remove(&id);
            match m.exists(&id) {
                true => m.machines.delete(&id),
                false => Ok(()),
            }
        })
        .await
    }

    /// The machine's cloud-init style log (with its real host keys); empty before boot.
    async fn console_log(&self, spec: &MachineSpec) -> Result<String, BackendFault> {
        let id = spec.id.clone();
        self.run(move |m| match m.exists(&id) {
            true => m.machines.console_log(&id),
            false => Ok(String::new()),
        })
        .await
    }

    /// Applies every changed firewall to its machine (stopped ones too: the rules live in
    /// the namespace); servers without a machine yet get theirs when they boot.
    async fn firewalls_changed(
        &self,
        firewalls: std::collections::BTreeMap<String, Firewall>,
    ) -> Result<(), BackendFault> {
        self.run(move |m| {
            m.wanted_firewall = firewalls.into_iter().collect();
            let mut problems = Vec::new();
            let ids: Vec<String> = m.wanted_firewall.keys().cloned().collect();
            for id in ids {
                let fw = &m.wanted_firewall[&id];
                if !m.exists(&id) || m.applied_firewall.get(&id) == Some(fw) {
                    continue;
                }
                match m.machines.set_firewall(&id, fw) {
                    Ok(()) => {
                        let fw = fw.clone();
                        m.applied_firewall.insert(id, fw);
                    }
                    Err(e) => problems.push(format!("server {id}: {e}")),
                }
            }
            match problems.is_empty() {
                true => Ok(()),
                false => Err(NetnsError::Invalid(problems.join("; "))),
            }
        })
        .await
    }

    /// Plugs the volume into the machine (at its next boot when it is not running); a
    /// server without a machine yet gets it with its boot spec.
    async fn volume_attached(
        &self,
        server_id: &str,
        volume: &VolumeRef,
    ) -> Result<(), BackendFault> {
        let (id, vol) = (server_id.to_string(), volume.clone());
        self.run(move |m| match m.exists(&id) {
            true => m.machines.attach_volume(&id, &vol),
            false => Ok(()),
        })
        .await
    }

    async fn volume_detached(&self, server_id: &str, volume_id: &str) -> Result<(), BackendFault> {
        let (id, vol) = (server_id.to_string(), volume_id.to_string());
        self.run(move |m| match m.exists(&id) {
            true => m.machines.detach_volume(&id, &vol),
            false => Ok(()),
        })
        .await
    }

    async fn volume_deleted(&self, volume_id: &str) -> Result<(), BackendFault> {
        let vol = volume_id.to_string();
        self.run(move |m| m.machines.delete_volume(&vol)).await
    }

    async fn floating_ip_changed(
        &self,
        server_id: &str,
        address: Option<&str>,
    ) -> Result<(), BackendFault> {
        let ip = address
            .map(|a| parse_ip("floating IP", a))
            .transpose()
            .map_err(|e| fault(e.to_string()))?;
        let id = server_id.to_string();
        self.run(move |m| {
            if !m.exists(&id) {
                m.pending_floating.insert(id, ip);
                return Ok(());
            }
            let current = m.machines.info(&id)?.floating_ip;
            if current == ip {
                return Ok(());
            }
            if current.is_some() {
                m.machines.detach_floating(&id)?;
            }
            match ip {
                Some(ip) => m.machines.attach_floating(&id, ip),
                None => Ok(()),
            }
        })
        .await
    }
}
