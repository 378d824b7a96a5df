//! `add-slaves` and `remove-slaves`: numbering, recorded settings and volumes.

use super::*;
use crate::cluster::destroy;
use crate::cluster::memory_cloud::Op;

/// `add-slaves N` as `playbooks/add-slaves.yml` asks for it: N more than now, everything
/// else recorded on the cluster.
async fn add_slaves(cloud: &MemoryCloud, n: u32) -> LaunchOutcome {
    guard(launch_mod::add_slaves(cloud, &resume_spec(), n, POLL))
        .await
        .expect("add-slaves")
}

#[tokio::test]
async fn add_slaves_numbers_on_and_brings_the_recorded_volume() {
    let cloud = MemoryCloud::new();
    let s = LaunchSpec {
        slave_volume_size: Some(10),
        instance_type: Some("m1.large".into()),
        ..spec(2)
    };
    launched(&cloud, &s).await;
    let r = add_slaves(&cloud, 2).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let mut created = r.created.clone();
    created.sort();
    assert_eq!(created, ["demo-slave-3", "demo-slave-4"]);
    assert_eq!(
        cloud.server_names(),
        names(&[
            "demo-master",
            "demo-slave-1",
            "demo-slave-2",
            "demo-slave-3",
            "demo-slave-4"
        ])
    );
    for name in ["demo-slave-3", "demo-slave-4"] {
        let new = cloud.server(name);
        assert_eq!(new.status, "ACTIVE");
        assert_eq!(
            new.flavor_id, "flavor-large",
            "flavor taken from the cluster"
        );
        assert_eq!(new.image_id, "image-ubuntu");
        let vol = format!("{name}-data");
        let v = cloud
            .volumes_now()
            .into_iter()
            .find(|v| v.name == vol)
            .unwrap_or_else(|| panic!("no {vol}"));
        assert_eq!(v.size_gb, 10, "the size recorded at launch");
        assert_eq!(v.attached_to, [new.id]);
    }
    assert_eq!(cloud.count(Op::CreateVolume), 4);
    assert_eq!(
        cloud.floating_ips_now().len(),
        1,
        "the master keeps its one address"
    );
}

#[tokio::test]
async fn a_gap_in_slave_numbers_is_filled_first() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(3)).await;
    cloud.remove_server("demo-slave-2");
    let out = launched(&cloud, &spec(4)).await;
    assert_eq!(
        sorted(out.created),
        names(&["demo-slave-2", "demo-slave-4"])
    );
    assert_eq!(cloud.count(Op::CreateServer), 6);
}

#[tokio::test]
async fn remove_slaves_deletes_the_highest_numbered_and_their_volumes() {
    let cloud = MemoryCloud::new();
    let s = LaunchSpec {
        slave_volume_size: Some(10),
        persistent_volume_size: Some(5),
        ..spec(3)
    };
    launched(&cloud, &s).await;
    let out = guard(destroy::remove_slaves(&cloud, "demo", 2, false, POLL))
        .await
        .expect("remove");
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    assert_eq!(
        cloud.server_names(),
        names(&["demo-master", "demo-slave-1"])
    );
    let mut vols: Vec<String> = cloud.volumes_now().into_iter().map(|v| v.name).collect();
    vols.sort();
    assert_eq!(
        vols,
        [
            "demo-master-persistent",
            "demo-slave-1-data",
            "demo-slave-1-persistent"
        ]
    );
    let mut removed = out.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        [
            "server demo-slave-2",
            "server demo-slave-3",
            "volume demo-slave-2-data",
            "volume demo-slave-2-persistent",
            "volume demo-slave-3-data",
            "volume demo-slave-3-persistent"
        ]
    );
    // Groups and the master's address stay.
    assert_eq!(cloud.groups_now().len(), 2);
    assert!(cloud.server("demo-master").floating_ip().is_some());
}

#[tokio::test]
async fn slaves_removed_with_keep_volumes_get_their_volumes_back_when_added_again() {
    let cloud = MemoryCloud::new();
    let s = LaunchSpec {
        slave_volume_size: Some(10),
        ..spec(2)
    };
    launched(&cloud, &s).await;
    let out = guard(destroy::remove_slaves(&cloud, "demo", 1, true, POLL))
        .await
        .expect("remove");
    assert_eq!(out.removed, ["server demo-slave-2"]);
    let kept = cloud
        .volumes_now()
        .into_iter()
        .find(|v| v.name == "demo-slave-2-data")
        .expect("kept");
    assert_eq!(
        (kept.status.as_str(), kept.attached_to.len()),
        ("available", 0)
    );

    let r = add_slaves(&cloud, 1).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        cloud.count(Op::CreateVolume),
        2,
        "the kept volume is reused"
    );
    let v = cloud
        .volumes_now()
        .into_iter()
        .find(|v| v.id == kept.id)
        .expect("still there");
    assert_eq!(v.attached_to, [cloud.server("demo-slave-2").id]);
}

#[tokio::test]
async fn removing_more_slaves_than_there_are_is_refused_before_deleting() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(2)).await;
    let writes = cloud.writes();
    let e = guard(destroy::remove_slaves(&cloud, "demo", 3, false, POLL))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("has 2 slaves; cannot remove 3"), "{e}");
    assert_eq!(cloud.writes(), writes);
}
