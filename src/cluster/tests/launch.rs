//! `launch`: what a fresh launch creates, ERROR replacement, partial failures, quota.

use super::*;
use crate::cluster::error::ClusterError;
use crate::cluster::launch::{META_NET_MODE, META_SLAVE_VOLUME, META_SSH_USER};
use crate::cluster::memory_cloud::Op;
use crate::cluster::model::{self, META_CLUSTER, META_ROLE};
use crate::cluster::spec::NetMode;
use crate::cluster::volumes::META_SERVER;

const ALL: [&str; 4] = [
    "demo-master",
    "demo-slave-1",
    "demo-slave-2",
    "demo-slave-3",
];

#[tokio::test]
async fn launch_creates_exactly_the_servers_groups_and_floating_ip_asked_for() {
    let cloud = MemoryCloud::new();
    let out = launched(&cloud, &spec(3)).await;

    assert_eq!(cloud.server_names(), names(&ALL));
    assert_eq!(sorted(out.created.clone()), names(&ALL));
    assert!(out.changed && out.replaced.is_empty());
    assert_eq!(cloud.count(Op::CreateServer), 4, "one create per server");
    for s in cloud.servers_now() {
        assert_eq!(s.status, "ACTIVE", "{}", s.name);
        let role = if s.name == "demo-master" {
            "master"
        } else {
            "slave"
        };
        // Tagged at creation, so an interrupted run still finds them.
        assert_eq!(s.metadata[META_CLUSTER], "demo");
        assert_eq!(s.metadata[META_ROLE], role);
        assert_eq!(s.metadata[META_NET_MODE], "floating");
        assert_eq!(
            s.metadata[META_SSH_USER], "ubuntu",
            "from the image's os_distro"
        );
        assert_eq!(s.flavor_id, "flavor-small");
        assert_eq!(s.key_name.as_deref(), Some("demo-key"));
        let group = format!("demo-{role}{}", if role == "slave" { "s" } else { "" });
        assert_eq!(s.security_groups, [group]);
    }

    let groups = cloud.groups_now();
    let mut group_names: Vec<_> = groups.iter().map(|g| g.name.clone()).collect();
    group_names.sort();
    assert_eq!(group_names, ["demo-master", "demo-slaves"]);
    let world_ssh = |g: &str| {
        groups.iter().find(|x| x.name == g).is_some_and(|x| {
            x.rules
                .iter()
                .any(|r| r.port_min == Some(22) && r.remote_ip_prefix.is_some())
        })
    };
    assert!(world_ssh("demo-master"));
    assert!(
        !world_ssh("demo-slaves"),
        "floating mode: slaves via the master"
    );

    let fips = cloud.floating_ips_now();
    assert_eq!(fips.len(), 1, "{fips:?}");
    assert_eq!(fips[0].description, model::owned_description("demo"));
    let master = cloud.server("demo-master");
    assert_eq!(master.floating_ip(), Some(fips[0].address.as_str()));
    assert!(cloud.volumes_now().is_empty());
}

#[tokio::test]
async fn a_second_launch_finds_everything_and_changes_nothing() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(2)).await;
    let writes = cloud.writes();
    let out = launched(&cloud, &spec(2)).await;
    assert!(!out.changed, "{out:?}");
    assert!(out.created.is_empty());
    assert_eq!(
        cloud.writes(),
        writes,
        "a rerun sends no create/delete/attach"
    );
}

#[tokio::test]
async fn bad_options_are_refused_by_preflight_and_launch_before_anything_is_written() {
    use crate::cluster::launch::preflight;
    let cloud = MemoryCloud::new();
    type Break = fn(&mut LaunchSpec);
    let cases: [(&str, Break); 4] = [
        ("--zone 'az9'", |s| s.zones = names(&["az1", "az9"])),
        ("--image 'debian-7'", |s| s.image = Some("debian-7".into())),
        ("--instance-type 'm1.huge'", |s| {
            s.instance_type = Some("m1.huge".into())
        }),
        ("--network 'nope'", |s| s.network = Some("nope".into())),
    ];
    for (named, bad) in cases {
        let mut s = spec(2);
        bad(&mut s);
        let e = guard(preflight(&cloud, &s)).await.unwrap_err();
        assert!(
            matches!(&e, ClusterError::Invalid(m) if m.starts_with(named)),
            "preflight: {e:?}"
        );
        let e = launch(&cloud, &s).await.unwrap_err();
        assert!(e.starts_with(named), "launch: {e}");
    }
    assert!(guard(preflight(&cloud, &spec(2))).await.is_ok());
    assert_eq!(cloud.writes(), [], "nothing was created or changed");
}

#[tokio::test]
async fn a_key_pair_holding_another_key_is_refused_before_anything_is_written() {
    use crate::cluster::launch::preflight;
    let cloud = MemoryCloud::new();
    let other = LaunchSpec {
        key_pair_public_key: Some("ssh-ed25519 AAAAother me@laptop".into()),
        ..spec(1)
    };
    let e = guard(preflight(&cloud, &other)).await.unwrap_err();
    assert!(
        matches!(&e, ClusterError::Invalid(m) if m.starts_with("--key-pair 'demo-key': Nova holds another public key")),
        "{e:?}"
    );
    let e = launch(&cloud, &other).await.unwrap_err();
    assert!(e.contains("…AAAAdemo vs ssh-ed25519 …AAAother"), "{e}");
    assert_eq!(cloud.writes(), [], "nothing was created");
    // The same key with another comment is the same key.
    let same = LaunchSpec {
        key_pair_public_key: Some("ssh-ed25519 AAAAdemo someone-else".into()),
        ..spec(1)
    };
    launched(&cloud, &same).await;
    // Growing the cluster with another key pair than it was launched with is refused.
    let writes = cloud.writes();
    let grow = LaunchSpec {
        key_pair: Some("laptop-2".into()),
        ..spec(2)
    };
    let e = launch(&cloud, &grow).await.unwrap_err();
    assert!(e.contains("was launched with key pair 'demo-key'"), "{e}");
    assert_eq!(cloud.writes(), writes);
}

#[tokio::test]
async fn volumes_are_created_per_role_attached_and_recorded() {
    let cloud = MemoryCloud::new();
    let s = LaunchSpec {
        slave_volume_size: Some(10),
        persistent_volume_size: Some(5),
        zones: names(&["az1", "az2"]),
        ..spec(2)
    };
    launched(&cloud, &s).await;
    let mut vols: Vec<(String, u64, String)> = Vec::new();
    for v in cloud.volumes_now() {
        let server = v.metadata[META_SERVER].clone();
        assert_eq!(v.metadata[META_CLUSTER], "demo");
        assert_eq!(v.status, "in-use");
        assert_eq!(v.attached_to, [cloud.server(&server).id], "{}", v.name);
        vols.push((v.name, v.size_gb, server));
    }
    vols.sort();
    let want = |n: &str, size, server: &str| (n.to_string(), size, server.to_string());
    assert_eq!(
        vols,
        [
            want("demo-master-persistent", 5, "demo-master"),
            want("demo-slave-1-data", 10, "demo-slave-1"),
            want("demo-slave-1-persistent", 5, "demo-slave-1"),
            want("demo-slave-2-data", 10, "demo-slave-2"),
            want("demo-slave-2-persistent", 5, "demo-slave-2"),
        ]
    );
    // Slaves are spread over the Nova zones; Cinder has only `nova`, so volumes get none
    // (the memory cloud, like Cinder, refuses an unknown zone).
    assert_eq!(
        cloud.server("demo-slave-2").availability_zone.as_deref(),
        Some("az2")
    );
    assert_eq!(
        cloud.server("demo-slave-1").metadata[META_SLAVE_VOLUME],
        "10"
    );
}

#[tokio::test]
async fn static_mode_opens_ssh_on_slaves_and_allocates_no_floating_ip() {
    let cloud = MemoryCloud::new();
    let s = LaunchSpec {
        net_mode: Some(NetMode::Static),
        ..spec(1)
    };
    let out = launched(&cloud, &s).await;
    assert_eq!(out.net_mode, Some(NetMode::Static));
    assert!(cloud.floating_ips_now().is_empty());
    assert_eq!(cloud.count(Op::CreateFloatingIp), 0);
    let slaves = cloud
        .groups_now()
        .into_iter()
        .find(|g| g.name == "demo-slaves")
        .expect("slaves group");
    assert!(slaves.rules.iter().any(|r| r.port_min == Some(22)));
}

#[tokio::test]
async fn a_server_in_error_is_replaced_exactly_once() {
    let cloud = MemoryCloud::new();
    cloud.boot_fails("demo-slave-2", "No valid host was found.");
    let out = launched(&cloud, &spec(3)).await;
    assert_eq!(out.replaced, ["demo-slave-2"]);
    assert_eq!(cloud.count_for(Op::CreateServer, "demo-slave-2"), 2);
    assert_eq!(cloud.count_for(Op::DeleteServer, "demo-slave-2"), 1);
    assert_eq!(cloud.count(Op::CreateServer), 5);
    // The broken one is gone; the replacement runs.
    assert_eq!(cloud.server_names(), names(&ALL));
    assert_eq!(cloud.server("demo-slave-2").status, "ACTIVE");
}

#[tokio::test]
async fn a_second_error_fails_naming_the_server_and_the_fault() {
    let cloud = MemoryCloud::new();
    cloud.boot_fails("demo-slave-2", "No valid host was found.");
    cloud.boot_fails("demo-slave-2", "Exceeded maximum number of retries.");
    let out = launch(&cloud, &spec(3)).await.expect("the rest is built");
    assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    assert_eq!(out.failures[0].name, "demo-slave-2");
    assert_eq!(
        out.failures[0].reason,
        "ERROR: Exceeded maximum number of retries."
    );
    assert_eq!(
        cloud.count_for(Op::CreateServer, "demo-slave-2"),
        2,
        "replaced once, not again"
    );
    assert_eq!(cloud.server("demo-slave-2").status, "ERROR");
    // Everything else is up, the master has its address.
    assert!(cloud.server("demo-master").floating_ip().is_some());
    assert_eq!(cloud.server("demo-slave-3").status, "ACTIVE");
}

#[tokio::test]
async fn a_failed_create_is_reported_and_everything_else_is_built() {
    let cloud = MemoryCloud::new();
    cloud
        .on(Op::CreateServer)
        .target("demo-slave-2")
        .fail_with(500, "compute: 500 Internal Server Error");
    let out = launch(&cloud, &spec(3)).await.expect("partial launch");
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].name, "demo-slave-2");
    assert!(
        out.failures[0].reason.contains("500 Internal Server Error"),
        "{:?}",
        out.failures
    );
    // Nothing left unreported: what exists is exactly what the outcome says was created.
    assert_eq!(sorted(out.created.clone()), cloud.server_names());
    assert_eq!(
        cloud.server_names(),
        names(&["demo-master", "demo-slave-1", "demo-slave-3"])
    );
    // A rerun creates the missing one only.
    let again = launched(&cloud, &spec(3)).await;
    assert_eq!(again.created, ["demo-slave-2"]);
    assert_eq!(cloud.server_names(), names(&ALL));
}

#[tokio::test]
async fn a_launch_over_the_quota_creates_no_server() {
    let cloud = MemoryCloud::new();
    cloud.set_quota(3, -1, -1);
    let e = launch(&cloud, &spec(3)).await.unwrap_err();
    assert!(e.contains("instances: needs 4, 3 left"), "{e}");
    assert_eq!(cloud.count(Op::CreateServer), 0);
    assert!(cloud.server_names().is_empty());
}

#[tokio::test]
async fn with_limits_hidden_nova_refusals_are_reported_per_server() {
    let cloud = MemoryCloud::new();
    cloud.hide_limits();
    cloud.set_quota(2, -1, -1);
    let out = launch(&cloud, &spec(3)).await.expect("partial launch");
    assert_eq!(out.created.len(), 2);
    assert_eq!(out.failures.len(), 2, "{:?}", out.failures);
    assert!(
        out.failures
            .iter()
            .all(|f| f.reason.contains("Quota exceeded"))
    );
    let mut all: Vec<String> = out.created.clone();
    all.extend(out.failures.iter().map(|f| f.name.clone()));
    assert_eq!(sorted(all), names(&ALL), "every server is accounted for");
    assert_eq!(sorted(out.created), cloud.server_names());
}

#[tokio::test]
async fn an_unknown_key_pair_stops_the_launch_before_anything_is_created() {
    let cloud = MemoryCloud::new();
    let s = LaunchSpec {
        key_pair: Some("laptop".into()),
        ..spec(1)
    };
    let e = launch(&cloud, &s).await.unwrap_err();
    assert!(e.contains("no key pair 'laptop'"), "{e}");
    assert_eq!(cloud.writes(), [], "nothing created");

    // With the identity file's public key it is imported and used.
    let s = LaunchSpec {
        key_pair_public_key: Some("ssh-ed25519 AAAA demo".into()),
        ..s
    };
    launched(&cloud, &s).await;
    assert_eq!(cloud.count_for(Op::ImportKeypair, "laptop"), 1);
    assert_eq!(
        cloud.server("demo-master").key_name.as_deref(),
        Some("laptop")
    );
}

#[tokio::test]
async fn a_floating_ip_failure_is_named_and_a_rerun_only_adds_the_address() {
    let cloud = MemoryCloud::new();
    cloud
        .on(Op::CreateFloatingIp)
        .fail_with(409, "Quota exceeded for resources: ['floatingip']");
    let e = launch(&cloud, &spec(1)).await.unwrap_err();
    assert!(e.contains("allocating a floating IP from public"), "{e}");
    assert!(e.contains("floatingip"), "{e}");
    let servers_before = cloud.count(Op::CreateServer);
    let out = launched(&cloud, &spec(1)).await;
    assert!(out.changed);
    assert_eq!(cloud.count(Op::CreateServer), servers_before);
    assert_eq!(cloud.floating_ips_now().len(), 1);
    assert!(cloud.server("demo-master").floating_ip().is_some());
}

#[tokio::test]
async fn servers_still_building_at_the_boot_timeout_are_reported() {
    let cloud = MemoryCloud::new();
    cloud.set_build_polls(0);
    cloud.stays_building("demo-slave-1");
    let s = LaunchSpec {
        boot_timeout: 0,
        ..spec(1)
    };
    let out = launch(&cloud, &s).await.expect("outcome");
    assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    assert_eq!(out.failures[0].name, "demo-slave-1");
    assert!(
        out.failures[0].reason.contains("still BUILD"),
        "{:?}",
        out.failures
    );
}

/// Nova may take a while to delete a server; the old master in ERROR then still shows in
/// listings next to its replacement.
#[tokio::test]
async fn a_replaced_master_gets_the_floating_ip_while_the_old_one_lingers() {
    let cloud = MemoryCloud::new();
    cloud.set_delete_polls(20);
    cloud.boot_fails("demo-master", "No valid host was found.");
    let out = launched(&cloud, &spec(1)).await;
    assert_eq!(out.replaced, ["demo-master"]);
    let active: Vec<_> = cloud
        .servers_now()
        .into_iter()
        .filter(|s| s.name == "demo-master" && s.status == "ACTIVE")
        .collect();
    assert_eq!(active.len(), 1);
    assert!(
        active[0].floating_ip().is_some(),
        "the new master has no floating IP: {:?}",
        cloud.floating_ips_now()
    );
    assert_eq!(out.cluster.masters.len(), 1, "{:?}", out.cluster.masters);
}
