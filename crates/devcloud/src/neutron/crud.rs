//! The list/show/delete behaviour all Neutron collections share, parameterized by a
//! [`Kind`] so each resource file only writes what is specific to it.

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{filter_list, not_found, project_fields, visible};
use crate::error::ApiError;
use crate::server::{AppState, Ctx};
use crate::state::{Doc, State as Cloud, s as field};

/// One Neutron collection.
pub struct Kind {
    pub singular: &'static str,
    pub plural: &'static str,
    /// Neutron's exception class for a missing item (`NetworkNotFound`, ...).
    pub not_found_type: &'static str,
    /// Neutron's message for a missing item.
    pub not_found_msg: fn(&str) -> String,
    pub docs: fn(&Cloud) -> &Vec<Doc>,
    pub docs_mut: fn(&mut Cloud) -> &mut Vec<Doc>,
}

impl Kind {
    pub fn missing(&self, id: &str) -> ApiError {
        not_found(self.not_found_type, (self.not_found_msg)(id))
    }

    /// A visible item by id.
    pub fn find(&self, st: &Cloud, ctx: &Ctx, id: &str) -> Result<Doc, ApiError> {
        (self.docs)(st)
            .iter()
            .find(|d| field(d, "id") == id && visible(d, &ctx.project_id))
            .cloned()
            .ok_or_else(|| self.missing(id))
    }

    /// The caller's own item by id, mutable.
    pub fn find_mut<'a>(
        &self,
        st: &'a mut Cloud,
        ctx: &Ctx,
        id: &str,
    ) -> Result<&'a mut Doc, ApiError> {
        (self.docs_mut)(st)
            .iter_mut()
            .find(|d| field(d, "id") == id && field(d, "project_id") == ctx.project_id)
            .ok_or_else(|| self.missing(id))
    }

    pub fn one(&self, d: Doc) -> Response {
        axum::Json(json!({ self.singular: d })).into_response()
    }

    pub fn created(&self, d: Doc) -> Response {
        (StatusCode::CREATED, axum::Json(json!({ self.singular: d }))).into_response()
    }
}

/// `GET /<collection>`; routes bind it to a kind: `get(|s, c, q| crud::list(&KIND, s, c, q))`.
pub async fn list(
    kind: &Kind,
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Q,
) -> Response {
    let docs: Vec<Doc> = app.store.read(|st| {
        (kind.docs)(st)
            .iter()
            .filter(|d| visible(d, &ctx.project_id))
            .cloned()
            .collect()
    });
    axum::Json(json!({ kind.plural: filter_list(docs, &q) })).into_response()
}

/// `GET /<collection>/{id}` (honours `fields=`).
pub async fn show(
    kind: &Kind,
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let d = app.store.read(|st| kind.find(st, &ctx, &id))?;
    let fields: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .collect();
    Ok(axum::Json(json!({ kind.singular: project_fields(d, &fields) })).into_response())
}

/// Deletes the caller's item after `check` (which may refuse, e.g. "in use").
pub fn delete(
    kind: &Kind,
    app: &AppState,
    ctx: &Ctx,
    id: &str,
    check: impl FnOnce(&mut Cloud, &Doc) -> Result<(), ApiError>,
) -> Result<Response, ApiError> {
    app.store.mutate(|st| {
        let d = kind.find_mut(st, ctx, id)?.clone();
        check(st, &d)?;
        (kind.docs_mut)(st).retain(|x| field(x, "id") != id);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

/// Query parameters, repeated keys kept.
pub type Q = Query<Vec<(String, String)>>;
