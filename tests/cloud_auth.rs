//! The other Keystone methods an openrc can select: application credentials (by id, by
//! name + user) and a pre-issued token (OS_TOKEN), each through OS_* variables only.

mod cloud_support;

use cloud_support::{DevCloud, fast_retries, load_config};
use openstack_client::{AuthType, Cloud};
use serde_json::{Value, json};

/// A token and user id from devcloud, fetched by hand (not through the client under test).
async fn password_token(dc: &DevCloud) -> (String, String) {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"name": "Default"}, "password": dc.password()}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}});
    let resp = reqwest::Client::new()
        .post(format!("{}/identity/v3/auth/tokens", dc.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_string();
    let doc: Value = resp.json().await.unwrap();
    (
        token,
        doc["token"]["user"]["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn application_credentials_and_tokens_from_openrc_variables() {
    let dc = DevCloud::start(None);
    let (token, user_id) = password_token(&dc).await;
    let created: Value = reqwest::Client::new()
        .post(format!(
            "{}/identity/v3/users/{user_id}/application_credentials",
            dc.base
        ))
        .header("X-Auth-Token", &token)
        .json(&json!({"application_credential": {"name": "spark-ci"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = created["application_credential"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = dc.dir.path().join("openrc");
    std::fs::create_dir_all(&dir).unwrap();
    let v3 = format!("{}/identity/v3", dc.base);

    // Horizon's app-credential openrc.
    let by_id = load_config(
        &dir,
        &[
            ("OS_AUTH_TYPE", "v3applicationcredential"),
            ("OS_AUTH_URL", &v3),
            ("OS_APPLICATION_CREDENTIAL_ID", &id),
            ("OS_APPLICATION_CREDENTIAL_SECRET", &secret),
            ("OS_REGION_NAME", "RegionOne"),
            ("OS_INTERFACE", "public"),
        ],
    );
    assert_eq!(by_id.auth_type, AuthType::ApplicationCredential);
    let cloud = Cloud::connect_with(&by_id, 4, fast_retries())
        .await
        .unwrap();
    assert!(!cloud.list_flavors().await.unwrap().is_empty());

    let by_name = load_config(
        &dir,
        &[
            ("OS_AUTH_URL", &v3),
            ("OS_APPLICATION_CREDENTIAL_NAME", "spark-ci"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", &secret),
            ("OS_USER_ID", &user_id),
        ],
    );
    let cloud = Cloud::connect_with(&by_name, 4, fast_retries())
        .await
        .unwrap();
    assert!(!cloud.list_images(&[]).await.unwrap().is_empty());

    let wrong = load_config(
        &dir,
        &[
            ("OS_AUTH_URL", &v3),
            ("OS_APPLICATION_CREDENTIAL_ID", &id),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "not-it"),
        ],
    );
    let e = Cloud::connect_with(&wrong, 4, fast_retries())
        .await
        .err()
        .expect("bad secret must fail");
    assert!(
        e.to_string()
            .starts_with("authentication to cloud 'envvars' failed"),
        "{e}"
    );

    let by_token = load_config(
        &dir,
        &[
            ("OS_AUTH_URL", &format!("{}/identity", dc.base)),
            ("OS_TOKEN", &token),
            ("OS_PROJECT_NAME", "demo"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
        ],
    );
    assert_eq!(by_token.auth_type, AuthType::Token);
    let cloud = Cloud::connect_with(&by_token, 4, fast_retries())
        .await
        .unwrap();
    assert!(cloud.find_network("private").await.is_ok());
}

/// Stops a `devcloud up` server even when the test fails.
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
            .args(["devcloud", "down", "--state-dir"])
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn the_clouds_yaml_written_by_devcloud_up_just_works() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let clouds = dir.path().join("clouds.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["devcloud", "up", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .arg("--clouds-yaml")
        .arg(&clouds)
        .output()
        .unwrap();
    let _down = Down(state);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = load_config(dir.path(), &[("OS_CLOUD", "devcloud")]);
    let cloud = Cloud::connect_with(&cfg, 4, fast_retries()).await.unwrap();
    assert!(cloud.find_flavor("m1.tiny").await.is_ok());
}
