//! `POST /servers/{id}/action` and volume attachments.

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use super::servers::find;
use super::{Microversion, SVC, bad_request, not_found};
use crate::error::{ApiError, ApiResult};
use crate::lifecycle::{machine_spec, spawn_transition};
use crate::server::{AppState, Ctx, parse_body};
use crate::state::{Server, VolumeAttachment, new_id, s as field};
use crate::{cinder, neutron};

fn bad_state(action: &str, srv: &Server) -> ApiError {
    let (attr, state) = match &srv.task_state {
        Some(t) => ("task_state", t.as_str()),
        None => ("vm_state", srv.vm_state.as_str()),
    };
    ApiError::conflict(
        SVC,
        format!(
            "Cannot '{action}' instance {} while it is in {attr} {state}",
            srv.id
        ),
    )
}

pub async fn action(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let (name, arg) = body
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .ok_or_else(|| bad_request("Malformed request body"))?;
    match name.as_str() {
        "os-stop" => transition(
            &app,
            &ctx,
            &id,
            "stop",
            &["active", "error"],
            "powering-off",
        ),
        "os-start" => transition(&app, &ctx, &id, "start", &["stopped"], "powering-on"),
        "reboot" => {
            let hard = arg
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("HARD"));
            if hard {
                transition(
                    &app,
                    &ctx,
                    &id,
                    "reboot",
                    &["active", "stopped", "error"],
                    "rebooting_hard",
                )
            } else {
                transition(&app, &ctx, &id, "reboot", &["active"], "rebooting")
            }
        }
        "os-getConsoleOutput" => console(&app, &ctx, &id, &arg).await,
        "addFloatingIp" | "removeFloatingIp" if !mv.at_least(44) => {
            neutron::syncing_floating(&app, || floating(&app, &ctx, &id, &name, &arg)).await
        }
        other => Err(bad_request(format!("There is no such action: {other}"))),
    }
}

/// Starts a timed transition if the server is in one of `from` and has no task running.
fn transition(
    app: &AppState,
    ctx: &Ctx,
    id: &str,
    action: &str,
    from: &[&str],
    task: &str,
) -> ApiResult {
    app.store.mutate(|st| {
        let srv = find(st, ctx, id)?;
        if srv.task_state.is_some() || !from.contains(&srv.vm_state.as_str()) {
            return Err(bad_state(action, &srv));
        }
        if let Some(s) = st.servers.iter_mut().find(|s| s.id == id) {
            s.task_state = Some(task.to_string());
            s.pending_until =
                Some(Utc::now() + Duration::milliseconds(app.cfg.action_time_ms as i64));
            s.updated = Utc::now();
        }
        Ok(())
    })?;
    spawn_transition(app.clone(), id.to_string());
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn console(app: &AppState, ctx: &Ctx, id: &str, arg: &Value) -> ApiResult {
    let spec = app.store.read(|st| {
        let srv = find(st, ctx, id)?;
        if srv.vm_state == "building" {
            return Err(ApiError::conflict(
                SVC,
                format!("Instance {id} is not ready"),
            ));
        }
        Ok(machine_spec(st, &srv))
    })?;
    let length = match arg.get("length") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|n| *n >= -1)
            .map(|n| if n == -1 { usize::MAX } else { n as usize }),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .map(|n| if n < 0 { usize::MAX } else { n as usize }),
        Some(_) => return Err(bad_request("Invalid input for field/attribute length.")),
    };
    let log = app.backend.console_log(&spec).await.map_err(|f| {
        not_found(format!(
            "Guest does not have a console available. {}",
            f.message
        ))
    })?;
    let lines: Vec<&str> = log.lines().collect();
    let keep = length.unwrap_or(lines.len()).min(lines.len());
    let output = lines[lines.len() - keep..].join("\n");
    Ok(axum::Json(json!({"output": output})).into_response())
}

/// The deprecated Nova proxies for floating IPs (microversions < 2.44).
fn floating(app: &AppState, ctx: &Ctx, id: &str, name: &str, arg: &Value) -> ApiResult {
    let address = arg
        .get("address")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("'address' is a required property"))?;
    app.store.mutate(|st| {
        let srv = find(st, ctx, id)?;
        let port = if name == "addFloatingIp" {
            Some(
                srv.port_ids
                    .first()
                    .cloned()
                    .ok_or_else(|| bad_request("No nw_info cache associated with instance"))?,
            )
        } else {
            None
        };
        neutron::associate_floating_ip(st, &ctx.project_id, address, port.as_deref())
            .map_err(|e| ApiError { service: SVC, ..e })
    })?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn attachment_doc(a: &VolumeAttachment, server_id: &str, mv: Microversion, created: bool) -> Value {
    let mut v = json!({"device": a.device, "serverId": server_id, "volumeId": a.volume_id});
    if created || !mv.at_least(89) {
        v["id"] = json!(a.volume_id);
    } else {
        v["attachment_id"] = json!(a.id);
        v["bdm_uuid"] = json!(a.id);
    }
    if mv.at_least(70) {
        v["tag"] = Value::Null;
    }
    if mv.at_least(79) {
        v["delete_on_termination"] = json!(a.delete_on_termination);
    }
    v
}

pub async fn list_attachments(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult {
    let srv = app.store.read(|st| find(st, &ctx, &id))?;
    let list: Vec<Value> = srv
        .volumes
        .iter()
        .map(|a| attachment_doc(a, &id, mv, false))
        .collect();
    Ok(axum::Json(json!({"volumeAttachments": list})).into_response())
}

pub async fn show_attachment(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path((id, vol)): Path<(String, String)>,
) -> ApiResult {
    let srv = app.store.read(|st| find(st, &ctx, &id))?;
    let a = srv
        .volumes
        .iter()
        .find(|a| a.volume_id == vol)
        .ok_or_else(|| not_found(format!("Volume {vol} is not attached to {id}")))?;
    Ok(axum::Json(json!({"volumeAttachment": attachment_doc(a, &id, mv, false)})).into_response())
}

pub async fn attach(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let req = body
        .get("volumeAttachment")
        .ok_or_else(|| bad_request("'volumeAttachment' is a required property"))?;
    let vol_id = req
        .get("volumeId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("'volumeId' is a required property"))?
        .to_string();
    let dot = req
        .get("delete_on_termination")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let a = app.store.mutate(|st| {
        let srv = find(st, &ctx, &id)?;
        if srv.task_state.is_some() || !["active", "stopped"].contains(&srv.vm_state.as_str()) {
            return Err(bad_state("attach_volume", &srv));
        }
        let vol = st
            .volumes
            .iter_mut()
            .find(|v| {
                field(v, "id") == vol_id
                    && field(v, "os-vol-tenant-attr:tenant_id") == ctx.project_id
            })
            .ok_or_else(|| not_found(format!("Volume {vol_id} could not be found.")))?;
        if field(vol, "status") != "available" {
            return Err(bad_request(format!(
                "Invalid volume: volume {vol_id} status must be 'available'. Currently in '{}'",
                field(vol, "status")
            )));
        }
        let used: Vec<&str> = srv.volumes.iter().map(|a| a.device.as_str()).collect();
        let device = (b'b'..=b'z')
            .map(|c| format!("/dev/vd{}", c as char))
            .find(|d| !used.contains(&d.as_str()))
            .ok_or_else(|| bad_request("No free disk device names"))?;
        let a = VolumeAttachment {
            id: new_id(),
            volume_id: vol_id.clone(),
            device,
            delete_on_termination: dot,
        };
        cinder::mark_attached(vol, &a, &id);
        if let Some(s) = st.servers.iter_mut().find(|s| s.id == id) {
            s.volumes.push(a.clone());
        }
        Ok(a)
    })?;
    // The disk appears in the machine (hot-plugged when it runs); when that fails the
    // attachment is undone, as Nova rolls back a failed attach and frees the volume.
    let vol = app
        .store
        .read(|st| crate::lifecycle::volume_ref(st, &vol_id));
    if let Err(f) = app.backend.volume_attached(&id, &vol).await {
        unrecord_attachment(&app, &id, &vol_id);
        return Err(ApiError::new(
            SVC,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Volume {vol_id} could not be attached to {id}: {}",
                f.message
            ),
        ));
    }
    Ok(axum::Json(json!({"volumeAttachment": attachment_doc(&a, &id, mv, true)})).into_response())
}

/// Forgets that `vol` is attached to server `id` (the volume is available again).
fn unrecord_attachment(app: &AppState, id: &str, vol: &str) {
    let _ = app.store.mutate(|st| -> Result<(), ()> {
        if let Some(s) = st.servers.iter_mut().find(|s| s.id == id) {
            s.volumes.retain(|a| a.volume_id != vol);
        }
        if let Some(v) = st.volumes.iter_mut().find(|v| field(v, "id") == vol) {
            cinder::mark_detached(v);
        }
        Ok(())
    });
}

pub async fn detach(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, vol)): Path<(String, String)>,
) -> ApiResult {
    app.store.read(|st| {
        let srv = find(st, &ctx, &id)?;
        match srv.volumes.iter().any(|a| a.volume_id == vol) {
            true => Ok(()),
            false => Err(not_found(format!("Volume {vol} is not attached to {id}"))),
        }
    })?;
    // The disk leaves the machine first; the volume is available only once it has.
    if let Err(f) = app.backend.volume_detached(&id, &vol).await {
        return Err(ApiError::new(
            SVC,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Volume {vol} could not be detached from {id}: {}",
                f.message
            ),
        ));
    }
    unrecord_attachment(&app, &id, &vol);
    Ok(StatusCode::ACCEPTED.into_response())
}
