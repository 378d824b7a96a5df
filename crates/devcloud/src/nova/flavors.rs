//! Flavors (read-only: devcloud's flavors come from the seed).

use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Microversion, links, not_found, paginate};
use crate::error::ApiResult;
use crate::server::{AppState, Ctx};
use crate::state::Flavor;

type Q = Query<Vec<(String, String)>>;

/// A flavor as `GET /flavors/detail` shows it at microversion `mv`.
pub fn flavor_doc(base: &str, project: &str, f: &Flavor, mv: Microversion) -> Value {
    let mut v = json!({
        "id": f.id, "name": f.name, "ram": f.ram, "vcpus": f.vcpus, "disk": f.disk,
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
        // Before 2.75 Nova shows "no swap" as an empty string.
        "swap": if f.swap == 0 && !mv.at_least(75) { json!("") } else { json!(f.swap) },
        "OS-FLV-DISABLED:disabled": false,
        "os-flavor-access:is_public": true,
        "rxtx_factor": 1.0,
        "links": links(base, project, "flavors", &f.id),
    });
    if mv.at_least(55) {
        v["description"] = Value::Null;
    }
    if mv.at_least(61) {
        v["extra_specs"] = json!(f.extra_specs);
    }
    v
}

fn listing(
    app: &AppState,
    ctx: &Ctx,
    mv: Microversion,
    q: &[(String, String)],
    full: bool,
) -> ApiResult<Response> {
    let flavors: Vec<Flavor> = app.store.read(|s| s.flavors.clone());
    let base = app.base_url.clone();
    let kind = if full { "flavors/detail" } else { "flavors" };
    let (page, next) = paginate(
        flavors,
        |f| f.id.clone(),
        q,
        |m, l| format!("{base}/compute/v2.1/{kind}?limit={l}&marker={m}"),
    )?;
    let docs: Vec<Value> = page
        .iter()
        .map(|f| {
            if full {
                flavor_doc(&app.base_url, &ctx.project_id, f, mv)
            } else {
                let mut v = json!({"id": f.id, "name": f.name,
                                   "links": links(&app.base_url, &ctx.project_id, "flavors", &f.id)});
                if mv.at_least(55) {
                    v["description"] = Value::Null;
                }
                v
            }
        })
        .collect();
    let mut body = json!({"flavors": docs});
    if let Some(n) = next {
        body["flavors_links"] = n;
    }
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

fn find(app: &AppState, id: &str) -> ApiResult<Flavor> {
    app.store
        .read(|s| s.flavors.iter().find(|f| f.id == id).cloned())
        .ok_or_else(|| not_found(format!("Flavor {id} could not be found.")))
}

pub async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(id): Path<String>,
) -> ApiResult {
    let f = find(&app, &id)?;
    Ok(
        axum::Json(json!({"flavor": flavor_doc(&app.base_url, &ctx.project_id, &f, mv)}))
            .into_response(),
    )
}

pub async fn extra_specs(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let f = find(&app, &id)?;
    Ok(axum::Json(json!({"extra_specs": f.extra_specs})).into_response())
}
