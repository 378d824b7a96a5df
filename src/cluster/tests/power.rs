//! `stop` and `start`.

use super::*;
use crate::cluster::api::PowerAction;
use crate::cluster::memory_cloud::Op;
use crate::cluster::power::set_power;
use crate::cluster::report::ServerFailure;

async fn power(
    cloud: &MemoryCloud,
    action: PowerAction,
) -> Result<(Vec<String>, Vec<ServerFailure>), String> {
    // The module's timeout: a test that waits for it has found a bug.
    guard(set_power(
        cloud,
        "demo",
        action,
        Duration::from_secs(600),
        POLL,
    ))
    .await
    .map_err(|e| e.to_string())
}

fn statuses(cloud: &MemoryCloud) -> Vec<String> {
    cloud.servers_now().into_iter().map(|s| s.status).collect()
}

#[tokio::test]
async fn stop_and_start_act_on_every_server_once_and_wait_for_it() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(2)).await;
    let all = names(&["demo-master", "demo-slave-1", "demo-slave-2"]);

    let (acted, failures) = power(&cloud, PowerAction::Stop).await.expect("stop");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(sorted(acted), all);
    assert_eq!(
        statuses(&cloud),
        ["SHUTOFF"; 3],
        "returns once Nova says so"
    );

    // Stopping a stopped cluster asks Nova nothing (a power action would be a 409).
    let (acted, failures) = power(&cloud, PowerAction::Stop).await.expect("stop again");
    assert!(acted.is_empty() && failures.is_empty());
    assert_eq!(cloud.count(Op::Power), 3);

    let (acted, failures) = power(&cloud, PowerAction::Start).await.expect("start");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(sorted(acted), all);
    assert_eq!(statuses(&cloud), ["ACTIVE"; 3]);
    // Volumes and the floating IP survive.
    assert!(cloud.server("demo-master").floating_ip().is_some());
}

#[tokio::test]
async fn a_refused_power_action_is_reported_by_server_and_the_rest_proceeds() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(2)).await;
    cloud.on(Op::Power).target("demo-slave-1").fail_with(
        409,
        "Cannot 'stop' instance while it is in task_state rebooting",
    );
    let (_, failures) = power(&cloud, PowerAction::Stop).await.expect("stop");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].name, "demo-slave-1");
    assert!(failures[0].reason.contains("task_state rebooting"));
    assert_eq!(cloud.server("demo-slave-2").status, "SHUTOFF");
    assert_eq!(cloud.server("demo-slave-1").status, "ACTIVE");
}

#[tokio::test]
async fn powering_a_cluster_that_does_not_exist_is_an_error() {
    let cloud = MemoryCloud::new();
    let e = power(&cloud, PowerAction::Start).await.unwrap_err();
    assert!(e.contains("cluster 'demo' has no servers"), "{e}");
}

/// A server in ERROR never reaches SHUTOFF or ACTIVE: it is reported at once, not after
/// the 10-minute timeout.
#[tokio::test]
async fn a_server_in_error_is_reported_without_waiting_for_the_timeout() {
    let cloud = MemoryCloud::new();
    launched(&cloud, &spec(2)).await;
    cloud.set_status("demo-slave-1", "ERROR", Some("host failure"));
    let (acted, failures) = power(&cloud, PowerAction::Stop).await.expect("stop");
    assert_eq!(sorted(acted), names(&["demo-master", "demo-slave-2"]));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].name, "demo-slave-1");
    assert!(failures[0].reason.contains("ERROR"), "{failures:?}");
    assert!(failures[0].reason.contains("host failure"), "{failures:?}");
    assert_eq!(cloud.server("demo-master").status, "SHUTOFF");
}
