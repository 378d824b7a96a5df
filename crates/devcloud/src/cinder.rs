//! Cinder v3 volumes (create, list, show, update, delete) and their attachment state, which
//! Nova's `os-volume_attachments` drives.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Service};
use super::server::{AppState, Ctx, parse_body};
use super::state::{Doc, VolumeAttachment, new_id, s as field};

const SVC: Service = Service::Volume;
const MAX_MINOR: u16 = 71;

/// The negotiated volume microversion's minor number (3.x → x).
#[derive(Clone, Copy, Debug)]
pub struct VolumeVersion(pub u16);

/// Cinder's only availability zone (Cinder's default name).
const CINDER_ZONE: &str = "nova";

/// `GET /os-availability-zone`: Cinder's zones, as the real service lists them.
async fn zones() -> ApiResult {
    Ok(axum::Json(json!({"availabilityZoneInfo": [
        {"zoneName": CINDER_ZONE, "zoneState": {"available": true}}
    ]}))
    .into_response())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list).post(create))
        .route("/volumes/detail", get(detail))
        .route("/volumes/{id}", get(show).put(update).delete(delete))
        .route("/limits", get(limits))
        .route("/os-availability-zone", get(zones))
        .layer(middleware::from_fn(microversion))
}

pub fn version_routes() -> Router<AppState> {
    Router::new()
        .route("/volume", get(versions_300))
        .route("/volume/", get(versions_300))
        .route("/volume/v3", get(versions_200))
        .route("/volume/v3/", get(versions_200))
}

fn versions_doc(base: &str) -> Value {
    json!({"versions": [{"id": "v3.0", "status": "CURRENT", "version": format!("3.{MAX_MINOR}"),
        "min_version": "3.0", "updated": "2023-08-31T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/volume/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}]}]})
}

async fn versions_300(State(app): State<AppState>) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(versions_doc(&app.base_url)),
    )
        .into_response()
}

async fn versions_200(State(app): State<AppState>) -> Response {
    axum::Json(versions_doc(&app.base_url)).into_response()
}

/// `OpenStack-API-Version: volume 3.x` negotiation (default 3.0; out of range → 406).
async fn microversion(mut req: Request, next: Next) -> Response {
    let asked = req
        .headers()
        .get_all("openstack-api-version")
        .iter()
        .find_map(|v| {
            v.to_str().ok()?.split(',').find_map(|p| {
                let (svc, ver) = p.trim().split_once(' ')?;
                (svc == "volume").then(|| ver.trim().to_string())
            })
        });
    let minor = match asked.as_deref() {
        None => Some(0),
        Some("latest") => Some(MAX_MINOR),
        Some(v) => v
            .strip_prefix("3.")
            .and_then(|m| m.parse::<u16>().ok())
            .filter(|m| *m <= MAX_MINOR),
    };
    let Some(minor) = minor else {
        return ApiError::new(SVC, StatusCode::NOT_ACCEPTABLE, format!(
            "Version {} is not supported by the API. Minimum is 3.0 and maximum is 3.{MAX_MINOR}.",
            asked.unwrap_or_default())).into_response();
    };
    req.extensions_mut().insert(VolumeVersion(minor));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&format!("volume 3.{minor}")) {
        resp.headers_mut().insert("openstack-api-version", v);
    }
    resp
}

fn view(base: &str, v: &Doc, mv: VolumeVersion) -> Value {
    let mut d = v.clone();
    let id = field(v, "id").to_string();
    let project = field(v, "os-vol-tenant-attr:tenant_id").to_string();
    d.insert(
        "links".into(),
        json!([
        {"rel": "self", "href": format!("{base}/volume/v3/{project}/volumes/{id}")},
        {"rel": "bookmark", "href": format!("{base}/volume/{project}/volumes/{id}")}]),
    );
    let steps: [(u16, &str, Value); 6] = [
        (13, "group_id", Value::Null),
        (21, "provider_id", Value::Null),
        (
            48,
            "service_uuid",
            json!("c4fd3f13-2e9c-4b4c-8a1e-5e0a3c4d5e6f"),
        ),
        (48, "shared_targets", json!(false)),
        (
            63,
            "volume_type_id",
            json!("5f0e7a7a-3c58-4f6e-9a0b-6a0f6e0b9c1d"),
        ),
        (65, "consumes_quota", json!(true)),
    ];
    for (min, k, val) in steps {
        if mv.0 >= min {
            d.insert(k.into(), val);
        }
    }
    Value::Object(d)
}

/// Records an attachment on the volume document (status `in-use`).
pub fn mark_attached(vol: &mut Doc, a: &VolumeAttachment, server_id: &str) {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    vol.insert("status".into(), json!("in-use"));
    vol.insert(
        "attachments".into(),
        json!([{
        "id": a.volume_id, "attachment_id": a.id, "volume_id": a.volume_id, "server_id": server_id,
        "host_name": null, "device": a.device, "attached_at": now}]),
    );
    vol.insert("updated_at".into(), json!(now));
}

pub fn mark_detached(vol: &mut Doc) {
    vol.insert("status".into(), json!("available"));
    vol.insert("attachments".into(), json!([]));
    vol.insert(
        "updated_at".into(),
        json!(Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
    );
}

fn mine(st: &super::state::State, ctx: &Ctx) -> Vec<Doc> {
    st.volumes
        .iter()
        .filter(|v| field(v, "os-vol-tenant-attr:tenant_id") == ctx.project_id)
        .cloned()
        .collect()
}

fn filtered(app: &AppState, ctx: &Ctx, q: &[(String, String)]) -> Vec<Doc> {
    let mut vols = app.store.read(|st| mine(st, ctx));
    vols.retain(|v| {
        q.iter().all(|(k, val)| match k.as_str() {
            "name" | "status" => field(v, k) == val,
            _ => true,
        })
    });
    vols.reverse();
    vols
}

async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let list: Vec<Value> = filtered(&app, &ctx, &q)
        .iter()
        .map(|v| {
            json!({"id": field(v, "id"), "name": v.get("name"),
        "links": view(&app.base_url, v, VolumeVersion(0))["links"]})
        })
        .collect();
    axum::Json(json!({"volumes": list})).into_response()
}

async fn detail(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<VolumeVersion>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let list: Vec<Value> = filtered(&app, &ctx, &q)
        .iter()
        .map(|v| view(&app.base_url, v, mv))
        .collect();
    axum::Json(json!({"volumes": list})).into_response()
}

fn find(app: &AppState, ctx: &Ctx, id: &str) -> ApiResult<Doc> {
    app.store
        .read(|st| mine(st, ctx).into_iter().find(|v| field(v, "id") == id))
        .ok_or_else(|| ApiError::not_found(SVC, format!("Volume {id} could not be found.")))
}

async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<VolumeVersion>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let v = find(&app, &ctx, &id)?;
    Ok(axum::Json(json!({"volume": view(&app.base_url, &v, mv)})).into_response())
}

async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<VolumeVersion>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let req = body.get("volume").ok_or_else(|| {
        ApiError::bad_request(SVC, "Missing required element 'volume' in request body.")
    })?;
    let size = req.get("size").and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|x| x.parse().ok())))
        .filter(|s| *s >= 1)
        .ok_or_else(|| ApiError::bad_request(SVC, "Invalid input for field/attribute size. Value: None. None is not of type 'integer', 'string'"))?;
    // Cinder has its own zones (here only `nova`) and refuses others, whatever Nova has.
    if let Some(az) = req.get("availability_zone").and_then(Value::as_str)
        && az != CINDER_ZONE
    {
        return Err(ApiError::bad_request(
            SVC,
            format!("Availability zone '{az}' is invalid."),
        ));
    }
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let s = |k: &str| req.get(k).cloned().unwrap_or(Value::Null);
    let doc = json!({
        "id": new_id(), "name": s("name"), "description": s("description"), "size": size,
        "status": "available", "availability_zone": req.get("availability_zone").cloned().unwrap_or(json!("nova")),
        "attachments": [], "bootable": "false", "encrypted": false, "multiattach": false,
        "metadata": req.get("metadata").cloned().unwrap_or(json!({})),
        "volume_type": req.get("volume_type").cloned().filter(|v| !v.is_null()).unwrap_or(json!("__DEFAULT__")),
        "snapshot_id": s("snapshot_id"), "source_volid": s("source_volid"), "consistencygroup_id": null,
        "replication_status": null, "migration_status": null, "user_id": ctx.user_id,
        "os-vol-tenant-attr:tenant_id": ctx.project_id, "created_at": now, "updated_at": null,
    });
    let Value::Object(doc) = doc else {
        return Err(ApiError::bad_request(SVC, "bad volume"));
    };
    let q = &app.cfg.quotas;
    app.store.mutate(|st| {
        let vols = mine(st, &ctx);
        let used_gb: u64 = vols.iter().filter_map(|v| v.get("size").and_then(Value::as_u64)).sum();
        if q.volumes >= 0 && vols.len() as i64 >= q.volumes {
            return Err(over_limit(format!("VolumeLimitExceeded: Maximum number of volumes allowed ({}) exceeded for quota 'volumes'.", q.volumes)));
        }
        if q.gigabytes >= 0 && (used_gb + size) as i64 > q.gigabytes {
            return Err(over_limit(format!("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested {size}G, quota is {}G and {used_gb}G has been consumed.", q.gigabytes)));
        }
        st.volumes.push(doc.clone());
        Ok(())
    })?;
    // The stored volume is available at once; the create response shows it as Cinder
    // does, still `creating`.
    let mut shown = doc;
    shown.insert("status".into(), json!("creating"));
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"volume": view(&app.base_url, &shown, mv)})),
    )
        .into_response())
}

fn over_limit(msg: String) -> ApiError {
    ApiError::new(SVC, StatusCode::PAYLOAD_TOO_LARGE, msg)
}

async fn update(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<VolumeVersion>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let req = body
        .get("volume")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    find(&app, &ctx, &id)?;
    let v = app.store.mutate(|st| {
        let v = st
            .volumes
            .iter_mut()
            .find(|v| field(v, "id") == id)
            .ok_or_else(|| ApiError::not_found(SVC, format!("Volume {id} could not be found.")))?;
        for k in ["name", "description", "metadata"] {
            if let Some(x) = req.get(k) {
                v.insert(k.into(), x.clone());
            }
        }
        Ok::<_, ApiError>(v.clone())
    })?;
    Ok(axum::Json(json!({"volume": view(&app.base_url, &v, mv)})).into_response())
}

async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let v = find(&app, &ctx, &id)?;
    if field(&v, "status") != "available" && field(&v, "status") != "error" {
        return Err(ApiError::bad_request(
            SVC,
            "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
        ));
    }
    app.store.mutate(|st| {
        st.volumes.retain(|x| field(x, "id") != id);
        Ok::<_, ApiError>(())
    })?;
    // The record is gone either way (as Cinder's volume leaves the API before the backend
    // has wiped it); data a backend could not remove is logged.
    if let Err(f) = app.backend.volume_deleted(&id).await {
        tracing::warn!("volume {id}: data not removed: {}", f.message);
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn limits(State(app): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let vols = app.store.read(|st| mine(st, &ctx));
    let used_gb: u64 = vols
        .iter()
        .filter_map(|v| v.get("size").and_then(Value::as_u64))
        .sum();
    let q = &app.cfg.quotas;
    axum::Json(json!({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": q.volumes, "maxTotalVolumeGigabytes": q.gigabytes,
        "maxTotalSnapshots": 10, "maxTotalBackups": 10, "maxTotalBackupGigabytes": 1000,
        "totalVolumesUsed": vols.len(), "totalGigabytesUsed": used_gb,
        "totalSnapshotsUsed": 0, "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0}}}))
    .into_response()
}
