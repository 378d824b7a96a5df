//! Modules that run on the controller and talk to the OpenStack APIs.
//!
//! Why one compact cluster-level module (`spark_openstack.cluster`) instead of Ansible's
//! per-resource `openstack.cloud.server` / `security_group` / `floating_ip` / `volume`
//! looped over hosts: a launch must create all servers *concurrently*, wait for them with
//! one listing per poll (the per-server modules re-list everything after each create,
//! ansible/ansible#23354), replace a server that lands in ERROR exactly once, and hand out
//! floating IPs without the allocate/associate races every per-resource launcher has had.
//! Those are cluster-level decisions; the module makes them in one place
//! (`crate::cluster::launch`) and playbooks stay three lines long. `openstack.cloud.
//! server_info` is provided too, under Ansible's name, for playbooks that need to look
//! at servers themselves.

pub mod cluster;
pub mod object_storage;
pub mod server_info;

use std::collections::HashMap;
use std::sync::Arc;

use playbook_engine::modules::registry::Registry;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OnceCell};

use crate::cluster::openstack::{self as api, OpenStack};

/// One cloud, connected on first use.
type Cell = Arc<OnceCell<Arc<OpenStack>>>;

/// Connected clouds, shared by every task of a run (one token, one HTTP client per cloud).
#[derive(Default)]
pub struct Clouds {
    cells: Mutex<HashMap<Option<String>, Cell>>,
}

impl Clouds {
    pub async fn get(&self, name: Option<String>) -> Result<Arc<OpenStack>, String> {
        let cell = self
            .cells
            .lock()
            .await
            .entry(name.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async { api::connect(name).await.map(Arc::new) })
            .await
            .cloned()
    }
}

/// The cloud a task means: its `cloud` argument, else the `os_cloud` variable (set by the
/// CLI from `--os-cloud`), else `OS_CLOUD`/clouds.yaml defaults.
pub fn cloud_name(args: &Map<String, Value>, vars: &Map<String, Value>) -> Option<String> {
    [args.get("cloud"), vars.get("os_cloud")]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(String::from))
}

/// The engine's builtin modules plus the cloud modules, sharing one set of connected
/// clouds: what every playbook this product runs can call.
pub fn registry() -> Registry {
    let mut reg = Registry::builtin();
    let clouds = Arc::new(Clouds::default());
    reg.register(Arc::new(cluster::ClusterModule::new(clouds.clone())));
    reg.register(Arc::new(server_info::ServerInfo::new(clouds.clone())));
    reg.register(Arc::new(object_storage::ObjectStorage::new(clouds)));
    reg
}
