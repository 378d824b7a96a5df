//! Cinder volumes: one `data` volume per slave (`--slave-volume-size`) and one
//! `persistent` volume per node (`--persistent-volume-size`), named after their server and
//! tagged with the cluster, created where missing and attached where detached. They survive
//! stop/start; destroy deletes them unless `--keep-volumes`.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};

use super::api::{ClusterApi, Server};
use super::error::ClusterError;
use super::model::{self, Cluster, Role};
use super::spec::LaunchSpec;

/// Metadata key naming the server a volume belongs to.
pub const META_SERVER: &str = "spark_openstack_server";

/// (volume name, size, server) for every volume the cluster should have.
pub fn wanted<'a>(spec: &LaunchSpec, cluster: &'a Cluster) -> Vec<(String, u64, &'a Server)> {
    let mut v = Vec::new();
    for s in cluster.servers() {
        let role = model::role_of(&cluster.name, s);
        if let (Some(size), Some(Role::Slave)) = (spec.slave_volume_size, role) {
            v.push((format!("{}-data", s.name), size, s));
        }
        if let Some(size) = spec.persistent_volume_size {
            v.push((format!("{}-persistent", s.name), size, s));
        }
    }
    v
}

pub async fn ensure(
    api: &dyn ClusterApi,
    spec: &LaunchSpec,
    cluster: &Cluster,
    changed: &mut bool,
) -> Result<(), ClusterError> {
    let existing = api.volumes().await?;
    // A volume goes in its server's zone only where Cinder has a zone of that name: clouds
    // commonly have Nova zones (az1, az2) and one Cinder zone (nova), and Cinder refuses an
    // unknown zone with 400, while Nova attaches across zones by default.
    let cinder_zones = api.volume_zones().await.unwrap_or_else(|e| {
        tracing::debug!(
            "Cinder lists no availability zones ({}); volumes get none",
            e.msg
        );
        Vec::new()
    });
    let jobs: Vec<_> = wanted(spec, cluster)
        .into_iter()
        .filter(|(_, _, s)| s.status == "ACTIVE")
        .map(|(name, size, server)| {
            let found = existing.iter().find(|v| v.name == name).cloned();
            (name, size, server.clone(), found)
        })
        .filter(|(_, _, s, found)| {
            found
                .as_ref()
                .is_none_or(|v| !v.attached_to.contains(&s.id))
        })
        .collect();
    *changed |= !jobs.is_empty();
    let cluster_name = cluster.name.clone();
    let results: Vec<Result<(), ClusterError>> = stream::iter(jobs)
        .map(|(name, size, server, found)| {
            let cluster_name = cluster_name.clone();
            let zone = server
                .availability_zone
                .clone()
                .filter(|z| cinder_zones.contains(z));
            async move {
                let vol = match found {
                    Some(v) => v,
                    None => {
                        let meta = BTreeMap::from([
                            (model::META_CLUSTER.to_string(), cluster_name),
                            (META_SERVER.to_string(), server.name.clone()),
                        ]);
                        let v = api
                            .create_volume(&name, size, zone.as_deref(), &meta)
                            .await
                            .map_err(|e| e.context(format!("creating volume {name}")))?;
                        wait_available(api, &v.id, &name).await?;
                        v
                    }
                };
                api.attach_volume(&server.id, &vol.id).await.map_err(|e| {
                    e.context(format!("attaching volume {name} to {}", server.name))
                        .into()
                })
            }
        })
        .buffer_unordered(10)
        .collect()
        .await;
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Failed(errors.join("; ")))
    }
}

async fn wait_available(api: &dyn ClusterApi, id: &str, name: &str) -> Result<(), ClusterError> {
    for _ in 0..300 {
        let vols = api.volumes().await?;
        match vols.iter().find(|v| v.id == id).map(|v| v.status.as_str()) {
            Some("available") | Some("in-use") => return Ok(()),
            Some("error") => {
                return Err(ClusterError::Failed(format!(
                    "volume {name} went into error state"
                )));
            }
            _ => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
    Err(ClusterError::Failed(format!(
        "volume {name} did not become available in 300 s"
    )))
}
