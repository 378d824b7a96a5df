//! Runs a real devcloud (`spark-openstack devcloud serve`) for the cloud client tests and
//! writes a clouds.yaml + secure.yaml for it in a temp dir, so the tests go through the
//! same configuration path users do.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openstack_client::config::{self, LoadOptions};
use openstack_client::{Cloud, CloudConfig, RetryPolicy};

pub struct DevCloud {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub base: String,
    child: Option<Child>,
    config: Option<PathBuf>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl DevCloud {
    /// Starts devcloud; `config_yaml` is devcloud's own knob file (faults, quotas).
    pub fn start(config_yaml: Option<&str>) -> DevCloud {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_yaml.map(|y| {
            let p = dir.path().join("devcloud.yaml");
            std::fs::write(&p, y).expect("write devcloud config");
            p
        });
        let mut dc = DevCloud {
            port: free_port(),
            base: String::new(),
            dir,
            child: None,
            config,
        };
        dc.spawn();
        dc
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spawn(&mut self) {
        let state = self.state_dir();
        let endpoint = state.join("endpoint");
        let _ = std::fs::remove_file(&endpoint);
        // DEVCLOUD_BIN lets a run use another build of the binary (e.g. a devcloud branch).
        let bin = std::env::var("DEVCLOUD_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_spark-openstack").to_string());
        let mut cmd = Command::new(bin);
        cmd.args(["devcloud", "serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--state-dir")
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("devcloud.stderr"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::inherit()),
            );
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd.spawn().expect("spawn devcloud");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(s) = std::fs::read_to_string(&endpoint) {
                self.base = s.trim().to_string();
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir.path().join("devcloud.stderr"));
                panic!("devcloud exited early ({st}): {}", log.unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("devcloud did not write {} within 60s", endpoint.display());
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts the server on the same port, after `edit` changed its saved state.
    pub fn restart_with(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        self.stop();
        let path = self.state_dir().join("state.json");
        let text = std::fs::read_to_string(&path).expect("devcloud state.json");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("state.json is JSON");
        edit(&mut v);
        std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
        self.spawn();
    }

    /// The demo user's password, as devcloud seeded it.
    pub fn password(&self) -> String {
        let text =
            std::fs::read_to_string(self.state_dir().join("state.json")).expect("state.json");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["users"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["name"] == "demo"))
            .and_then(|u| u["password"].as_str())
            .expect("demo user in state.json")
            .to_string()
    }

    /// Writes clouds.yaml (auth without password) and secure.yaml (the password) into a
    /// config dir, the way users keep secrets apart.
    pub fn write_clouds_yaml(&self, password: &str) -> PathBuf {
        let cfg = self.dir.path().join("config");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("clouds.yaml"),
            format!(
                "clouds:\n  devcloud:\n    auth:\n      auth_url: {}/identity\n      username: demo\n      project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n",
                self.base
            ),
        )
        .unwrap();
        std::fs::write(
            cfg.join("secure.yaml"),
            format!("clouds:\n  devcloud:\n    auth:\n      password: {password}\n"),
        )
        .unwrap();
        cfg
    }

    pub fn config_with_password(&self, password: &str) -> CloudConfig {
        let dir = self.write_clouds_yaml(password);
        load_config(&dir, &[("OS_CLOUD", "devcloud")])
    }

    pub fn config(&self) -> CloudConfig {
        self.config_with_password(&self.password())
    }

    pub async fn connect(&self) -> Cloud {
        Cloud::connect_with(&self.config(), 10, fast_retries())
            .await
            .expect("connect to devcloud")
    }
}

impl Drop for DevCloud {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Retries quick enough for tests but with the production shape.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(500),
    }
}

pub fn load_config(dir: &Path, env: &[(&str, &str)]) -> CloudConfig {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let opts = LoadOptions {
        cloud: None,
        search_dirs: vec![dir.to_path_buf()],
    };
    config::load(&opts, &env).expect("load clouds.yaml")
}
