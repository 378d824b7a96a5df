//! Keystone beyond authentication: EC2 credentials and catalog lookups of optional
//! services.
//!
//! Why EC2 credentials: S3 clients (Hadoop's S3A, boto, the aws CLI) sign requests with an
//! access key and secret, not a Keystone token. Swift's `s3api` + `s3token` middleware and
//! Ceph RGW accept Keystone's EC2 credentials of a user in a project, so a cluster gets
//! object storage of the user's own project without new secrets to manage. They are
//! long-lived and bound to one project; [`Cloud::ensure_ec2_credential`] reuses the
//! project's first one instead of piling up a new one per run, as `openstack ec2
//! credentials create` would.
//!
//! The API: `GET|POST /v3/users/{user_id}/credentials/OS-EC2` (Keystone's `OS-EC2`
//! extension; the body of a create is `{"tenant_id": project}`, Keystone answers 201 with
//! `{"credential": {"access", "secret", "tenant_id", "user_id", "trust_id", "links"}}`).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::Secret;
use super::error::{CloudError, Result};
use super::http::{Request, Response, create_idempotently};
use super::{Cloud, q};

/// One EC2 credential. Debug shows the secret as `<redacted>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ec2Credential {
    /// The access key (S3 clients: `aws_access_key_id`, S3A: `fs.s3a.access.key`).
    pub access: String,
    pub secret: Secret,
    /// The project the credential acts in (Keystone's `tenant_id`).
    pub project_id: String,
    pub user_id: String,
}

/// Keystone's shape of a credential. `tenant_id` is null only for rows made outside this
/// API; such a credential belongs to no project and is never picked.
#[derive(Deserialize)]
struct RawCredential {
    access: String,
    secret: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

impl From<RawCredential> for Ec2Credential {
    fn from(r: RawCredential) -> Ec2Credential {
        Ec2Credential {
            access: r.access,
            secret: Secret::new(r.secret),
            project_id: r.tenant_id.unwrap_or_default(),
            user_id: r.user_id.unwrap_or_default(),
        }
    }
}

/// Decodes `{"credentials": [...]}` of a list.
pub fn parse_credentials(resp: &Response) -> Result<Vec<Ec2Credential>> {
    let raw: Vec<RawCredential> = resp.json_at("credentials")?;
    Ok(raw.into_iter().map(Ec2Credential::from).collect())
}

/// Decodes `{"credential": {...}}` of a create.
pub fn parse_credential(resp: &Response) -> Result<Ec2Credential> {
    let raw: RawCredential = resp.json_at("credential")?;
    Ok(raw.into())
}

/// The credential [`Cloud::ensure_ec2_credential`] reuses: the first of `project`, in
/// Keystone's order, so repeated runs keep choosing the same one.
pub fn pick_for_project(creds: Vec<Ec2Credential>, project: &str) -> Option<Ec2Credential> {
    creds.into_iter().find(|c| c.project_id == project)
}

/// The v3 API under a catalog identity URL, which may be unversioned
/// (`http://h/identity`), versioned (`http://h:5000/v3`) or, on old clouds, v2.0.
pub fn identity_v3(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/v3") {
        return url.to_string();
    }
    format!("{}/v3", url.strip_suffix("/v2.0").unwrap_or(url))
}

impl Cloud {
    /// The authenticated user's EC2 credentials, of all their projects
    /// (`GET /v3/users/{user_id}/credentials/OS-EC2`).
    pub async fn ec2_credentials(&self) -> Result<Vec<Ec2Credential>> {
        let (user, _) = self.user_and_project().await?;
        let resp = self
            .identity_call(
                Method::GET,
                &format!("/users/{}/credentials/OS-EC2", q(&user)),
                None,
            )
            .await?;
        parse_credentials(&resp)
    }

    /// Creates an EC2 credential for the token's user in the token's project
    /// (`POST /v3/users/{user_id}/credentials/OS-EC2 {"tenant_id": project}`). Never
    /// retried after it may have reached Keystone: a second create makes a second
    /// credential. [`Cloud::ensure_ec2_credential`] is the safe way.
    pub async fn create_ec2_credential(&self) -> Result<Ec2Credential> {
        let (user, project) = self.user_and_project().await?;
        let resp = self
            .identity_call(
                Method::POST,
                &format!("/users/{}/credentials/OS-EC2", q(&user)),
                Some(json!({ "tenant_id": project })),
            )
            .await?;
        parse_credential(&resp)
    }

    /// The first EC2 credential of the token's project, else a new one; the bool is true
    /// when it was created. After a transient failure of the create it looks again before
    /// creating, so a create that did succeed is found instead of duplicated.
    pub async fn ensure_ec2_credential(&self) -> Result<(Ec2Credential, bool)> {
        let (_, project) = self.user_and_project().await?;
        let project = &project;
        create_idempotently(
            self.retry_policy(),
            || async move {
                let mine = pick_for_project(self.ec2_credentials().await?, project);
                Ok(mine.map(|c| (c, false)))
            },
            || async { Ok((self.create_ec2_credential().await?, true)) },
        )
        .await
    }

    /// The endpoint URL of catalog service type `service_type` ("s3", "object-store",
    /// ...) for the configured interface and region, project id filled in; `None` when
    /// the catalog has no such service (many clouds offer no object storage). A service
    /// that exists but not for that interface/region is an error naming the settings.
    pub async fn service_endpoint(&self, service_type: &str) -> Result<Option<String>> {
        let tok = self.session.token(&self.http).await?;
        let cfg = self.config();
        tok.find_endpoint(service_type, &cfg.interface, cfg.region_name.as_deref())
    }

    /// The region of the endpoint [`Cloud::service_endpoint`] picks for the first of
    /// `service_types` the catalog has: the configured region when one is set, else the
    /// endpoint's own. S3 signatures name it, and Swift's s3api refuses any other.
    pub async fn service_region(&self, service_types: &[&str]) -> Result<Option<String>> {
        let cfg = self.config();
        if let Some(r) = &cfg.region_name {
            return Ok(Some(r.clone()));
        }
        let tok = self.session.token(&self.http).await?;
        Ok(service_types.iter().find_map(|t| {
            tok.catalog
                .iter()
                .find(|s| s.service_type == *t)?
                .endpoints
                .iter()
                .find(|e| e.interface == cfg.interface)
                .and_then(|e| e.region_id.clone().or_else(|| e.region.clone()))
        }))
    }

    /// The token's user and project; EC2 credentials need both.
    async fn user_and_project(&self) -> Result<(String, String)> {
        let tok = self.session.token(&self.http).await?;
        let cfg = self.config();
        let user = tok.user_id.clone().ok_or_else(|| {
            CloudError::Auth(format!(
                "the token of cloud '{}' names no user, so it has no EC2 credentials",
                cfg.name
            ))
        })?;
        let project = tok.project_id.clone().ok_or_else(|| {
            CloudError::Auth(format!(
                "EC2 credentials belong to a project, but the token of cloud '{}' is not scoped to one; set project_name/OS_PROJECT_NAME (or project_id) in {}",
                cfg.name, cfg.source
            ))
        })?;
        Ok((user, project))
    }

    /// One call to Keystone's v3 API at the catalog's identity endpoint (as the
    /// `openstack` CLI does); error statuses become [`CloudError::Api`] of "identity".
    async fn identity_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Response> {
        let tok = self.session.token(&self.http).await?;
        let cfg = self.config();
        let base =
            identity_v3(&tok.endpoint("identity", &cfg.interface, cfg.region_name.as_deref())?);
        let mut req = Request::new("identity", method, format!("{base}{path}"));
        req.body = body;
        match self.send_authenticated(req).await {
            Ok(resp) => resp.into_result(),
            Err(e) => Err(self.interface_hint(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn resp(body: Value) -> Response {
        Response {
            service: "identity".into(),
            url: "http://k/v3/users/u/credentials/OS-EC2".into(),
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    fn cred(access: &str, project: &str) -> Ec2Credential {
        Ec2Credential {
            access: access.into(),
            secret: Secret::new(format!("s-{access}")),
            project_id: project.into(),
            user_id: "u".into(),
        }
    }

    #[test]
    fn parses_keystones_list_and_create_bodies() {
        // Keystone Zed's shapes (keystone/api/users.py _convert_v3_to_ec2_credential).
        let list = resp(json!({"credentials": [
            {"user_id": "u", "tenant_id": "p1", "access": "a1", "secret": "s1", "trust_id": null,
             "links": {"self": "http://k/v3/users/u/credentials/OS-EC2/a1"}},
            {"user_id": "u", "tenant_id": null, "access": "a2", "secret": "s2", "trust_id": null}],
            "links": {"self": "http://k/v3/users/u/credentials/OS-EC2", "previous": null, "next": null}}));
        let got = parse_credentials(&list).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].access, "a1");
        assert_eq!(got[0].secret.expose(), "s1");
        assert_eq!(got[0].project_id, "p1");
        assert_eq!(got[0].user_id, "u");
        assert_eq!(got[1].project_id, "");
        let one = resp(
            json!({"credential": {"user_id": "u", "tenant_id": "p1", "access": "a3",
            "secret": "s3", "trust_id": null, "links": {}}}),
        );
        assert_eq!(parse_credential(&one).unwrap().access, "a3");
    }

    #[test]
    fn a_body_without_the_key_is_one_clear_error() {
        let e = parse_credentials(&resp(json!({"error": "x"})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "identity: unexpected response from http://k/v3/users/u/credentials/OS-EC2: no 'credentials' in the response"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = cred("AKEY", "p");
        let d = format!("{c:?}");
        assert!(d.contains("AKEY") && d.contains("<redacted>"), "{d}");
        assert!(!d.contains("s-AKEY"), "{d}");
    }

    #[test]
    fn the_first_credential_of_the_project_is_reused() {
        let creds = vec![cred("a1", "other"), cred("a2", "p"), cred("a3", "p")];
        assert_eq!(pick_for_project(creds.clone(), "p").unwrap().access, "a2");
        assert!(pick_for_project(creds, "none").is_none());
    }

    #[test]
    fn identity_urls_are_made_v3() {
        assert_eq!(identity_v3("http://h/identity"), "http://h/identity/v3");
        assert_eq!(identity_v3("http://h:5000/v3/"), "http://h:5000/v3");
        assert_eq!(identity_v3("http://h:5000/v2.0"), "http://h:5000/v3");
        assert_eq!(identity_v3("http://h:5000"), "http://h:5000/v3");
    }
}
