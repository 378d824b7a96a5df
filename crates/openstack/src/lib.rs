//! The OpenStack API client (Keystone v3, Nova, Neutron, Glance, Cinder v3): typed, async,
//! with the retry and idempotency rules a cluster launcher needs. No cluster logic lives
//! here; `cluster` builds on [`Cloud`].
//!
//! Why hand-written on reqwest rather than the `openstack_sdk` crate (gtema/openstack,
//! evaluated at 0.22.8): it pulls ~260 crates and ~300k lines of generated endpoint code
//! (compute, network, identity, block-storage, ... crates; `cargo check` of it alone took
//! 2.5 min on this machine before any codegen), yet what we need is ~40 endpoints. Its
//! results are untyped `serde_json::Value`s (you bring your own structs anyway), it has no
//! retry/backoff policy or call counter to hook ours into, and its config loader reads the
//! process environment directly, so the clouds.yaml/OS_* precedence could not be unit
//! tested with explicit environments. reqwest 0.13 is already a dependency; auth, catalog
//! and clouds.yaml handling are a few hundred lines we control.
//!
//! Usage from cluster code:
//! ```ignore
//! let cfg = cloud::config::load_default(args.os_cloud.clone())?;   // clouds.yaml + OS_*
//! let cloud = cloud::Cloud::connect(&cfg).await?;                   // authenticates now
//! let image = cloud.find_image("ubuntu-22.04").await?;
//! let server = cloud.ensure_server(&spec).await?;                   // never duplicates
//! cloud.wait_for_servers(&ids, "ACTIVE", &filter, Wait::default()).await?;
//! ```
//! Every error renders as one sentence (`compute: HTTP 403 Quota exceeded ... (request
//! id req-...)`); `CloudError::status()` lets callers treat 404/409 specially.
//!
//! Layout: [`config`] (clouds.yaml, secure.yaml, OS_*), [`auth`] (tokens, catalog),
//! [`http`] (concurrency, retries, error mapping), [`error`], and one file per service:
//! [`compute`], [`network`], [`image`], [`volume`], [`identity`] (EC2 credentials,
//! catalog lookups), plus [`wait`] helpers.

pub mod auth;
pub mod compute;
pub mod config;
pub mod error;
pub mod http;
pub mod identity;
pub mod image;
pub mod network;
pub mod volume;
pub mod wait;

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::OnceCell;

pub use config::{AuthType, CloudConfig, LoadOptions, Secret};
pub use error::{CloudError, Result};
pub use http::{Request, Response, RetryPolicy, Transport, create_idempotently};
pub use identity::Ec2Credential;

/// The services we talk to; each knows its catalog type and API version suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Compute,
    Network,
    Image,
    Volume,
}

impl Service {
    pub fn catalog_type(self) -> &'static str {
        match self {
            Service::Compute => "compute",
            Service::Network => "network",
            Service::Image => "image",
            Service::Volume => "block-storage",
        }
    }

    /// Catalog URLs for network and image are unversioned; the API lives under a suffix.
    fn versioned(self, url: &str) -> String {
        let suffix = match self {
            Service::Network => "/v2.0",
            Service::Image => "/v2",
            Service::Compute | Service::Volume => return url.to_string(),
        };
        if url.ends_with(suffix) {
            url.to_string()
        } else {
            format!("{url}{suffix}")
        }
    }
}

/// The compute microversion we are written against: server tags at create (2.52),
/// required `networks` (2.37), embedded flavor (2.47), delete_on_termination on volume
/// attachments (2.79). Lower server maxima are used as they are.
pub const COMPUTE_MICROVERSION: (u32, u32) = (2, 79);

/// A connected cloud: one token, one HTTP client, endpoints resolved once.
pub struct Cloud {
    http: Transport,
    session: auth::Session,
    endpoints: Mutex<HashMap<Service, String>>,
    compute_version: OnceCell<Option<(u32, u32)>>,
}

impl Cloud {
    /// Authenticates (so bad credentials fail here, with a clear message) and returns
    /// the handle. `concurrency` bounds parallel API calls (openstacksdk has none; 10
    /// keeps a cloud's rate limiter calm).
    pub async fn connect(cfg: &CloudConfig) -> Result<Cloud> {
        Cloud::connect_with(cfg, 10, RetryPolicy::default()).await
    }

    pub async fn connect_with(
        cfg: &CloudConfig,
        concurrency: usize,
        retry: RetryPolicy,
    ) -> Result<Cloud> {
        let mut http = Transport::new(cfg, concurrency)?;
        http.retry = retry;
        let cloud = Cloud {
            http,
            session: auth::Session::new(cfg.clone()),
            endpoints: Mutex::new(HashMap::new()),
            compute_version: OnceCell::new(),
        };
        cloud.session.token(&cloud.http).await?;
        Ok(cloud)
    }

    pub fn config(&self) -> &CloudConfig {
        self.session.config()
    }

    /// API calls sent so far, every retry included (benchmarks compare this).
    pub fn api_calls(&self) -> u64 {
        self.http.calls()
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.http.retry
    }

    /// The project the token is scoped to.
    pub async fn project_id(&self) -> Result<Option<String>> {
        Ok(self.session.token(&self.http).await?.project_id.clone())
    }

    /// The versioned base URL of `service` ("https://nova/v2.1", "https://neutron/v2.0").
    pub async fn endpoint(&self, service: Service) -> Result<String> {
        if let Some(u) = self
            .endpoints
            .lock()
            .ok()
            .and_then(|m| m.get(&service).cloned())
        {
            return Ok(u);
        }
        let tok = self.session.token(&self.http).await?;
        let cfg = self.config();
        let url = tok.endpoint(
            service.catalog_type(),
            &cfg.interface,
            cfg.region_name.as_deref(),
        )?;
        let url = service.versioned(&url);
        if let Ok(mut m) = self.endpoints.lock() {
            m.insert(service, url.clone());
        }
        Ok(url)
    }

    /// The compute microversion in use: the configured pin, else
    /// `min(COMPUTE_MICROVERSION, server max)` from the version document; `None` when
    /// the server does not do microversions (plain 2.1).
    pub async fn compute_microversion(&self) -> Result<Option<(u32, u32)>> {
        self.compute_version
            .get_or_try_init(|| async {
                if let Some(pin) = &self.config().compute_api_version {
                    return Ok(parse_version(pin));
                }
                let url = self.endpoint(Service::Compute).await?;
                let mut max = self.compute_max_version(&url).await?;
                // Old catalogs append the project id ("/v2.1/<project>"); the version
                // document lives one level up.
                if max.is_none()
                    && let Some(project) = self.project_id().await?
                    && let Some(parent) = url.strip_suffix(&format!("/{project}"))
                {
                    max = self.compute_max_version(parent).await?;
                }
                Ok(max.map(|m| m.min(COMPUTE_MICROVERSION)))
            })
            .await
            .copied()
    }

    /// The `version` (maximum microversion) of Nova's version document at `url`.
    async fn compute_max_version(&self, url: &str) -> Result<Option<(u32, u32)>> {
        let resp = self
            .send_authenticated(Request::new("compute", Method::GET, url))
            .await?;
        let doc: Value = resp.json().unwrap_or(Value::Null);
        Ok(doc
            .pointer("/version/version")
            .and_then(Value::as_str)
            .and_then(parse_version))
    }

    /// Sends one request to `service`; `path` is relative to its endpoint (or a full URL,
    /// as pagination links are). Error statuses become [`CloudError::Api`].
    pub async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Response> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.endpoint(service).await?, path)
        };
        match self.raw(service, method, &url, body).await {
            Ok(resp) => resp.into_result(),
            Err(e) => Err(self.interface_hint(e)),
        }
    }

    /// A catalog's internal/admin URLs are often unreachable from outside the cloud: an
    /// unreachable endpoint of such an interface says so.
    fn interface_hint(&self, e: CloudError) -> CloudError {
        match e {
            CloudError::Unreachable {
                service,
                url,
                detail,
            } if self.config().interface != "public" => CloudError::Unreachable {
                detail: format!(
                    "{detail} (this is the '{}' endpoint from the service catalog; try interface: public / OS_INTERFACE=public)",
                    self.config().interface
                ),
                service,
                url,
            },
            e => e,
        }
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(&self, service: Service, path: &str) -> Result<T> {
        self.call(service, Method::GET, path, None).await?.json()
    }

    /// GET and decode the object under `key` (`{"server": {...}}`).
    pub async fn get_at<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        key: &str,
    ) -> Result<T> {
        self.call(service, Method::GET, path, None)
            .await?
            .json_at(key)
    }

    async fn raw(
        &self,
        service: Service,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Response> {
        let mut req = Request::new(service.catalog_type(), method, url);
        req.body = body;
        if service == Service::Compute
            && let Some((maj, min)) = self.compute_microversion().await?
            && let Ok(v) = HeaderValue::from_str(&format!("compute {maj}.{min}"))
        {
            req.headers
                .push((HeaderName::from_static("openstack-api-version"), v));
        }
        self.send_authenticated(req).await
    }

    /// Sends with the current token; on 401 authenticates again and retries once.
    async fn send_authenticated(&self, req: Request) -> Result<Response> {
        let tok = self.session.token(&self.http).await?;
        let resp = self.http.send(&req, Some(&tok.value)).await?;
        if resp.status.as_u16() != 401 {
            return Ok(resp);
        }
        // Expired or revoked token: authenticate again, once.
        self.session.invalidate(&tok).await;
        let tok = self.session.token(&self.http).await?;
        self.http.send(&req, Some(&tok.value)).await
    }

    /// Every item of a paginated collection, following `next` links (Nova/Neutron
    /// `<key>_links`, Glance `next`) until the last page.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>> {
        let base = self.endpoint(service).await?;
        let mut url = format!("{base}{path}");
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let resp = self.call(service, Method::GET, &url, None).await?;
            let mut doc: Value = resp.json()?;
            let items = doc
                .get_mut(key)
                .map(Value::take)
                .unwrap_or(Value::Array(vec![]));
            let items: Vec<T> = serde_json::from_value(items).map_err(|e| CloudError::Decode {
                service: service.catalog_type().into(),
                url: url.clone(),
                detail: format!("'{key}': {e}"),
            })?;
            let empty = items.is_empty();
            out.extend(items);
            seen.insert(url.clone());
            match next_link(&doc, key, &base) {
                Some(next) if !empty && !seen.contains(&next) => url = next,
                _ => return Ok(out),
            }
        }
    }
}

/// "2.79" -> (2, 79).
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().trim_start_matches('v').split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The absolute URL of the next page, if any. Nova and Neutron give absolute hrefs in
/// `<key>_links`; Glance gives `next` relative to the unversioned endpoint
/// ("/v2/images?marker=..").
pub fn next_link(doc: &Value, key: &str, base: &str) -> Option<String> {
    let links_key = format!("{key}_links");
    if let Some(links) = doc.get(&links_key).and_then(Value::as_array) {
        return links
            .iter()
            .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
            .and_then(|l| l.get("href"))
            .and_then(Value::as_str)
            .map(|h| absolutize(h, base));
    }
    doc.get("next")
        .and_then(Value::as_str)
        .map(|h| absolutize(h, base))
}

fn absolutize(href: &str, base: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_string();
    }
    // base is versioned ("http://h/image/v2"); a Glance href repeats the version.
    let root = base.strip_suffix("/v2").unwrap_or(base);
    if href.starts_with('/') {
        format!("{root}{href}")
    } else {
        format!("{base}/{href}")
    }
}

/// Exactly one match of a name lookup, else NotFound / Ambiguous (listing the ids).
pub(crate) fn pick_one<T>(
    kind: &'static str,
    name: &str,
    mut hits: Vec<T>,
    id: impl Fn(&T) -> &str,
) -> Result<T> {
    match hits.len() {
        0 => Err(CloudError::NotFound {
            kind,
            name: name.to_string(),
            hint: String::new(),
        }),
        1 => Ok(hits.remove(0)),
        _ => Err(CloudError::Ambiguous {
            kind,
            name: name.to_string(),
            ids: hits.iter().map(|h| id(h).to_string()).collect(),
        }),
    }
}

/// Percent-encodes one query value.
pub fn q(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn next_links_of_each_service() {
        let nova = json!({"servers": [], "servers_links": [{"rel": "next", "href": "http://n/v2.1/servers/detail?limit=2&marker=b"}]});
        assert_eq!(
            next_link(&nova, "servers", "http://n/v2.1").as_deref(),
            Some("http://n/v2.1/servers/detail?limit=2&marker=b")
        );
        let glance = json!({"images": [], "next": "/v2/images?marker=x&limit=25"});
        assert_eq!(
            next_link(&glance, "images", "http://h/image/v2").as_deref(),
            Some("http://h/image/v2/images?marker=x&limit=25")
        );
        let last =
            json!({"networks": [], "networks_links": [{"rel": "previous", "href": "http://x"}]});
        assert_eq!(next_link(&last, "networks", "http://x/v2.0"), None);
        assert_eq!(
            next_link(&json!({"images": []}), "images", "http://h/v2"),
            None
        );
    }

    #[test]
    fn versions_and_suffixes() {
        assert_eq!(parse_version("2.96"), Some((2, 96)));
        assert_eq!(parse_version("v2.1"), Some((2, 1)));
        assert!((2, 96).min(COMPUTE_MICROVERSION) == (2, 79));
        assert_eq!(
            Service::Network.versioned("http://n:9696"),
            "http://n:9696/v2.0"
        );
        assert_eq!(
            Service::Image.versioned("http://h/image/v2"),
            "http://h/image/v2"
        );
        assert_eq!(q("^spark-(a|b)$"), "%5Espark-%28a%7Cb%29%24");
    }
}
