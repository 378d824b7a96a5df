//! Glance v2 images (read-only: the seed's images) with Glance's `next`-link pagination.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Service};
use super::server::AppState;
use super::state::{Doc, s as field, ts};

const SVC: Service = Service::Image;
/// Glance's `limit_param_default`.
const PAGE: usize = 25;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/images", get(list))
        .route("/images/{id}", get(show))
        .route("/schemas/image", get(schema_image))
        .route("/schemas/images", get(schema_images))
}

pub fn version_routes() -> Router<AppState> {
    Router::new()
        .route("/image", get(versions_300))
        .route("/image/", get(versions_300))
        .route("/image/versions", get(versions_200))
}

fn versions_doc(base: &str) -> Value {
    let v: Vec<Value> = ["2.16", "2.15", "2.9", "2.0"]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"id": format!("v{v}"), "status": if i == 0 { "CURRENT" } else { "SUPPORTED" },
                             "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]})
        })
        .collect();
    json!({"versions": v})
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

/// A public image document as Glance shows it; `props` are extra properties, flattened.
pub fn new_image(name: &str, owner: &str, size: u64, props: &[(&str, &str)]) -> Doc {
    let id = super::state::new_id();
    let now = ts(Utc::now());
    let checksum = hex::encode(<md5::Md5 as md5::Digest>::digest(name.as_bytes()));
    let sha = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(name.as_bytes()));
    let mut d = json!({
        "id": id, "name": name, "status": "active", "visibility": "public",
        "min_disk": 0, "min_ram": 0, "disk_format": "qcow2", "container_format": "bare",
        "size": size, "virtual_size": size * 8, "checksum": checksum,
        "os_hash_algo": "sha512", "os_hash_value": sha, "os_hidden": false,
        "owner": owner, "protected": false, "tags": [], "created_at": now, "updated_at": now,
        "self": format!("/v2/images/{id}"), "file": format!("/v2/images/{id}/file"),
        "schema": "/v2/schemas/image",
    });
    for (k, v) in props {
        d[*k] = json!(v);
    }
    match d {
        Value::Object(m) => m,
        _ => Doc::new(),
    }
}

fn matches(img: &Doc, q: &[(String, String)]) -> bool {
    q.iter().all(|(k, v)| match k.as_str() {
        "limit" | "marker" | "sort" | "sort_key" | "sort_dir" => true,
        "id" => match v.strip_prefix("in:") {
            Some(list) => list.split(',').any(|i| i == field(img, "id")),
            None => field(img, "id") == v,
        },
        "name" => match v.strip_prefix("in:") {
            Some(list) => list
                .split(',')
                .any(|n| n.trim_matches('"') == field(img, "name")),
            None => field(img, "name") == v,
        },
        "tag" => img
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(v))),
        "visibility" if v == "all" => true,
        "member_status" | "os_hidden" => true,
        key => match img.get(key) {
            Some(Value::String(s)) => s == v,
            Some(other) => v.parse::<Value>().ok().as_ref() == Some(other),
            None => false,
        },
    })
}

async fn list(State(app): State<AppState>, Query(q): Query<Vec<(String, String)>>) -> ApiResult {
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let limit = match get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(SVC, "limit param must be an integer"))?
            .min(1000),
        None => PAGE,
    };
    let mut imgs: Vec<Doc> = app.store.read(|st| {
        st.images
            .iter()
            .filter(|i| matches(i, &q))
            .cloned()
            .collect()
    });
    // Glance's default order: created_at desc, then id desc.
    imgs.reverse();
    let start = match get("marker") {
        Some(m) => imgs
            .iter()
            .position(|i| field(i, "id") == m)
            .map(|p| p + 1)
            .ok_or_else(|| ApiError::bad_request(SVC, format!("marker {m} could not be found.")))?,
        None => 0,
    };
    let page: Vec<Doc> = imgs.iter().skip(start).take(limit).cloned().collect();
    let keep: String = q
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| format!("{k}={v}&"))
        .collect();
    let mut body = json!({"images": page, "schema": "/v2/schemas/images",
                          "first": format!("/v2/images{}", if keep.is_empty() { String::new() } else { format!("?{}", keep.trim_end_matches('&')) })});
    if start + page.len() < imgs.len()
        && let Some(last) = page.last()
    {
        body["next"] = json!(format!("/v2/images?{keep}marker={}", field(last, "id")));
    }
    Ok(axum::Json(body).into_response())
}

async fn show(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let img = app
        .store
        .read(|st| st.images.iter().find(|i| field(i, "id") == id).cloned());
    let img =
        img.ok_or_else(|| ApiError::not_found(SVC, format!("No image found with ID {id}")))?;
    Ok(axum::Json(img).into_response())
}

fn image_schema() -> Value {
    let s = |t: &str| json!({"type": t});
    json!({"name": "image", "additionalProperties": {"type": "string"}, "links": [], "properties": {
        "id": s("string"), "name": {"type": ["null", "string"]}, "status": s("string"),
        "visibility": s("string"), "protected": s("boolean"), "os_hidden": s("boolean"),
        "checksum": {"type": ["null", "string"]}, "owner": {"type": ["null", "string"]},
        "size": {"type": ["null", "integer"]}, "virtual_size": {"type": ["null", "integer"]},
        "min_ram": s("integer"), "min_disk": s("integer"), "container_format": {"type": ["null", "string"]},
        "disk_format": {"type": ["null", "string"]}, "created_at": s("string"), "updated_at": s("string"),
        "tags": {"type": "array", "items": s("string")}, "self": s("string"), "file": s("string"),
        "schema": s("string"), "os_hash_algo": {"type": ["null", "string"]}, "os_hash_value": {"type": ["null", "string"]},
    }})
}

async fn schema_image() -> Response {
    axum::Json(image_schema()).into_response()
}

async fn schema_images() -> Response {
    axum::Json(json!({"name": "images", "links": [], "properties": {
        "images": {"type": "array", "items": image_schema()},
        "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}}}))
    .into_response()
}
