//! Running the bundled playbooks for the cluster commands: the inventory comes from Nova,
//! the variables from the options, the output is the sink the command chose (the engine's
//! console, or [`super::progress`] with the console in a log file).
//!
//! A playbook that creates servers and then configures them (launch, start, add-slaves)
//! is one engine run: its `meta: refresh_inventory` reads the cluster from Nova again (see
//! [`refresher`]), so the plays after it see the new servers and addresses.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::bundle::Bundle;
use crate::cluster::api::ClusterApi;
use crate::cluster::inventory::{self, ConnOptions};
use playbook_engine::connection::HostKeyPolicy;
use playbook_engine::executor::events::EventSink;
use playbook_engine::executor::hosts::Inventory;
use playbook_engine::executor::{self, InventoryRefresh, Outcome, PlaybookRun, RunOptions};

/// The engine's inventory for one cluster, read from the cloud now, and its document.
pub async fn nova_inventory(
    api: &dyn ClusterApi,
    cluster: &str,
    conn: &ConnOptions,
) -> Result<(Inventory, Value), String> {
    let doc = inventory::read(api, cluster, conn).await?;
    Ok((to_engine(&doc)?, doc))
}

/// A dynamic-inventory document as the executor's inventory: through the inventory model
/// ([`inventory::to_model`]), as every other inventory source goes.
pub fn to_engine(doc: &Value) -> Result<Inventory, String> {
    Inventory::from_inventory(inventory::to_model(doc))
}

/// One engine run of a bundled playbook.
pub struct PlaybookCall<'a> {
    pub bundle: &'a Bundle,
    pub name: &'a str,
    pub vars: Map<String, Value>,
    pub inventory: Inventory,
    pub conn: &'a ConnOptions,
    pub verbose: u8,
    /// Where the run's events go.
    pub output: Arc<dyn EventSink>,
    /// What `meta: refresh_inventory` reads; `None` keeps the inventory as given.
    pub refresh: Option<InventoryRefresh>,
}

/// `meta: refresh_inventory` for a cluster: the cluster read from Nova again.
pub fn refresher(source: crate::cluster::inventory::NovaInventory) -> InventoryRefresh {
    Arc::new(move || source.read().and_then(|doc| to_engine(&doc)))
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
    executor::run_playbook(PlaybookRun {
        playbooks: vec![call.bundle.playbook(call.name)],
        inventory: Arc::new(call.inventory),
        refresh: call.refresh,
        extra_vars: call.vars,
        options,
        output: call.output,
        registry: Arc::new(crate::modules::registry()),
    })
    .await
    .outcome
}
