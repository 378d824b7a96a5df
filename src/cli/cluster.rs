//! The cluster commands of the original `spark_openstack.py`: launch, destroy, stop, start,
//! login, get-master and the ones added since.

use clap::Subcommand;

use super::Exit;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Print the master's address.
    GetMaster { cluster: String },
}

pub fn run(_cmd: ClusterCommand, _os_cloud: Option<String>, _verbose: u8) -> Exit {
    super::fail(Exit::Error, "cluster commands are not wired up yet")
}
