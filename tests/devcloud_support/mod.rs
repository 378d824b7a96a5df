//! Shared by the devcloud integration tests: runs the real binary's `devcloud serve` on a
//! free port in a temporary state dir, and talks to it with reqwest as a client would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_spark-openstack");

/// A running `devcloud serve`; killed on drop.
pub struct Devcloud {
    pub dir: tempfile::TempDir,
    pub url: String,
    child: Child,
}

impl Devcloud {
    /// Starts devcloud with the given config YAML (may be empty).
    pub fn start(config: &str) -> Devcloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = spawn(dir.path(), config);
        let url = wait_endpoint(dir.path());
        Devcloud { dir, url, child }
    }

    /// Stops the server and starts a new one on the same state dir.
    pub fn restart(mut self, config: &str) -> Devcloud {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("endpoint"));
        let child = spawn(self.dir.path(), config);
        let url = wait_endpoint(self.dir.path());
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        Devcloud { dir, url, child }
    }

    /// The seeded demo user's password, from the state file.
    pub fn password(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("state.json")).expect("state.json");
        let st: Value = serde_json::from_str(&text).expect("state json");
        st["users"][0]["password"]
            .as_str()
            .expect("password")
            .to_string()
    }

    /// A project-scoped token for demo/demo, and the token body.
    pub async fn login(&self) -> Client {
        let http = reqwest::Client::new();
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"name": "Default"}, "password": self.password()}}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}});
        let resp = http
            .post(format!("{}/identity/v3/auth/tokens", self.url))
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
            base: self.url.clone(),
            token,
            project_id: body["token"]["project"]["id"]
                .as_str()
                .expect("project")
                .to_string(),
            token_body: body,
        }
    }
}

impl Drop for Devcloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, config: &str) -> Child {
    let cfg: PathBuf = dir.join("config.yaml");
    std::fs::write(&cfg, config).expect("write config");
    Command::new(BIN)
        .args([
            "devcloud",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(dir)
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn devcloud serve")
}

fn wait_endpoint(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("endpoint")) {
            return s.trim().to_string();
        }
        assert!(Instant::now() < deadline, "devcloud did not start");
        std::thread::sleep(Duration::from_millis(50));
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
