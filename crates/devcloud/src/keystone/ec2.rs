//! EC2 credentials (`OS-EC2`) and the token exchange S3 clients go through
//! (`/v3/s3tokens`), as Keystone (Zed) serves them.
//!
//! An S3 client signs with an access/secret pair it got from `openstack ec2 credentials
//! create`; Swift's s3api builds the string to sign, s3token posts it here with the access
//! key and the signature, and Keystone answers with a token body for the credential's user
//! and project, which Swift's keystoneauth then authorizes like a native Swift token.
//! Keystone stores the pair as a `credential` of type `ec2` (id: SHA-256 of the access), so
//! `/v3/credentials` lists them too.
//!
//! Rules, as Keystone's default policy has them for a user without the admin role (devcloud
//! has none): a user lists, creates, shows and deletes only their own EC2 credentials (403
//! otherwise); the project only has to exist (Keystone does not check the user's role on it
//! at creation; s3tokens does, with 401 "User not valid for project."); an access key that
//! is not there answers 401 "EC2 access key not found.", not 404.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{Duration, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::ec2sig::check_s3;
use super::{ID, TOKEN_LIFETIME_HOURS, caller, str_at, unauthorized};
use crate::error::{ApiError, ApiResult};
use crate::server::{AppState, parse_body};
use crate::state::{Ec2Cred, Token, new_hex_id};

/// How long after its timestamp a signed request is accepted (Keystone's
/// `[credential] auth_ttl`, 15 minutes).
const AUTH_TTL_MINUTES: i64 = 15;

fn forbidden(action: &str) -> ApiError {
    ApiError::new(
        ID,
        StatusCode::FORBIDDEN,
        format!("You are not authorized to perform the requested action: identity:{action}."),
    )
}

/// The caller must be the user of the path (Keystone's `user_id:%(target...user_id)s`).
fn own_user(app: &AppState, headers: &HeaderMap, user_id: &str, action: &str) -> ApiResult<()> {
    if caller(app, headers)? != user_id {
        return Err(forbidden(action));
    }
    if !app.store.read(|s| s.users.iter().any(|u| u.id == user_id)) {
        return Err(ApiError::not_found(
            ID,
            format!("Could not find user: {user_id}."),
        ));
    }
    Ok(())
}

fn cred_doc(base: &str, c: &Ec2Cred) -> Value {
    json!({
        "user_id": c.user_id, "tenant_id": c.project_id, "access": c.access,
        "secret": c.secret, "trust_id": c.trust_id,
        "links": {"self": format!("{base}/identity/v3/users/{}/credentials/OS-EC2/{}",
                                  c.user_id, c.access)},
    })
}

pub async fn list_ec2(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    own_user(&app, &headers, &user_id, "ec2_list_credentials")?;
    let list: Vec<Value> = app.store.read(|s| {
        s.ec2_creds
            .iter()
            .filter(|c| c.user_id == user_id)
            .map(|c| cred_doc(&app.base_url, c))
            .collect()
    });
    let url = format!(
        "{}/identity/v3/users/{user_id}/credentials/OS-EC2",
        app.base_url
    );
    Ok(axum::Json(json!({"credentials": list,
        "links": {"self": url, "previous": null, "next": null}}))
    .into_response())
}

pub async fn create_ec2(
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    own_user(&app, &headers, &user_id, "ec2_create_credential")?;
    let body = parse_body(ID, &body)?;
    let tenant = body.get("tenant_id").and_then(Value::as_str);
    let cred = app.store.mutate(|s| {
        let project = tenant.filter(|t| s.projects.iter().any(|p| &p.id == t));
        let Some(project) = project else {
            let shown = tenant.unwrap_or("None");
            return Err(ApiError::not_found(
                ID,
                format!("Could not find project: {shown}."),
            ));
        };
        let cred = Ec2Cred {
            access: new_hex_id(),
            secret: new_hex_id(),
            user_id: user_id.clone(),
            project_id: project.to_string(),
            trust_id: None,
        };
        s.ec2_creds.push(cred.clone());
        Ok(cred)
    })?;
    let body = json!({"credential": cred_doc(&app.base_url, &cred)});
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

fn not_found_key() -> ApiError {
    ApiError::new(ID, StatusCode::UNAUTHORIZED, "EC2 access key not found.")
}

pub async fn show_ec2(
    State(app): State<AppState>,
    Path((user_id, access)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    own_user(&app, &headers, &user_id, "ec2_get_credential")?;
    let c = app.store.read(|s| {
        s.ec2_creds
            .iter()
            .find(|c| c.access == access && c.user_id == user_id)
            .cloned()
    });
    let c = c.ok_or_else(not_found_key)?;
    Ok(axum::Json(json!({"credential": cred_doc(&app.base_url, &c)})).into_response())
}

pub async fn delete_ec2(
    State(app): State<AppState>,
    Path((user_id, access)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    own_user(&app, &headers, &user_id, "ec2_delete_credential")?;
    app.store.mutate(|s| {
        let before = s.ec2_creds.len();
        s.ec2_creds
            .retain(|c| !(c.access == access && c.user_id == user_id));
        if s.ec2_creds.len() == before {
            return Err(not_found_key());
        }
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The credential as `/v3/credentials` shows it: the pair is in a JSON-string blob.
fn v3_doc(base: &str, c: &Ec2Cred) -> Value {
    let blob = json!({"access": c.access, "secret": c.secret, "trust_id": c.trust_id});
    let id = c.id();
    json!({
        "id": id, "type": "ec2", "user_id": c.user_id, "project_id": c.project_id,
        "blob": blob.to_string(),
        "links": {"self": format!("{base}/identity/v3/credentials/{id}")},
    })
}

/// `GET /v3/credentials`: the caller's own credentials (Keystone filters out those a
/// non-admin may not see), with its `user_id` and `type` filters.
pub async fn list_credentials(
    State(app): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let me = caller(&app, &headers)?;
    let list: Vec<Value> = app.store.read(|s| {
        s.ec2_creds
            .iter()
            .filter(|c| c.user_id == me)
            .filter(|c| q.get("user_id").is_none_or(|u| *u == c.user_id))
            .filter(|_| q.get("type").is_none_or(|t| t == "ec2"))
            .map(|c| v3_doc(&app.base_url, c))
            .collect()
    });
    let url = format!("{}/identity/v3/credentials", app.base_url);
    Ok(axum::Json(json!({"credentials": list,
        "links": {"self": url, "previous": null, "next": null}}))
    .into_response())
}

/// `GET /v3/credentials/{id}`: one of the caller's own.
pub async fn show_credential(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let me = caller(&app, &headers)?;
    let c = app
        .store
        .read(|s| s.ec2_creds.iter().find(|c| c.id() == id).cloned());
    match c {
        Some(c) if c.user_id == me => {
            Ok(axum::Json(json!({"credential": v3_doc(&app.base_url, &c)})).into_response())
        }
        Some(_) => Err(forbidden("get_credential")),
        None => Err(ApiError::not_found(
            ID,
            format!("Could not find credential: {id}."),
        )),
    }
}

/// Parses the signed request's timestamp: ISO 8601 in its extended (`Timestamp` of V2
/// query auth) or basic (`X-Amz-Date`, `20130524T000000Z`) form.
fn parse_timestamp(text: &str) -> Option<chrono::DateTime<Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let bare = text.trim_end_matches('Z');
    ["%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(bare, f).ok())
        .map(|t| t.and_utc())
}

/// `POST /v3/s3tokens` (no token needed: s3token calls it with the client's signature).
/// 200 with a token body for the credential's user and project, or 401.
pub async fn s3tokens(State(app): State<AppState>, body: Bytes) -> ApiResult {
    let body = parse_body(ID, &body)?;
    if body.as_object().is_none_or(|o| o.is_empty()) {
        return Err(ApiError::bad_request(
            ID,
            "request must include a request body",
        ));
    }
    let creds = ["credentials", "credential", "ec2Credentials"]
        .iter()
        .find_map(|k| {
            body.get(k)
                .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        })
        .cloned()
        .unwrap_or_else(|| json!({}));
    let deny = |msg: &str| unauthorized(&app, msg);
    let access = str_at(&creds, &["access"]).ok_or_else(|| deny("EC2 Signature not supplied"))?;
    let cred = app
        .store
        .read(|s| s.ec2_creds.iter().find(|c| c.access == access).cloned())
        .ok_or_else(|| deny("EC2 access key not found."))?;
    let token_b64 = str_at(&creds, &["token"]).unwrap_or("");
    let string_to_sign = base64::engine::general_purpose::URL_SAFE
        .decode(token_b64)
        .map_err(|_| deny("Invalid EC2 signature."))?;
    let signature = str_at(&creds, &["signature"]).unwrap_or("");
    check_s3(&string_to_sign, signature, &cred.secret).map_err(|e| deny(e.message()))?;
    let stamp = str_at(&creds, &["params", "Timestamp"])
        .or_else(|| str_at(&creds, &["headers", "X-Amz-Date"]))
        .or_else(|| str_at(&creds, &["params", "X-Amz-Date"]));
    if let Some(stamp) = stamp {
        let t = parse_timestamp(stamp).ok_or_else(|| {
            deny(&format!(
                "Credential timestamp is invalid: Unable to parse date string '{stamp}'"
            ))
        })?;
        if Utc::now() > t + Duration::minutes(AUTH_TTL_MINUTES) {
            return Err(deny("Credential is expired"));
        }
    }
    let tok = app.store.mutate(|s| {
        let member = s
            .users
            .iter()
            .any(|u| u.id == cred.user_id && u.project_id == cred.project_id);
        if !s.projects.iter().any(|p| p.id == cred.project_id) || !member {
            return Err(deny("User not valid for project."));
        }
        let now = Utc::now();
        let tok = Token {
            user_id: cred.user_id.clone(),
            project_id: Some(cred.project_id.clone()),
            methods: vec!["ec2credential".into()],
            app_cred_id: None,
            issued_at: now,
            expires_at: now + Duration::hours(TOKEN_LIFETIME_HOURS),
            audit_id: new_hex_id()[..22].to_string(),
        };
        s.tokens.retain(|_, t| t.expires_at > now);
        s.tokens
            .insert(format!("dc{}{}", new_hex_id(), new_hex_id()), tok.clone());
        Ok(tok)
    })?;
    // Keystone renders the token body only: no X-Subject-Token header on this answer.
    let body = app.store.read(|s| super::token_body(&app, s, &tok, true));
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Keystone answers GET on the token exchanges with 405.
pub async fn s3tokens_get() -> Response {
    ApiError::new(
        ID,
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_both_iso_forms() {
        let t = parse_timestamp("20130524T000000Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2013-05-24T00:00:00+00:00");
        assert_eq!(parse_timestamp("2013-05-24T00:00:00Z"), Some(t));
        assert_eq!(parse_timestamp("2013-05-24T00:00:00.000Z"), Some(t));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
