//! Every client operation against a real devcloud: what a cluster launch does, end to end.

mod cloud_support;

use std::collections::BTreeMap;
use std::time::Duration;

use cloud_support::DevCloud;
use openstack_client::compute::{ServerCreate, ServerFilter};
use openstack_client::network::SecurityGroupRule;
use openstack_client::volume::VolumeCreate;
use openstack_client::wait::Wait;
use openstack_client::{CloudError, Service};

fn quick() -> Wait {
    Wait {
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn images_flavors_keypairs_and_zones() {
    let dc = DevCloud::start(None);
    let cloud = dc.connect().await;

    let all = cloud.list_images(&[]).await.unwrap();
    assert!(all.len() >= 3, "{all:?}");
    // One image per page: the client must follow Glance's `next` links to get them all.
    let paged = cloud.list_images(&[("limit", "1")]).await.unwrap();
    let mut a: Vec<_> = all.iter().map(|i| i.id.clone()).collect();
    let mut b: Vec<_> = paged.iter().map(|i| i.id.clone()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);

    let ubuntu = cloud.find_image("ubuntu-22.04").await.unwrap();
    assert_eq!(
        ubuntu.properties.get("os_distro").and_then(|v| v.as_str()),
        Some("ubuntu")
    );
    assert_eq!(cloud.find_image(&ubuntu.id).await.unwrap().id, ubuntu.id);
    let e = cloud.find_image("no-such-image").await.unwrap_err();
    assert_eq!(e.to_string(), "image 'no-such-image' not found");

    let large = cloud.find_flavor("m1.large").await.unwrap();
    assert_eq!(
        (large.vcpus, large.ram, large.disk, large.ephemeral),
        (4, 8192, 40, 40)
    );
    assert_eq!(cloud.find_flavor(&large.id).await.unwrap().name, "m1.large");
    // Nova pagination: one flavor per page, same result.
    let paged: Vec<serde_json::Value> = cloud
        .list_all(Service::Compute, "/flavors/detail?limit=1", "flavors")
        .await
        .unwrap();
    assert_eq!(paged.len(), cloud.list_flavors().await.unwrap().len());

    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9yG0yqO5Y7dIuhQ6mKa7oWgvQz3D6y9qkz0M8m2Z1x test@host";
    let kp = cloud.create_keypair("spark-key", key).await.unwrap();
    assert_eq!(kp.name, "spark-key");
    assert_eq!(
        cloud
            .get_keypair("spark-key")
            .await
            .unwrap()
            .unwrap()
            .public_key,
        key
    );
    assert!(
        cloud
            .list_keypairs()
            .await
            .unwrap()
            .iter()
            .any(|k| k.name == "spark-key")
    );
    let dup = cloud.create_keypair("spark-key", key).await.unwrap_err();
    assert_eq!(dup.status(), Some(409), "{dup}");
    cloud.delete_keypair("spark-key").await.unwrap();
    assert!(cloud.get_keypair("spark-key").await.unwrap().is_none());

    assert!(!cloud.availability_zones().await.unwrap().is_empty());
    let limits = cloud.compute_limits().await.unwrap();
    assert!(limits.contains_key("maxTotalInstances"), "{limits:?}");
    let quota = cloud.network_quota().await.unwrap();
    assert!(quota.contains_key("floatingip"), "{quota:?}");
}

#[tokio::test]
async fn networks_and_security_groups_are_idempotent() {
    let dc = DevCloud::start(None);
    let cloud = dc.connect().await;

    let private = cloud.find_network("private").await.unwrap();
    assert!(!private.external);
    assert_eq!(
        cloud.find_network(&private.id).await.unwrap().name,
        "private"
    );
    let public = cloud.external_network(None).await.unwrap();
    assert_eq!(public.name, "public");
    let e = cloud.external_network(Some("private")).await.unwrap_err();
    assert!(e.to_string().contains("is not external"), "{e}");
    let subnets = cloud
        .list_subnets(&[("network_id", &private.id)])
        .await
        .unwrap();
    assert_eq!(subnets.len(), 1);

    let sg = cloud
        .ensure_security_group("spark-c1", "cluster c1")
        .await
        .unwrap();
    let again = cloud
        .ensure_security_group("spark-c1", "cluster c1")
        .await
        .unwrap();
    assert_eq!(sg.id, again.id);
    let ssh = SecurityGroupRule::tcp_from_cidr(&sg.id, 22, 22, "0.0.0.0/0");
    assert!(cloud.add_security_group_rule(&ssh).await.unwrap());
    assert!(
        !cloud.add_security_group_rule(&ssh).await.unwrap(),
        "an identical rule is not an error"
    );
    let internal = SecurityGroupRule::all_from_group(&sg.id, &sg.id, "IPv4");
    assert!(cloud.add_security_group_rule(&internal).await.unwrap());
    let groups = cloud
        .list_security_groups(&[("name", "spark-c1")])
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    let rules = &groups[0].security_group_rules;
    assert!(
        rules
            .iter()
            .any(|r| r.remote_group_id.as_deref() == Some(sg.id.as_str()))
    );
    assert!(rules.iter().any(|r| r.port_range_min == Some(22)));
    cloud.delete_security_group(&sg.id).await.unwrap();
    cloud.delete_security_group(&sg.id).await.unwrap();
    assert!(
        cloud
            .list_security_groups(&[("name", "spark-c1")])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn server_lifecycle_floating_ips_and_volumes() {
    let dc = DevCloud::start(Some(
        "boot_time: {min_ms: 200, max_ms: 400}\naction_time_ms: 100\n",
    ));
    let cloud = dc.connect().await;
    let image = cloud.find_image("debian-12").await.unwrap();
    let flavor = cloud.find_flavor("m1.small").await.unwrap();
    let net = cloud.find_network("private").await.unwrap();
    let sg = cloud.ensure_security_group("spark-c2", "").await.unwrap();

    let mut ids = Vec::new();
    for name in ["c2-master", "c2-slave-1", "c2-slave-2"] {
        let spec = ServerCreate {
            name: name.into(),
            image_id: Some(image.id.clone()),
            flavor_id: flavor.id.clone(),
            security_groups: vec![sg.name.clone()],
            network_ids: vec![net.id.clone()],
            metadata: BTreeMap::from([("spark_cluster".to_string(), "c2".to_string())]),
            tags: vec!["spark".into()],
            user_data: Some("#cloud-config\n".into()),
            ..Default::default()
        };
        let s = cloud.ensure_server(&spec).await.unwrap();
        // Re-running finds the same server instead of creating another.
        assert_eq!(cloud.ensure_server(&spec).await.unwrap().id, s.id);
        ids.push(s.id);
    }
    let filter = ServerFilter {
        name: Some("^c2-".into()),
        ..Default::default()
    };
    let active = cloud
        .wait_for_servers(&ids, "ACTIVE", &filter, quick())
        .await
        .unwrap();
    assert_eq!(active.len(), 3);
    // A poll round over many servers is ONE list call, not one GET per server.
    let calls = cloud.api_calls();
    cloud
        .wait_for_servers(&ids, "ACTIVE", &filter, quick())
        .await
        .unwrap();
    assert_eq!(cloud.api_calls() - calls, 1);
    for s in &active {
        assert_eq!(
            s.metadata.get("spark_cluster").map(String::as_str),
            Some("c2")
        );
        assert!(!s.ips("fixed").is_empty(), "{s:?}");
    }
    let listed = cloud.list_servers(&filter).await.unwrap();
    assert_eq!(listed.len(), 3);
    let by_meta = ServerFilter {
        metadata: BTreeMap::from([("spark_cluster".to_string(), "other".to_string())]),
        ..filter.clone()
    };
    assert!(cloud.list_servers(&by_meta).await.unwrap().is_empty());
    let tagged = cloud
        .list_servers(&ServerFilter {
            tags: vec!["spark".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tagged.len(), 3);

    let master = ids[0].clone();
    cloud.stop_server(&master).await.unwrap();
    cloud
        .wait_for_servers(std::slice::from_ref(&master), "SHUTOFF", &filter, quick())
        .await
        .unwrap();
    let e = cloud.stop_server(&master).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(e.to_string().starts_with("compute: HTTP 409 "), "{e}");
    cloud.start_server(&master).await.unwrap();
    cloud
        .wait_for_servers(std::slice::from_ref(&master), "ACTIVE", &filter, quick())
        .await
        .unwrap();
    cloud.reboot_server(&master, false).await.unwrap();
    cloud
        .wait_for_servers(std::slice::from_ref(&master), "ACTIVE", &filter, quick())
        .await
        .unwrap();
    let console = cloud.console_output(&master, Some(5)).await.unwrap();
    assert!(
        console.lines().count() <= 5 && !console.is_empty(),
        "{console:?}"
    );

    let ports = cloud.server_ports(&master).await.unwrap();
    assert_eq!(ports.len(), 1);
    let fip = cloud.add_floating_ip(&master, None).await.unwrap();
    assert_eq!(fip.port_id.as_deref(), Some(ports[0].id.as_str()));
    assert_eq!(
        cloud.add_floating_ip(&master, None).await.unwrap().id,
        fip.id,
        "reused, not a second IP"
    );
    // Neutron knows at once; Nova's addresses lag 1-3 s behind, as on a real cloud.
    let listed = cloud
        .list_floating_ips(&[("port_id", ports[0].id.as_str())])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].floating_ip_address, fip.floating_ip_address);
    let shown = cloud.get_server(&master).await.unwrap();
    assert!(
        shown.ips("floating").is_empty(),
        "Nova showed the floating IP at once: {:?}",
        shown.ips("floating")
    );
    let start = std::time::Instant::now();
    loop {
        let shown = cloud.get_server(&master).await.unwrap();
        if shown.ips("floating") == vec![fip.floating_ip_address.as_str()] {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "Nova never showed the floating IP"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(start.elapsed() >= std::time::Duration::from_millis(500));
    let freed = cloud.set_floating_ip_port(&fip.id, None).await.unwrap();
    assert_eq!(freed.port_id, None);
    cloud.delete_floating_ip(&fip.id).await.unwrap();

    let vol = cloud
        .create_volume(&VolumeCreate {
            name: "c2-data".into(),
            size_gb: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    cloud
        .wait_for_volume(&vol.id, "available", quick())
        .await
        .unwrap();
    let att = cloud.attach_volume(&master, &vol.id, None).await.unwrap();
    assert_eq!(att.volume_id, vol.id);
    cloud
        .wait_for_volume(&vol.id, "in-use", quick())
        .await
        .unwrap();
    assert_eq!(
        cloud.list_volume_attachments(&master).await.unwrap().len(),
        1
    );
    assert!(
        cloud
            .list_volumes()
            .await
            .unwrap()
            .iter()
            .any(|v| v.id == vol.id)
    );
    cloud.detach_volume(&master, &vol.id).await.unwrap();
    cloud
        .wait_for_volume(&vol.id, "available", quick())
        .await
        .unwrap();
    cloud.delete_volume(&vol.id).await.unwrap();

    for id in &ids {
        cloud.delete_server(id).await.unwrap();
    }
    cloud
        .wait_for_servers_deleted(&ids, &filter, quick())
        .await
        .unwrap();
    assert!(cloud.list_servers(&filter).await.unwrap().is_empty());
    let missing = cloud.get_server(&ids[0]).await.unwrap_err();
    assert!(
        matches!(missing, CloudError::Api { status: 404, .. }),
        "{missing}"
    );
    assert!(cloud.api_calls() > 0);
}

#[tokio::test]
async fn boot_failures_surface_nova_fault_message() {
    let dc = DevCloud::start(Some(
        "boot_error_rate: 1.0\nboot_time: {min_ms: 100, max_ms: 100}\n",
    ));
    let cloud = dc.connect().await;
    let spec = ServerCreate {
        name: "doomed".into(),
        image_id: Some(cloud.find_image("rocky-9").await.unwrap().id),
        flavor_id: "1".into(),
        network_ids: vec![cloud.find_network("private").await.unwrap().id],
        ..Default::default()
    };
    let s = cloud.create_server(&spec).await.unwrap();
    let e = cloud
        .wait_for_servers(
            std::slice::from_ref(&s.id),
            "ACTIVE",
            &ServerFilter::default(),
            quick(),
        )
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("server doomed ({}) went to ERROR: ", s.id)),
        "{msg}"
    );
    assert!(msg.contains("No valid host"), "{msg}");
}

#[tokio::test]
async fn ambiguous_names_are_errors_listing_the_ids() {
    let mut dc = DevCloud::start(None);
    let mut twin_id = String::new();
    // Glance names are not unique: give ubuntu-22.04 a twin.
    dc.restart_with(|state| {
        let images = state["images"]
            .as_array_mut()
            .expect("images in state.json");
        let mut twin = images
            .iter()
            .find(|i| i["name"] == "ubuntu-22.04")
            .expect("seeded image")
            .clone();
        twin_id = uuid::Uuid::new_v4().to_string();
        twin["id"] = serde_json::json!(twin_id);
        images.push(twin);
    });
    let cloud = dc.connect().await;
    let e = cloud.find_image("ubuntu-22.04").await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("image name 'ubuntu-22.04' is ambiguous: it matches "),
        "{msg}"
    );
    assert!(
        msg.contains(&twin_id) && msg.ends_with("; use an id instead"),
        "{msg}"
    );
    assert_eq!(cloud.find_image(&twin_id).await.unwrap().id, twin_id);
}
