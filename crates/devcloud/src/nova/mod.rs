//! Nova v2.1 with microversions (2.1 to [`MAX_MINOR`]).
//!
//! The microversion middleware negotiates the version from `OpenStack-API-Version` /
//! `X-OpenStack-Nova-API-Version`, answers 406 outside the range, echoes the version on every
//! response, and hands handlers a [`Microversion`] so views can change shape (flavor embedded
//! from 2.47, keypair `type` from 2.2, ...).

mod actions;
mod create;
mod flavors;
mod keypairs;
mod meta;
mod misc;
mod servers;
mod view;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::error::{ApiError, Service};
use super::server::AppState;

pub const SVC: Service = Service::Compute;
/// The highest microversion served: 2.96 (pinned_availability_zone). Later ones add fields
/// (image properties, scheduler hints) devcloud does not model.
pub const MAX_MINOR: u16 = 96;

/// The negotiated microversion's minor number (2.x → x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u16);

impl Microversion {
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/flavors", get(flavors::list))
        .route("/flavors/detail", get(flavors::detail))
        .route("/flavors/{id}", get(flavors::show))
        .route("/flavors/{id}/os-extra_specs", get(flavors::extra_specs))
        .route("/os-keypairs", get(keypairs::list).post(keypairs::create))
        .route(
            "/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route("/limits", get(misc::limits))
        .route("/os-availability-zone", get(misc::availability_zones))
        .route("/os-quota-sets/{project_id}", get(misc::quota_set))
        .route("/servers", get(servers::list).post(servers::create))
        .route("/servers/detail", get(servers::detail))
        .route(
            "/servers/{id}",
            get(servers::show)
                .delete(servers::delete)
                .put(servers::update),
        )
        .route("/servers/{id}/action", post(actions::action))
        .route("/servers/{id}/ips", get(servers::ips))
        .route(
            "/servers/{id}/metadata",
            get(servers::metadata)
                .put(meta::set_metadata)
                .post(meta::merge_metadata),
        )
        .route(
            "/servers/{id}/metadata/{key}",
            delete(meta::delete_metadata_item),
        )
        .route("/servers/{id}/tags", get(servers::tags).put(meta::set_tags))
        .route(
            "/servers/{id}/tags/{tag}",
            get(meta::has_tag)
                .put(meta::add_tag)
                .delete(meta::delete_tag),
        )
        .route(
            "/servers/{id}/os-volume_attachments",
            get(actions::list_attachments).post(actions::attach),
        )
        .route(
            "/servers/{id}/os-volume_attachments/{volume_id}",
            get(actions::show_attachment).delete(actions::detach),
        )
        .route("/servers/{id}/os-interface", get(misc::interfaces))
}

/// Unversioned and versioned discovery documents (no auth, as in Nova).
pub fn version_routes() -> Router<AppState> {
    Router::new()
        .route("/compute", get(versions))
        .route("/compute/", get(versions))
        .route("/compute/v2.1", get(version))
        .route("/compute/v2.1/", get(version))
}

fn v21_doc(base: &str) -> Value {
    json!({
        "id": "v2.1", "status": "CURRENT", "version": format!("2.{MAX_MINOR}"), "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")},
                  {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json",
                          "type": "application/vnd.openstack.compute+json;version=2.1"}]
    })
}

async fn versions(State(app): State<AppState>) -> Response {
    axum::Json(json!({"versions": [v21_doc(&app.base_url)]})).into_response()
}

async fn version(State(app): State<AppState>) -> Response {
    axum::Json(json!({"version": v21_doc(&app.base_url)})).into_response()
}

/// Parses `2.x` / `latest` into a minor number; `None` if malformed.
fn parse_version(v: &str) -> Option<u16> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("latest") {
        return Some(MAX_MINOR);
    }
    let minor = v.strip_prefix("2.")?;
    minor.parse().ok()
}

/// The requested microversion: `OpenStack-API-Version: compute X` wins over the legacy
/// header; none means 2.1.
fn requested(headers: &HeaderMap) -> Result<u16, String> {
    let modern = headers
        .get_all("openstack-api-version")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            v.split(',').find_map(|part| {
                let (svc, ver) = part.trim().split_once(' ')?;
                (svc == "compute").then(|| ver.to_string())
            })
        });
    let legacy = headers
        .get("x-openstack-nova-api-version")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    match modern.or(legacy) {
        None => Ok(1),
        Some(v) => parse_version(&v).ok_or(v),
    }
}

pub async fn microversion(mut req: Request, next: Next) -> Response {
    let (minor, ok) = match requested(req.headers()) {
        Ok(m) if (1..=MAX_MINOR).contains(&m) => (m, true),
        Ok(m) => (m, false),
        Err(_) => (1, false),
    };
    let mut resp = if ok {
        req.extensions_mut().insert(Microversion(minor));
        next.run(req).await
    } else {
        let shown = requested(req.headers())
            .map(|m| format!("2.{m}"))
            .unwrap_or_else(|v| v);
        ApiError::new(
            SVC,
            StatusCode::NOT_ACCEPTABLE,
            format!("Version {shown} is not supported by the API. Minimum is 2.1 and maximum is 2.{MAX_MINOR}."),
        )
        .into_response()
    };
    let v = format!("2.{minor}");
    let h = resp.headers_mut();
    if let Ok(x) = HeaderValue::from_str(&format!("compute {v}")) {
        h.insert("openstack-api-version", x);
    }
    if let Ok(x) = HeaderValue::from_str(&v) {
        h.insert("x-openstack-nova-api-version", x);
    }
    h.insert(
        "vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    resp
}

/// `self` and `bookmark` links of a Nova resource.
pub fn links(base: &str, project_id: &str, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/compute/v2.1/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/compute/{project_id}/{kind}/{id}")},
    ])
}

/// Limit/marker pagination over items with ids, plus the `<collection>_links` next link
/// when the page is full (Nova's rule).
pub fn paginate<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> String,
    q: &[(String, String)],
    next_href: impl Fn(&str, usize) -> String,
) -> Result<(Vec<T>, Option<Value>), ApiError> {
    let limit = match query_get(q, "limit") {
        Some(l) => Some(l.parse::<usize>().map_err(|_| {
            ApiError::bad_request(
                SVC,
                format!("Invalid input for query parameters limit. Value: {l}."),
            )
        })?),
        None => None,
    };
    let start = match query_get(q, "marker") {
        Some(m) => items
            .iter()
            .position(|x| id(x) == m)
            .map(|p| p + 1)
            .ok_or_else(|| ApiError::bad_request(SVC, format!("marker [{m}] not found")))?,
        None => 0,
    };
    let limit = limit.unwrap_or(1000).min(1000);
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (page.len() == limit && limit > 0).then(|| {
        let last = page.last().map(&id).unwrap_or_default();
        json!([{"rel": "next", "href": next_href(&last, limit)}])
    });
    Ok((page, next))
}

/// The first value of a query parameter.
pub fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub fn not_found(msg: impl Into<String>) -> ApiError {
    ApiError::not_found(SVC, msg)
}

pub fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(SVC, msg)
}
