//! `spark-openstack inventory`: show an inventory, like `ansible-inventory`.

use clap::Args;

use super::Exit;

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Inventory file(s) or directories.
    #[arg(short, long = "inventory")]
    pub inventory: Vec<std::path::PathBuf>,
}

pub fn run(_args: InventoryArgs) -> Exit {
    super::fail(Exit::Error, "inventory is not wired up yet")
}
