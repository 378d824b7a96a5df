//! What the cluster layer needs from OpenStack, as one narrow trait.
//!
//! Launch, destroy, describe and the Nova inventory are written against [`ClusterApi`]
//! rather than against the HTTP client directly, for two reasons: the logic (which
//! resources a cluster has, what is missing, what to delete first) stays readable without
//! URLs and JSON in the way, and the HTTP client (`openstack_client`) can evolve without
//! touching it. The implementation for the real client is [`super::openstack`].
//! Every list call returns the whole collection in one request (paginated by the client),
//! so the number of API calls of a launch grows with the cluster, not with its square.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

/// An API failure, already worded for the user (service, status, the service's message).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct ApiError {
    pub msg: String,
    /// HTTP status when the service answered.
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(msg: impl Into<String>) -> Self {
        ApiError {
            msg: msg.into(),
            status: None,
        }
    }
    /// The same failure, its message prefixed with what was being done; the status stays.
    pub fn context(self, doing: impl std::fmt::Display) -> Self {
        ApiError {
            msg: format!("{doing}: {}", self.msg),
            status: self.status,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
    /// Neutron answers 409 while a security group is still used by a port.
    pub fn is_conflict(&self) -> bool {
        self.status == Some(409)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// One address of a server, from Nova's `addresses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    pub network: String,
    pub addr: String,
    pub floating: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Server {
    pub id: String,
    pub name: String,
    /// Nova status: BUILD, ACTIVE, ERROR, SHUTOFF, ...
    pub status: String,
    pub metadata: BTreeMap<String, String>,
    pub flavor_id: String,
    pub image_id: String,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub addresses: Vec<Address>,
    pub security_groups: Vec<String>,
    /// Nova's fault message for servers in ERROR.
    pub fault: Option<String>,
}

impl Server {
    pub fn fixed_ip(&self) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| !a.floating)
            .map(|a| a.addr.as_str())
    }
    pub fn floating_ip(&self) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.floating)
            .map(|a| a.addr.as_str())
    }
}

/// The request to boot one server.
#[derive(Clone, Debug, Default)]
pub struct ServerCreate {
    pub name: String,
    pub image_id: String,
    pub flavor_id: String,
    pub key_name: Option<String>,
    pub network_ids: Vec<String>,
    pub security_groups: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
    pub ephemeral_gb: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    /// Glance's `os_admin_user` property: the user a stock image lets in.
    pub os_admin_user: Option<String>,
    /// Glance's `os_distro` property (`ubuntu`, `debian`, `rocky`, ...).
    pub os_distro: Option<String>,
}

impl Image {
    /// The user to log in as on a server of this image: `os_admin_user` when the image says,
    /// else the name the distribution's cloud images use for `os_distro`. Stock cloud images
    /// refuse root, so a guess from the distribution beats a fixed default.
    pub fn login_user(&self) -> Option<String> {
        if let Some(u) = self.os_admin_user.as_deref().filter(|u| !u.is_empty()) {
            return Some(u.to_string());
        }
        let user = match self.os_distro.as_deref()?.to_ascii_lowercase().as_str() {
            "ubuntu" => "ubuntu",
            "debian" => "debian",
            "centos" => "centos",
            "rocky" => "rocky",
            "almalinux" => "almalinux",
            "fedora" | "fedora-coreos" => "fedora",
            "rhel" => "cloud-user",
            "opensuse" | "sles" | "suse" => "opensuse",
            "arch" => "arch",
            "alpine" => "alpine",
            "cirros" => "cirros",
            _ => return None,
        };
        Some(user.to_string())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `router:external`: a floating IP pool.
    pub external: bool,
}

/// One security group rule; `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FloatingIp {
    pub id: String,
    pub address: String,
    pub network_id: String,
    pub port_id: Option<String>,
    /// The fixed address it is associated with (Neutron's `fixed_ip_address`).
    pub fixed_ip_address: Option<String>,
    pub description: String,
}

#[derive(Clone, Debug, Default)]
pub struct Port {
    pub id: String,
    pub device_id: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub size_gb: u64,
    pub status: String,
    /// Servers the volume is attached to.
    pub attached_to: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    Stop,
}

/// The OpenStack operations a cluster needs. Implementations retry transient failures
/// themselves; an `Err` here is final for that call.
#[async_trait]
pub trait ClusterApi: Send + Sync {
    /// Every server of the project, with details (`GET /servers/detail`).
    async fn servers(&self) -> ApiResult<Vec<Server>>;
    async fn create_server(&self, req: &ServerCreate) -> ApiResult<Server>;
    async fn delete_server(&self, id: &str) -> ApiResult<()>;
    async fn power(&self, id: &str, action: PowerAction) -> ApiResult<()>;
    /// Adds or replaces the given metadata items of a server; other items stay.
    async fn merge_server_metadata(
        &self,
        id: &str,
        items: &BTreeMap<String, String>,
    ) -> ApiResult<()>;
    async fn delete_server_metadata_item(&self, id: &str, key: &str) -> ApiResult<()>;

    async fn flavors(&self) -> ApiResult<Vec<Flavor>>;
    /// Nova's absolute limits and usage (`maxTotalInstances`, `totalInstancesUsed`, ...;
    /// -1 means unlimited).
    async fn compute_limits(&self) -> ApiResult<BTreeMap<String, i64>>;
    /// Nova's availability zones (what `--zone` may name).
    async fn compute_zones(&self) -> ApiResult<Vec<String>>;
    async fn images(&self) -> ApiResult<Vec<Image>>;
    async fn networks(&self) -> ApiResult<Vec<Network>>;
    /// Names of the user's Nova key pairs.
    async fn keypair_names(&self) -> ApiResult<Vec<String>>;
    async fn import_keypair(&self, name: &str, public_key: &str) -> ApiResult<()>;
    /// The public key Nova holds under `name`, `None` when there is no such key pair.
    async fn keypair_public_key(&self, name: &str) -> ApiResult<Option<String>>;

    async fn security_groups(&self) -> ApiResult<Vec<SecurityGroup>>;
    async fn create_security_group(
        &self,
        name: &str,
        description: &str,
    ) -> ApiResult<SecurityGroup>;
    async fn create_rule(&self, group_id: &str, rule: &Rule) -> ApiResult<()>;
    async fn delete_security_group(&self, id: &str) -> ApiResult<()>;

    async fn floating_ips(&self) -> ApiResult<Vec<FloatingIp>>;
    async fn create_floating_ip(
        &self,
        network_id: &str,
        description: &str,
    ) -> ApiResult<FloatingIp>;
    async fn associate_floating_ip(&self, fip_id: &str, port_id: &str) -> ApiResult<()>;
    async fn delete_floating_ip(&self, id: &str) -> ApiResult<()>;
    /// The ports of one server (its NICs), to associate a floating IP.
    async fn server_ports(&self, server_id: &str) -> ApiResult<Vec<Port>>;

    async fn volumes(&self) -> ApiResult<Vec<Volume>>;
    /// Cinder's availability zones, which need not be Nova's.
    async fn volume_zones(&self) -> ApiResult<Vec<String>>;
    async fn create_volume(
        &self,
        name: &str,
        size_gb: u64,
        availability_zone: Option<&str>,
        metadata: &BTreeMap<String, String>,
    ) -> ApiResult<Volume>;
    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> ApiResult<()>;
    async fn delete_volume(&self, id: &str) -> ApiResult<()>;

    /// How many API requests this client has sent (for the benchmark and the summary).
    fn calls(&self) -> u64 {
        0
    }
}
