//! devcloud behaviour through its HTTP API: auth, microversions, status transitions,
//! quotas, fault injection, persistence across restarts.

mod support;

use serde_json::json;
use support::TestCloud as Devcloud;

const FAST: &str = "boot_time: {min_ms: 1500, max_ms: 1500}\naction_time_ms: 100\n";

#[tokio::test]
async fn bad_password_gets_keystone_401() {
    let dc = Devcloud::records("");
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"name": "Default"}, "password": "wrong"}}}}});
    let resp = reqwest::Client::new()
        .post(format!("{}/identity/v3/auth/tokens", dc.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert!(
        resp.headers()["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req-")
    );
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], 401);
    assert_eq!(v["error"]["title"], "Unauthorized");
}

#[tokio::test]
async fn catalog_points_at_devcloud_and_tokens_are_required() {
    let dc = Devcloud::records("");
    let c = dc.login().await;
    let types: Vec<&str> = c.token_body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    for t in [
        "identity",
        "compute",
        "network",
        "image",
        "block-storage",
        "volumev3",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let resp = reqwest::get(format!("{}/compute/v2.1/flavors", dc.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn microversions_are_negotiated_and_echoed() {
    let dc = Devcloud::records("");
    let c = dc.login().await;
    let (status, headers, _) = c
        .call_mv("GET", "/compute/v2.1/flavors/4", None, "2.61")
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["openstack-api-version"], "compute 2.61");
    assert!(
        headers["x-compute-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req-")
    );
    let (status, _, v) = c
        .call_mv("GET", "/compute/v2.1/flavors", None, "2.200")
        .await;
    assert_eq!(status, 406);
    assert!(
        v["notAcceptable"]["message"]
            .as_str()
            .unwrap()
            .contains("2.200")
    );
    // The flavor is embedded in servers from 2.47 only.
    let (_, v) = c.boot("mv").await;
    let id = v["server"]["id"].as_str().unwrap();
    let (_, _, old) = c
        .call_mv("GET", &format!("/compute/v2.1/servers/{id}"), None, "2.46")
        .await;
    assert_eq!(old["server"]["flavor"]["id"], "2");
    let (_, _, new) = c
        .call_mv("GET", &format!("/compute/v2.1/servers/{id}"), None, "2.47")
        .await;
    assert_eq!(new["server"]["flavor"]["original_name"], "m1.small");
}

#[tokio::test]
async fn servers_move_through_build_active_shutoff_and_delete() {
    let dc = Devcloud::records(FAST);
    let c = dc.login().await;
    let (status, v) = c.boot("vm").await;
    assert_eq!(status, 202);
    let id = v["server"]["id"].as_str().unwrap().to_string();
    let (_, _, first) = c
        .call("GET", &format!("/compute/v2.1/servers/{id}"), None)
        .await;
    assert_eq!(first["server"]["status"], "BUILD");
    assert_eq!(first["server"]["addresses"], json!({}));
    let active = c.wait_status(&id, "ACTIVE").await;
    let addr = &active["server"]["addresses"]["private"][0];
    assert_eq!(addr["OS-EXT-IPS:type"], "fixed");
    assert!(addr["addr"].as_str().unwrap().starts_with("10.213.0."));
    let (_, _, ports) = c
        .call("GET", &format!("/network/v2.0/ports?device_id={id}"), None)
        .await;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 1);

    let (status, _, _) = c
        .call(
            "POST",
            &format!("/compute/v2.1/servers/{id}/action"),
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(status, 202);
    c.wait_status(&id, "SHUTOFF").await;
    let (status, _, v) = c
        .call(
            "POST",
            &format!("/compute/v2.1/servers/{id}/action"),
            Some(json!({"os-stop": null})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        v["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("vm_state stopped")
    );

    let (status, _, _) = c
        .call("DELETE", &format!("/compute/v2.1/servers/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _, v) = c
        .call("GET", &format!("/compute/v2.1/servers/{id}"), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(v["itemNotFound"]["code"], 404);
    let (_, _, ports) = c
        .call("GET", &format!("/network/v2.0/ports?device_id={id}"), None)
        .await;
    assert_eq!(ports["ports"], json!([]));
}

#[tokio::test]
async fn boot_errors_end_in_error_with_fault() {
    let dc = Devcloud::records("boot_time: {min_ms: 50, max_ms: 50}\nboot_error_rate: 1.0\n");
    let c = dc.login().await;
    let (_, v) = c.boot("doomed").await;
    let id = v["server"]["id"].as_str().unwrap();
    let v = c.wait_status(id, "ERROR").await;
    assert_eq!(v["server"]["fault"]["code"], 500);
    assert!(
        v["server"]["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("No valid host")
    );
}

#[tokio::test]
async fn quotas_are_enforced_with_each_services_error() {
    let dc = Devcloud::records("quotas: {instances: 1, security_groups: 2}\n");
    let c = dc.login().await;
    assert_eq!(c.boot("one").await.0, 202);
    let (status, v) = c.boot("two").await;
    assert_eq!(status, 403);
    assert!(
        v["forbidden"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Quota exceeded for instances")
    );
    // `default` counts: one more group fits, the next does not.
    let sg = |n: &str| Some(json!({"security_group": {"name": n}}));
    assert_eq!(
        c.call("POST", "/network/v2.0/security-groups", sg("a"))
            .await
            .0,
        201
    );
    let (status, _, v) = c
        .call("POST", "/network/v2.0/security-groups", sg("b"))
        .await;
    assert_eq!(status, 409);
    assert_eq!(v["NeutronError"]["type"], "OverQuota");
}

#[tokio::test]
async fn injected_faults_are_observable() {
    let dc = Devcloud::records(
        "faults:\n  compute: {error_5xx: 1.0}\n  network: {rate_limit: 1.0, retry_after_s: 7}\n  image: {drop_connection: 1.0}\n",
    );
    let c = dc.login().await;
    let (status, _, v) = c.call("GET", "/compute/v2.1/flavors", None).await;
    assert_eq!(status, 503);
    assert_eq!(v["serviceUnavailable"]["code"], 503);
    let (status, headers, v) = c.call("GET", "/network/v2.0/networks", None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert!(v["NeutronError"].is_object());
    let dropped = c
        .http
        .get(format!("{}/image/v2/images", c.base))
        .header("x-auth-token", &c.token)
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "the image request should have lost its connection");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dc = Devcloud::records(FAST);
    let c = dc.login().await;
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0bV2y0cuaQ8b5Hh9h8ZTuQn0tC8vOq3M6B6yEJ3cN test";
    let (status, _, _) = c
        .call(
            "POST",
            "/compute/v2.1/os-keypairs",
            Some(json!({"keypair": {"name": "k", "public_key": key}})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, v) = c.boot("persist").await;
    let id = v["server"]["id"].as_str().unwrap().to_string();
    let token = c.token.clone();
    // Restart while the server is still building: the boot resumes after the restart.
    let dc = dc.restart(FAST);
    let mut c2 = dc.login().await;
    c2.token = token; // tokens persist too
    let (status, _, v) = c2.call("GET", "/compute/v2.1/os-keypairs/k", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["keypair"]["public_key"], key);
    c2.wait_status(&id, "ACTIVE").await;
}

#[tokio::test]
async fn application_credentials_authenticate_without_scope() {
    let dc = Devcloud::records("");
    let c = dc.login().await;
    let user = c.token_body["token"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, v) = c
        .call(
            "POST",
            &format!("/identity/v3/users/{user}/application_credentials"),
            Some(json!({"application_credential": {"name": "ci"}})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let cred = &v["application_credential"];
    let auth = |scope: bool| {
        let mut b = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}});
        if scope {
            b["auth"]["scope"] = json!({"project": {"id": c.project_id}});
        }
        b
    };
    let url = format!("{}/identity/v3/auth/tokens", dc.url());
    let resp = c.http.post(&url).json(&auth(false)).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["token"]["project"]["id"], c.project_id.as_str());
    assert_eq!(body["token"]["application_credential"]["name"], "ci");
    let resp = c.http.post(&url).json(&auth(true)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn server_lists_paginate_and_filter_by_tags_and_metadata_edits() {
    let dc = Devcloud::records(FAST);
    let c = dc.login().await;
    let mut ids = vec![];
    for n in ["p1", "p2", "p3"] {
        let (_, v) = c.boot(n).await;
        ids.push(v["server"]["id"].as_str().unwrap().to_string());
    }
    let (_, _, page) = c.call("GET", "/compute/v2.1/servers?limit=2", None).await;
    assert_eq!(page["servers"].as_array().unwrap().len(), 2);
    let next = page["servers_links"][0]["href"].as_str().unwrap();
    assert!(next.contains("marker="));
    let path = next.strip_prefix(&c.base).unwrap();
    let (_, _, rest) = c.call("GET", path, None).await;
    let mut seen: Vec<String> = page["servers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["servers"].as_array().unwrap())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);

    let id = &ids[0];
    assert_eq!(
        c.call(
            "PUT",
            &format!("/compute/v2.1/servers/{id}/tags/spark"),
            None
        )
        .await
        .0,
        201
    );
    assert_eq!(
        c.call(
            "PUT",
            &format!("/compute/v2.1/servers/{id}/tags/spark"),
            None
        )
        .await
        .0,
        204
    );
    let (_, _, tagged) = c
        .call("GET", "/compute/v2.1/servers/detail?tags=spark", None)
        .await;
    assert_eq!(tagged["servers"].as_array().unwrap().len(), 1);
    assert_eq!(tagged["servers"][0]["id"], id.as_str());
    let (status, _, v) = c
        .call(
            "POST",
            &format!("/compute/v2.1/servers/{id}/metadata"),
            Some(json!({"metadata": {"role": "master"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["metadata"]["role"], "master");
    let (_, _, v) = c
        .call("GET", &format!("/compute/v2.1/servers/{id}"), None)
        .await;
    assert_eq!(v["server"]["metadata"]["role"], "master");
    assert_eq!(v["server"]["tags"], json!(["spark"]));
}

/// A client that hangs up mid-request (Ctrl-C during `launch`) does not cancel the request:
/// like Nova behind its WSGI server, devcloud finishes what it accepted, so the server
/// boots instead of staying BUILD without a boot task.
#[tokio::test]
async fn a_request_the_client_abandons_still_completes() {
    let dc = Devcloud::records("latency_ms: 500\nboot_time: {min_ms: 100, max_ms: 100}\n");
    let c = dc.login().await;
    let image = c
        .id_by_name("/image/v2/images", "images", "debian-12")
        .await;
    let net = c
        .id_by_name("/network/v2.0/networks", "networks", "private")
        .await;
    let abandoned = c
        .http
        .post(format!("{}/compute/v2.1/servers", c.base))
        .header("x-auth-token", &c.token)
        .timeout(std::time::Duration::from_millis(100))
        .json(
            &json!({"server": {"name": "abandoned", "imageRef": image, "flavorRef": "2",
            "networks": [{"uuid": net}]}}),
        )
        .send()
        .await;
    assert!(
        abandoned.as_ref().is_err_and(|e| e.is_timeout()),
        "the client should have given up first: {abandoned:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let id = loop {
        let (_, _, v) = c
            .call("GET", "/compute/v2.1/servers?name=abandoned", None)
            .await;
        if let Some(id) = v["servers"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned create was dropped: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    c.wait_status(&id, "ACTIVE").await;
}

/// Nova refuses a zone none of its hosts is in (and lists the zones it has), so a launch
/// with a mistyped `--zone` fails on devcloud as on a real cloud.
#[tokio::test]
async fn an_unknown_compute_zone_is_refused() {
    let dc = Devcloud::records("compute_zones: [az1, az2]\n");
    let c = dc.login().await;
    let (_, _, v) = c
        .call("GET", "/compute/v2.1/os-availability-zone", None)
        .await;
    let names: Vec<&str> = v["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zoneName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["az1", "az2"]);
    let image = c
        .id_by_name("/image/v2/images", "images", "debian-12")
        .await;
    let net = c
        .id_by_name("/network/v2.0/networks", "networks", "private")
        .await;
    let create = |az: &str| {
        json!({"server": {"name": "z", "imageRef": image, "flavorRef": "2",
            "availability_zone": az, "networks": [{"uuid": net}]}})
    };
    let (status, _, v) = c
        .call("POST", "/compute/v2.1/servers", Some(create("az3")))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["badRequest"]["message"],
        "The requested availability zone is not available"
    );
    let (status, _, v) = c
        .call("POST", "/compute/v2.1/servers", Some(create("az2")))
        .await;
    assert_eq!(status, 202, "{v}");
}

/// EC2 credentials and `/v3/s3tokens` as Keystone (Zed) answers them, without Swift: the
/// rules on who may see a credential, Keystone's status codes, and a signature made here
/// with the secret (the old V2 HMAC-SHA1 form; SigV4 goes through curl and real Swift in
/// devcloud_object_storage) exchanged for the credential's user and project.
#[tokio::test]
async fn ec2_credentials_and_s3tokens_follow_keystone() {
    use base64::Engine;
    let dc = Devcloud::records("");
    let c = dc.login().await;
    let me = c.token_body["token"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/identity/v3/users/{me}/credentials/OS-EC2");
    let (code, _, v) = c
        .call("POST", &base, Some(json!({"tenant_id": c.project_id})))
        .await;
    assert_eq!(code, 201, "{v}");
    let cred = &v["credential"];
    let access = cred["access"].as_str().unwrap().to_string();
    let secret = cred["secret"].as_str().unwrap().to_string();
    assert_eq!(cred["tenant_id"], c.project_id.as_str());
    assert_eq!(cred["user_id"], me.as_str());
    assert!(cred["trust_id"].is_null());
    assert_eq!(
        cred["links"]["self"],
        format!("{}{base}/{access}", dc.url()).as_str()
    );
    let (code, _, v) = c.call("GET", &base, None).await;
    assert_eq!(code, 200);
    assert_eq!(v["credentials"][0]["secret"], secret.as_str());
    let (code, _, v) = c.call("GET", &format!("{base}/{access}"), None).await;
    assert_eq!((code, &v["credential"]["access"]), (200, &json!(access)));
    // Keystone's /v3/credentials shows it as type ec2, the pair in a JSON blob, with the
    // access key's SHA-256 as id.
    let (code, _, v) = c
        .call("GET", "/identity/v3/credentials?type=ec2", None)
        .await;
    assert_eq!(code, 200);
    let listed = &v["credentials"][0];
    assert_eq!(listed["type"], "ec2");
    assert_eq!(
        listed["id"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(access.as_bytes())).as_str()
    );
    let blob: serde_json::Value = serde_json::from_str(listed["blob"].as_str().unwrap()).unwrap();
    assert_eq!(blob["secret"], secret.as_str());

    // Another user's credentials are not ours to list or make (403); an unknown project is
    // 404; an unknown access key 401, as Keystone answers it.
    let other = "/identity/v3/users/0123456789abcdef0123456789abcdef/credentials/OS-EC2";
    assert_eq!(c.call("GET", other, None).await.0, 403);
    let body = json!({"tenant_id": c.project_id});
    assert_eq!(c.call("POST", other, Some(body)).await.0, 403);
    let (code, _, v) = c
        .call("POST", &base, Some(json!({"tenant_id": "nosuchproject"})))
        .await;
    assert_eq!(
        (code, v["error"]["message"].as_str()),
        (404, Some("Could not find project: nosuchproject."))
    );
    let (code, _, v) = c.call("GET", &format!("{base}/nosuchkey"), None).await;
    assert_eq!(
        (code, v["error"]["message"].as_str()),
        (401, Some("EC2 access key not found."))
    );

    // s3tokens: the string to sign (base64url), the client's signature and the access key.
    let sts = "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/b1/hello.txt";
    let token = base64::engine::general_purpose::URL_SAFE.encode(sts);
    let key = secret.as_bytes();
    let signature = {
        // HMAC-SHA1 by hand, so the test does not reuse devcloud's own code.
        use sha1::{Digest, Sha1};
        let mut k = key.to_vec();
        k.resize(64, 0);
        let inner = Sha1::new()
            .chain_update(k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>())
            .chain_update(sts)
            .finalize();
        let outer = Sha1::new()
            .chain_update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>())
            .chain_update(inner)
            .finalize();
        base64::engine::general_purpose::STANDARD.encode(outer)
    };
    let http = reqwest::Client::new();
    let s3tokens = format!("{}/identity/v3/s3tokens", dc.url());
    let post = |creds: serde_json::Value| {
        http.post(&s3tokens)
            .json(&json!({"credentials": creds}))
            .send()
    };
    let resp = post(json!({"access": access, "token": token, "signature": signature}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("x-subject-token"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["token"]["user"]["id"], me.as_str());
    assert_eq!(v["token"]["project"]["id"], c.project_id.as_str());
    assert_eq!(v["token"]["methods"], json!(["ec2credential"]));
    assert!(
        v["token"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "member")
    );
    assert!(v["token"]["catalog"].is_array());
    for (creds, msg) in [
        (
            json!({"access": access, "token": token, "signature": "AAAA"}),
            "Credential signature mismatch",
        ),
        (
            json!({"access": "nosuchkey", "token": token, "signature": signature}),
            "EC2 access key not found.",
        ),
        (json!({"token": token}), "EC2 Signature not supplied"),
    ] {
        let resp = post(creds).await.unwrap();
        assert_eq!(resp.status(), 401);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["message"], msg);
    }
    let resp = http.get(&s3tokens).send().await.unwrap();
    assert_eq!(resp.status(), 405);

    // Deleted: 204, then unknown.
    assert_eq!(
        c.call("DELETE", &format!("{base}/{access}"), None).await.0,
        204
    );
    assert_eq!(
        c.call("DELETE", &format!("{base}/{access}"), None).await.0,
        401
    );
}
