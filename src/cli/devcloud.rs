//! `spark-openstack devcloud`: the local OpenStack-compatible cloud.

use clap::Args;

use super::Exit;

#[derive(Args, Debug)]
pub struct DevcloudArgs {}

pub fn run(_args: DevcloudArgs) -> Exit {
    super::fail(Exit::Error, "devcloud is not wired up yet")
}
