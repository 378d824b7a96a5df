//! `spark-openstack play`: run playbooks, like `ansible-playbook`.

use clap::Args;

use super::Exit;

#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Playbook files to run, in order.
    #[arg(required = true)]
    pub playbooks: Vec<std::path::PathBuf>,
}

pub fn run(_args: PlayArgs, _verbose: u8) -> Exit {
    super::fail(Exit::Error, "the playbook engine is not wired up yet")
}
