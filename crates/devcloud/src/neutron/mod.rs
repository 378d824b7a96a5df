//! Neutron v2.0: networks, subnets, ports, security groups and rules, floating IPs, quotas.
//!
//! Resources are stored as the JSON documents Neutron returns, so listing can filter on any
//! top-level attribute (`?router:external=True`, `?device_id=...`, repeated keys OR-ed) and
//! honour `fields=` generically, as Neutron does.

mod crud;
mod floatingips;
mod networks;
mod ports;
mod secgroups;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};

use super::error::{ApiError, Service};
use super::server::AppState;
use super::state::{Doc, new_id, s as field, ts};

pub use floatingips::{associate_floating_ip, syncing_floating};
pub use networks::{new_network, new_subnet};
pub use ports::{bind_port, create_server_port, release_server_ports};
pub use secgroups::{ensure_default_sg, find_security_group};

pub const SVC: Service = Service::Network;

pub fn router() -> Router<AppState> {
    let r = Router::new()
        .route("/extensions", get(extensions))
        .route("/quotas/{project_id}", get(quota))
        .route("/quotas/{project_id}/details", get(quota_details));
    let r = networks::routes(r);
    let r = ports::routes(r);
    let r = secgroups::routes(r);
    floatingips::routes(r)
}

pub fn version_routes() -> Router<AppState> {
    Router::new()
        .route("/network", get(versions))
        .route("/network/", get(versions))
}

async fn versions(State(app): State<AppState>) -> Response {
    axum::Json(json!({"versions": [{"id": "v2.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{}/network/v2.0/", app.base_url)}]}]}))
    .into_response()
}

async fn extensions() -> Response {
    let exts: Vec<Value> = [
        ("external-net", "Neutron external network"),
        ("router", "Neutron L3 Router"),
        ("security-group", "security-group"),
        ("quotas", "Quota management support"),
        (
            "standard-attr-tag",
            "Tag support for resources with standard attribute",
        ),
        ("standard-attr-description", "standard-attr-description"),
        ("standard-attr-revisions", "Resource revision numbers"),
        ("standard-attr-timestamp", "Resource timestamps"),
        ("port-security", "Port Security"),
        ("binding", "Port Binding"),
        ("stateful-security-group", "Stateful security group"),
    ]
    .iter()
    .map(|(alias, name)| {
        json!({"alias": alias, "name": name, "description": name,
                                "updated": "2023-01-01T00:00:00-00:00", "links": []})
    })
    .collect();
    axum::Json(json!({"extensions": exts})).into_response()
}

fn quota_limits(app: &AppState) -> Value {
    let q = &app.cfg.quotas;
    json!({"network": q.networks, "subnet": 100, "subnetpool": -1, "port": q.ports, "router": 10,
           "floatingip": q.floating_ips, "security_group": q.security_groups,
           "security_group_rule": q.security_group_rules, "rbac_policy": 10})
}

async fn quota(State(app): State<AppState>) -> Response {
    axum::Json(json!({"quota": quota_limits(&app)})).into_response()
}

/// Limits with the project's real usage, counted from the state.
async fn quota_details(State(app): State<AppState>, Path(project_id): Path<String>) -> Response {
    let limits = quota_limits(&app);
    let used = app.store.read(|st| {
        let count = |docs: &[Doc]| {
            docs.iter()
                .filter(|d| field(d, "project_id") == project_id)
                .count()
        };
        [
            ("network", count(&st.networks)),
            ("subnet", count(&st.subnets)),
            ("port", count(&st.ports)),
            ("floatingip", count(&st.floatingips)),
            ("security_group", count(&st.security_groups)),
            ("security_group_rule", count(&st.security_group_rules)),
        ]
    });
    let details: serde_json::Map<String, Value> = limits
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let n = used
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            (k.clone(), json!({"limit": v, "used": n, "reserved": 0}))
        })
        .collect();
    axum::Json(json!({"quota": details})).into_response()
}

/// Standard attributes every Neutron resource carries.
pub fn std_attrs(project_id: &str) -> Doc {
    let now = ts(Utc::now());
    let mut d = Doc::new();
    d.insert("id".into(), json!(new_id()));
    d.insert("project_id".into(), json!(project_id));
    d.insert("tenant_id".into(), json!(project_id));
    d.insert("description".into(), json!(""));
    d.insert("tags".into(), json!([]));
    d.insert("created_at".into(), json!(now));
    d.insert("updated_at".into(), json!(now));
    d.insert("revision_number".into(), json!(0));
    d
}

/// Records an update: bumps `revision_number` and `updated_at`.
pub fn touch(d: &mut Doc) {
    let rev = d
        .get("revision_number")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    d.insert("revision_number".into(), json!(rev + 1));
    d.insert("updated_at".into(), json!(ts(Utc::now())));
}

/// Whether a project sees a resource: its own, or shared/external networks.
pub fn visible(d: &Doc, project_id: &str) -> bool {
    field(d, "project_id") == project_id
        || d.get("shared") == Some(&json!(true))
        || d.get("router:external") == Some(&json!(true))
}

/// Does a stored attribute match a query value (Neutron compares string forms; booleans
/// accept `True`/`true`)?
fn value_matches(v: &Value, q: &str) -> bool {
    match v {
        Value::String(s) => s == q,
        Value::Bool(b) => q.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == q,
        Value::Null => q.is_empty() || q == "None",
        Value::Array(items) => items.iter().any(|i| value_matches(i, q)),
        Value::Object(_) => false,
    }
}

const NON_FILTERS: &[&str] = &[
    "fields",
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "page_reverse",
];

/// Neutron's list semantics: filter on attributes (repeated keys OR-ed, unknown keys
/// ignored), then keep only `fields=` if given.
pub fn filter_list(docs: Vec<Doc>, q: &[(String, String)]) -> Vec<Value> {
    let mut keys: Vec<&str> = q
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !NON_FILTERS.contains(k))
        .collect();
    keys.dedup();
    let fields: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .collect();
    docs.into_iter()
        .filter(|d| {
            keys.iter().all(|k| match d.get(*k) {
                None => true,
                Some(v) => q
                    .iter()
                    .filter(|(qk, _)| qk == k)
                    .any(|(_, qv)| value_matches(v, qv)),
            })
        })
        .map(|d| project_fields(d, &fields))
        .collect()
}

/// Keeps only the requested `fields` (all when none).
pub fn project_fields(d: Doc, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return Value::Object(d);
    }
    Value::Object(
        d.into_iter()
            .filter(|(k, _)| fields.contains(&k.as_str()))
            .collect(),
    )
}

pub fn not_found(kind: &'static str, msg: String) -> ApiError {
    ApiError::neutron(StatusCode::NOT_FOUND, kind, msg)
}

pub fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::neutron(StatusCode::BAD_REQUEST, "BadRequest", msg)
}

pub fn over_quota(resource: &str) -> ApiError {
    ApiError::neutron(
        StatusCode::CONFLICT,
        "OverQuota",
        format!("Quota exceeded for resources: ['{resource}']."),
    )
}

/// Checks a per-project count against a quota (negative: unlimited).
pub fn check_quota(
    docs: &[Doc],
    project_id: &str,
    limit: i64,
    resource: &str,
) -> Result<(), ApiError> {
    let used = docs
        .iter()
        .filter(|d| field(d, "project_id") == project_id)
        .count() as i64;
    if limit >= 0 && used >= limit {
        return Err(over_quota(resource));
    }
    Ok(())
}

/// The request body's inner object (`{"network": {...}}` → `{...}`), or 400.
pub fn body_object(body: &[u8], key: &str) -> Result<Doc, ApiError> {
    let v = super::server::parse_body(SVC, body)?;
    match v.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        _ => Err(bad_request(format!(
            "Resource body required: '{key}' is missing."
        ))),
    }
}

/// Copies the allowed updatable attributes from a request into a document.
pub fn apply_updates(d: &mut Doc, req: &Doc, allowed: &[&str]) -> Result<(), ApiError> {
    for (k, v) in req {
        if !allowed.contains(&k.as_str()) {
            return Err(bad_request(format!(
                "Cannot update read-only attribute {k}"
            )));
        }
        d.insert(k.clone(), v.clone());
    }
    touch(d);
    Ok(())
}
