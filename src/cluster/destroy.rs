//! Removing a cluster, or some of its slaves, and saying what could not be removed.
//!
//! Order matters on OpenStack: servers first (they hold ports, which hold the security
//! groups and floating IPs), then the floating IPs we allocated, then volumes once Cinder
//! sees them detached, then both security groups, retried while Neutron still reports
//! them in use (the two groups reference each other through rules, but deleting a group
//! deletes its rules, so no rule revoking is needed, unlike EC2).

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use super::api::{ClusterApi, Server};
use super::error::ClusterError;
use super::model::{self, Cluster};
use super::volumes::META_SERVER;
use super::watch::ServerWatch;

#[derive(Debug, Default)]
pub struct DestroyOutcome {
    pub removed: Vec<String>,
    /// Things that are still there, each with the reason.
    pub leftovers: Vec<String>,
    /// Things deliberately kept (`--keep-volumes`).
    pub kept: Vec<String>,
}

impl DestroyOutcome {
    pub fn changed(&self) -> bool {
        !self.removed.is_empty()
    }
}

/// How long to keep retrying resources that are still in use.
const SETTLE: Duration = Duration::from_secs(120);

/// Destroys the whole cluster.
pub async fn destroy(
    api: &dyn ClusterApi,
    cluster: &str,
    keep_volumes: bool,
    poll: Duration,
) -> Result<DestroyOutcome, ClusterError> {
    let c = current(api, cluster).await?;
    let mut out = DestroyOutcome::default();
    let servers: Vec<Server> = c.servers().cloned().collect();
    delete_servers(api, &servers, poll, &mut out).await?;
    for f in &c.floating_ips {
        match api.delete_floating_ip(&f.id).await {
            Ok(()) => out.removed.push(format!("floating IP {}", f.address)),
            Err(e) if e.is_not_found() => {}
            Err(e) => out
                .leftovers
                .push(format!("floating IP {}: {}", f.address, e.msg)),
        }
    }
    if keep_volumes {
        for v in &c.volumes {
            out.kept
                .push(format!("volume {} ({} GB)", v.name, v.size_gb));
        }
    } else {
        let ids: Vec<String> = c.volumes.iter().map(|v| v.id.clone()).collect();
        delete_volumes(api, &ids, poll, &mut out).await?;
    }
    delete_groups(api, cluster, poll, &mut out).await?;
    Ok(out)
}

/// Removes the `count` highest-numbered slaves (and their volumes unless `keep_volumes`).
pub async fn remove_slaves(
    api: &dyn ClusterApi,
    cluster: &str,
    count: usize,
    keep_volumes: bool,
    poll: Duration,
) -> Result<DestroyOutcome, ClusterError> {
    let c = current(api, cluster).await?;
    if count > c.slaves.len() {
        return Err(ClusterError::Invalid(format!(
            "cluster '{cluster}' has {} slaves; cannot remove {count}",
            c.slaves.len()
        )));
    }
    let victims: Vec<Server> = c.slaves[c.slaves.len() - count..].to_vec();
    let mut out = DestroyOutcome::default();
    delete_servers(api, &victims, poll, &mut out).await?;
    if !keep_volumes {
        let names: Vec<&str> = victims.iter().map(|s| s.name.as_str()).collect();
        let ids: Vec<String> = c
            .volumes
            .iter()
            .filter(|v| {
                v.metadata
                    .get(META_SERVER)
                    .is_some_and(|s| names.contains(&s.as_str()))
            })
            .map(|v| v.id.clone())
            .collect();
        delete_volumes(api, &ids, poll, &mut out).await?;
    }
    Ok(out)
}

async fn current(api: &dyn ClusterApi, cluster: &str) -> Result<Cluster, ClusterError> {
    let (servers, fips, vols) =
        futures::try_join!(api.servers(), api.floating_ips(), api.volumes())?;
    Ok(Cluster::collect(cluster, &servers, &fips, &vols))
}

async fn delete_servers(
    api: &dyn ClusterApi,
    servers: &[Server],
    poll: Duration,
    out: &mut DestroyOutcome,
) -> Result<(), ClusterError> {
    let results: Vec<(String, Result<(), super::api::ApiError>)> = stream::iter(servers.to_vec())
        .map(|s| async move {
            let r = api.delete_server(&s.id).await;
            (s.name, r)
        })
        .buffer_unordered(20)
        .collect()
        .await;
    for (name, r) in results {
        match r {
            Ok(()) => out.removed.push(format!("server {name}")),
            Err(e) if e.is_not_found() => {}
            Err(e) => out.leftovers.push(format!("server {name}: {}", e.msg)),
        }
    }
    // Wait until Nova no longer lists them, so their ports (and group use) are gone.
    let ids: Vec<&str> = servers.iter().map(|s| s.id.as_str()).collect();
    let mut watch = ServerWatch::new("servers deleted", ids.len() as u64, SETTLE, poll);
    loop {
        let now = watch.servers(api).await?;
        let left: Vec<&Server> = now
            .iter()
            .filter(|s| ids.contains(&s.id.as_str()))
            .collect();
        watch.bar.set_position((ids.len() - left.len()) as u64);
        if left.is_empty() {
            break;
        }
        if watch.expired() {
            for s in left {
                out.leftovers.push(format!(
                    "server {}: still {} after deletion request",
                    s.name, s.status
                ));
            }
            break;
        }
    }
    Ok(())
}

async fn delete_volumes(
    api: &dyn ClusterApi,
    ids: &[String],
    poll: Duration,
    out: &mut DestroyOutcome,
) -> Result<(), ClusterError> {
    let mut todo: Vec<String> = ids.to_vec();
    let deadline = Instant::now() + SETTLE;
    while !todo.is_empty() {
        let vols = api.volumes().await?;
        let mut next = Vec::new();
        for id in todo {
            let Some(v) = vols.iter().find(|v| v.id == id) else {
                continue;
            };
            if !v.attached_to.is_empty() || v.status == "detaching" {
                if Instant::now() >= deadline {
                    out.leftovers
                        .push(format!("volume {}: still {}", v.name, v.status));
                } else {
                    next.push(id);
                }
                continue;
            }
            match api.delete_volume(&id).await {
                Ok(()) => out.removed.push(format!("volume {}", v.name)),
                Err(e) if e.is_not_found() => {}
                Err(e)
                    if Instant::now() < deadline && (e.is_conflict() || e.status == Some(400)) =>
                {
                    next.push(id)
                }
                Err(e) => out.leftovers.push(format!("volume {}: {}", v.name, e.msg)),
            }
        }
        todo = next;
        if !todo.is_empty() {
            tokio::time::sleep(poll).await;
        }
    }
    Ok(())
}

async fn delete_groups(
    api: &dyn ClusterApi,
    cluster: &str,
    poll: Duration,
    out: &mut DestroyOutcome,
) -> Result<(), ClusterError> {
    let names = [model::master_group(cluster), model::slaves_group(cluster)];
    let deadline = Instant::now() + SETTLE;
    loop {
        let groups = api.security_groups().await?;
        let mut busy = Vec::new();
        for g in groups.iter().filter(|g| names.contains(&g.name)) {
            match api.delete_security_group(&g.id).await {
                Ok(()) => out.removed.push(format!("security group {}", g.name)),
                Err(e) if e.is_not_found() => {}
                Err(e) if e.is_conflict() => busy.push((g.name.clone(), e.msg)),
                Err(e) => out
                    .leftovers
                    .push(format!("security group {}: {}", g.name, e.msg)),
            }
        }
        if busy.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            for (name, msg) in busy {
                out.leftovers
                    .push(format!("security group {name}: still in use ({msg})"));
            }
            return Ok(());
        }
        tokio::time::sleep(poll).await;
    }
}
