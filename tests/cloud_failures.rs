//! What users see when things go wrong: bad credentials, wrong URLs, lost tokens, flaky
//! and rate-limited APIs, quotas. All against a real devcloud.

mod cloud_support;

use std::collections::HashSet;

use cloud_support::{DevCloud, fast_retries, load_config};
use openstack_client::compute::{ServerCreate, ServerFilter};
use openstack_client::{Cloud, CloudConfig};

async fn connect_err(cfg: &CloudConfig) -> String {
    match Cloud::connect_with(cfg, 4, fast_retries()).await {
        Ok(_) => panic!("connect unexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn bad_password_is_one_clear_sentence() {
    let dc = DevCloud::start(None);
    let cfg = dc.config_with_password("wrong-password");
    let msg = connect_err(&cfg).await;
    assert!(
        msg.starts_with("authentication to cloud 'devcloud' failed: "),
        "{msg}"
    );
    assert!(msg.contains("check the credentials in"), "{msg}");
    assert!(
        !msg.contains("wrong-password"),
        "the password must not be echoed: {msg}"
    );
    assert!(!msg.contains('{'), "no JSON dumps: {msg}");
}

#[tokio::test]
async fn wrong_and_unreachable_auth_urls_name_the_setting() {
    let dc = DevCloud::start(None);
    let pw = dc.password();
    let dir = dc.dir.path().join("env-only");
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = format!("{}/nothing-here", dc.base);
    let env = |url: &str| {
        load_config(
            &dir,
            &[
                ("OS_AUTH_URL", url),
                ("OS_USERNAME", "demo"),
                ("OS_PASSWORD", &pw),
                ("OS_PROJECT_NAME", "demo"),
                ("OS_USER_DOMAIN_NAME", "Default"),
                ("OS_PROJECT_DOMAIN_NAME", "Default"),
            ],
        )
    };
    let msg = connect_err(&env(&wrong)).await;
    assert!(
        msg.contains("is not a Keystone v3 endpoint; fix auth_url/OS_AUTH_URL"),
        "{msg}"
    );

    // The openrc path works against the same server with the right URL (no /v3: discovery).
    let ok = Cloud::connect_with(&env(&format!("{}/identity", dc.base)), 4, fast_retries()).await;
    assert!(ok.is_ok(), "{:?}", ok.err());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let msg = connect_err(&env(&format!("http://127.0.0.1:{port}/v3"))).await;
    assert!(
        msg.starts_with("cannot reach the identity service at http://127.0.0.1:"),
        "{msg}"
    );
    assert!(
        msg.ends_with("check auth_url/OS_AUTH_URL of cloud 'envvars'"),
        "{msg}"
    );
}

#[tokio::test]
async fn bad_cacert_file_is_reported_before_any_request() {
    let dc = DevCloud::start(None);
    let mut cfg = dc.config();
    let bogus = dc.dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    cfg.cacert = Some(bogus.clone());
    let msg = connect_err(&cfg).await;
    assert_eq!(
        msg,
        format!(
            "cacert {} holds no PEM certificate; point cacert/OS_CACERT at a PEM CA bundle",
            bogus.display()
        )
    );
}

#[tokio::test]
async fn a_lost_token_is_renewed_once_transparently() {
    let mut dc = DevCloud::start(None);
    let cloud = dc.connect().await;
    let before = cloud.list_flavors().await.unwrap().len();
    // The server forgets every token (as after a Keystone key rotation) and restarts on
    // the same port; the next call gets 401, re-authenticates and succeeds.
    dc.restart_with(|state| {
        assert!(
            state["tokens"].as_object().is_some_and(|t| !t.is_empty()),
            "devcloud saved no tokens"
        );
        state["tokens"] = serde_json::json!({});
    });
    let calls = cloud.api_calls();
    assert_eq!(cloud.list_flavors().await.unwrap().len(), before);
    // At least: 401, version discovery, new token, the retried list (plus a retry when the
    // pooled connection to the old process is found dead).
    assert!(
        cloud.api_calls() - calls >= 4,
        "{} calls",
        cloud.api_calls() - calls
    );
}

#[tokio::test]
async fn flaky_apis_are_retried_without_duplicate_servers() {
    let dc = DevCloud::start(Some(
        "boot_time: {min_ms: 100, max_ms: 200}\nfaults:\n  identity: {error_5xx: 0.2}\n  compute: {error_5xx: 0.2, drop_connection: 0.1, rate_limit: 0.1, retry_after_s: 1}\n  image: {error_5xx: 0.3, drop_connection: 0.2}\n  network: {error_5xx: 0.3, drop_connection: 0.2}\n",
    ));
    let cloud = dc.connect().await;
    let image = cloud.find_image("debian-12").await.unwrap();
    let net = cloud.find_network("private").await.unwrap();
    let names: Vec<String> = (1..=8).map(|i| format!("flaky-{i}")).collect();
    // In parallel, as a launch does: the handle is shared by spawned tasks.
    let cloud = std::sync::Arc::new(cloud);
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let spec = ServerCreate {
                name: name.clone(),
                image_id: Some(image.id.clone()),
                flavor_id: "1".into(),
                network_ids: vec![net.id.clone()],
                ..Default::default()
            };
            let cloud = cloud.clone();
            tokio::spawn(async move { cloud.ensure_server(&spec).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let filter = ServerFilter {
        name: Some("^flaky-".into()),
        ..Default::default()
    };
    let all = cloud.list_servers(&filter).await.unwrap();
    let listed: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    let unique: HashSet<&str> = listed.iter().copied().collect();
    assert_eq!(
        listed.len(),
        names.len(),
        "duplicates or losses: {listed:?}"
    );
    assert_eq!(unique.len(), names.len());
    // Retries are counted like every other call.
    assert!(cloud.api_calls() > names.len() as u64 * 2);
}

#[tokio::test]
async fn quota_errors_are_reported_plainly() {
    let dc = DevCloud::start(Some(
        "quotas: {instances: 1}\nboot_time: {min_ms: 50, max_ms: 50}\n",
    ));
    let cloud = dc.connect().await;
    let net = cloud.find_network("private").await.unwrap().id;
    let image = cloud.find_image("debian-12").await.unwrap().id;
    let spec = |name: &str| ServerCreate {
        name: name.into(),
        image_id: Some(image.clone()),
        flavor_id: "1".into(),
        network_ids: vec![net.clone()],
        ..Default::default()
    };
    cloud.create_server(&spec("q1")).await.unwrap();
    let e = cloud.create_server(&spec("q2")).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("compute: HTTP 403 Quota exceeded for instances"),
        "{msg}"
    );
    assert!(!msg.contains('{'), "{msg}");
}
