//! Keystone v3: version discovery, token issue/validate/revoke (password, application
//! credential and token methods), application credentials, EC2 credentials and the
//! `s3tokens` exchange Swift's s3token middleware uses ([`ec2`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

mod app_creds;
mod ec2;
pub mod ec2sig;

use app_creds::{create_app_cred, delete_app_cred, list_app_creds, show_app_cred};

use super::error::{ApiError, ApiResult, Service};
use super::server::{AppState, Ctx, parse_body};
use super::state::{AppCred, State as Cloud, Token, User, new_hex_id};

const ID: Service = Service::Identity;
pub(crate) const TOKEN_LIFETIME_HOURS: i64 = 12;
pub const REGION: &str = "RegionOne";
pub const DOMAIN_ID: &str = "default";
pub const DOMAIN_NAME: &str = "Default";

/// Served both at the root and under `/identity` (DevStack's layout).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .route(
            "/v3/auth/tokens",
            get(validate_token).post(issue_token).delete(revoke_token),
        )
        .route(
            "/v3/users/{user_id}/application_credentials",
            get(list_app_creds).post(create_app_cred),
        )
        .route(
            "/v3/users/{user_id}/application_credentials/{id}",
            get(show_app_cred).delete(delete_app_cred),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2",
            get(ec2::list_ec2).post(ec2::create_ec2),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2/{access}",
            get(ec2::show_ec2).delete(ec2::delete_ec2),
        )
        .route("/v3/credentials", get(ec2::list_credentials))
        .route("/v3/credentials/{id}", get(ec2::show_credential))
        .route("/v3/s3tokens", get(ec2::s3tokens_get).post(ec2::s3tokens))
}

fn version_doc(base: &str) -> Value {
    json!({
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{"base": "application/json",
                          "type": "application/vnd.openstack.identity-v3+json"}]
    })
}

async fn versions(State(app): State<AppState>) -> Response {
    let body = json!({"versions": {"values": [version_doc(&app.base_url)]}});
    (StatusCode::MULTIPLE_CHOICES, axum::Json(body)).into_response()
}

async fn version(State(app): State<AppState>) -> Response {
    axum::Json(json!({"version": version_doc(&app.base_url)})).into_response()
}

fn unauthorized(app: &AppState, msg: &str) -> ApiError {
    ApiError::unauthorized(ID, msg, &app.base_url)
}

/// The request context of a valid, unexpired, project-scoped token.
pub fn validate(app: &AppState, token: &str) -> Option<Ctx> {
    app.store.read(|s| {
        let t = s.tokens.get(token)?;
        if t.expires_at <= Utc::now() {
            return None;
        }
        Some(Ctx {
            user_id: t.user_id.clone(),
            project_id: t.project_id.clone()?,
        })
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Checks that a `{"id"|"name"}` domain reference names the one domain devcloud has.
fn domain_ok(d: Option<&Value>) -> bool {
    match d {
        None => true,
        Some(d) => {
            str_at(d, &["id"]).is_none_or(|i| i == DOMAIN_ID)
                && str_at(d, &["name"]).is_none_or(|n| n == DOMAIN_NAME)
        }
    }
}

/// Who authenticated, and how.
struct Authn {
    user_id: String,
    methods: Vec<String>,
    app_cred: Option<AppCred>,
    /// The project a token or application credential is bound to.
    bound_project: Option<String>,
}

fn authenticate(
    app: &AppState,
    s: &Cloud,
    identity: &Value,
    headers: &HeaderMap,
) -> ApiResult<Authn> {
    let bad = || unauthorized(app, "The request you have made requires authentication.");
    let methods: Vec<String> = identity
        .get("methods")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|m| m.as_str().map(String::from)).collect())
        .ok_or_else(|| {
            ApiError::bad_request(ID, "Expecting to find methods in identity. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")
        })?;
    let method = methods.first().cloned().unwrap_or_default();
    match method.as_str() {
        "password" => {
            let u = identity
                .get("password")
                .and_then(|p| p.get("user"))
                .ok_or_else(bad)?;
            let user = find_user(s, u).ok_or_else(bad)?;
            if str_at(u, &["password"]) != Some(user.password.as_str()) {
                return Err(bad());
            }
            Ok(Authn {
                user_id: user.id.clone(),
                methods,
                app_cred: None,
                bound_project: None,
            })
        }
        "application_credential" => {
            let c = identity.get("application_credential").ok_or_else(bad)?;
            let cred = if let Some(id) = str_at(c, &["id"]) {
                s.app_creds.iter().find(|a| a.id == id)
            } else {
                let user = c
                    .get("user")
                    .and_then(|u| find_user(s, u))
                    .ok_or_else(bad)?;
                let name = str_at(c, &["name"]).unwrap_or("");
                s.app_creds
                    .iter()
                    .find(|a| a.user_id == user.id && a.name == name)
            }
            .ok_or_else(bad)?;
            if str_at(c, &["secret"]) != Some(cred.secret.as_str()) {
                return Err(bad());
            }
            Ok(Authn {
                user_id: cred.user_id.clone(),
                methods,
                bound_project: Some(cred.project_id.clone()),
                app_cred: Some(cred.clone()),
            })
        }
        "token" => {
            let id = str_at(identity, &["token", "id"])
                .or_else(|| headers.get("x-auth-token").and_then(|v| v.to_str().ok()))
                .ok_or_else(bad)?;
            let t = s
                .tokens
                .get(id)
                .filter(|t| t.expires_at > Utc::now())
                .ok_or_else(bad)?;
            Ok(Authn {
                user_id: t.user_id.clone(),
                methods,
                app_cred: None,
                bound_project: t.project_id.clone(),
            })
        }
        other => Err(unauthorized(
            app,
            &format!("Unsupported authentication method: {other}"),
        )),
    }
}

fn find_user<'a>(s: &'a Cloud, u: &Value) -> Option<&'a User> {
    if let Some(id) = str_at(u, &["id"]) {
        return s.users.iter().find(|x| x.id == id);
    }
    let name = str_at(u, &["name"])?;
    if !domain_ok(u.get("domain")) {
        return None;
    }
    s.users.iter().find(|x| x.name == name)
}

/// Resolves the requested scope to a project id (`None`: unscoped).
fn scope_project(
    app: &AppState,
    s: &Cloud,
    body: &Value,
    authn: &Authn,
) -> ApiResult<Option<String>> {
    let scope = body.get("auth").and_then(|a| a.get("scope"));
    let Some(scope) = scope.filter(|v| v.is_object()) else {
        return Ok(authn.bound_project.clone());
    };
    if authn.app_cred.is_some() {
        return Err(unauthorized(
            app,
            "Application credentials cannot request a scope.",
        ));
    }
    let Some(p) = scope.get("project") else {
        return Err(unauthorized(
            app,
            "devcloud only supports project-scoped tokens.",
        ));
    };
    let project = if let Some(id) = str_at(p, &["id"]) {
        s.projects.iter().find(|x| x.id == id)
    } else if domain_ok(p.get("domain")) {
        let name = str_at(p, &["name"]).unwrap_or("");
        s.projects.iter().find(|x| x.name == name)
    } else {
        None
    };
    let project = project
        .ok_or_else(|| unauthorized(app, "The request you have made requires authentication."))?;
    let member = s
        .users
        .iter()
        .any(|u| u.id == authn.user_id && u.project_id == project.id);
    if !member {
        return Err(unauthorized(
            app,
            &format!(
                "User {} has no access to project {}",
                authn.user_id, project.id
            ),
        ));
    }
    Ok(Some(project.id.clone()))
}

async fn issue_token(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(ID, &body)?;
    let identity = body
        .get("auth")
        .and_then(|a| a.get("identity"))
        .ok_or_else(|| ApiError::bad_request(ID, "Expecting to find identity in auth. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."))?;
    let nocatalog = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("nocatalog")));
    let (id, tok) = app.store.mutate(|s| {
        let authn = authenticate(&app, s, identity, &headers)?;
        let project_id = scope_project(&app, s, &body, &authn)?;
        let now = Utc::now();
        s.tokens.retain(|_, t| t.expires_at > now);
        let tok = Token {
            user_id: authn.user_id,
            project_id,
            methods: authn.methods,
            app_cred_id: authn.app_cred.map(|a| a.id),
            issued_at: now,
            expires_at: now + Duration::hours(TOKEN_LIFETIME_HOURS),
            audit_id: new_hex_id()[..22].to_string(),
        };
        let id = format!("dc{}{}", new_hex_id(), new_hex_id());
        s.tokens.insert(id.clone(), tok.clone());
        Ok::<_, ApiError>((id, tok))
    })?;
    Ok(token_response(
        &app,
        StatusCode::CREATED,
        &id,
        &tok,
        !nocatalog,
    ))
}

fn token_response(
    app: &AppState,
    status: StatusCode,
    id: &str,
    t: &Token,
    catalog: bool,
) -> Response {
    let body = app.store.read(|s| token_body(app, s, t, catalog));
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

fn token_body(app: &AppState, s: &Cloud, t: &Token, with_catalog: bool) -> Value {
    let domain = json!({"id": DOMAIN_ID, "name": DOMAIN_NAME});
    let user_name = s
        .users
        .iter()
        .find(|u| u.id == t.user_id)
        .map(|u| u.name.as_str())
        .unwrap_or("");
    let mut tok = json!({
        "methods": t.methods,
        "audit_ids": [t.audit_id],
        "expires_at": t.expires_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "issued_at": t.issued_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "user": {"id": t.user_id, "name": user_name, "domain": domain, "password_expires_at": null},
    });
    if let Some(pid) = &t.project_id {
        let pname = s
            .projects
            .iter()
            .find(|p| &p.id == pid)
            .map(|p| p.name.as_str())
            .unwrap_or("");
        tok["project"] = json!({"id": pid, "name": pname, "domain": domain});
        tok["is_domain"] = json!(false);
        tok["roles"] = json!([{"id": "9fe2ff9ee4384b1894a90878d3e92bab", "name": "member"},
                              {"id": "2b8b5cd0d0e44c45b1c7d3b1a3b0e9e4", "name": "reader"}]);
        if with_catalog {
            tok["catalog"] = catalog(&app.base_url, pid, app.object_store_url.as_deref());
        }
    }
    if let Some(ac) = &t.app_cred_id
        && let Some(c) = s.app_creds.iter().find(|c| &c.id == ac)
    {
        tok["application_credential"] =
            json!({"id": c.id, "name": c.name, "restricted": !c.unrestricted});
    }
    json!({"token": tok})
}

/// The service catalog: every service on this listener, under its path prefix, with the
/// same URL for the public, internal and admin interfaces; with object storage, Swift's
/// proxy as `object-store` (`/v1/AUTH_<project>`, keystoneauth's reseller prefix) and as
/// `s3` (its root), as DevStack registers them.
pub fn catalog(base: &str, project_id: &str, object_store: Option<&str>) -> Value {
    let mut services = vec![
        ("identity", "keystone", format!("{base}/identity")),
        ("compute", "nova", format!("{base}/compute/v2.1")),
        ("network", "neutron", format!("{base}/network")),
        ("image", "glance", format!("{base}/image")),
        (
            "block-storage",
            "cinder",
            format!("{base}/volume/v3/{project_id}"),
        ),
        (
            "volumev3",
            "cinderv3",
            format!("{base}/volume/v3/{project_id}"),
        ),
    ];
    if let Some(swift) = object_store {
        services.push((
            "object-store",
            "swift",
            format!("{swift}/v1/AUTH_{project_id}"),
        ));
        services.push(("s3", "s3", swift.to_string()));
    }
    let entries: Vec<Value> = services
        .iter()
        .map(|(kind, name, url)| {
            let eps: Vec<Value> = ["public", "internal", "admin"]
                .iter()
                .map(|i| {
                    json!({"id": format!("{kind}-{i}"), "interface": i, "region": REGION,
                                "region_id": REGION, "url": url})
                })
                .collect();
            json!({"type": kind, "name": name, "id": format!("{kind}-svc"), "endpoints": eps})
        })
        .collect();
    Value::Array(entries)
}

fn header_token(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// `GET /v3/auth/tokens`: the caller (X-Auth-Token) inspects a token (X-Subject-Token).
async fn validate_token(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    caller(&app, &headers)?;
    let subject = header_token(&headers, "x-subject-token");
    let tok = app.store.read(|s| s.tokens.get(&subject).cloned());
    let tok = tok
        .filter(|t| t.expires_at > Utc::now())
        .ok_or_else(|| ApiError::not_found(ID, format!("Could not find token: {subject}.")))?;
    let catalog = !q.as_deref().unwrap_or("").contains("nocatalog");
    Ok(token_response(
        &app,
        StatusCode::OK,
        &subject,
        &tok,
        catalog,
    ))
}

async fn revoke_token(State(app): State<AppState>, headers: HeaderMap) -> ApiResult {
    caller(&app, &headers)?;
    let subject = header_token(&headers, "x-subject-token");
    app.store.mutate(|s| {
        s.tokens
            .shift_remove(&subject)
            .map(|_| ())
            .ok_or_else(|| ApiError::not_found(ID, format!("Could not find token: {subject}.")))
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The user of the request's own token (Keystone's own handlers check it themselves).
fn caller(app: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    let token = header_token(headers, "x-auth-token");
    app.store
        .read(|s| {
            s.tokens
                .get(&token)
                .filter(|t| t.expires_at > Utc::now())
                .map(|t| t.user_id.clone())
        })
        .ok_or_else(|| unauthorized(app, "The request you have made requires authentication."))
}
