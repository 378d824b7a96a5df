//! The HTTP layer: one reqwest client, bounded concurrency, retries, call counting.
//!
//! Retry rules (keystoneauth retries only 503 and ignores Retry-After; clusters of many
//! servers hit rate limiters, so we do better):
//! - 429, 502, 503, 504 and connection resets/timeouts are retried with jittered
//!   exponential backoff, honouring `Retry-After` (seconds or HTTP date) when present;
//! - only for idempotent requests (GET, PUT, DELETE, HEAD). A POST is retried only when it
//!   provably never reached the service (connect error) or was refused by a rate limiter
//!   (429), because re-sending a create that may have succeeded duplicates servers. For
//!   creates the caller looks the resource up by name after a transient failure
//!   ([`create_idempotently`]).
//!
//! Secrets: headers are never logged; tracing shows method, URL and status only.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::config::{CloudConfig, Secret};
use super::error::{CloudError, Result};

/// Backoff parameters. `max_attempts` counts the first try.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

/// What happened to one attempt, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    Status(u16, Option<&'a str>),
    /// The connection could not be opened: nothing reached the server.
    ConnectFailed,
    /// Reset or timed out after the request may have been sent.
    Interrupted,
}

impl RetryPolicy {
    /// `Some(delay)` when attempt number `attempt` (0-based) should be followed by another.
    pub fn decide(&self, attempt: u32, idempotent: bool, outcome: Outcome<'_>) -> Option<Duration> {
        if attempt + 1 >= self.max_attempts {
            return None;
        }
        let retry = match outcome {
            Outcome::Status(429, _) | Outcome::ConnectFailed => true,
            Outcome::Status(502..=504, _) | Outcome::Interrupted => idempotent,
            Outcome::Status(..) => false,
        };
        if !retry {
            return None;
        }
        if let Outcome::Status(_, Some(ra)) = outcome
            && let Some(d) = parse_retry_after(ra)
        {
            return Some(d.min(self.cap * 2));
        }
        Some(self.backoff(attempt))
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so retries of
    /// many parallel callers spread out but still grow.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let half = exp / 2;
        let jitter_ms = rand::random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// One request, before the token is attached. Its Debug output leaves out the body and
/// headers, which may hold passwords or tokens.
#[derive(Clone)]
pub struct Request {
    /// Service name for error messages ("compute", "network", ...).
    pub service: String,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Value>,
    /// May be re-sent after a 5xx or a dropped connection: true for GET/PUT/DELETE, and
    /// for POSTs that create nothing (token issue).
    pub retry_safe: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

impl Request {
    pub fn new(service: &str, method: Method, url: impl Into<String>) -> Request {
        Request {
            service: service.to_string(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            retry_safe: matches!(
                method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            ),
            method,
        }
    }

    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }
}

/// A response of any status; [`Response::into_result`] maps error statuses.
#[derive(Debug)]
pub struct Response {
    pub service: String,
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Err(CloudError::Api)` with the service's own message for 4xx/5xx.
    pub fn into_result(self) -> Result<Response> {
        if self.status.is_success() || self.status.is_redirection() {
            return Ok(self);
        }
        let request_id = self
            .header("x-openstack-request-id")
            .or_else(|| self.header("x-compute-request-id"))
            .map(String::from);
        Err(CloudError::Api {
            message: super::error::service_message(self.status.as_u16(), &self.body),
            service: self.service,
            status: self.status.as_u16(),
            request_id,
        })
    }

    /// Decodes the object under `key` of the JSON body (`{"server": {...}}`) into `T`.
    pub fn json_at<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        let mut v: Value = self.json()?;
        let inner = v
            .get_mut(key)
            .map(Value::take)
            .ok_or_else(|| CloudError::Decode {
                service: self.service.clone(),
                url: self.url.clone(),
                detail: format!("no '{key}' in the response"),
            })?;
        serde_json::from_value(inner).map_err(|e| CloudError::Decode {
            service: self.service.clone(),
            url: self.url.clone(),
            detail: format!("'{key}': {e}"),
        })
    }

    /// Decodes the JSON body into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| CloudError::Decode {
            service: self.service.clone(),
            url: self.url.clone(),
            detail: e.to_string(),
        })
    }
}

/// The shared HTTP machinery of one [`super::Cloud`].
pub struct Transport {
    client: reqwest::Client,
    limit: Semaphore,
    calls: Arc<AtomicU64>,
    pub retry: RetryPolicy,
}

impl Transport {
    /// Builds the client with the cloud's TLS settings. A `cacert` is added to the system
    /// trust store, not instead of it (reqwest `tls_certs_merge` ->
    /// rustls-platform-verifier `new_with_extra_roots`), so corporate CAs keep working.
    pub fn new(cfg: &CloudConfig, concurrency: usize) -> Result<Transport> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("spark-openstack/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &cfg.cacert {
            let pem = std::fs::read(ca).map_err(|e| {
                CloudError::Config(format!(
                    "cacert {}: cannot read it ({e}); fix cacert in clouds.yaml or OS_CACERT",
                    ca.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    CloudError::Config(format!(
                        "cacert {} holds no PEM certificate; point cacert/OS_CACERT at a PEM CA bundle",
                        ca.display()
                    ))
                })?;
            b = b.tls_certs_merge(certs);
        }
        if let (Some(cert), Some(key)) = (&cfg.cert, &cfg.key) {
            let mut pem = std::fs::read(cert).map_err(|e| {
                CloudError::Config(format!("cert {}: cannot read it ({e})", cert.display()))
            })?;
            pem.extend(std::fs::read(key).map_err(|e| {
                CloudError::Config(format!("key {}: cannot read it ({e})", key.display()))
            })?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                CloudError::Config(format!(
                    "cert {} / key {}: not a usable PEM client certificate and key ({e})",
                    cert.display(),
                    key.display()
                ))
            })?;
            b = b.identity(id);
        }
        if !cfg.verify {
            eprintln!(
                "[WARNING]: TLS certificate verification is disabled for cloud '{}' (verify: false / insecure); use cacert instead",
                cfg.name
            );
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let client = b
            .build()
            .map_err(|e| CloudError::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Transport {
            client,
            limit: Semaphore::new(concurrency.max(1)),
            calls: Arc::new(AtomicU64::new(0)),
            retry: RetryPolicy::default(),
        })
    }

    /// API calls sent so far (every attempt counts), for benchmarks.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The counter itself, to share with benchmark code.
    pub fn call_counter(&self) -> Arc<AtomicU64> {
        self.calls.clone()
    }

    /// Sends `req` with retries; returns the final response whatever its status.
    pub async fn send(&self, req: &Request, token: Option<&Secret>) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(req, token).await;
            let outcome = match &result {
                Ok(r) => Outcome::Status(r.status.as_u16(), r.header("retry-after")),
                Err(e) if e.is_connect() => Outcome::ConnectFailed,
                Err(e) if e.is_timeout() || e.is_request() || e.is_body() => Outcome::Interrupted,
                Err(_) => Outcome::Status(0, None),
            };
            let decision = self.retry.decide(attempt, req.retry_safe, outcome);
            match (decision, result) {
                (Some(delay), _) => {
                    tracing::debug!(method = %req.method, url = %req.url, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                (None, Ok(r)) => return Ok(r),
                (None, Err(e)) => {
                    return Err(CloudError::Unreachable {
                        service: req.service.clone(),
                        url: req.url.clone(),
                        detail: describe(&e),
                    });
                }
            }
        }
    }

    async fn send_once(
        &self,
        req: &Request,
        token: Option<&Secret>,
    ) -> std::result::Result<Response, reqwest::Error> {
        let _permit = self.limit.acquire().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rb = self
            .client
            .request(req.method.clone(), &req.url)
            .header("Accept", "application/json");
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        if let Some(t) = token
            && let Ok(mut v) = HeaderValue::from_str(t.expose())
        {
            v.set_sensitive(true);
            rb = rb.header("X-Auth-Token", v);
        }
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        tracing::debug!(method = %req.method, url = %req.url, status = status.as_u16(), "api call");
        Ok(Response {
            service: req.service.clone(),
            url: req.url.clone(),
            status,
            headers,
            body,
        })
    }
}

/// The innermost cause of a reqwest error, which is where "connection refused" or
/// "invalid peer certificate" lives.
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        e.to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    if let Some(l) = last {
        msg = format!("{msg}: {l}");
    }
    msg
}

/// The safe way to create a named resource over a flaky network: look it up by name
/// first, create it, and after a transient failure of the create look again before
/// retrying, so a create that did succeed server-side is found instead of duplicated.
pub async fn create_idempotently<T, L, LF, C, CF>(
    policy: &RetryPolicy,
    mut lookup: L,
    mut create: C,
) -> Result<T>
where
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>>>,
    C: FnMut() -> CF,
    CF: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        if let Some(found) = lookup().await? {
            return Ok(found);
        }
        match create().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt + 1 < policy.max_attempts => {
                tracing::debug!(error = %e, "create failed transiently; looking up before retrying");
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        }
    }

    #[test]
    fn retries_transient_statuses_for_idempotent_requests() {
        let p = policy();
        for s in [429, 502, 503, 504] {
            assert!(p.decide(0, true, Outcome::Status(s, None)).is_some(), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 500] {
            assert!(p.decide(0, true, Outcome::Status(s, None)).is_none(), "{s}");
        }
        assert!(p.decide(0, true, Outcome::Interrupted).is_some());
    }

    #[test]
    fn post_is_retried_only_when_it_never_ran() {
        let p = policy();
        assert!(p.decide(0, false, Outcome::ConnectFailed).is_some());
        assert!(p.decide(0, false, Outcome::Status(429, None)).is_some());
        assert!(p.decide(0, false, Outcome::Status(503, None)).is_none());
        assert!(p.decide(0, false, Outcome::Interrupted).is_none());
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = policy();
        assert!(p.decide(2, true, Outcome::Status(503, None)).is_some());
        assert!(p.decide(3, true, Outcome::Status(503, None)).is_none());
    }

    #[test]
    fn honours_retry_after() {
        let p = policy();
        assert_eq!(
            p.decide(0, true, Outcome::Status(429, Some("3"))),
            Some(Duration::from_secs(3))
        );
        // Capped at twice the backoff cap, so a hostile header cannot stall us for hours.
        assert_eq!(
            p.decide(0, true, Outcome::Status(429, Some("86400"))),
            Some(Duration::from_secs(4))
        );
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = policy();
        for attempt in 0..8 {
            let exp = (p.base * (1 << attempt)).min(p.cap);
            let d = p.backoff(attempt);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
    }

    #[tokio::test]
    async fn create_idempotently_finds_what_a_failed_create_made() {
        use std::sync::Mutex;
        let made: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        let creates = AtomicU64::new(0);
        let p = RetryPolicy {
            base: Duration::from_millis(1),
            ..policy()
        };
        let got = create_idempotently(
            &p,
            || async { Ok(made.lock().unwrap().first().map(|s| s.to_string())) },
            || async {
                creates.fetch_add(1, Ordering::SeqCst);
                // The server creates it but the response is lost (502 from a proxy).
                made.lock().unwrap().push("srv");
                Err::<String, _>(CloudError::Api {
                    service: "compute".into(),
                    status: 502,
                    message: "Bad Gateway".into(),
                    request_id: None,
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(got, "srv");
        assert_eq!(creates.load(Ordering::SeqCst), 1);
        assert_eq!(made.lock().unwrap().len(), 1);
    }
}
