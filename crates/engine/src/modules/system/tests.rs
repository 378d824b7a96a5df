//! The system modules against the local host.

use serde_json::json;

use super::authorized_key::AuthorizedKey;
use super::service::Service;
use super::setup::Setup;
use crate::modules::testutil::Harness;

#[tokio::test]
async fn setup_returns_facts_and_filters_them() {
    let h = Harness::new();
    let r = h.ok(&Setup, json!({})).await;
    let facts = r.facts.unwrap();
    assert!(facts.contains_key("ansible_distribution"));
    assert!(!r.changed);
    let r = h.ok(&Setup, json!({"filter": ["ansible_mem*"]})).await;
    let facts = r.facts.unwrap();
    let mut keys: Vec<_> = facts.keys().cloned().collect();
    keys.sort();
    assert!(keys.contains(&"ansible_memtotal_mb".to_string()));
    assert!(!keys.contains(&"ansible_hostname".to_string()));
    assert!(facts["ansible_facts"]["memtotal_mb"].is_number());
}

#[tokio::test]
async fn authorized_key_writes_once_with_private_mode() {
    let mut h = Harness::new();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let path = h.path("ssh/authorized_keys");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOZ test@ci";
    let args = json!({"user": user, "key": key, "path": path});
    h.check_mode = true;
    assert!(h.ok(&AuthorizedKey, args.clone()).await.changed);
    assert!(!std::path::Path::new(&path).exists());
    h.check_mode = false;
    assert!(h.ok(&AuthorizedKey, args.clone()).await.changed);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{key}\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!h.ok(&AuthorizedKey, args).await.changed);
    let r = h
        .ok(
            &AuthorizedKey,
            json!({"user": user, "key": key, "path": path, "state": "absent"}),
        )
        .await;
    assert!(r.changed);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    let r = h
        .ok(
            &AuthorizedKey,
            json!({"user": "no-such-user-xyz", "key": key}),
        )
        .await;
    assert!(r.failed);
    assert!(
        h.run(&AuthorizedKey, json!({"user": user, "key": "not a key"}))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn service_reports_a_missing_service_clearly() {
    let h = Harness::new();
    let r = h
        .ok(
            &Service::SERVICE,
            json!({"name": "no-such-service-xyz", "state": "started"}),
        )
        .await;
    assert!(r.failed);
    let msg = r.msg.unwrap();
    assert!(msg.contains("no-such-service-xyz"), "{msg}");
    let err = h
        .run(&Service::SYSTEMD, json!({"name": "x", "state": "begun"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("must be one of started, stopped, restarted, reloaded"),
        "{err}"
    );
}
