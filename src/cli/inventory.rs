//! `spark-openstack inventory`: show an inventory, like `ansible-inventory`.

use clap::Args;

use super::Exit;
use playbook_engine::inventory::{self, InventoryError, show};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["list", "graph", "host"])))]
pub struct InventoryArgs {
    /// A cluster: its servers read from Nova, as the cluster commands and playbooks see them.
    #[arg(required_unless_present = "inventory", conflicts_with = "inventory")]
    pub cluster: Option<String>,
    /// Inventory file(s), directories or comma-separated host lists (`a,b,`).
    #[arg(short, long = "inventory")]
    pub inventory: Vec<String>,
    /// Print all hosts and groups as Ansible dynamic-inventory JSON.
    #[arg(long)]
    pub list: bool,
    /// Print the group tree, from GROUP (default `all`).
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "GROUP")]
    pub graph: Option<String>,
    /// Print one host's variables.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// With --list or --host: print YAML instead of JSON.
    #[arg(long)]
    pub yaml: bool,
    /// Directory whose group_vars/ and host_vars/ also apply (and win), as for a playbook there.
    #[arg(long, value_name = "DIR")]
    pub playbook_dir: Option<std::path::PathBuf>,
    /// With --list: only these hosts (a host pattern, or @file).
    #[arg(short, long)]
    pub limit: Option<String>,
}

pub fn run(args: InventoryArgs, os_cloud: Option<String>) -> Exit {
    match render(&args, os_cloud) {
        Ok(text) => {
            print!("{text}");
            Exit::Ok
        }
        Err(e @ InventoryError::Parse(_)) => super::fail(Exit::PARSE_ERROR, e),
        Err(e) => super::fail(Exit::Error, e),
    }
}

fn render(args: &InventoryArgs, os_cloud: Option<String>) -> Result<String, InventoryError> {
    use playbook_engine::inventory::InventorySource;
    let mut inv = match &args.cluster {
        Some(c) => crate::cluster::inventory::NovaInventory::for_cluster(os_cloud, c, None, None)
            .map_err(InventoryError::Invalid)?
            .load()?,
        None => inventory::load_sources(&args.inventory)?,
    };
    inv.vars_dirs.playbook = args.playbook_dir.clone();
    if let Some(limit) = &args.limit {
        let mut sel = inv.select("all")?;
        inv.apply_limit(&mut sel, limit)?;
        for w in &sel.warnings {
            eprintln!("[WARNING]: {w}");
        }
        inv.hosts.retain(|h, _| sel.hosts.contains(h));
        for g in inv.groups.values_mut() {
            g.hosts.retain(|h| sel.hosts.contains(h));
        }
    }
    let value = if let Some(group) = &args.graph {
        return show::graph(&inv, group);
    } else if let Some(host) = &args.host {
        show::host(&inv, host)?
    } else if args.yaml {
        show::yaml_tree(&inv)?
    } else {
        show::list(&inv)?
    };
    if args.yaml {
        return serde_saphyr::to_string(&value)
            .map_err(|e| InventoryError::Invalid(format!("cannot write YAML: {e}")));
    }
    Ok(format!("{}\n", show::to_pretty_json(&value)))
}
