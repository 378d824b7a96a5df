//! Small read-only Nova resources: limits, availability zones, quota sets, interfaces.

use axum::extract::{Extension, Path, State};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::servers::find;
use crate::error::ApiResult;
use crate::server::{AppState, Ctx};
use crate::state::{State as Cloud, s as field};

/// Instances, cores and RAM used by a project.
fn usage(st: &Cloud, project: &str) -> (u64, u64, u64) {
    let mut out = (0, 0, 0);
    for srv in st.servers.iter().filter(|s| s.project_id == project) {
        out.0 += 1;
        if let Some(f) = st.flavors.iter().find(|f| f.id == srv.flavor_id) {
            out.1 += f.vcpus as u64;
            out.2 += f.ram;
        }
    }
    out
}

pub async fn limits(State(app): State<AppState>, Extension(ctx): Extension<Ctx>) -> ApiResult {
    let (inst, cores, ram) = app.store.read(|st| usage(st, &ctx.project_id));
    let q = &app.cfg.quotas;
    Ok(axum::Json(json!({"limits": {"rate": [], "absolute": {
        "maxServerMeta": 128, "maxTotalInstances": q.instances, "maxTotalCores": q.cores,
        "maxTotalRAMSize": q.ram_mb, "maxTotalKeypairs": q.key_pairs,
        "maxServerGroups": 10, "maxServerGroupMembers": 10,
        "totalInstancesUsed": inst, "totalCoresUsed": cores, "totalRAMUsed": ram,
        "totalServerGroupsUsed": 0,
    }}}))
    .into_response())
}

pub async fn availability_zones(State(app): State<AppState>) -> ApiResult {
    let zones: Vec<Value> = app
        .cfg
        .compute_zones
        .iter()
        .map(|z| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": null}))
        .collect();
    Ok(axum::Json(json!({"availabilityZoneInfo": zones})).into_response())
}

pub async fn quota_set(State(app): State<AppState>, Path(project_id): Path<String>) -> ApiResult {
    let q = &app.cfg.quotas;
    Ok(axum::Json(json!({"quota_set": {
        "id": project_id, "instances": q.instances, "cores": q.cores, "ram": q.ram_mb,
        "key_pairs": q.key_pairs, "metadata_items": 128, "server_groups": 10,
        "server_group_members": 10, "injected_files": 5, "injected_file_content_bytes": 10240,
        "injected_file_path_bytes": 255,
    }}))
    .into_response())
}

/// `GET /servers/{id}/os-interface`: the server's ports as Nova shows them.
pub async fn interfaces(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> ApiResult {
    let list = app.store.read(|st| -> ApiResult<Vec<Value>> {
        let srv = find(st, &ctx, &id)?;
        Ok(st
            .ports
            .iter()
            .filter(|p| srv.port_ids.iter().any(|i| i == field(p, "id")))
            .map(|p| {
                json!({"port_id": field(p, "id"), "net_id": field(p, "network_id"),
                "mac_addr": field(p, "mac_address"), "port_state": field(p, "status"),
                "fixed_ips": p.get("fixed_ips").cloned().unwrap_or(json!([]))})
            })
            .collect())
    })?;
    Ok(axum::Json(json!({"interfaceAttachments": list})).into_response())
}
