//! Server metadata (`/servers/{id}/metadata`) and tags (`/servers/{id}/tags`, 2.26+).

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::servers::find;
use super::{SVC, bad_request, not_found};
use crate::error::ApiResult;
use crate::server::{AppState, Ctx, parse_body};
use crate::state::Server;

/// Nova's limits: 128 metadata items (`maxServerMeta`), 50 tags of up to 60 characters.
const MAX_META: usize = 128;
const MAX_TAGS: usize = 50;

/// Applies `f` to the caller's server and saves.
fn edit<R>(
    app: &AppState,
    ctx: &Ctx,
    id: &str,
    f: impl FnOnce(&mut Server) -> ApiResult<R>,
) -> ApiResult<R> {
    app.store.mutate(|st| {
        find(st, ctx, id)?;
        let srv = st
            .servers
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| not_found(format!("Instance {id} could not be found.")))?;
        let out = f(srv)?;
        srv.updated = chrono::Utc::now();
        Ok(out)
    })
}

fn parse_meta(body: &[u8], key: &str) -> ApiResult<IndexMap<String, String>> {
    let v = parse_body(SVC, body)?;
    serde_json::from_value(v.get(key).cloned().unwrap_or(Value::Null)).map_err(|_| {
        bad_request(format!(
            "Invalid input for field/attribute {key}: expected a string-to-string map."
        ))
    })
}

/// `PUT /servers/{id}/metadata` replaces, `POST` merges.
pub async fn set_metadata(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let new = parse_meta(&body, "metadata")?;
    let meta = edit(&app, &ctx, &id, |s| {
        s.metadata = new;
        check_meta(s)
    })?;
    Ok(axum::Json(json!({"metadata": meta})).into_response())
}

pub async fn merge_metadata(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let new = parse_meta(&body, "metadata")?;
    let meta = edit(&app, &ctx, &id, |s| {
        s.metadata.extend(new);
        check_meta(s)
    })?;
    Ok(axum::Json(json!({"metadata": meta})).into_response())
}

fn check_meta(s: &Server) -> ApiResult<IndexMap<String, String>> {
    if s.metadata.len() > MAX_META {
        return Err(crate::error::ApiError::new(
            SVC,
            StatusCode::FORBIDDEN,
            "Quota exceeded for metadata_items: Requested more than allowed 128.",
        ));
    }
    Ok(s.metadata.clone())
}

pub async fn delete_metadata_item(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult {
    edit(&app, &ctx, &id, |s| {
        s.metadata
            .shift_remove(&key)
            .map(|_| ())
            .ok_or_else(|| not_found("Metadata item was not found"))
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /servers/{id}/tags` replaces all tags.
pub async fn set_tags(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(SVC, &body)?;
    let tags: Vec<String> = serde_json::from_value(v.get("tags").cloned().unwrap_or(Value::Null))
        .map_err(|_| bad_request("Invalid input for field/attribute tags."))?;
    if tags.len() > MAX_TAGS {
        return Err(bad_request(format!(
            "Invalid input for field/attribute tags. Value: {tags:?}. is too long"
        )));
    }
    let tags = edit(&app, &ctx, &id, |s| {
        s.tags = tags;
        Ok(s.tags.clone())
    })?;
    Ok(axum::Json(json!({"tags": tags})).into_response())
}

/// `PUT /servers/{id}/tags/{tag}`: 201 when added, 204 when already there.
pub async fn add_tag(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    if tag.is_empty() || tag.len() > 60 || tag.contains(',') || tag.contains('/') {
        return Err(bad_request(format!("Tag '{tag}' is invalid.")));
    }
    let added = edit(&app, &ctx, &id, |s| {
        if s.tags.contains(&tag) {
            return Ok(false);
        }
        if s.tags.len() >= MAX_TAGS {
            return Err(bad_request(format!(
                "The number of tags exceeded the per-server limit {MAX_TAGS}"
            )));
        }
        s.tags.push(tag.clone());
        Ok(true)
    })?;
    Ok(if added {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response())
}

/// `GET /servers/{id}/tags/{tag}`: 204 if present, 404 otherwise.
pub async fn has_tag(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    let srv = app.store.read(|st| find(st, &ctx, &id))?;
    if srv.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(format!(
            "Tag {tag} could not be found for server {id}."
        )))
    }
}

pub async fn delete_tag(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult {
    edit(&app, &ctx, &id, |s| {
        let before = s.tags.len();
        s.tags.retain(|t| *t != tag);
        if s.tags.len() == before {
            return Err(not_found(format!(
                "Tag {tag} could not be found for server {id}."
            )));
        }
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
