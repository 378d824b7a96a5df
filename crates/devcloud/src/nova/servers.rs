//! Server listing, show, update and delete.

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::{Value, json};

use super::view::{addresses, server_brief, server_doc};
use super::{Microversion, SVC, bad_request, not_found, paginate};
use crate::error::ApiResult;
use crate::lifecycle::machine_spec;
use crate::server::{AppState, Ctx, parse_body};
use crate::state::{Server, State as Cloud};

pub use super::create::create;

type Q = Query<Vec<(String, String)>>;

/// The caller's server, or Nova's 404.
pub fn find(st: &Cloud, ctx: &Ctx, id: &str) -> ApiResult<Server> {
    st.servers
        .iter()
        .find(|s| s.id == id && s.project_id == ctx.project_id)
        .cloned()
        .ok_or_else(|| not_found(format!("Instance {id} could not be found.")))
}

/// Whether a server passes the non-admin list filters Nova honours (others are ignored).
fn matches(st: &Cloud, srv: &Server, q: &[(String, String)]) -> ApiResult<bool> {
    for (k, v) in q {
        let tags_of = |v: &str| v.split(',').map(str::to_string).collect::<Vec<_>>();
        let ok = match k.as_str() {
            "name" => regex::Regex::new(v)
                .map_err(|_| bad_request(format!("Invalid regex for name: {v}")))?
                .is_match(&srv.name),
            "status" => srv.status().eq_ignore_ascii_case(v),
            "image" => srv.image_id == *v,
            "flavor" => srv.flavor_id == *v,
            "key_name" => srv.key_name.as_deref() == Some(v.as_str()),
            "availability_zone" => srv.availability_zone == *v,
            "reservation_id" => srv.reservation_id == *v,
            "vm_state" => srv.vm_state == *v,
            "ip" => {
                let re = regex::Regex::new(v)
                    .map_err(|_| bad_request(format!("Invalid regex for ip: {v}")))?;
                addresses(st, srv)
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter_map(Value::as_array)
                    .flatten()
                    .any(|a| {
                        a.get("addr")
                            .and_then(Value::as_str)
                            .is_some_and(|x| re.is_match(x))
                    })
            }
            "tags" => tags_of(v).iter().all(|t| srv.tags.contains(t)),
            "tags-any" => tags_of(v).iter().any(|t| srv.tags.contains(t)),
            "not-tags" => !tags_of(v).iter().all(|t| srv.tags.contains(t)),
            "not-tags-any" => !tags_of(v).iter().any(|t| srv.tags.contains(t)),
            _ => true,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn listing(
    app: &AppState,
    ctx: &Ctx,
    mv: Microversion,
    q: &[(String, String)],
    full: bool,
) -> ApiResult {
    let base = app.base_url.clone();
    let body = app.store.read(|st| -> ApiResult<Value> {
        let mut mine = Vec::new();
        // Newest first, as Nova sorts by created_at desc.
        for srv in st
            .servers
            .iter()
            .rev()
            .filter(|s| s.project_id == ctx.project_id)
        {
            if matches(st, srv, q)? {
                mine.push(srv);
            }
        }
        let kind = if full { "servers/detail" } else { "servers" };
        let (page, next) = paginate(
            mine,
            |s| s.id.clone(),
            q,
            |m, l| {
                let mut extra: String = q
                    .iter()
                    .filter(|(k, _)| k != "limit" && k != "marker")
                    .map(|(k, v)| format!("&{k}={v}"))
                    .collect();
                extra.insert_str(0, &format!("?limit={l}&marker={m}"));
                format!("{base}/compute/v2.1/{kind}{extra}")
            },
        )?;
        let docs: Vec<Value> = page
            .iter()
            .map(|s| {
                if full {
                    // Nova shows `server_groups` (2.71) on GET /servers/{id} only.
                    let mut d = server_doc(&base, st, s, mv);
                    if let Some(o) = d.as_object_mut() {
                        o.remove("server_groups");
                    }
                    d
                } else {
                    server_brief(&base, s)
                }
            })
            .collect();
        let mut body = json!({"servers": docs});
        if let Some(n) = next {
            body["servers_links"] = n;
        }
        Ok(body)
    })?;
    Ok(axum::Json(body).into_response())
}

pub async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Query(q): Q,
) -> ApiResult {
    listing(&app, &ctx, mv, &q, false)
}

pub async fn detail(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Query(q): Q,
) -> ApiResult {
    listing(&app, &ctx, mv, &q, true)
}

pub async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult {
    let doc = app
        .store
        .read(|st| find(st, &ctx, &id).map(|s| server_doc(&app.base_url, st, &s, mv)))?;
    Ok(axum::Json(json!({"server": doc})).into_response())
}

/// `PUT /servers/{id}`: rename / describe.
pub async fn update(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let req = body
        .get("server")
        .cloned()
        .ok_or_else(|| bad_request("'server' is a required property"))?;
    let doc = app.store.mutate(|st| {
        find(st, &ctx, &id)?;
        let Some(srv) = st.servers.iter_mut().find(|s| s.id == id) else {
            return Err(not_found(format!("Instance {id} could not be found.")));
        };
        if let Some(n) = req.get("name").and_then(Value::as_str) {
            srv.name = n.to_string();
        }
        if let (Some(d), true) = (req.get("description"), mv.at_least(19)) {
            srv.description = d.as_str().map(String::from);
        }
        srv.updated = Utc::now();
        let srv = srv.clone();
        Ok(server_doc(&app.base_url, st, &srv, mv))
    })?;
    Ok(axum::Json(json!({"server": doc})).into_response())
}

/// `DELETE /servers/{id}`: like Nova, the server stays listed (task_state `deleting`) while
/// the backend releases the machine; then the record goes (GET answers 404), its ports are
/// deleted, floating IPs disassociated and volumes detached. A client that waits until the
/// server is no longer listed (as `destroy` does) thus knows the machine is gone. A second
/// DELETE meanwhile is accepted and changes nothing.
pub async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> ApiResult {
    let spec = app.store.mutate(|st| {
        let srv = find(st, &ctx, &id)?;
        if srv.task_state.as_deref() == Some("deleting") {
            return Ok(None);
        }
        let spec = machine_spec(st, &srv);
        if let Some(s) = st.servers.iter_mut().find(|s| s.id == id) {
            s.task_state = Some("deleting".into());
        }
        Ok(Some(spec))
    })?;
    let Some(spec) = spec else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    tokio::spawn(crate::lifecycle::complete_delete(app.clone(), spec));
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn ips(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> ApiResult {
    let mut a = app
        .store
        .read(|st| find(st, &ctx, &id).map(|s| addresses(st, &s)))?;
    // `/ips` shows only `addr` and `version`, unlike the server's own `addresses`.
    for list in a.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        for ip in list.as_array_mut().into_iter().flatten() {
            if let Some(o) = ip.as_object_mut() {
                o.retain(|k, _| k == "addr" || k == "version");
            }
        }
    }
    Ok(axum::Json(json!({"addresses": a})).into_response())
}

pub async fn metadata(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> ApiResult {
    let srv = app.store.read(|st| find(st, &ctx, &id))?;
    Ok(axum::Json(json!({"metadata": srv.metadata})).into_response())
}

pub async fn tags(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> ApiResult {
    let srv = app.store.read(|st| find(st, &ctx, &id))?;
    Ok(axum::Json(json!({"tags": srv.tags})).into_response())
}
