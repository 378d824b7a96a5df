//! Servers that are real Linux "machines" on this host, for devcloud's `--backend netns`.
//!
//! On a real cloud spark-openstack launches VMs; here each server is a set of namespaces with a
//! real sshd, so the whole product can be tested end to end on one host (as root).
//!
//! # Networks (host side, see [`network`])
//! An `unreachable` route covers the whole devcloud range (default 10.213.0.0/16) and is
//! installed first, so no packet for the range can leak to a real network. The tenant bridge
//! (`dcbr-tenant`, 10.213.0.0/20) has no host address: the controller cannot reach fixed IPs,
//! exactly like a cloud. The external bridge (`dcbr-ext`) holds the controller's address
//! 10.213.255.1/24; machines with a floating IP get a second veth on it. Machines have no
//! default route and forwarding off, so nothing is routed between the bridges or off the host.
//! Only machines with a floating IP are reachable from the controller; the others only from
//! inside the tenant network (e.g. through the master as an SSH jump host).
//!
//! # What a machine has of its own, and what it shares
//! Private: network namespace (`lo`, `eth0` = fixed IP, `eth1` = floating IP), hostname (UTS
//! namespace), PID namespace with its own `/proc` (`ps` shows only the machine), and through bind
//! mounts in its own mount namespace: `/root`, `/home`, `/tmp`, `/mnt`, `/etc/hosts`,
//! `/etc/hostname` (only if the host has one), the user database (`/etc/passwd`, `group`,
//! `shadow`, `gshadow`) and `/etc/sudoers.d`. These live in `<state_dir>/machines/<short id>/`.
//! Shared read-write with the host and every other machine: the rest of the filesystem —
//! `/usr`, `/etc` (apart from those files), `/opt`, `/var`, Java, installed packages,
//! `/run`, `/dev/shm` — plus the kernel and its limits. A role that installs packages or
//! edits `/etc/<anything else>` changes it for the host too. (The bind-mounted files cannot
//! be replaced by rename, so `useradd` inside a machine fails with "Device or resource busy".)
//!
//! # Or a root filesystem of its own
//! A machine created with an image ([`NewMachine::image`], devcloud's `netns.machine_fs:
//! image`) shares only the kernel: its root is an overlay of the image's root filesystem
//! (see [`image`]) with the machine's own upper layer (its root disk, kept across stop/start,
//! deleted with it), and it has its own PID, mount, UTS and IPC namespaces, /proc, /dev and
//! /run; `pivot_root` leaves the host's files out of reach. Kernel-wide settings (`vm.*`,
//! `fs.*`) are read-only inside; the network namespace's own (`net.*`) are writable. Its apt
//! gets packages through the proxy URL it is given (devcloud's apt cache).
//!
//! # Like a cloud image, and a cloud's boot
//! Each machine has one login user (e.g. `debian`, given at create time) with passwordless
//! sudo and the key pair's key; root cannot log in over SSH. sshd starts only after a boot
//! delay ([`NetnsMachines::set_ssh_delay`], none by default; devcloud uses 10-40 s): until
//! then port 22 refuses connections. A machine can carry an ingress firewall
//! ([`NetnsMachines::set_firewall`], nftables inside its namespace) made from its security
//! groups.
//!
//! # Lifecycle
//! Everything created is recorded in `<state_dir>/netns-state.json` before it is created, so a
//! restarted devcloud finds its machines again and [`NetnsMachines::teardown_all`] works from a
//! fresh process. `stop` kills every process of the machine (everything in its network or PID
//! namespace: also what `sudo`, `setsid` or `nohup` started) and keeps its files; `start` boots
//! again (after the boot delay) with the same host key. Methods are synchronous (they run `ip`, `unshare`, ...);
//! call them from `spawn_blocking` in async code, one at a time (wrap the value in a mutex).
//! One process at a time may open a state dir (an exclusive lock file inside it).
//!
//! ```no_run
//! use devcloud::netns::{NetnsConfig, NetnsMachines};
//! # fn main() -> Result<(), devcloud::netns::NetnsError> {
//! let mut machines = NetnsMachines::open(NetnsConfig::default())?;
//! let keys = "ssh-ed25519 AAAA... me@laptop";
//! let ip = "10.213.0.10".parse().unwrap();
//! machines.create("0b9f7c1e-...", "demo-master", ip, "debian", keys, None)?;
//! machines.attach_floating("0b9f7c1e-...", "10.213.255.10".parse().unwrap())?;
//! // ssh debian@10.213.255.10 now reaches the machine; its console log has the host key.
//! print!("{}", machines.console_log("0b9f7c1e-...")?);
//! machines.teardown_all()?;
//! # Ok(())
//! # }
//! ```

mod cmd;
mod config;
mod disks;
mod error;
mod files;
mod firewall;
pub mod image;
mod link;
mod machine;
mod network;
mod state;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::NetnsConfig;
use disks::Disk;
pub use error::NetnsError;
use error::Result;
use files::MachineFiles;
pub use firewall::{Firewall, IngressRule};
pub use link::LinkShape;
pub use state::ImageBoot;
use state::{MachineRecord, State, StateLock};

/// A Cinder volume attached to a machine (see [`NetnsMachines::attach_volume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRef {
    pub id: String,
    pub size_gb: u64,
}

/// Everything about a new machine but its id (see [`NetnsMachines::create_machine`]).
#[derive(Debug, Clone)]
pub struct NewMachine<'a> {
    pub hostname: &'a str,
    pub fixed_ip: Ipv4Addr,
    /// The login user (the image's default user; `root` for an image without one).
    pub user: &'a str,
    pub authorized_keys: &'a str,
    pub firewall: Option<&'a Firewall>,
    /// Boot from this image's root filesystem; `None`: share the host's filesystem.
    pub image: Option<ImageBoot>,
    /// The flavor's ephemeral disk in GB (0: none), and the volumes attached at boot. Only
    /// image machines get block devices (see [`disks`]); a host-filesystem machine has
    /// its private /mnt directory instead.
    pub ephemeral_gb: u64,
    pub volumes: Vec<VolumeRef>,
}

/// What devcloud needs to know about one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    pub id: String,
    pub hostname: String,
    /// The machine's network namespace (`ip netns exec <netns> ...` to look inside).
    pub netns: String,
    pub fixed_ip: Ipv4Addr,
    pub floating_ip: Option<Ipv4Addr>,
    /// The machine directory (its /root is `<dir>/root`, its /home `<dir>/home`).
    pub dir: PathBuf,
    /// The login user.
    pub user: String,
    /// True while any process (sshd at least) runs in the machine.
    pub running: bool,
}

/// The machines of one netns setup; see the module documentation.
#[derive(Debug)]
pub struct NetnsMachines {
    state: State,
    _lock: StateLock,
    /// How long a booting machine goes without sshd: a uniform random time in this range.
    ssh_delay: (Duration, Duration),
    /// The bandwidth (and latency) of machines' interfaces made from now on; none: veths
    /// at memory speed.
    link: Option<LinkShape>,
}

impl NetnsMachines {
    /// Opens the setup described by `cfg`, picking up machines a previous process created.
    /// Refuses when not root, when `cfg` is unusable, or when the state dir holds a setup with
    /// other names or ranges.
    pub fn open(cfg: NetnsConfig) -> Result<Self> {
        require_root()?;
        cfg.validate()?;
        std::fs::create_dir_all(cfg.machines_dir())
            .map_err(|e| NetnsError::io(cfg.machines_dir(), e))?;
        cfg.check_state_dir_visible()?;
        let lock = StateLock::acquire(&cfg.state_dir)?;
        let state = match State::load(&cfg.state_file())? {
            Some(s) if s.config != cfg => {
                return Err(NetnsError::Invalid(format!(
                    "state dir {} holds a setup with other names or ranges (prefix `{}`, \
                     range {}); tear it down first or use another state dir",
                    cfg.state_dir.display(),
                    s.config.prefix,
                    s.config.supernet
                )));
            }
            Some(s) => s,
            None => State::new(cfg),
        };
        Ok(NetnsMachines {
            state,
            _lock: lock,
            ssh_delay: (Duration::ZERO, Duration::ZERO),
            link: None,
        })
    }

    /// Opens whatever setup `state_dir` records, with its recorded names and ranges (for
    /// `devcloud down` in a new process). `None` when the directory holds no setup.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Self>> {
        require_root()?;
        let file = NetnsConfig {
            state_dir: state_dir.to_path_buf(),
            ..NetnsConfig::default()
        }
        .state_file();
        if !file.exists() {
            return Ok(None);
        }
        let lock = StateLock::acquire(state_dir)?;
        Ok(State::load(&file)?.map(|state| NetnsMachines {
            state,
            _lock: lock,
            ssh_delay: (Duration::ZERO, Duration::ZERO),
            link: None,
        }))
    }

    /// From now on every boot (create, start, reboot) starts sshd only after a uniform random
    /// delay between `min` and `max` (like a VM that is ACTIVE but still booting). Refused
    /// when `min > max`.
    pub fn set_ssh_delay(&mut self, min: Duration, max: Duration) -> Result<()> {
        if min > max {
            return Err(NetnsError::Invalid(format!(
                "ssh delay: minimum {min:?} is greater than maximum {max:?}"
            )));
        }
        self.ssh_delay = (min, max);
        Ok(())
    }

    /// From now on every machine's interfaces made (at create, and a floating IP's at
    /// attach) are shaped to `link`; machines already there keep theirs. Refused, with the
    /// setting to change, when this kernel cannot shape it (a latency needs netem).
    pub fn set_link(&mut self, link: Option<LinkShape>) -> Result<()> {
        if let Some(l) = &link {
            link::probe(&format!("{}linkprobe", self.state.config.prefix), l)?;
        }
        self.link = link;
        Ok(())
    }

    fn pick_ssh_delay(&self) -> Duration {
        use rand::Rng;
        let (min, max) = self.ssh_delay;
        if min == max {
            return min;
        }
        let ms = rand::rng().random_range(min.as_millis()..=max.as_millis());
        Duration::from_millis(ms as u64)
    }

    pub fn config(&self) -> &NetnsConfig {
        &self.state.config
    }

    /// Creates the reject route and both bridges if they are missing (idempotent).
    pub fn ensure_networks(&mut self) -> Result<()> {
        if !self.state.networks {
            self.state.networks = true;
            self.state.save()?;
        }
        network::ensure(&self.state.config)
    }

    /// Creates and boots a machine: namespace, tenant veth with `fixed_ip`, private files, the
    /// login user `user` (with passwordless sudo; `root` for an image without one), a new
    /// sshd host key, and sshd (after the boot delay) accepting `authorized_keys` for `user`.
    /// On failure, whatever was made is removed again.
    pub fn create(
        &mut self,
        id: &str,
        hostname: &str,
        fixed_ip: Ipv4Addr,
        user: &str,
        authorized_keys: &str,
        firewall: Option<&Firewall>,
    ) -> Result<MachineInfo> {
        self.create_machine(
            id,
            NewMachine {
                hostname,
                fixed_ip,
                user,
                authorized_keys,
                firewall,
                image: None,
                ephemeral_gb: 0,
                volumes: Vec::new(),
            },
        )
    }

    /// [`Self::create`], also for machines that boot from an image (`new.image`): those get
    /// their own root filesystem (an overlay of the image), made as cloud-init makes a VM's
    /// first boot.
    pub fn create_machine(&mut self, id: &str, new: NewMachine) -> Result<MachineInfo> {
        let mut rec = self.check_new(id, new.hostname, new.fixed_ip)?;
        rec.user = new.user.to_string();
        rec.image = new.image.clone();
        if rec.image.is_some() {
            let dir = MachineFiles::new(&self.state.config, &rec.short).dir;
            if new.ephemeral_gb > 0 {
                rec.disks.push(Disk::ephemeral(&dir, new.ephemeral_gb));
            }
            let vols = self.state.config.volumes_dir();
            for v in &new.volumes {
                rec.disks.push(Disk::volume(&vols, &v.id, v.size_gb));
            }
        }
        self.ensure_networks()?;
        self.state.machines.insert(id.to_string(), rec.clone());
        self.state.save()?;
        let cfg = &self.state.config;
        let files = MachineFiles::new(cfg, &rec.short);
        let prepared = match &new.image {
            Some(img) => files
                .prepare_image(&rec, new.user, new.authorized_keys, &img.apt_proxy)
                .and_then(|()| image::record_user(&img.rootfs, &files.dir)),
            None => files.prepare(&rec, new.user, new.authorized_keys),
        };
        let built = prepared
            .and_then(|()| machine::create_netns(cfg, &rec.short, new.fixed_ip, self.link.as_ref()))
            .and_then(|()| match new.firewall {
                Some(fw) => self.set_firewall(id, fw),
                None => Ok(()),
            })
            .and_then(|()| self.boot(&rec));
        if let Err(e) = built {
            // Best effort: the original error is the one worth reporting.
            let _ = self.delete(id);
            return Err(e);
        }
        self.info(id)
    }

    fn check_new(&self, id: &str, hostname: &str, fixed_ip: Ipv4Addr) -> Result<MachineRecord> {
        let cfg = &self.state.config;
        if self.state.machines.contains_key(id) {
            return Err(NetnsError::Invalid(format!(
                "machine `{id}` already exists"
            )));
        }
        check_hostname(hostname)?;
        if !config::usable(cfg.tenant, fixed_ip) {
            return Err(NetnsError::Invalid(format!(
                "fixed IP {fixed_ip} of machine `{id}` is not a host address of the tenant \
                 network {}",
                cfg.tenant
            )));
        }
        self.check_free(fixed_ip, id)?;
        let taken = |s: &str| self.state.machines.values().any(|m| m.short == s);
        let mut short = config::short_id(id)?;
        if taken(&short) {
            // Ids sharing their first 8 letters (`slave-0001`, `slave-0002`) are told apart by
            // a hash; the short id is recorded, so it need not be derivable later.
            short = config::hashed_short_id(id);
        }
        if taken(&short) {
            return Err(NetnsError::Invalid(format!(
                "machine id `{id}` maps to namespace suffix `{short}`, already in use"
            )));
        }
        if machine::our_namespaces(cfg)?.contains(&cfg.netns_name(&short)) {
            return Err(NetnsError::Invalid(format!(
                "network namespace {} already exists but is not recorded in {}; remove it \
                 (`ip netns del {0}`) or tear the setup down",
                cfg.netns_name(&short),
                cfg.state_file().display()
            )));
        }
        Ok(MachineRecord {
            id: id.to_string(),
            short,
            hostname: hostname.to_string(),
            fixed_ip,
            floating_ip: None,
            user: "root".into(),
            image: None,
            disks: Vec::new(),
        })
    }

    fn check_free(&self, ip: Ipv4Addr, id: &str) -> Result<()> {
        match self.state.holder_of(ip, id) {
            Some(other) => Err(NetnsError::Invalid(format!(
                "address {ip} is already used by machine `{}`",
                other.id
            ))),
            None => Ok(()),
        }
    }

    /// Gives the machine a second interface on the external bridge with floating address `ip`.
    pub fn attach_floating(&mut self, id: &str, ip: Ipv4Addr) -> Result<()> {
        let cfg = self.state.config.clone();
        let rec = self.state.machine(id)?.clone();
        if rec.floating_ip == Some(ip) {
            return Ok(());
        }
        if let Some(old) = rec.floating_ip {
            return Err(NetnsError::Invalid(format!(
                "machine `{id}` already has floating IP {old}; detach it first"
            )));
        }
        if !config::usable(cfg.floating, ip) || ip == cfg.controller_ip {
            return Err(NetnsError::Invalid(format!(
                "floating IP {ip} is not a free host address of the floating range {} \
                 (the controller is {})",
                cfg.floating, cfg.controller_ip
            )));
        }
        self.check_free(ip, id)?;
        self.set_floating(id, Some(ip))?;
        if let Err(e) = machine::attach_floating(&cfg, &rec.short, ip, self.link.as_ref()) {
            let _ = machine::detach_floating(&cfg, &rec.short);
            self.set_floating(id, None)?;
            return Err(e);
        }
        Ok(())
    }

    /// Removes the machine's floating interface (no-op when it has none).
    pub fn detach_floating(&mut self, id: &str) -> Result<()> {
        let short = self.state.machine(id)?.short.clone();
        machine::detach_floating(&self.state.config, &short)?;
        self.set_floating(id, None)
    }

    fn set_floating(&mut self, id: &str, ip: Option<Ipv4Addr>) -> Result<()> {
        if let Some(m) = self.state.machines.get_mut(id) {
            m.floating_ip = ip;
        }
        self.state.save()
    }

    /// Boots a stopped machine: sshd again (after the boot delay), same host key, same /root
    /// and /home (no-op when running).
    pub fn start(&mut self, id: &str) -> Result<()> {
        let rec = self.state.machine(id)?.clone();
        if self.is_running(id)? {
            return Ok(());
        }
        self.boot(&rec)
    }

    fn boot(&self, rec: &MachineRecord) -> Result<()> {
        let cfg = &self.state.config;
        let files = MachineFiles::new(cfg, &rec.short);
        files.log_boot(rec, &cfg.netns_name(&rec.short))?;
        let delay = self.pick_ssh_delay();
        let image = rec.image.as_ref().map(|i| i.rootfs.as_path());
        let booted = self
            .attach_disks(rec, &files)
            .and_then(|()| machine::start_sshd(cfg, &rec.short, &files, &rec.id, delay, image));
        if booted.is_err() {
            // Best effort: the boot's error is the one worth reporting.
            let _ = release_disks(rec);
        }
        booted
    }

    /// Attaches the machine's disks as loop devices and lists them in `disks.list`, which
    /// the boot script reads (an empty list for a machine without disks).
    fn attach_disks(&self, rec: &MachineRecord, files: &MachineFiles) -> Result<()> {
        let list = files.path("disks.list");
        let mut text = String::new();
        for disk in &rec.disks {
            match disks::attach(disk) {
                Ok(a) => text.push_str(&a.line()),
                Err(e) => {
                    let _ = release_disks(rec);
                    return Err(e);
                }
            }
        }
        std::fs::write(&list, text).map_err(|e| NetnsError::io(&list, e))
    }

    /// Attaches Cinder volume `vol` to the machine: recorded, and on an image machine that
    /// runs, plugged in at once as a new block device (a VM's hot-plug); a stopped one gets
    /// it at its next boot. A host-filesystem machine has no block devices: only recorded.
    /// Attaching a volume the machine already has is a no-op.
    pub fn attach_volume(&mut self, id: &str, vol: &VolumeRef) -> Result<()> {
        let rec = self.state.machine(id)?.clone();
        if rec.image.is_none()
            || rec
                .disks
                .iter()
                .any(|d| d.volume_id.as_deref() == Some(&vol.id))
        {
            return Ok(());
        }
        let disk = Disk::volume(&self.state.config.volumes_dir(), &vol.id, vol.size_gb);
        if let Some(pid) = self.running_init(&rec)? {
            let files = MachineFiles::new(&self.state.config, &rec.short);
            let a = disks::attach(&disk)?;
            let plugged = disks::plug(pid, &a).and_then(|()| {
                let list = files.path("disks.list");
                let mut text = std::fs::read_to_string(&list).unwrap_or_default();
                text.push_str(&a.line());
                std::fs::write(&list, text).map_err(|e| NetnsError::io(&list, e))
            });
            if let Err(e) = plugged {
                let _ = disks::detach_file(&disk.file);
                return Err(e);
            }
        }
        if let Some(m) = self.state.machines.get_mut(id) {
            m.disks.push(disk);
        }
        self.state.save()
    }

    /// Detaches volume `volume_id` from the machine: its device node goes away inside a
    /// running machine (a filesystem still mounted from it keeps working until unmounted, as
    /// the kernel keeps the loop device until it is closed); its data stays in the volume.
    pub fn detach_volume(&mut self, id: &str, volume_id: &str) -> Result<()> {
        let rec = self.state.machine(id)?.clone();
        let Some(disk) = rec
            .disks
            .iter()
            .find(|d| d.volume_id.as_deref() == Some(volume_id))
            .cloned()
        else {
            return Ok(());
        };
        if let Some(pid) = self.running_init(&rec)? {
            let files = MachineFiles::new(&self.state.config, &rec.short);
            let list = files.path("disks.list");
            let text = std::fs::read_to_string(&list).unwrap_or_default();
            let (gone, kept): (Vec<&str>, Vec<&str>) = text
                .lines()
                .partition(|l| l.split_whitespace().nth(3) == Some(disk.link.as_str()));
            for line in gone {
                if let Some(name) = line.split_whitespace().next() {
                    disks::unplug(pid, name, &disk.link)?;
                }
            }
            let kept: String = kept.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&list, kept).map_err(|e| NetnsError::io(&list, e))?;
        }
        disks::detach_file(&disk.file)?;
        if let Some(m) = self.state.machines.get_mut(id) {
            m.disks
                .retain(|d| d.volume_id.as_deref() != Some(volume_id));
        }
        self.state.save()
    }

    /// Removes volume `volume_id`'s data (the volume was deleted). Refused while a machine
    /// has it attached.
    pub fn delete_volume(&mut self, volume_id: &str) -> Result<()> {
        if let Some(m) = self.state.machines.values().find(|m| {
            m.disks
                .iter()
                .any(|d| d.volume_id.as_deref() == Some(volume_id))
        }) {
            return Err(NetnsError::Invalid(format!(
                "volume {volume_id} is attached to machine `{}`",
                m.id
            )));
        }
        let disk = Disk::volume(&self.state.config.volumes_dir(), volume_id, 0);
        disks::detach_file(&disk.file)?;
        match std::fs::remove_file(&disk.file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(NetnsError::io(&disk.file, e))
            }
            _ => Ok(()),
        }
    }

    /// The host PID of the machine's first process, once its boot has mounted its root
    /// (before that a hot-plug would land in the host's `/dev`); `None` when it is stopped or
    /// has no root of its own.
    fn running_init(&self, rec: &MachineRecord) -> Result<Option<i32>> {
        if rec.image.is_none() {
            return Ok(None);
        }
        let files = MachineFiles::new(&self.state.config, &rec.short);
        if !files.mounted_marker().exists() {
            return Ok(None);
        }
        let pids = machine::pids(&self.state.config.netns_name(&rec.short))?;
        Ok(disks::machine_init(&pids))
    }

    /// Stops and boots the machine again (a hard reboot: nothing is shut down cleanly).
    pub fn reboot(&mut self, id: &str) -> Result<()> {
        self.stop(id)?;
        self.start(id)
    }

    /// Replaces the machine's ingress firewall (nftables in its network namespace, kept while
    /// it is stopped). A machine that never got one lets everything in.
    pub fn set_firewall(&self, id: &str, firewall: &Firewall) -> Result<()> {
        let rec = self.state.machine(id)?;
        let files = MachineFiles::new(&self.state.config, &rec.short);
        let path = files.firewall();
        std::fs::write(&path, firewall.nft()).map_err(|e| NetnsError::io(&path, e))?;
        let ns = self.state.config.netns_name(&rec.short);
        let file = path.display().to_string();
        cmd::run("ip", &["netns", "exec", &ns, "nft", "-f", &file]).map(|_| ())
    }

    /// Kills every process of the machine (like pulling the plug); keeps its files and network.
    pub fn stop(&mut self, id: &str) -> Result<()> {
        let rec = self.state.machine(id)?;
        machine::kill_all(&self.state.config.netns_name(&rec.short))?;
        let _ = std::fs::remove_file(
            MachineFiles::new(&self.state.config, &rec.short).mounted_marker(),
        );
        release_disks(rec)
    }

    /// Kills the machine and removes its namespace, veths and directory (its /root included).
    pub fn delete(&mut self, id: &str) -> Result<()> {
        let rec = self.state.machine(id)?.clone();
        let cfg = &self.state.config;
        machine::destroy(cfg, &rec.short)?;
        release_disks(&rec)?;
        let files = MachineFiles::new(cfg, &rec.short);
        files.remove()?;
        if let Some(img) = &rec.image {
            image::forget_user(&img.rootfs, &files.dir);
        }
        self.state.machines.remove(id);
        self.state.save()
    }

    /// True while any process runs in the machine.
    pub fn is_running(&self, id: &str) -> Result<bool> {
        let short = &self.state.machine(id)?.short;
        Ok(!machine::pids(&self.state.config.netns_name(short))?.is_empty())
    }

    pub fn info(&self, id: &str) -> Result<MachineInfo> {
        let rec = self.state.machine(id)?;
        let cfg = &self.state.config;
        Ok(MachineInfo {
            id: rec.id.clone(),
            hostname: rec.hostname.clone(),
            netns: cfg.netns_name(&rec.short),
            fixed_ip: rec.fixed_ip,
            floating_ip: rec.floating_ip,
            dir: MachineFiles::new(cfg, &rec.short).dir,
            user: rec.user.clone(),
            running: self.is_running(id)?,
        })
    }

    /// Every recorded machine, by id.
    pub fn list(&self) -> Result<Vec<MachineInfo>> {
        self.state.machines.keys().map(|id| self.info(id)).collect()
    }

    /// The machine's console output: one cloud-init style block per boot, with the
    /// `-----BEGIN SSH HOST KEY KEYS-----` section clients use to pin the host key.
    pub fn console_log(&self, id: &str) -> Result<String> {
        let files = MachineFiles::new(&self.state.config, &self.state.machine(id)?.short);
        std::fs::read_to_string(files.console()).map_err(|e| NetnsError::io(files.console(), e))
    }

    /// The machine's sshd host public key (`ssh-ed25519 AAAA... root@<hostname>`).
    pub fn host_public_key(&self, id: &str) -> Result<String> {
        MachineFiles::new(&self.state.config, &self.state.machine(id)?.short).host_public_key()
    }

    /// Removes every machine, namespace (recorded or carrying our prefix), bridge, route and
    /// process this setup made, then its state. Keeps going past failures and lists them all.
    pub fn teardown_all(mut self) -> Result<()> {
        let cfg = self.state.config.clone();
        let mut problems = Vec::new();
        let ids: Vec<String> = self.state.machines.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.delete(&id) {
                problems.push(format!("machine `{id}`: {e}"));
            }
        }
        match machine::our_namespaces(&cfg) {
            Ok(left) => {
                for ns in left {
                    let short = ns
                        .trim_start_matches(&format!("{}-", cfg.prefix))
                        .to_string();
                    if let Err(e) = machine::destroy(&cfg, &short) {
                        problems.push(format!("namespace {ns}: {e}"));
                    }
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
        if let Err(e) = disks::detach_under(&cfg.state_dir) {
            problems.push(format!("loop devices: {e}"));
        }
        let vols = cfg.volumes_dir();
        if let Err(e) = std::fs::remove_dir_all(&vols)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            problems.push(NetnsError::io(&vols, e).to_string());
        }
        network::teardown(&cfg, &mut problems);
        if !problems.is_empty() {
            return Err(NetnsError::Teardown(problems));
        }
        let _ = std::fs::remove_file(cfg.state_file());
        let _ = std::fs::remove_file(cfg.state_dir.join("lock"));
        let _ = std::fs::remove_dir(cfg.machines_dir());
        let _ = std::fs::remove_dir(&cfg.state_dir);
        Ok(())
    }
}

/// Namespaces, bridges and mounts need root; refuse up front rather than half way.
/// Detaches the loop devices of the machine's disks (it no longer runs).
fn release_disks(rec: &MachineRecord) -> Result<()> {
    rec.disks
        .iter()
        .try_for_each(|d| disks::detach_file(&d.file))
}

fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(NetnsError::NotRoot)
    }
}

/// The hostname a server called `name` gets, as cloud-init derives it: lower case, anything
/// but letters, digits, hyphens and dots turned into `-`, trimmed to 63 characters
/// (`My Master_1` becomes `my-master-1`). Empty names become `host`.
pub fn hostname_from_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .take(63)
        .collect();
    let labels: Vec<&str> = mapped
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect();
    if labels.is_empty() {
        "host".to_string()
    } else {
        labels.join(".")
    }
}

/// A hostname the kernel and DNS accept: dot-separated labels of letters, digits and inner
/// hyphens, at most 64 characters (the UTS limit).
fn check_hostname(name: &str) -> Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 64 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(NetnsError::Invalid(format!(
            "hostname `{name}` must be letters, digits, inner hyphens and dots, at most 64 \
             characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked() {
        check_hostname("cluster-master").unwrap();
        check_hostname("s1.example").unwrap();
        for bad in ["", "-a", "a b", "a..b", "x;rm", &"a".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_names_become_valid_hostnames() {
        assert_eq!(hostname_from_name("My Master_1"), "my-master-1");
        assert_eq!(hostname_from_name("spark-slave-3"), "spark-slave-3");
        assert_eq!(hostname_from_name("--"), "host");
        assert_eq!(hostname_from_name("a..b."), "a.b");
        for name in ["x y z", &"Q".repeat(200), "-a-.-b-", "é"] {
            check_hostname(&hostname_from_name(name)).unwrap();
        }
    }
}
