//! Running the bundled playbooks for the cluster commands: the inventory comes from Nova,
//! the variables from the options, the output is the engine's console.
//!
//! A playbook that creates servers and then configures them (launch, start, add-slaves)
//! is one engine run: its `meta: refresh_inventory` reads the cluster from Nova again (see
//! [`refresher`]), so the plays after it see the new servers and addresses.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::api::ClusterApi;
use super::bundle::Bundle;
use super::inventory::{self, ConnOptions};
use super::model::Cluster;
use playbook_engine::connection::HostKeyPolicy;
use playbook_engine::executor::events::EventSink;
use playbook_engine::executor::hosts::Inventory;
use playbook_engine::executor::{self, InventoryRefresh, Outcome, PlaybookRun, RunOptions};

/// The engine's inventory for one cluster, read from the cloud now.
pub async fn nova_inventory(
    api: &dyn ClusterApi,
    cluster: &str,
    conn: &ConnOptions,
) -> Result<(Inventory, Value), String> {
    let (servers, fips, vols) =
        futures::try_join!(api.servers(), api.floating_ips(), api.volumes()).map_err(|e| e.msg)?;
    let (flavors, images) = futures::try_join!(api.flavors(), api.images()).map_err(|e| e.msg)?;
    let c = Cluster::collect(cluster, &servers, &fips, &vols);
    let doc = inventory::build(&c, &flavors, &images, conn);
    Ok((to_engine(&doc), doc))
}

/// Converts a dynamic-inventory document into the engine's inventory: host vars with the
/// `all` group vars underneath.
pub fn to_engine(doc: &Value) -> Inventory {
    let mut inv = Inventory::default();
    let group_vars = doc
        .pointer("/all/vars")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for group in ["master", "slaves"] {
        let hosts = doc
            .pointer(&format!("/{group}/hosts"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for h in hosts.iter().filter_map(Value::as_str) {
            let mut vars: Map<String, Value> = group_vars.clone();
            if let Some(hv) = doc
                .pointer("/_meta/hostvars")
                .and_then(|m| m.get(h))
                .and_then(Value::as_object)
            {
                vars.extend(hv.clone());
            }
            inv.add_host(h, vars, &[group]);
        }
    }
    for g in ["all", "master", "slaves", "ungrouped"] {
        inv.groups.entry(g.into()).or_default();
    }
    inv
}

/// One engine run of a bundled playbook.
pub struct PlaybookCall<'a> {
    pub bundle: &'a Bundle,
    pub name: &'a str,
    pub vars: Map<String, Value>,
    pub inventory: Inventory,
    pub conn: &'a ConnOptions,
    pub verbose: u8,
    /// What `meta: refresh_inventory` reads; `None` keeps the inventory as given.
    pub refresh: Option<InventoryRefresh>,
}

/// `meta: refresh_inventory` for a cluster: the cluster read from Nova again.
pub fn refresher(source: super::inventory::NovaInventory) -> InventoryRefresh {
    Arc::new(move || source.read().map(|doc| to_engine(&doc)))
}

pub async fn run(call: PlaybookCall<'_>) -> Outcome {
    let options = RunOptions {
        private_key: call.conn.identity_file.clone(),
        host_key_policy: HostKeyPolicy::AcceptNew,
        roles_path: vec![call.bundle.roles.clone()],
        verbosity: call.verbose,
        known_hosts_files: call
            .conn
            .known_hosts
            .iter()
            .cloned()
            .collect::<Vec<PathBuf>>(),
        ..Default::default()
    };
    let output: Arc<dyn EventSink> = Arc::new(playbook_engine::output::Console::new(call.verbose));
    executor::run_playbook(PlaybookRun {
        playbooks: vec![call.bundle.playbook(call.name)],
        inventory: Arc::new(call.inventory),
        refresh: call.refresh,
        extra_vars: call.vars,
        options,
        output,
        registry: Arc::new(crate::modules::registry()),
    })
    .await
    .outcome
}
