//! `destroy`: everything goes (volumes unless kept), nothing of other clusters, twice is fine.

use super::*;
use crate::cluster::api::ClusterApi;
use crate::cluster::destroy::{self as destroy_mod, DestroyOutcome};
use crate::cluster::memory_cloud::{Op, interrupt};

async fn destroy(cloud: &MemoryCloud, keep_volumes: bool) -> DestroyOutcome {
    guard(destroy_mod::destroy(cloud, "demo", keep_volumes, POLL))
        .await
        .expect("destroy")
}

fn with_volumes(slaves: u32) -> LaunchSpec {
    LaunchSpec {
        slave_volume_size: Some(10),
        persistent_volume_size: Some(5),
        ..spec(slaves)
    }
}

/// Another cluster in the same project, which destroy must not touch.
async fn neighbour(cloud: &MemoryCloud) {
    let s = LaunchSpec {
        cluster: "other".into(),
        ..with_volumes(1)
    };
    launched(cloud, &s).await;
}

fn assert_only_neighbour_left(cloud: &MemoryCloud) {
    assert_eq!(
        cloud.server_names(),
        names(&["other-master", "other-slave-1"])
    );
    let mut groups: Vec<String> = cloud.groups_now().into_iter().map(|g| g.name).collect();
    groups.sort();
    assert_eq!(groups, ["other-master", "other-slaves"]);
    assert_eq!(cloud.floating_ips_now().len(), 1);
    assert!(
        cloud
            .volumes_now()
            .iter()
            .all(|v| v.name.starts_with("other-"))
    );
}

#[tokio::test]
async fn destroy_removes_everything_of_the_cluster_and_nothing_else() {
    let cloud = MemoryCloud::new();
    neighbour(&cloud).await;
    launched(&cloud, &with_volumes(2)).await;
    let out = destroy(&cloud, false).await;
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    assert!(out.kept.is_empty());
    assert_only_neighbour_left(&cloud);
    assert_eq!(cloud.volumes_now().len(), 3, "other's volumes");
    let count = |prefix: &str| out.removed.iter().filter(|r| r.starts_with(prefix)).count();
    assert_eq!(count("server "), 3);
    assert_eq!(count("floating IP "), 1);
    assert_eq!(count("volume "), 5);
    assert_eq!(count("security group "), 2);
}

#[tokio::test]
async fn destroy_twice_is_fine_and_the_second_changes_nothing() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &with_volumes(1)).await;
    assert!(destroy(&cloud, false).await.changed());
    let writes = cloud.writes();
    let again = destroy(&cloud, false).await;
    assert!(!again.changed(), "{again:?}");
    assert!(again.leftovers.is_empty());
    assert_eq!(cloud.writes(), writes);
}

#[tokio::test]
async fn keep_volumes_keeps_exactly_the_volumes_detached() {
    let cloud = MemoryCloud::new();
    neighbour(&cloud).await;
    launched(&cloud, &with_volumes(2)).await;
    let out = destroy(&cloud, true).await;
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    assert_eq!(out.kept.len(), 5, "{:?}", out.kept);
    assert!(
        out.kept
            .contains(&"volume demo-slave-1-data (10 GB)".to_string())
    );
    assert_eq!(cloud.count_for(Op::DeleteVolume, "demo-slave-1-data"), 0);
    let demo: Vec<_> = cloud
        .volumes_now()
        .into_iter()
        .filter(|v| v.name.starts_with("demo-"))
        .collect();
    assert_eq!(demo.len(), 5);
    assert!(demo.iter().all(|v| v.status == "available"));
    assert_eq!(
        cloud.server_names(),
        names(&["other-master", "other-slave-1"])
    );
}

#[tokio::test]
async fn a_group_still_in_use_is_retried_until_neutron_lets_go() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(1)).await;
    // Neutron lags behind Nova: the port of a deleted server holds the group a while.
    for _ in 0..3 {
        cloud
            .on(Op::DeleteGroup)
            .target("demo-slaves")
            .fail_with(409, "Security Group in use.");
    }
    let out = destroy(&cloud, false).await;
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    assert!(cloud.groups_now().is_empty());
    assert_eq!(cloud.count_for(Op::DeleteGroup, "demo-slaves"), 4);
}

#[tokio::test]
async fn what_could_not_be_deleted_is_reported_and_the_rest_is_deleted() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &with_volumes(1)).await;
    let fip = cloud.floating_ips_now()[0].address.clone();
    cloud
        .on(Op::DeleteFloatingIp)
        .fail_with(500, "network: 500 Internal Server Error");
    cloud
        .on(Op::DeleteVolume)
        .target("demo-slave-1-data")
        .fail_with(500, "volume: 500 Internal Server Error");
    let out = destroy(&cloud, false).await;
    let mut leftovers = out.leftovers.clone();
    leftovers.sort();
    assert_eq!(
        leftovers,
        [
            format!("floating IP {fip}: network: 500 Internal Server Error"),
            "volume demo-slave-1-data: volume: 500 Internal Server Error".to_string()
        ]
    );
    assert!(cloud.server_names().is_empty());
    assert!(cloud.groups_now().is_empty());
    assert_eq!(cloud.volumes_now().len(), 1);
    // A second destroy finishes the job.
    let again = destroy(&cloud, false).await;
    assert!(again.leftovers.is_empty(), "{:?}", again.leftovers);
    assert!(cloud.floating_ips_now().is_empty() && cloud.volumes_now().is_empty());
}

/// Ctrl-C at every API call of a destroy, then destroy again: nothing is left.
#[tokio::test]
async fn ctrl_c_at_any_call_then_destroy_again_leaves_nothing() {
    let clean = MemoryCloud::new();
    launched(&clean, &with_volumes(2)).await;
    let before = clean.calls() as usize;
    destroy(&clean, false).await;
    let calls = clean.calls() as usize - before;

    for acted in [false, true] {
        for n in 1..=calls {
            let context = format!("interrupted at call {n} of destroy (acted: {acted})");
            let cloud = MemoryCloud::new();
            neighbour(&cloud).await;
            launched(&cloud, &with_volumes(2)).await;
            let fault = cloud.on_any_call().nth(n);
            if acted {
                fault.interrupt_after()
            } else {
                fault.interrupt_before()
            }
            let first = guard(interrupt(
                &cloud,
                destroy_mod::destroy(&cloud, "demo", false, POLL),
            ))
            .await;
            assert!(first.is_none(), "{context}: not interrupted");
            let out = destroy(&cloud, false).await;
            assert!(out.leftovers.is_empty(), "{context}: {:?}", out.leftovers);
            assert_only_neighbour_left(&cloud);
        }
    }
}
