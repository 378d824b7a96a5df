//! What this backend has created, persisted as JSON in the state dir. Namespaces and bridges
//! outlive the devcloud process, so the record of them must too: a restarted devcloud picks its
//! machines up again, and `devcloud down` in a fresh process can tear everything down.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::NetnsConfig;
use super::error::{NetnsError, Result};

/// An exclusive lock on the state dir, held as long as a [`super::NetnsMachines`] lives, so two
/// processes (a running devcloud and a `devcloud down`) never edit the same setup at once.
#[derive(Debug)]
pub struct StateLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl StateLock {
    pub fn acquire(state_dir: &Path) -> Result<Self> {
        use nix::fcntl::{Flock, FlockArg};
        let path = state_dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| NetnsError::io(&path, e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(StateLock { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(NetnsError::Invalid(format!(
                "state dir {} is in use by another process (a running devcloud?); stop it first",
                state_dir.display()
            ))),
            Err((_, errno)) => Err(NetnsError::io(&path, errno.into())),
        }
    }
}

/// One machine as recorded on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    pub id: String,
    /// Interface-safe short id, used in the namespace and veth names.
    pub short: String,
    pub hostname: String,
    pub fixed_ip: Ipv4Addr,
    pub floating_ip: Option<Ipv4Addr>,
    /// The login user (the image's default user); `root` for machines recorded before
    /// machines had one.
    #[serde(default = "root_user")]
    pub user: String,
    /// The image the machine boots from; `None`: it shares the host's filesystem.
    #[serde(default)]
    pub image: Option<ImageBoot>,
    /// Its block devices (image machines only): the flavor's ephemeral disk and attached
    /// volumes, in attachment order.
    #[serde(default)]
    pub disks: Vec<super::disks::Disk>,
}

/// How a machine with its own root filesystem boots (see [`super::image`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageBoot {
    /// The image's root filesystem: the read-only lower layer of the machine's overlay.
    pub rootfs: PathBuf,
    /// The apt proxy URL the machine is given (as cloud-init's `apt: proxy:`).
    pub apt_proxy: String,
}

fn root_user() -> String {
    "root".into()
}

/// The whole persisted state of one netns setup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub config: NetnsConfig,
    /// True once the reject route and the bridges exist.
    pub networks: bool,
    pub machines: BTreeMap<String, MachineRecord>,
}

impl State {
    pub fn new(config: NetnsConfig) -> Self {
        State {
            config,
            networks: false,
            machines: BTreeMap::new(),
        }
    }

    /// Reads the state file, or `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<State>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NetnsError::io(path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| NetnsError::State {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// Writes the state file atomically (temp file + rename), so a crash never leaves half a file.
    pub fn save(&self) -> Result<()> {
        let path = self.config.state_file();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| NetnsError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(|e| NetnsError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| NetnsError::io(&path, e))
    }

    pub fn machine(&self, id: &str) -> Result<&MachineRecord> {
        self.machines
            .get(id)
            .ok_or_else(|| NetnsError::UnknownMachine(id.to_string()))
    }

    /// The machine (other than `except`) already using `ip` as fixed or floating address.
    pub fn holder_of(&self, ip: Ipv4Addr, except: &str) -> Option<&MachineRecord> {
        self.machines
            .values()
            .filter(|m| m.id != except)
            .find(|m| m.fixed_ip == ip || m.floating_ip == Some(ip))
    }
}
