//! Keystone v3 authentication and the service catalog.
//!
//! One token serves the whole run: [`Session::token`] hands out the cached token and
//! re-authenticates when less than two minutes of life remain (keystoneauth's
//! `MIN_TOKEN_LIFE_SECONDS = 120`) or after a service answered 401 to it
//! ([`Session::invalidate`]). Concurrent callers share one re-authentication.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::config::{AuthType, CloudConfig, Secret};
use super::error::{CloudError, Result};
use super::http::{Request, Transport};

/// A token and what came with it.
#[derive(Debug)]
pub struct Token {
    pub value: Secret,
    pub expires_at: DateTime<Utc>,
    pub project_id: Option<String>,
    /// The user the token was issued to: EC2 credentials live under `/v3/users/{id}`.
    pub user_id: Option<String>,
    pub catalog: Vec<CatalogService>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CatalogService {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CatalogEndpoint {
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

/// Service types as `os-service-types` knows them, current name first.
pub fn service_type_aliases(service: &str) -> &'static [&'static str] {
    match service {
        "compute" => &["compute"],
        "network" => &["network"],
        "image" => &["image"],
        "identity" => &["identity"],
        "block-storage" | "volume" => &["block-storage", "volumev3", "volume", "block-store"],
        _ => &[],
    }
}

/// The catalog types to look for: the known aliases, else the type as given (a catalog
/// may carry any type: "s3", "object-store", "key-manager", ...).
fn catalog_types(service: &str) -> Vec<&str> {
    match service_type_aliases(service) {
        [] => vec![service],
        known => known.to_vec(),
    }
}

impl Token {
    /// The endpoint URL for `service` on `interface` in `region`; a catalog without the
    /// service is an error that lists what it has.
    pub fn endpoint(&self, service: &str, interface: &str, region: Option<&str>) -> Result<String> {
        if let Some(url) = self.find_endpoint(service, interface, region)? {
            return Ok(url);
        }
        let types: Vec<&str> = self
            .catalog
            .iter()
            .map(|s| s.service_type.as_str())
            .collect();
        Err(CloudError::Auth(format!(
            "the service catalog has no '{service}' service (it lists: {}); this cloud cannot be used for that",
            if types.is_empty() {
                "nothing".to_string()
            } else {
                types.join(", ")
            }
        )))
    }

    /// Like [`Token::endpoint`], but `Ok(None)` when the catalog has no such service, for
    /// optional services (object storage, S3) whose absence the caller handles. A service
    /// that is there but not on `interface` in `region` is still an error: that is a
    /// setting to fix, not a missing service.
    pub fn find_endpoint(
        &self,
        service: &str,
        interface: &str,
        region: Option<&str>,
    ) -> Result<Option<String>> {
        for alias in catalog_types(service) {
            let Some(svc) = self.catalog.iter().find(|s| s.service_type == alias) else {
                continue;
            };
            let found = svc.endpoints.iter().find(|e| {
                e.interface == interface
                    && region.is_none_or(|r| {
                        e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r)
                    })
            });
            if let Some(e) = found {
                let url = e
                    .url
                    .replace("$(project_id)s", self.project_id.as_deref().unwrap_or(""))
                    .replace("$(tenant_id)s", self.project_id.as_deref().unwrap_or(""))
                    .replace("%(project_id)s", self.project_id.as_deref().unwrap_or(""))
                    .replace("%(tenant_id)s", self.project_id.as_deref().unwrap_or(""));
                return Ok(Some(url.trim_end_matches('/').to_string()));
            }
            let regions: Vec<&str> = svc
                .endpoints
                .iter()
                .filter(|e| e.interface == interface)
                .filter_map(|e| e.region_id.as_deref().or(e.region.as_deref()))
                .collect();
            return Err(CloudError::Auth(format!(
                "the service catalog has no {interface} '{service}' endpoint{}; regions offering it: {}; set region_name/OS_REGION_NAME or interface/OS_INTERFACE",
                region
                    .map(|r| format!(" in region '{r}'"))
                    .unwrap_or_default(),
                if regions.is_empty() {
                    "none".to_string()
                } else {
                    regions.join(", ")
                }
            )));
        }
        Ok(None)
    }

    fn fresh(&self) -> bool {
        self.expires_at - Utc::now() > chrono::Duration::seconds(120)
    }
}

/// Authenticates and keeps the current token.
pub struct Session {
    cfg: CloudConfig,
    current: Mutex<Option<Arc<Token>>>,
}

impl Session {
    pub fn new(cfg: CloudConfig) -> Session {
        Session {
            cfg,
            current: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &CloudConfig {
        &self.cfg
    }

    /// A token with at least two minutes of life left.
    pub async fn token(&self, http: &Transport) -> Result<Arc<Token>> {
        let mut cur = self.current.lock().await;
        if let Some(t) = cur.as_ref().filter(|t| t.fresh()) {
            return Ok(t.clone());
        }
        let t = Arc::new(authenticate(&self.cfg, http).await?);
        *cur = Some(t.clone());
        Ok(t)
    }

    /// Drops `stale` (a service rejected it) unless someone already replaced it.
    pub async fn invalidate(&self, stale: &Arc<Token>) {
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *cur = None;
        }
    }
}

/// The `/v3` URL: as given when it ends in `/v3`, else from the version document at the
/// root (keystoneauth's discovery), else the root plus `/v3`.
async fn identity_v3_url(cfg: &CloudConfig, http: &Transport) -> Result<String> {
    let root = cfg.auth.auth_url.trim_end_matches('/').to_string();
    if root.ends_with("/v3") {
        return Ok(root);
    }
    let resp = http
        .send(&Request::new("identity", Method::GET, &root), None)
        .await
        .map_err(|e| unreachable_auth(cfg, e))?;
    if resp.status.is_success() || resp.status.as_u16() == 300 {
        let doc: Value = resp.json().unwrap_or(Value::Null);
        let versions = doc
            .pointer("/versions/values")
            .or_else(|| doc.get("versions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| doc.get("version").cloned().into_iter().collect());
        for v in versions {
            let id = v.get("id").and_then(Value::as_str).unwrap_or("");
            if !id.starts_with("v3") {
                continue;
            }
            let href = v
                .get("links")
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter()
                        .find(|l| l.get("rel").and_then(Value::as_str) == Some("self"))
                })
                .and_then(|l| l.get("href"))
                .and_then(Value::as_str);
            if let Some(h) = href {
                return Ok(h.trim_end_matches('/').to_string());
            }
        }
    }
    Ok(format!("{root}/v3"))
}

fn unreachable_auth(cfg: &CloudConfig, e: CloudError) -> CloudError {
    match e {
        CloudError::Unreachable { detail, .. } if !super::error::tls_hint(&detail).is_empty() => {
            CloudError::Auth(format!(
                "cannot reach the identity service at {} ({detail}); if cloud '{}' uses a private CA, set cacert (OS_CACERT) to its PEM file",
                cfg.auth.auth_url, cfg.name
            ))
        }
        CloudError::Unreachable { detail, .. } => CloudError::Auth(format!(
            "cannot reach the identity service at {} ({detail}); check auth_url/OS_AUTH_URL of cloud '{}'",
            cfg.auth.auth_url, cfg.name
        )),
        other => other,
    }
}

/// The JSON body of `POST /v3/auth/tokens` for the configured auth type.
pub fn auth_body(cfg: &CloudConfig) -> Value {
    let a = &cfg.auth;
    let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
        (Some(id), _) => Some(json!({"id": id})),
        (None, Some(name)) => Some(json!({"name": name})),
        _ => None,
    };
    let user = || {
        let mut u = serde_json::Map::new();
        if let Some(id) = &a.user_id {
            u.insert("id".into(), json!(id));
        } else if let Some(name) = &a.username {
            u.insert("name".into(), json!(name));
            if let Some(d) = domain(&a.user_domain_id, &a.user_domain_name) {
                u.insert("domain".into(), d);
            }
        }
        u
    };
    let identity = match cfg.auth_type {
        AuthType::Password => {
            let mut u = user();
            let pw = a.password.as_ref().map(Secret::expose).unwrap_or("");
            u.insert("password".into(), json!(pw));
            json!({"methods": ["password"], "password": {"user": u}})
        }
        AuthType::ApplicationCredential => {
            let secret = a
                .application_credential_secret
                .as_ref()
                .map(Secret::expose)
                .unwrap_or("");
            let mut c = serde_json::Map::new();
            if let Some(id) = &a.application_credential_id {
                c.insert("id".into(), json!(id));
            } else {
                c.insert("name".into(), json!(a.application_credential_name));
                c.insert("user".into(), Value::Object(user()));
            }
            c.insert("secret".into(), json!(secret));
            // Keystone rejects a scope on application-credential tokens.
            return json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": c}}});
        }
        AuthType::Token => {
            let t = a.token.as_ref().map(Secret::expose).unwrap_or("");
            json!({"methods": ["token"], "token": {"id": t}})
        }
    };
    // keystoneauth precedence: domain scope > project id > project name.
    let scope = if let Some(d) = domain(&a.domain_id, &a.domain_name) {
        Some(json!({"domain": d}))
    } else if let Some(id) = &a.project_id {
        Some(json!({"project": {"id": id}}))
    } else {
        a.project_name.as_ref().map(|name| {
            let mut p = json!({"name": name});
            if let Some(d) = domain(&a.project_domain_id, &a.project_domain_name) {
                p["domain"] = d;
            }
            json!({"project": p})
        })
    };
    match scope {
        Some(s) => json!({"auth": {"identity": identity, "scope": s}}),
        None => json!({"auth": {"identity": identity}}),
    }
}

#[derive(Deserialize)]
struct TokenDoc {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    #[serde(default)]
    project: Option<IdOnly>,
    #[serde(default)]
    user: Option<IdOnly>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// `POST /v3/auth/tokens`; errors name the cloud and what to check.
pub async fn authenticate(cfg: &CloudConfig, http: &Transport) -> Result<Token> {
    let base = identity_v3_url(cfg, http).await?;
    let url = format!("{base}/auth/tokens");
    let mut req = Request::new("identity", Method::POST, &url).json(auth_body(cfg));
    // Issuing a token twice is harmless, so a failed attempt may be repeated.
    req.retry_safe = true;
    if cfg.auth_type == AuthType::Token
        && let Some(t) = &cfg.auth.token
        && let Ok(mut v) = reqwest::header::HeaderValue::from_str(t.expose())
    {
        v.set_sensitive(true);
        req.headers
            .push((reqwest::header::HeaderName::from_static("x-auth-token"), v));
    }
    let resp = http
        .send(&req, None)
        .await
        .map_err(|e| unreachable_auth(cfg, e))?;
    let status = resp.status.as_u16();
    if status == 404 {
        return Err(CloudError::Auth(format!(
            "{url} answered 404: auth_url '{}' of cloud '{}' is not a Keystone v3 endpoint; fix auth_url/OS_AUTH_URL",
            cfg.auth.auth_url, cfg.name
        )));
    }
    if status == 401 {
        let msg = super::error::service_message(status, &resp.body);
        return Err(CloudError::Auth(format!(
            "authentication to cloud '{}' failed: {msg}; check the credentials in {}",
            cfg.name, cfg.source
        )));
    }
    let resp = resp.into_result()?;
    let value = resp
        .header("x-subject-token")
        .ok_or_else(|| CloudError::Decode {
            service: "identity".into(),
            url: url.clone(),
            detail: "no X-Subject-Token header in the token response".into(),
        })?
        .to_string();
    let doc: TokenDoc = resp.json()?;
    let expires_at = DateTime::parse_from_rfc3339(&doc.token.expires_at)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| CloudError::Decode {
            service: "identity".into(),
            url,
            detail: format!("bad expires_at '{}': {e}", doc.token.expires_at),
        })?;
    Ok(Token {
        value: Secret::new(value),
        expires_at,
        project_id: doc.token.project.map(|p| p.id),
        user_id: doc.token.user.map(|u| u.id),
        catalog: doc.token.catalog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthParams;

    fn cfg(auth_type: AuthType, auth: AuthParams) -> CloudConfig {
        CloudConfig {
            name: "t".into(),
            source: "test".into(),
            auth_type,
            auth,
            region_name: None,
            interface: "public".into(),
            cacert: None,
            cert: None,
            key: None,
            verify: true,
            compute_api_version: None,
        }
    }

    #[test]
    fn password_body_by_names() {
        let c = cfg(
            AuthType::Password,
            AuthParams {
                username: Some("demo".into()),
                password: Some(Secret::new("pw")),
                user_domain_name: Some("Default".into()),
                project_name: Some("p".into()),
                project_domain_id: Some("default".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            auth_body(&c),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "pw"}}},
                             "scope": {"project": {"name": "p", "domain": {"id": "default"}}}}})
        );
    }

    #[test]
    fn project_id_wins_and_user_id_needs_no_domain() {
        let c = cfg(
            AuthType::Password,
            AuthParams {
                user_id: Some("u1".into()),
                username: Some("ignored".into()),
                password: Some(Secret::new("pw")),
                project_id: Some("p1".into()),
                project_name: Some("ignored".into()),
                ..Default::default()
            },
        );
        let b = auth_body(&c);
        assert_eq!(
            b["auth"]["identity"]["password"]["user"],
            json!({"id": "u1", "password": "pw"})
        );
        assert_eq!(b["auth"]["scope"], json!({"project": {"id": "p1"}}));
    }

    #[test]
    fn app_credential_has_no_scope() {
        let c = cfg(
            AuthType::ApplicationCredential,
            AuthParams {
                application_credential_id: Some("ac".into()),
                application_credential_secret: Some(Secret::new("s")),
                project_name: Some("p".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            auth_body(&c),
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac", "secret": "s"}}}})
        );
    }

    fn token(catalog: Value) -> Token {
        Token {
            value: Secret::new("x"),
            expires_at: Utc::now(),
            project_id: Some("P".into()),
            user_id: Some("U".into()),
            catalog: serde_json::from_value(catalog).unwrap(),
        }
    }

    #[test]
    fn tokens_are_renewed_two_minutes_before_expiry() {
        let mut t = token(json!([]));
        t.expires_at = Utc::now() + chrono::Duration::seconds(100);
        assert!(!t.fresh());
        t.expires_at = Utc::now() + chrono::Duration::seconds(300);
        assert!(t.fresh());
    }

    #[test]
    fn catalog_selection_by_type_interface_region_and_alias() {
        let t = token(json!([
            {"type": "compute", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "https://c1/v2.1/"},
                {"interface": "internal", "region_id": "R1", "url": "https://c1-int/v2.1"},
                {"interface": "public", "region_id": "R2", "url": "https://c2/v2.1"}]},
            {"type": "volumev3", "endpoints": [
                {"interface": "public", "region": "R1", "url": "https://v/v3/$(project_id)s"}]}
        ]));
        assert_eq!(
            t.endpoint("compute", "public", Some("R2")).unwrap(),
            "https://c2/v2.1"
        );
        assert_eq!(
            t.endpoint("compute", "internal", None).unwrap(),
            "https://c1-int/v2.1"
        );
        assert_eq!(
            t.endpoint("compute", "public", None).unwrap(),
            "https://c1/v2.1"
        );
        assert_eq!(
            t.endpoint("block-storage", "public", Some("R1")).unwrap(),
            "https://v/v3/P"
        );
        let e = t
            .endpoint("compute", "public", Some("R9"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("in region 'R9'; regions offering it: R1, R2"),
            "{e}"
        );
        let e = t
            .endpoint("network", "public", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no 'network' service (it lists: compute, volumev3)"),
            "{e}"
        );
    }

    #[test]
    fn optional_services_of_any_type_are_found_or_none() {
        let t = token(json!([
            {"type": "s3", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://s3:8080/"}]},
            {"type": "object-store", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://sw:8080/v1/AUTH_%(project_id)s"}]}
        ]));
        assert_eq!(
            t.find_endpoint("s3", "public", Some("R1"))
                .unwrap()
                .as_deref(),
            Some("http://s3:8080")
        );
        assert_eq!(
            t.find_endpoint("object-store", "public", None)
                .unwrap()
                .as_deref(),
            Some("http://sw:8080/v1/AUTH_P")
        );
        assert_eq!(
            t.find_endpoint("key-manager", "public", None).unwrap(),
            None
        );
        // There, but not where the configuration points: a setting to fix, not absence.
        let e = t
            .find_endpoint("s3", "internal", Some("R1"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no internal 's3' endpoint in region 'R1'; regions offering it: none"),
            "{e}"
        );
        assert!(t.endpoint("s3", "public", None).is_ok());
    }
}
