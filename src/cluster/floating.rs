//! The master's floating IP: allocated explicitly, associated to the master's port, and
//! recognised later by its description, so destroy releases exactly what launch took.
//!
//! Every launcher before this one leaked or double-allocated floating IPs when a run was
//! interrupted between allocate and associate. Here an unassociated address carrying our
//! description is reused before anything new is allocated.

use super::api::ClusterApi;
use super::error::ClusterError;
use super::model::{self, Cluster};
use super::resolve;
use super::spec::LaunchSpec;

pub async fn ensure_master_ip(
    api: &dyn ClusterApi,
    spec: &LaunchSpec,
    cluster: &Cluster,
    changed: &mut bool,
) -> Result<(), ClusterError> {
    let Some(master) = cluster.master().cloned() else {
        return Ok(()); // its failure is already reported
    };
    if master.status != "ACTIVE" || master.floating_ip().is_some() {
        return Ok(());
    }
    let networks = api.networks().await?;
    let pool = resolve::floating_pool(&networks, spec.floating_ip_pool.as_deref())?;
    let ports = api.server_ports(&master.id).await?;
    let port = ports.first().ok_or_else(|| {
        format!(
            "{}: the server has no network port to attach a floating IP to",
            master.name
        )
    })?;
    let owned = model::owned_description(&spec.cluster);
    let fips = api.floating_ips().await?;
    if fips
        .iter()
        .any(|f| f.port_id.as_deref() == Some(port.id.as_str()))
    {
        return Ok(()); // associated, Nova's listing just lags behind
    }
    let fip = match fips
        .iter()
        .find(|f| f.description == owned && f.port_id.is_none() && f.network_id == pool.id)
    {
        Some(f) => f.clone(),
        None => api
            .create_floating_ip(&pool.id, &owned)
            .await
            .map_err(|e| e.context(format!("allocating a floating IP from {}", pool.name)))?,
    };
    api.associate_floating_ip(&fip.id, &port.id)
        .await
        .map_err(|e| e.context(format!("associating {} with {}", fip.address, master.name)))?;
    *changed = true;
    Ok(())
}
