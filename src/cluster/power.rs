//! `stop` and `start`: power servers off and on, keeping root disks and volumes. Addresses
//! may change on start, which is why the start playbook reconfigures the cluster from a
//! fresh inventory afterwards.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::api::{ClusterApi, PowerAction};
use super::error::ClusterError;
use super::model::Cluster;
use super::report::ServerFailure;
use super::watch::ServerWatch;

/// Powers every server of `cluster` off or on and waits for SHUTOFF/ACTIVE.
/// Returns the names acted on and the servers that did not get there.
pub async fn set_power(
    api: &dyn ClusterApi,
    cluster: &str,
    action: PowerAction,
    timeout: Duration,
    poll: Duration,
) -> Result<(Vec<String>, Vec<ServerFailure>), ClusterError> {
    let servers = api.servers().await?;
    let c = Cluster::collect(cluster, &servers, &[], &[]);
    if c.is_empty() {
        return Err(ClusterError::Invalid(format!(
            "cluster '{cluster}' has no servers"
        )));
    }
    let (from, to) = match action {
        PowerAction::Stop => ("ACTIVE", "SHUTOFF"),
        PowerAction::Start => ("SHUTOFF", "ACTIVE"),
    };
    let targets: Vec<_> = c.servers().filter(|s| s.status == from).cloned().collect();
    let results: Vec<_> = stream::iter(targets.clone())
        .map(|s| async move {
            let r = api.power(&s.id, action).await;
            (s.name, r)
        })
        .buffer_unordered(20)
        .collect()
        .await;
    let mut failures: Vec<ServerFailure> = results
        .into_iter()
        .filter_map(|(name, r)| {
            r.err().map(|e| ServerFailure {
                name,
                reason: e.msg,
            })
        })
        .collect();
    let ids: Vec<&str> = c.servers().map(|s| s.id.as_str()).collect();
    let what = format!("servers {to}");
    let mut watch = ServerWatch::new(&what, ids.len() as u64, timeout, poll);
    loop {
        let now = watch.servers(api).await?;
        let mine: Vec<_> = now
            .iter()
            .filter(|s| ids.contains(&s.id.as_str()))
            .collect();
        let done = mine.iter().filter(|s| s.status == to).count();
        watch.bar.set_position(done as u64);
        // ERROR is final: waiting for it to reach `to` only delays the report by `timeout`.
        for s in mine.iter().filter(|s| s.status == "ERROR") {
            if !failures.iter().any(|f| f.name == s.name) {
                failures.push(ServerFailure {
                    name: s.name.clone(),
                    reason: format!(
                        "ERROR: {}",
                        s.fault.as_deref().unwrap_or("Nova gave no fault message")
                    ),
                });
            }
        }
        let stuck: Vec<_> = mine
            .iter()
            .filter(|s| s.status != to && !failures.iter().any(|f| f.name == s.name))
            .collect();
        if stuck.is_empty() || watch.expired() {
            for s in stuck {
                failures.push(ServerFailure {
                    name: s.name.clone(),
                    reason: format!("still {} (wanted {to})", s.status),
                });
            }
            break;
        }
    }
    Ok((targets.into_iter().map(|s| s.name).collect(), failures))
}
