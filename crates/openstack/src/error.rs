//! Errors of the OpenStack client, and the parsing of the services' own error bodies.
//!
//! Every OpenStack service wraps its error message differently (Nova and Cinder:
//! `{"itemNotFound": {"message": ..}}`, Neutron: `{"NeutronError": {"message": ..}}`,
//! Keystone: `{"error": {"message": ..}}`, Glance: `{"message": ..}` or plain text/HTML).
//! Users should see the service's sentence, never a JSON dump, so [`service_message`]
//! digs it out of whichever shape arrived.

use serde_json::Value;

/// Everything that can go wrong talking to a cloud. Each variant renders as one sentence
/// that names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// clouds.yaml / secure.yaml / OS_* problems.
    #[error("{0}")]
    Config(String),
    /// A service answered with an error status.
    #[error("{service}: HTTP {status} {message}{}", request_id_suffix(.request_id))]
    Api {
        service: String,
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// The endpoint could not be reached at all (DNS, refused, TLS, timeout).
    #[error("{service}: cannot reach {url}: {detail}{}", tls_hint(.detail))]
    Unreachable {
        service: String,
        url: String,
        detail: String,
    },
    /// Authentication failed or the catalog lacks what we need.
    #[error("{0}")]
    Auth(String),
    /// A service answered 2xx with a body we could not understand.
    #[error("{service}: unexpected response from {url}: {detail}")]
    Decode {
        service: String,
        url: String,
        detail: String,
    },
    /// A name or id that matches nothing.
    #[error("{kind} '{name}' not found{hint}")]
    NotFound {
        kind: &'static str,
        name: String,
        hint: String,
    },
    /// A name that matches several resources.
    #[error("{kind} name '{name}' is ambiguous: it matches {}; use an id instead", .ids.join(", "))]
    Ambiguous {
        kind: &'static str,
        name: String,
        ids: Vec<String>,
    },
    /// A wait helper ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// A resource entered an error state (server ERROR with its fault message, volume error).
    #[error("{0}")]
    Failed(String),
}

/// Certificate failures get the fix attached: the CA setting, not the URL.
pub fn tls_hint(detail: &str) -> &'static str {
    if detail.contains("certificate") || detail.contains("UnknownIssuer") {
        "; if the cloud uses a private CA, set cacert (OS_CACERT) to its PEM file"
    } else {
        ""
    }
}

fn request_id_suffix(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" (request id {id})"),
        None => String::new(),
    }
}

impl CloudError {
    /// The HTTP status of an API error, for callers that treat 404/409 specially.
    pub fn status(&self) -> Option<u16> {
        match self {
            CloudError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Failures worth another try after a pause (overload, proxies, network).
    pub fn is_transient(&self) -> bool {
        matches!(self.status(), Some(429 | 502 | 503 | 504))
            || matches!(self, CloudError::Unreachable { .. })
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

pub type Result<T, E = CloudError> = std::result::Result<T, E>;

/// Extracts the human message from an error body of any OpenStack service.
/// Falls back to the first line of a text body, or to the HTTP reason phrase.
pub fn service_message(status: u16, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(m) = json_message(&v)
    {
        return m;
    }
    let text = String::from_utf8_lossy(body);
    let text = strip_html(&text);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('{'))
        .unwrap_or("");
    if line.is_empty() {
        reason_phrase(status).to_string()
    } else {
        truncate(line, 300)
    }
}

fn json_message(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    // Glance / webob JSON: {"message": "...", "code": "404 Not Found", "title": "Not Found"}
    if let Some(m) = obj.get("message").and_then(Value::as_str) {
        return Some(clean(m));
    }
    // Nova, Cinder, Neutron, Keystone: one wrapper key holding {"message": ...}.
    for (_, inner) in obj {
        if let Some(m) = inner.get("message").and_then(Value::as_str) {
            return Some(clean(m));
        }
    }
    // Some proxies: {"error": "text"} or {"detail": "text"}
    for key in ["error", "detail", "description", "title"] {
        if let Some(m) = obj.get(key).and_then(Value::as_str) {
            return Some(clean(m));
        }
    }
    None
}

/// webob messages often carry "<br /><br />" and trailing blank lines.
fn clean(m: &str) -> String {
    let m = m.replace("<br />", " ").replace("<br/>", " ");
    truncate(
        m.split_whitespace().collect::<Vec<_>>().join(" ").trim(),
        500,
    )
}

fn strip_html(text: &str) -> String {
    if !text.trim_start().starts_with('<') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push('\n');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    // The <title> repeats the status ("404 Not Found"); prefer the body text after it.
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.len() > 3)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}...")
    }
}

fn reason_phrase(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_fault_body() {
        let b =
            br#"{"itemNotFound": {"code": 404, "message": "Instance abc could not be found."}}"#;
        assert_eq!(service_message(404, b), "Instance abc could not be found.");
    }

    #[test]
    fn neutron_error_body() {
        let b = br#"{"NeutronError": {"type": "SecurityGroupRuleExists", "message": "Security group rule already exists. Rule id is 5.", "detail": ""}}"#;
        assert_eq!(
            service_message(409, b),
            "Security group rule already exists. Rule id is 5."
        );
    }

    #[test]
    fn keystone_error_body() {
        let b = br#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#;
        assert_eq!(
            service_message(401, b),
            "The request you have made requires authentication."
        );
    }

    #[test]
    fn glance_json_and_text_bodies() {
        let b = br#"{"message": "No image found with ID x<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#;
        assert_eq!(service_message(404, b), "No image found with ID x");
        let html = b"<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  No image found with ID y<br /><br />\n\n\n\n </body>\n</html>";
        assert_eq!(service_message(404, html), "No image found with ID y");
        assert_eq!(
            service_message(503, b"upstream timed out\n"),
            "upstream timed out"
        );
    }

    #[test]
    fn empty_body_uses_reason() {
        assert_eq!(service_message(502, b""), "Bad Gateway");
    }

    #[test]
    fn api_error_renders_one_line() {
        let e = CloudError::Api {
            service: "compute".into(),
            status: 403,
            message: "Quota exceeded for instances".into(),
            request_id: Some("req-1".into()),
        };
        assert_eq!(
            e.to_string(),
            "compute: HTTP 403 Quota exceeded for instances (request id req-1)"
        );
    }
}
