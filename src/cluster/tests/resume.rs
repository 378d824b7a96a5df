//! `launch --resume` and reruns: after Ctrl-C, after ERROR, after stop.

use super::*;
use crate::cluster::api::{ClusterApi, PowerAction};
use crate::cluster::memory_cloud::{Op, interrupt};
use crate::cluster::model;

#[tokio::test]
async fn resume_of_a_cluster_that_does_not_exist_is_refused() {
    let cloud = MemoryCloud::new();
    let e = launch(&cloud, &resume_spec()).await.unwrap_err();
    assert!(e.contains("has no servers to resume"), "{e}");
    assert_eq!(cloud.writes(), []);
}

#[tokio::test]
async fn ctrl_c_after_a_create_was_sent_then_resume_converges() {
    let cloud = MemoryCloud::new();
    // Nova made the server, the answer never came: the run knows nothing of it.
    cloud
        .on(Op::CreateServer)
        .target("demo-slave-2")
        .interrupt_after();
    let first = interrupt(&cloud, launch_mod::converge(&cloud, &spec(3), POLL)).await;
    assert!(first.is_none(), "the launch was interrupted");

    let out = launched(&cloud, &resume_spec()).await;
    assert!(
        !out.created.contains(&"demo-slave-2".to_string()),
        "the server from the interrupted create is adopted, not doubled: {:?}",
        out.created
    );
    assert_eq!(
        cloud.server_names(),
        names(&[
            "demo-master",
            "demo-slave-1",
            "demo-slave-2",
            "demo-slave-3"
        ])
    );
    assert!(cloud.servers_now().iter().all(|s| s.status == "ACTIVE"));
    assert_eq!(cloud.floating_ips_now().len(), 1);
}

/// What a converged `demo` with 2 slaves and both kinds of volume looks like, for the
/// Ctrl-C sweeps.
fn assert_converged(cloud: &MemoryCloud, context: &str) {
    assert_eq!(
        cloud.server_names(),
        names(&["demo-master", "demo-slave-1", "demo-slave-2"]),
        "{context}"
    );
    for s in cloud.servers_now() {
        assert_eq!(s.status, "ACTIVE", "{context}: {}", s.name);
    }
    let mut groups: Vec<String> = cloud.groups_now().into_iter().map(|g| g.name).collect();
    groups.sort();
    assert_eq!(groups, ["demo-master", "demo-slaves"], "{context}");
    let fips = cloud.floating_ips_now();
    assert_eq!(fips.len(), 1, "{context}: {fips:?}");
    assert_eq!(
        cloud.server("demo-master").floating_ip(),
        Some(fips[0].address.as_str()),
        "{context}"
    );
    let mut vols: Vec<String> = cloud.volumes_now().into_iter().map(|v| v.name).collect();
    vols.sort();
    assert_eq!(
        vols,
        [
            "demo-master-persistent",
            "demo-slave-1-data",
            "demo-slave-1-persistent",
            "demo-slave-2-data",
            "demo-slave-2-persistent"
        ],
        "{context}"
    );
    for v in cloud.volumes_now() {
        assert_eq!(
            v.attached_to.len(),
            1,
            "{context}: {} is not attached",
            v.name
        );
    }
}

/// Ctrl-C at every single API call of a launch, before or after the cloud acted, then
/// the same launch again: it converges to the same cluster, with nothing doubled.
#[tokio::test]
async fn ctrl_c_at_any_call_then_relaunch_converges_without_duplicates() {
    let s = LaunchSpec {
        slave_volume_size: Some(10),
        persistent_volume_size: Some(5),
        ..spec(2)
    };
    let clean = MemoryCloud::new();
    launched(&clean, &s).await;
    assert_converged(&clean, "clean launch");
    let calls = clean.calls() as usize;
    assert!(calls > 20, "a launch takes {calls} calls");

    for acted in [false, true] {
        for n in 1..=calls {
            let context = format!("interrupted at call {n} (acted: {acted})");
            let cloud = MemoryCloud::new();
            let fault = cloud.on_any_call().nth(n);
            if acted {
                fault.interrupt_after()
            } else {
                fault.interrupt_before()
            }
            let first = guard(interrupt(&cloud, launch_mod::converge(&cloud, &s, POLL))).await;
            assert!(first.is_none(), "{context}: not interrupted");
            let rerun = LaunchSpec {
                resume: !cloud.server_names().is_empty(),
                ..s.clone()
            };
            let out = launch(&cloud, &rerun)
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(out.failures.is_empty(), "{context}: {:?}", out.failures);
            assert_converged(&cloud, &context);
        }
    }
}

#[tokio::test]
async fn a_server_that_went_to_error_is_replaced_on_resume() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(2)).await;
    let old = cloud.server("demo-slave-1").id;
    cloud.set_status("demo-slave-1", "ERROR", Some("host failure"));
    let out = launched(&cloud, &resume_spec()).await;
    assert_eq!(out.replaced, ["demo-slave-1"]);
    let new = cloud.server("demo-slave-1");
    assert_ne!(new.id, old);
    assert_eq!(new.status, "ACTIVE");
    // The replacement is built like the original: same image, flavor, group and tags.
    assert_eq!(new.flavor_id, "flavor-small");
    assert_eq!(new.image_id, "image-ubuntu");
    assert_eq!(new.security_groups, [model::slaves_group("demo")]);
    assert_eq!(new.metadata[model::META_ROLE], "slave");
    assert_eq!(cloud.count(Op::CreateServer), 4);
}

#[tokio::test]
async fn resume_powers_on_stopped_servers_and_creates_nothing() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(1)).await;
    let slave = cloud.server("demo-slave-1").id;
    guard(cloud.power(&slave, PowerAction::Stop))
        .await
        .expect("stop");
    cloud.settle();
    assert_eq!(cloud.server("demo-slave-1").status, "SHUTOFF");

    let out = launched(&cloud, &resume_spec()).await;
    assert!(out.changed);
    assert!(out.created.is_empty());
    assert_eq!(
        cloud.count_for(Op::Power, "demo-slave-1"),
        2,
        "stop, then start"
    );
    assert_eq!(cloud.count_for(Op::Power, "demo-master"), 0);
    cloud.settle();
    assert_eq!(cloud.server("demo-slave-1").status, "ACTIVE");
}
