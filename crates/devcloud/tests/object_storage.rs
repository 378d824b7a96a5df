//! devcloud with object storage, served in-process as tests embed it: the real Swift
//! servers it starts answer, the catalog points at them, and dropping the server (the
//! test's cloud going away) stops every one of them. Skipped when Swift is not installed
//! (`.ci/run` installs it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use devcloud::backend::RecordsBackend;
use devcloud::config::{Config, ObjectStorage};

/// One HTTP/1.0 exchange: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn swift_processes(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains(&needle) && cmd.contains("swift-")).then_some(cmd)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_answers_behind_the_catalog_and_stops_with_the_server() {
    if let Err(e) = devcloud::swift::check_installed() {
        eprintln!("skipped: {e}");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("dc-swift-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let path = dir.path().to_path_buf();
    let cfg = Config {
        object_storage: ObjectStorage { enabled: true },
        ..Config::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let server = tokio::spawn(async move {
        let listen = "127.0.0.1:0".parse().unwrap();
        devcloud::serve_with(cfg, &path, listen, Arc::new(RecordsBackend), move |a| {
            let _ = tx.send(a);
        })
        .await
    });
    let addr = match tokio::time::timeout(Duration::from_secs(120), rx).await {
        Ok(Ok(addr)) => addr,
        Ok(Err(_)) => panic!("devcloud failed: {:?}", server.await),
        Err(_) => panic!("devcloud with Swift did not start in 120 s"),
    };
    assert_eq!(swift_processes(dir.path()).len(), 4);

    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    let password = state["users"][0]["password"].as_str().unwrap();
    let auth = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password":
        {"user": {"name": "demo", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}});
    let addr = addr.to_string();
    let (code, body) = tokio::task::spawn_blocking(move || {
        http(&addr, "POST", "/identity/v3/auth/tokens", &auth.to_string())
    })
    .await
    .unwrap();
    assert_eq!(code, 201, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let url = |kind: &str| {
        token["token"]["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == kind)
            .and_then(|s| s["endpoints"][0]["url"].as_str())
            .unwrap_or_else(|| panic!("no {kind} in the catalog"))
            .to_string()
    };
    let s3 = url("s3");
    let project = token["token"]["project"]["id"].as_str().unwrap();
    assert_eq!(url("object-store"), format!("{s3}/v1/AUTH_{project}"));
    // https, with a certificate for the proxy's address signed by devcloud's CA.
    assert!(s3.starts_with("https://127.0.0.1:"), "{s3}");
    let ca = devcloud::swift::ca_file(dir.path());
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .arg(format!("{s3}/healthcheck"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK", "{out:?}");

    // The server goes away as a test's does: its future is dropped.
    server.abort();
    let _ = server.await;
    let left = swift_processes(dir.path());
    assert!(left.is_empty(), "Swift outlived devcloud: {left:#?}");
}
