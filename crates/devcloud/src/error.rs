//! Error responses, each in the body format of the service that returns it.
//!
//! Clients parse these bodies (python-openstackclient prints Nova's `message`, openstacksdk
//! reads `NeutronError.type`), so the shapes follow the services' own fault code exactly.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which service's error format to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Identity,
    Compute,
    Network,
    Image,
    Volume,
}

impl Service {
    /// The service of a request path (its first segment), as devcloud mounts them.
    pub fn of_path(path: &str) -> Service {
        match path.trim_start_matches('/').split('/').next().unwrap_or("") {
            "compute" => Service::Compute,
            "network" => Service::Network,
            "image" => Service::Image,
            "volume" => Service::Volume,
            _ => Service::Identity,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Compute => "compute",
            Service::Network => "network",
            Service::Image => "image",
            Service::Volume => "volume",
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub service: Service,
    pub status: StatusCode,
    pub message: String,
    /// Neutron's exception class name (`NetworkNotFound`, `OverQuota`, ...).
    pub neutron_type: &'static str,
    /// Seconds for a `Retry-After` header (429/503).
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` value for 401s.
    pub www_authenticate: Option<String>,
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

impl ApiError {
    pub fn new(service: Service, status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            service,
            status,
            message: message.into(),
            neutron_type: default_neutron_type(status),
            retry_after: None,
            www_authenticate: None,
        }
    }

    /// A Neutron error with its exception class name.
    pub fn neutron(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            neutron_type: kind,
            ..ApiError::new(Service::Network, status, message)
        }
    }

    pub fn not_found(service: Service, message: impl Into<String>) -> ApiError {
        ApiError::new(service, StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(service: Service, message: impl Into<String>) -> ApiError {
        ApiError::new(service, StatusCode::BAD_REQUEST, message)
    }

    pub fn conflict(service: Service, message: impl Into<String>) -> ApiError {
        ApiError::new(service, StatusCode::CONFLICT, message)
    }

    /// The 401 Keystone and keystonemiddleware return for a missing or bad token/password.
    pub fn unauthorized(service: Service, message: impl Into<String>, base_url: &str) -> ApiError {
        ApiError {
            www_authenticate: Some(format!("Keystone uri=\"{base_url}/identity\"")),
            ..ApiError::new(service, StatusCode::UNAUTHORIZED, message)
        }
    }
}

fn default_neutron_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "NotAuthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "NeutronException",
    }
}

/// Nova's (and Cinder's) fault name for a status (`nova/api/openstack/wsgi.py` Fault).
fn nova_fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        406 => "notAcceptable",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.status.as_u16();
        // Keystone and keystonemiddleware answer every 401 with Keystone's body, whatever
        // the service behind them.
        let body = if self.service == Service::Identity || code == 401 {
            json!({"error": {"code": code, "title": reason(self.status), "message": self.message}})
        } else {
            match self.service {
                Service::Network => json!({"NeutronError": {
                    "type": self.neutron_type, "message": self.message, "detail": ""}}),
                Service::Image => json!({
                    "message": self.message,
                    "code": format!("{code} {}", reason(self.status)),
                    "title": reason(self.status)}),
                _ => {
                    let mut inner = json!({"code": code, "message": self.message});
                    if let (Some(s), true) = (self.retry_after, matches!(code, 413 | 429)) {
                        inner["retryAfter"] = json!(s.to_string());
                    }
                    json!({ nova_fault_name(self.status): inner })
                }
            }
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Some(w) = self.www_authenticate
            && let Ok(v) = HeaderValue::from_str(&w)
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}
