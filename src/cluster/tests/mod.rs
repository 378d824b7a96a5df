//! Unit tests of the cluster state machines against [`MemoryCloud`]: each scenario of
//! launch, resume, add/remove-slaves, stop/start and destroy in milliseconds, with the
//! cloud's failures injected per call. The devcloud suite (`tests/cluster_devcloud.rs`)
//! still covers the HTTP stack and the playbooks end to end.

mod destroy;
mod launch;
mod power;
mod resume;
mod slaves;

use std::future::Future;
use std::time::Duration;

use super::launch::{self as launch_mod, LaunchOutcome};
use super::memory_cloud::MemoryCloud;
use super::spec::LaunchSpec;

/// The state machines poll the cloud between steps; the memory cloud moves on per listing,
/// not per second, so there is nothing to wait for.
const POLL: Duration = Duration::ZERO;

/// A launch of cluster `demo` with `slaves` slaves, as `launch --image ubuntu-24.04
/// --instance-type m1.small` would ask.
fn spec(slaves: u32) -> LaunchSpec {
    LaunchSpec {
        cluster: "demo".into(),
        slaves: Some(slaves),
        resume: false,
        image: Some("ubuntu-24.04".into()),
        key_pair: Some("demo-key".into()),
        key_pair_public_key: None,
        instance_type: Some("m1.small".into()),
        master_instance_type: None,
        net_mode: None,
        zones: Vec::new(),
        network: None,
        floating_ip_pool: None,
        ssh_user: None,
        authorized_address: None,
        slave_volume_size: None,
        persistent_volume_size: None,
        boot_timeout: 60,
    }
}

/// `launch --resume` with no options: everything comes from the cluster as it is.
fn resume_spec() -> LaunchSpec {
    LaunchSpec {
        slaves: None,
        resume: true,
        image: None,
        key_pair: None,
        instance_type: None,
        ..spec(0)
    }
}

/// Fails the test instead of hanging it when a state machine never finishes.
async fn guard<F: Future>(fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(out) => out,
        Err(_) => panic!("did not finish within 5 s"),
    }
}

async fn launch(cloud: &MemoryCloud, spec: &LaunchSpec) -> Result<LaunchOutcome, String> {
    guard(launch_mod::converge(cloud, spec, POLL))
        .await
        .map_err(|e| e.to_string())
}

/// Launches `demo` with `slaves` slaves and checks it worked.
async fn launched(cloud: &MemoryCloud, spec: &LaunchSpec) -> LaunchOutcome {
    let out = launch(cloud, spec).await.expect("launch");
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    out
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
