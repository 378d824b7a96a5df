//! The HTTP side: the router that mounts every service under its path prefix, and the
//! middleware every request goes through (request ids, latency, fault injection, token auth).
//!
//! Services live under path prefixes of one listener (`/identity`, `/compute/v2.1`,
//! `/network`, `/image`, `/volume/v3/{project_id}`), as DevStack lays them out, so clients
//! must honour the catalog's URLs rather than assume ports.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rand::Rng;

use super::backend::ServerBackend;
use super::config::Config;
use super::error::{ApiError, Service};
use super::state::Store;
use super::{cinder, glance, keystone, neutron, nova};

/// Everything a handler needs.
pub struct App {
    pub cfg: Config,
    /// `http://host:port`, the root of every URL devcloud hands out (catalog, links).
    pub base_url: String,
    pub store: Store,
    pub backend: Arc<dyn ServerBackend>,
    /// `http://ip:port` of Swift's proxy when object storage runs (catalog: `object-store`
    /// and `s3`).
    pub object_store_url: Option<String>,
}

pub type AppState = Arc<App>;

/// Who is calling: set by the auth middleware from the request's token.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user_id: String,
    pub project_id: String,
}

/// The full router with all middleware.
pub fn router(app: AppState) -> Router {
    let authed =
        |r: Router<AppState>| r.layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .merge(keystone::router())
        .nest("/identity", keystone::router())
        .merge(nova::version_routes())
        .nest(
            "/compute/v2.1",
            authed(nova::router()).layer(middleware::from_fn(nova::microversion)),
        )
        .merge(neutron::version_routes())
        .nest("/network/v2.0", authed(neutron::router()))
        .merge(glance::version_routes())
        .nest("/image/v2", authed(glance::router()))
        .merge(cinder::version_routes())
        .nest("/volume/v3/{project_id}", authed(cinder::router()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), common))
        .with_state(app)
}

async fn not_found(req: Request) -> ApiError {
    let path = req.uri().path().to_string();
    ApiError::not_found(
        Service::of_path(&path),
        format!("The resource could not be found: {path}"),
    )
}

/// Request ids, configured latency and injected faults, for every request.
async fn common(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let service = Service::of_path(req.uri().path());
    tracing::info!(%request_id, method = %req.method(), uri = %req.uri(), "request");
    // A detached task: a client that hangs up (Ctrl-C mid-request) must not cancel the
    // request halfway, as dropping the handler's future would. OpenStack's WSGI servers
    // finish every request they accepted; a server record left without its boot task
    // would stay BUILD forever. The configured latency is server-side time too.
    let work = async move {
        if app.cfg.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(app.cfg.latency_ms)).await;
        }
        match injected_fault(&app.cfg, service) {
            Some(resp) => resp,
            None => next.run(req).await,
        }
    };
    let mut resp = match tokio::spawn(work).await {
        Ok(resp) => resp,
        Err(e) => ApiError::new(
            service,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("devcloud: request handler failed: {e}"),
        )
        .into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        let h = resp.headers_mut();
        h.insert("x-openstack-request-id", v.clone());
        if service == Service::Compute {
            h.insert("x-compute-request-id", v);
        }
    }
    tracing::info!(%request_id, status = resp.status().as_u16(), "response");
    resp
}

/// Rolls the dice for the service's configured fault rates.
fn injected_fault(cfg: &Config, service: Service) -> Option<Response> {
    let rates = cfg.faults.for_service(service.name())?;
    let mut rng = rand::rng();
    if rates.drop_connection > 0.0 && rng.random_bool(rates.drop_connection) {
        // A body that fails makes hyper abort the connection mid-response, which clients
        // see as a dropped connection (no complete HTTP response).
        let stream = futures::stream::once(async {
            Err::<String, _>(std::io::Error::other(
                "devcloud: injected dropped connection",
            ))
        });
        return Some((StatusCode::OK, Body::from_stream(stream)).into_response());
    }
    if rates.rate_limit > 0.0 && rng.random_bool(rates.rate_limit) {
        let mut e = ApiError::new(
            service,
            StatusCode::TOO_MANY_REQUESTS,
            "This request was rate-limited.",
        );
        e.retry_after = Some(rates.retry_after_s.max(1));
        return Some(e.into_response());
    }
    if rates.error_5xx > 0.0 && rng.random_bool(rates.error_5xx) {
        let e = ApiError::new(
            service,
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is currently unavailable. Please try again at a later time.",
        );
        return Some(e.into_response());
    }
    None
}

/// keystonemiddleware: a valid `X-Auth-Token` is required; its project and user become the
/// request's [`Ctx`].
async fn require_token(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let service = Service::of_path(req.uri().path());
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match keystone::validate(&app, &token) {
        Some(ctx) => {
            req.extensions_mut().insert(ctx);
            next.run(req).await
        }
        None => ApiError::unauthorized(
            service,
            "The request you have made requires authentication.",
            &app.base_url,
        )
        .into_response(),
    }
}

/// Parses a JSON request body into a value, with the service's 400 on malformed JSON
/// (axum's own rejection is plain text, which clients cannot parse).
pub fn parse_body(service: Service, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(service, format!("Malformed request body: {e}")))
}
