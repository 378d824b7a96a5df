//! `spark-openstack testbed`: local sshd hosts for tests and benchmarks (hidden command).

use clap::Args;

use super::Exit;

#[derive(Args, Debug)]
pub struct TestbedArgs {}

pub fn run(_args: TestbedArgs) -> Exit {
    super::fail(Exit::Error, "testbed is not wired up yet")
}
