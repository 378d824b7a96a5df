//! The cloud's state and its persistence.
//!
//! Every resource lives in one [`State`] value behind a mutex, and every successful mutation
//! rewrites `state.json` atomically (temp file + rename), so separate CLI invocations (and a
//! restarted server) see the same cloud. The state is small (a test cloud), so whole-file
//! rewrites are cheap and avoid any partial-update bugs.
//!
//! Nova and Keystone resources are typed because devcloud has logic around them (status
//! machine, auth). Neutron, Glance and Cinder resources are kept as the JSON documents the
//! APIs return: those APIs filter on any top-level attribute, and storing the document keeps
//! field names exactly as the reference samples spell them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object: one Neutron/Glance/Cinder resource as its API shows it.
pub type Doc = Map<String, Value>;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct State {
    pub projects: Vec<Project>,
    pub users: Vec<User>,
    pub app_creds: Vec<AppCred>,
    /// Keystone credentials of type `ec2` (`OS-EC2`), the access/secret pairs S3 clients sign
    /// with.
    pub ec2_creds: Vec<Ec2Cred>,
    pub tokens: IndexMap<String, Token>,
    pub flavors: Vec<Flavor>,
    pub keypairs: Vec<Keypair>,
    pub servers: Vec<Server>,
    pub images: Vec<Doc>,
    pub networks: Vec<Doc>,
    pub subnets: Vec<Doc>,
    pub ports: Vec<Doc>,
    pub security_groups: Vec<Doc>,
    pub security_group_rules: Vec<Doc>,
    pub floatingips: Vec<Doc>,
    pub volumes: Vec<Doc>,
    /// When Nova's view (a server's `addresses`) shows a floating IP that Neutron associated
    /// recently, by floating IP id: Nova's network info cache lags behind Neutron.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub nova_floating_visible_at: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Project {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub password: String,
    /// The project the user is a member of (devcloud gives every user one project).
    pub project_id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub description: Option<String>,
    pub user_id: String,
    pub project_id: String,
    pub expires_at: Option<String>,
    pub unrestricted: bool,
}

/// An EC2 credential as Keystone stores it: a `credential` of type `ec2` whose id is the
/// SHA-256 of the access key, with the pair in its blob.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Ec2Cred {
    pub access: String,
    pub secret: String,
    pub user_id: String,
    pub project_id: String,
    pub trust_id: Option<String>,
}

impl Ec2Cred {
    /// Keystone's credential id for it (`utils.hash_access_key`: hex SHA-256 of the access).
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.access.as_bytes()))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Token {
    pub user_id: String,
    pub project_id: Option<String>,
    pub methods: Vec<String>,
    pub app_cred_id: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub audit_id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram: u64,
    pub disk: u64,
    pub ephemeral: u64,
    pub swap: u64,
    pub extra_specs: IndexMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Keypair {
    pub name: String,
    pub user_id: String,
    pub public_key: String,
    pub fingerprint: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

/// A Nova server. Addresses are not stored: they are derived from the server's ports and
/// the floating IPs bound to them, as Nova's network info cache is.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub image_id: String,
    pub flavor_id: String,
    pub key_name: Option<String>,
    /// Security group names, as Nova shows them.
    pub security_groups: Vec<String>,
    pub metadata: IndexMap<String, String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub availability_zone: String,
    pub user_data: Option<String>,
    pub config_drive: bool,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: u8,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
    pub fault: Option<ServerFault>,
    pub port_ids: Vec<String>,
    pub volumes: Vec<VolumeAttachment>,
    /// When the pending transition (boot, stop, start, reboot) completes.
    pub pending_until: Option<DateTime<Utc>>,
    /// Decided at create time (from `boot_error_rate`), so a restart does not re-roll it.
    pub boot_fails: bool,
    pub reservation_id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ServerFault {
    pub code: u16,
    pub message: String,
    pub created: DateTime<Utc>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VolumeAttachment {
    pub id: String,
    pub volume_id: String,
    pub device: String,
    pub delete_on_termination: bool,
}

impl Server {
    /// Nova's user-visible status, derived from vm_state and task_state (`_STATE_MAP`).
    pub fn status(&self) -> &'static str {
        let task = self.task_state.as_deref();
        match self.vm_state.as_str() {
            "building" => "BUILD",
            "active" => match task {
                Some("rebooting") | Some("reboot_pending") | Some("reboot_started") => "REBOOT",
                Some("rebooting_hard")
                | Some("reboot_pending_hard")
                | Some("reboot_started_hard") => "HARD_REBOOT",
                _ => "ACTIVE",
            },
            "stopped" => "SHUTOFF",
            "error" => "ERROR",
            "deleted" => "DELETED",
            _ => "UNKNOWN",
        }
    }
}

/// The state plus where it is saved.
pub struct Store {
    path: PathBuf,
    state: Mutex<State>,
}

impl Store {
    /// Loads `state.json` from `dir`, or starts from `seed()` when there is none yet.
    pub fn open(dir: &Path, seed: impl FnOnce() -> State) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create state dir {}: {e}", dir.display()))?;
        let path = dir.join("state.json");
        let state = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("corrupt devcloud state {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = seed();
                save(&path, &s)?;
                s
            }
            Err(e) => anyhow::bail!("cannot read devcloud state {}: {e}", path.display()),
        };
        Ok(Store {
            path,
            state: Mutex::new(state),
        })
    }

    /// Reads the saved state of a state dir without starting a server (used by `devcloud up`
    /// to learn the seeded password).
    pub fn peek(dir: &Path) -> anyhow::Result<State> {
        let path = dir.join("state.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("corrupt {}: {e}", path.display()))
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// Runs a mutation and saves the state if it succeeded. A failed save is logged, not
    /// returned: the in-memory state stays authoritative for this server's lifetime.
    pub fn mutate<R, E>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<R, E> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut guard)?;
        if let Err(e) = save(&self.path, &guard) {
            tracing::error!("{e}");
        }
        Ok(out)
    }
}

fn save(path: &Path, state: &State) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(state)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    Ok(())
}

/// Timestamps as Neutron/Glance/Keystone print them (seconds, `Z`).
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A new random id in the dashed UUID form Nova, Neutron, Glance and Cinder use.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new random id in Keystone's form (32 hex digits, no dashes).
pub fn new_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Reads a string field of a JSON document ("" when absent or not a string).
pub fn s<'a>(d: &'a Doc, key: &str) -> &'a str {
    d.get(key).and_then(Value::as_str).unwrap_or("")
}
