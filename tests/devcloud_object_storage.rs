//! devcloud's object storage: a real OpenStack Swift behind devcloud's Keystone, reached the
//! two ways a cloud offers it. The real `openstack` CLI (`OPENSTACK_BIN`) makes EC2
//! credentials and containers and lists objects over Swift's native API (tokens checked by
//! keystonemiddleware against devcloud); curl signs S3 requests with AWS SigV4, which s3api
//! and s3token have devcloud's `/v3/s3tokens` check. Skipped without `OPENSTACK_BIN` or
//! without Swift installed (`.ci/run` installs both).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::TestCloud;

fn skip_reason() -> Option<String> {
    if std::env::var("OPENSTACK_BIN").is_err() {
        return Some("set OPENSTACK_BIN to python-openstackclient's `openstack`".into());
    }
    [
        "swift-proxy-server",
        "swift-object-server",
        "swift-ring-builder",
    ]
    .iter()
    .find(|p| !Path::new("/usr/bin").join(p).exists())
    .map(|p| format!("{p} missing ({})", devcloud::swift::INSTALL_HINT))
}

/// The real `openstack` CLI against the test's cloud.
fn openstack(cloud: &TestCloud, args: &[&str]) -> Output {
    Command::new(std::env::var("OPENSTACK_BIN").unwrap())
        .args(args)
        .env("OS_CLIENT_CONFIG_FILE", cloud.path("clouds.yaml"))
        .env("OS_CLOUD", "devcloud")
        .env("HOME", cloud.path("home"))
        .output()
        .expect("run openstack")
}

fn openstack_json(cloud: &TestCloud, args: &[&str]) -> Value {
    let out = support::succeeded(args, openstack(cloud, args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

/// An S3 request signed by curl with AWS SigV4 (region RegionOne, service s3), as any S3
/// client signs it; S3 wants the payload's SHA-256 in `x-amz-content-sha256`. Over https,
/// trusting devcloud's CA `ca` only.
/// Returns (HTTP status, body).
fn s3(
    ca: &Path,
    method: &str,
    url: &str,
    access: &str,
    secret: &str,
    body: Option<&Path>,
) -> (u16, String) {
    let payload = body.map(|p| std::fs::read(p).unwrap()).unwrap_or_default();
    let hash = hex::encode(Sha256::digest(&payload));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "--aws-sigv4", "aws:amz:RegionOne:s3"])
        .arg("--cacert")
        .arg(ca)
        .arg("--user")
        .arg(format!("{access}:{secret}"))
        .arg("-H")
        .arg(format!("x-amz-content-sha256: {hash}"))
        .args(["-w", "\n%{http_code}"]);
    if let Some(p) = body {
        cmd.arg("--data-binary").arg(format!("@{}", p.display()));
        cmd.args(["-H", "Content-Type: text/plain"]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl {method} {url}: {out:?}");
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The pids of processes whose command line mentions `needle` (here: the state dir, which
/// every Swift server's config path is under).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && cmdline.contains("swift-") {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

fn endpoint(catalog: &Value, kind: &str) -> String {
    catalog
        .as_array()
        .and_then(|a| a.iter().find(|s| s["Type"] == kind))
        .and_then(|s| s["Endpoints"].as_array())
        .and_then(|e| e.iter().find(|e| e["interface"] == "public"))
        .and_then(|e| e["url"].as_str())
        .unwrap_or_else(|| panic!("no public {kind} endpoint in {catalog:#}"))
        .to_string()
}

#[test]
fn s3_with_ec2_credentials_reaches_real_swift_and_down_stops_it() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let cloud = TestCloud::records("object_storage: {enabled: true}\n");
    let state_dir = cloud.path("state").display().to_string();
    let running = processes_mentioning(&state_dir);
    assert_eq!(
        running.len(),
        4,
        "account, container, object, proxy: {running:#?}"
    );

    // The catalog has Swift's proxy twice: native under /v1/AUTH_<project>, S3 at its root.
    let catalog = openstack_json(&cloud, &["catalog", "list", "-f", "json"]);
    let swift = endpoint(&catalog, "object-store");
    let s3_url = endpoint(&catalog, "s3");
    let project = cloud.state()["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(swift, format!("{s3_url}/v1/AUTH_{project}"));
    assert!(s3_url.starts_with("https://127.0.0.1:"), "{s3_url}");

    // https with devcloud's own CA, as a private cloud serves it: clouds.yaml names the CA
    // (the CLI calls below trust it through that), and a client that does not trust it is
    // refused the connection.
    let clouds: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(cloud.path("clouds.yaml")).unwrap())
            .unwrap();
    let ca = std::path::PathBuf::from(
        clouds["clouds"]["devcloud"]["cacert"]
            .as_str()
            .unwrap_or_else(|| panic!("no cacert in clouds.yaml: {clouds:#}")),
    );
    let untrusted = Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(format!("{s3_url}/healthcheck"))
        .output()
        .unwrap();
    assert!(
        !untrusted.status.success()
            && String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "{untrusted:?}"
    );

    // EC2 credentials, as a user gets them for any S3 tool.
    let cred = openstack_json(&cloud, &["ec2", "credentials", "create", "-f", "json"]);
    let access = cred["access"].as_str().unwrap().to_string();
    let secret = cred["secret"].as_str().unwrap().to_string();
    assert_eq!(cred["project_id"], project.as_str(), "{cred:#}");
    let list = openstack_json(&cloud, &["ec2", "credentials", "list", "-f", "json"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["Access"] == access.as_str()),
        "{list:#}"
    );

    // A container over the native API (authtoken asks devcloud's Keystone about the token).
    // Its name is a valid S3 bucket name (3-63 characters: s3api refuses `b1` with
    // InvalidBucketName, as real Swift does).
    support::succeeded(
        &["container create"],
        openstack(&cloud, &["container", "create", "bucket1"]),
    );

    // S3 PUT and GET, signed with the EC2 pair.
    let file = cloud.path("hello.txt");
    std::fs::write(&file, "hello from S3\n").unwrap();
    let object = format!("{s3_url}/bucket1/hello.txt");
    let (code, body) = s3(&ca, "PUT", &object, &access, &secret, Some(&file));
    assert_eq!(code, 200, "S3 PUT: {body}");
    let (code, body) = s3(&ca, "GET", &object, &access, &secret, None);
    assert_eq!((code, body.as_str()), (200, "hello from S3\n"));

    // The object S3 wrote is the one Swift lists.
    let objects = openstack_json(&cloud, &["object", "list", "bucket1", "-f", "json"]);
    assert_eq!(objects[0]["Name"], "hello.txt", "{objects:#}");

    // A wrong secret is refused by Keystone's signature check, as S3 reports it.
    let (code, body) = s3(&ca, "GET", &object, &access, "0123456789abcdef", None);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("SignatureDoesNotMatch") || body.contains("AccessDenied"),
        "{body}"
    );
    // So is an access key Keystone does not know.
    let (code, body) = s3(&ca, "GET", &object, "nosuchkey", &secret, None);
    assert_eq!(code, 403, "{body}");

    // Deleting the credential makes its signatures worthless.
    support::succeeded(
        &["ec2 credentials delete"],
        openstack(&cloud, &["ec2", "credentials", "delete", &access]),
    );
    let (code, _) = s3(&ca, "GET", &object, &access, &secret, None);
    assert_eq!(code, 403);

    // `devcloud down` leaves no Swift server behind.
    cloud.ok(&["devcloud", "down", "--state-dir", &state_dir]);
    let left = processes_mentioning(&state_dir);
    assert!(left.is_empty(), "Swift survived devcloud down: {left:#?}");
}
