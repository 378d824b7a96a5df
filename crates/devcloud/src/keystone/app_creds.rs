//! Application credentials: created by a user for their token's project, then used to
//! authenticate without the password (`application_credential` method, no scope).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{ID, caller, header_token, str_at};
use crate::error::{ApiError, ApiResult};
use crate::server::{AppState, parse_body};
use crate::state::{AppCred, new_hex_id};

fn own_user(app: &AppState, headers: &HeaderMap, user_id: &str) -> ApiResult<()> {
    if caller(app, headers)? != user_id {
        return Err(ApiError::new(
            ID,
            StatusCode::FORBIDDEN,
            "You are not authorized to perform the requested action: identity:list_application_credentials.",
        ));
    }
    Ok(())
}

fn app_cred_doc(base: &str, c: &AppCred, secret: bool) -> Value {
    let mut v = json!({
        "id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
        "project_id": c.project_id, "expires_at": c.expires_at, "unrestricted": c.unrestricted,
        "roles": [{"id": "9fe2ff9ee4384b1894a90878d3e92bab", "name": "member", "domain_id": null}],
        "access_rules": [],
        "links": {"self": format!("{base}/identity/v3/users/{}/application_credentials/{}", c.user_id, c.id)},
    });
    if secret {
        v["secret"] = json!(c.secret);
    }
    v
}

pub async fn list_app_creds(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    own_user(&app, &headers, &user_id)?;
    let list: Vec<Value> = app.store.read(|s| {
        s.app_creds
            .iter()
            .filter(|c| c.user_id == user_id)
            .map(|c| app_cred_doc(&app.base_url, c, false))
            .collect()
    });
    Ok(axum::Json(json!({"application_credentials": list,
        "links": {"self": format!("{}/identity/v3/users/{user_id}/application_credentials", app.base_url),
                  "previous": null, "next": null}})).into_response())
}

pub async fn create_app_cred(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    own_user(&app, &headers, &user_id)?;
    let token = header_token(&headers, "x-auth-token");
    let body = parse_body(ID, &body)?;
    let req = body.get("application_credential").ok_or_else(|| {
        ApiError::bad_request(
            ID,
            "Expecting to find application_credential in request body.",
        )
    })?;
    let name = str_at(req, &["name"])
        .ok_or_else(|| ApiError::bad_request(ID, "'name' is a required property"))?
        .to_string();
    let cred = app.store.mutate(|s| {
        let project_id = s
            .tokens
            .get(&token)
            .and_then(|t| t.project_id.clone())
            .ok_or_else(|| {
                ApiError::bad_request(ID, "Application credentials need a project-scoped token.")
            })?;
        if s.app_creds
            .iter()
            .any(|c| c.user_id == user_id && c.name == name)
        {
            return Err(ApiError::conflict(
                ID,
                "Conflict occurred attempting to store application_credential - Duplicate entry.",
            ));
        }
        let cred = AppCred {
            id: new_hex_id(),
            name: name.clone(),
            secret: str_at(req, &["secret"])
                .map(String::from)
                .unwrap_or_else(new_hex_id),
            description: str_at(req, &["description"]).map(String::from),
            user_id: user_id.clone(),
            project_id,
            expires_at: str_at(req, &["expires_at"]).map(String::from),
            unrestricted: req
                .get("unrestricted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        s.app_creds.push(cred.clone());
        Ok(cred)
    })?;
    let body = json!({"application_credential": app_cred_doc(&app.base_url, &cred, true)});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

pub async fn show_app_cred(
    State(app): State<AppState>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    own_user(&app, &headers, &user_id)?;
    let c = app.store.read(|s| {
        s.app_creds
            .iter()
            .find(|c| c.id == id && c.user_id == user_id)
            .cloned()
    });
    let c = c.ok_or_else(|| {
        ApiError::not_found(ID, format!("Could not find application credential: {id}."))
    })?;
    Ok(
        axum::Json(json!({"application_credential": app_cred_doc(&app.base_url, &c, false)}))
            .into_response(),
    )
}

pub async fn delete_app_cred(
    State(app): State<AppState>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    own_user(&app, &headers, &user_id)?;
    app.store.mutate(|s| {
        let before = s.app_creds.len();
        s.app_creds
            .retain(|c| !(c.id == id && c.user_id == user_id));
        if s.app_creds.len() == before {
            return Err(ApiError::not_found(
                ID,
                format!("Could not find application credential: {id}."),
            ));
        }
        s.tokens
            .retain(|_, t| t.app_cred_id.as_deref() != Some(id.as_str()));
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
