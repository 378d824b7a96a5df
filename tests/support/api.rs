//! Raw API access to a [`super::TestCloud`], as any OpenStack client sees it: a token from
//! Keystone and calls with a chosen compute microversion.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A project-scoped token for demo/demo at `url`, and the token body.
pub async fn login(url: &str, password: &str) -> Client {
    let http = reqwest::Client::new();
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}});
    let resp = http
        .post(format!("{url}/identity/v3/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("auth");
    assert_eq!(resp.status(), 201);
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .expect("token")
        .to_string();
    let body: Value = resp.json().await.expect("token json");
    Client {
        http,
        base: url.to_string(),
        token,
        project_id: body["token"]["project"]["id"]
            .as_str()
            .expect("project")
            .to_string(),
        token_body: body,
    }
}

/// An authenticated client; `mv` is sent as the compute microversion.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub project_id: String,
    pub token_body: Value,
}

impl Client {
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.call_mv(method, path, body, "2.96").await
    }

    pub async fn call_mv(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        mv: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", format!("compute {mv}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, v)
    }

    /// Polls a server until its status is `want` (or fails after 30 s).
    pub async fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, _, v) = self
                .call("GET", &format!("/compute/v2.1/servers/{id}"), None)
                .await;
            if v["server"]["status"] == want {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "server {id} never became {want}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Looks up a resource id by name in a list response.
    pub async fn id_by_name(&self, path: &str, key: &str, name: &str) -> String {
        let (_, _, v) = self.call("GET", path, None).await;
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == name)
            .and_then(|x| x["id"].as_str())
            .unwrap_or_else(|| panic!("{name} not in {path}"))
            .to_string()
    }

    /// Boots a server on `private` and returns its id.
    pub async fn boot(&self, name: &str) -> (u16, Value) {
        let image = self
            .id_by_name("/image/v2/images", "images", "debian-12")
            .await;
        let net = self
            .id_by_name("/network/v2.0/networks", "networks", "private")
            .await;
        let (status, _, v) = self
            .call(
                "POST",
                "/compute/v2.1/servers",
                Some(json!({"server": {
            "name": name, "imageRef": image, "flavorRef": "2", "networks": [{"uuid": net}]}})),
            )
            .await;
        (status, v)
    }
}
