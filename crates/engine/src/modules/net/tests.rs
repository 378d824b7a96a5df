//! The network modules against the local host: real files, real loopback sockets,
//! real curl, tar, unzip and rsync.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::get_url::GetUrl;
use super::synchronize::{SyncOpts, Synchronize, rsync_args, ssh_words};
use super::unarchive::Unarchive;
use super::wait_for::WaitFor;
use super::wait_for_connection::WaitForConnection;
use crate::connection::{ConnectionKind, HostKeyPolicy};
use crate::modules::testutil::Harness;

#[tokio::test]
async fn wait_for_paths_ports_and_timeouts() {
    let h = Harness::new();
    let p = h.path("ready");
    std::fs::write(&p, "state: up\n").unwrap();
    assert!(
        !h.ok(&WaitFor, json!({"path": p, "timeout": 5}))
            .await
            .failed
    );
    assert!(
        !h.ok(
            &WaitFor,
            json!({"path": p, "search_regex": "up$", "timeout": 5})
        )
        .await
        .failed
    );
    assert!(
        !h.ok(
            &WaitFor,
            json!({"path": h.path("gone"), "state": "absent", "timeout": 5})
        )
        .await
        .failed
    );
    let r = h
        .ok(&WaitFor, json!({"path": h.path("never"), "timeout": 1}))
        .await;
    assert!(r.failed);
    assert_eq!(
        r.msg.unwrap(),
        format!("Timeout when waiting for file {}", h.path("never"))
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = h
        .ok(
            &WaitFor,
            json!({"host": "127.0.0.1", "port": port, "timeout": 5}),
        )
        .await;
    assert!(!r.failed, "{:?}", r.msg);
    drop(listener);
    let r = h
        .ok(
            &WaitFor,
            json!({"port": port, "state": "stopped", "timeout": 5}),
        )
        .await;
    assert!(!r.failed, "{:?}", r.msg);
    let r = h
        .ok(
            &WaitFor,
            json!({"port": port, "timeout": 1, "msg": "spark master did not start"}),
        )
        .await;
    assert_eq!(r.msg.as_deref(), Some("spark master did not start"));
    assert!(
        h.run(&WaitFor, json!({"host": "a;b", "port": 1}))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn wait_for_connection_succeeds_on_a_live_host() {
    let h = Harness::new();
    let r = h.ok(&WaitForConnection, json!({"timeout": 5})).await;
    assert!(!r.failed && !r.changed);
}

#[tokio::test]
async fn get_url_downloads_once_and_verifies_checksums() {
    let mut h = Harness::new();
    let src = h.path("source.bin");
    std::fs::write(&src, "payload").unwrap();
    let url = format!("file://{src}");
    let sum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"payload"))
    };
    let dest = h.path("dl");
    std::fs::create_dir(&dest).unwrap();
    let args =
        json!({"url": url, "dest": dest, "checksum": format!("sha256:{sum}"), "mode": "0600"});
    h.check_mode = true;
    assert!(h.ok(&GetUrl, args.clone()).await.changed);
    assert!(!std::path::Path::new(&format!("{dest}/source.bin")).exists());
    h.check_mode = false;
    let r = h.ok(&GetUrl, args.clone()).await;
    assert!(r.changed, "{:?}", r.msg);
    assert_eq!(r.data["dest"], json!(format!("{dest}/source.bin")));
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/source.bin")).unwrap(),
        "payload"
    );
    assert!(!h.ok(&GetUrl, args).await.changed);
    let bad =
        json!({"url": url, "dest": h.path("x"), "checksum": format!("sha256:{}", "0".repeat(64))});
    let r = h.ok(&GetUrl, bad).await;
    assert!(r.failed && r.msg.unwrap().contains("did not match"));
    assert!(!std::path::Path::new(&h.path("x")).exists());
    let err = h
        .run(&GetUrl, json!({"url": "example.com/x", "dest": "/tmp/x"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("argument 'url' must start with"),
        "{err}"
    );
}

#[tokio::test]
async fn get_url_compares_like_ansible_in_check_mode_too() {
    let mut h = Harness::new();
    let (one, two) = (h.path("one"), h.path("two"));
    std::fs::write(&one, "one\n").unwrap();
    std::fs::write(&two, "two\n").unwrap();
    let dest = h.path("dest");
    let args = |src: &str| json!({"url": format!("file://{src}"), "dest": dest});
    assert!(h.ok(&GetUrl, args(&one)).await.changed);
    assert!(!h.ok(&GetUrl, args(&one)).await.changed);
    // The file exists and force is off, but the source changed: Ansible compares and
    // replaces; check mode says so without writing.
    h.check_mode = true;
    assert!(h.ok(&GetUrl, args(&two)).await.changed);
    assert!(!h.ok(&GetUrl, args(&one)).await.changed);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "one\n");
    // A missing directory fails in check mode as in a real run.
    let r = h
        .ok(
            &GetUrl,
            json!({"url": format!("file://{one}"), "dest": h.path("nodir/x")}),
        )
        .await;
    assert!(r.failed, "{r:?}");
    assert_eq!(
        r.msg.unwrap(),
        format!("Destination {} does not exist", h.path("nodir"))
    );
    h.check_mode = false;
    let r = h.ok(&GetUrl, args(&two)).await;
    assert!(r.changed);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "two\n");
    let leftovers: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".get_url"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A one-file web server: `304` to a request with `If-Modified-Since`, else the body
/// (none for `HEAD`). Returns its URL and the request heads it saw.
fn tiny_http(body: &'static str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/f.txt", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let reply = if head.to_ascii_lowercase().contains("if-modified-since:") {
                "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_string()
            } else if head.starts_with("HEAD") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = s.write_all(reply.as_bytes());
            log.lock().unwrap().push(head);
        }
    });
    (url, seen)
}

#[tokio::test]
async fn get_url_over_http_asks_if_modified_and_heads_in_check_mode() {
    let mut h = Harness::new();
    let (url, seen) = tiny_http("web\n");
    let dest = h.path("web.txt");
    let args = json!({"url": url, "dest": dest});
    // Check mode without the file: a HEAD request, changed.
    h.check_mode = true;
    assert!(h.ok(&GetUrl, args.clone()).await.changed);
    assert!(seen.lock().unwrap()[0].starts_with("HEAD "));
    assert!(!std::path::Path::new(&dest).exists());
    h.check_mode = false;
    let r = h.ok(&GetUrl, args.clone()).await;
    assert!(r.changed, "{r:?}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "web\n");
    // The file exists: If-Modified-Since, and the server's 304 keeps it (check mode too).
    assert!(!h.ok(&GetUrl, args.clone()).await.changed);
    h.check_mode = true;
    assert!(!h.ok(&GetUrl, args.clone()).await.changed);
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 4, "{heads:?}");
    assert!(
        heads[2..]
            .iter()
            .all(|r| r.to_ascii_lowercase().contains("if-modified-since:"))
    );
    // force: no condition, and check mode compares with HEAD's empty body: changed.
    let forced = json!({"url": url, "dest": dest, "force": true});
    assert!(h.ok(&GetUrl, forced).await.changed);
}

#[tokio::test]
async fn unarchive_strips_components_idempotently_and_keeps_newer_files() {
    let h = Harness::new();
    let src = h.dir.path().join("src/top/sub");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("../a.txt"), "A\n").unwrap();
    std::fs::write(src.join("b.txt"), "B\n").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    for f in ["../a.txt", "b.txt"] {
        let file = std::fs::File::options()
            .write(true)
            .open(src.join(f))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    let tgz = h.path("t.tgz");
    let st = std::process::Command::new("tar")
        .args([
            "-czf",
            &tgz,
            "-C",
            h.dir.path().join("src").to_str().unwrap(),
            "top",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // --strip-components: tar --diff errs on the stripped top directory's empty name;
    // that line does not count, so the second run is ok.
    let flat = h.path("flat");
    std::fs::create_dir(&flat).unwrap();
    let args = json!({"src": tgz, "dest": flat, "remote_src": true, "extra_opts": ["--strip-components=1"]});
    assert!(h.ok(&Unarchive, args.clone()).await.changed);
    assert_eq!(
        std::fs::read_to_string(format!("{flat}/sub/b.txt")).unwrap(),
        "B\n"
    );
    let r = h.ok(&Unarchive, args).await;
    assert!(!r.changed && !r.failed, "{r:?}");
    // keep_newer: a file newer than the archive's stays (Ansible still reports changed,
    // since tar --diff sees it differ); an older one is replaced.
    let keep = h.path("keep");
    std::fs::create_dir(&keep).unwrap();
    let args = json!({"src": tgz, "dest": keep, "remote_src": true, "keep_newer": true});
    assert!(h.ok(&Unarchive, args.clone()).await.changed);
    assert!(!h.ok(&Unarchive, args.clone()).await.changed);
    std::fs::write(format!("{keep}/top/a.txt"), "NEW\n").unwrap();
    std::fs::write(format!("{keep}/top/sub/b.txt"), "OLD\n").unwrap();
    let b = std::fs::File::options()
        .write(true)
        .open(format!("{keep}/top/sub/b.txt"))
        .unwrap();
    b.set_modified(old - Duration::from_secs(86_400)).unwrap();
    let r = h.ok(&Unarchive, args).await;
    assert!(r.changed && !r.failed, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(format!("{keep}/top/a.txt")).unwrap(),
        "NEW\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{keep}/top/sub/b.txt")).unwrap(),
        "B\n"
    );
}

#[tokio::test]
async fn unarchive_zip_keep_newer_leaves_newer_files_out() {
    let h = Harness::new();
    let zip = h.path("k.zip");
    // Members dated 2020-01-01 (local time, as zip stores it).
    let st = std::process::Command::new("python3")
        .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1],'w'); [z.writestr(zipfile.ZipInfo(n, (2020,1,1,0,0,0)), t) for n, t in (('a.txt','A'),('b.txt','B'))]; z.close()", &zip])
        .status()
        .unwrap();
    assert!(st.success());
    let dest = h.path("kz");
    std::fs::create_dir(&dest).unwrap();
    let args = json!({"src": zip, "dest": dest, "remote_src": true, "keep_newer": true});
    assert!(h.ok(&Unarchive, args.clone()).await.changed);
    // a.txt edited now (newer than its member): left alone, and not a change.
    std::fs::write(format!("{dest}/a.txt"), "edited").unwrap();
    let r = h.ok(&Unarchive, args.clone()).await;
    assert!(!r.changed && !r.failed, "{r:?}");
    // b.txt older than its member: replaced; a.txt still kept.
    std::fs::write(format!("{dest}/b.txt"), "old").unwrap();
    let b = std::fs::File::options()
        .write(true)
        .open(format!("{dest}/b.txt"))
        .unwrap();
    b.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    let r = h.ok(&Unarchive, args).await;
    assert!(r.changed && !r.failed, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/a.txt")).unwrap(),
        "edited"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/b.txt")).unwrap(),
        "B"
    );
}

#[tokio::test]
async fn unarchive_tar_and_zip_idempotently() {
    let mut h = Harness::new();
    let files = h.dir.path().join("files");
    let tree = h.dir.path().join("tree/app");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("conf"), "x=1\n").unwrap();
    let tgz = files.join("app.tgz");
    let st = std::process::Command::new("tar")
        .args([
            "-czf",
            tgz.to_str().unwrap(),
            "-C",
            h.dir.path().join("tree").to_str().unwrap(),
            "app",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let dest = h.path("out");
    std::fs::create_dir(&dest).unwrap();
    let args = json!({"src": "app.tgz", "dest": dest});
    // Check mode: Ansible's tar handler skips the task.
    h.check_mode = true;
    let r = h.ok(&Unarchive, args.clone()).await;
    assert!(r.skipped && !r.changed, "{r:?}");
    assert!(!std::path::Path::new(&format!("{dest}/app/conf")).exists());
    h.check_mode = false;
    let r = h.ok(&Unarchive, args.clone()).await;
    assert!(r.changed, "{:?}", r.msg);
    assert_eq!(r.data["handler"], json!("TgzArchive"));
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/app/conf")).unwrap(),
        "x=1\n"
    );
    assert!(!h.ok(&Unarchive, args).await.changed);
    // A remote zip, compared member by member.
    let zip = h.path("app.zip");
    let st = std::process::Command::new("python3")
        .args(["-c", "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1],'w'); z.writestr('z/a.txt','A'); z.close()", &zip])
        .status()
        .unwrap();
    assert!(st.success());
    let args = json!({"src": zip, "dest": dest, "remote_src": true});
    let r = h.ok(&Unarchive, args.clone()).await;
    assert!(r.changed, "{:?}", r.msg);
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/z/a.txt")).unwrap(),
        "A"
    );
    assert!(!h.ok(&Unarchive, args).await.changed);
    let r = h
        .ok(
            &Unarchive,
            json!({"src": zip, "dest": h.path("missing"), "remote_src": true}),
        )
        .await;
    assert!(r.failed && r.msg.unwrap().contains("must be an existing dir"));
    let r = h
        .ok(
            &Unarchive,
            json!({"src": zip, "dest": dest, "remote_src": true, "creates": format!("{dest}/z")}),
        )
        .await;
    assert!(!r.changed);
}

#[tokio::test]
async fn synchronize_local_paths_reports_changes_from_rsync() {
    let mut h = Harness::new();
    let src = h.dir.path().join("files/site");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("index.html"), "hi").unwrap();
    let dest = h.path("www");
    let args = json!({"src": "site/", "dest": dest, "delete": true});
    h.check_mode = true;
    assert!(h.ok(&Synchronize, args.clone()).await.changed);
    assert!(!std::path::Path::new(&dest).exists());
    h.check_mode = false;
    let r = h.ok(&Synchronize, args.clone()).await;
    assert!(r.changed, "{:?}", r.msg);
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/index.html")).unwrap(),
        "hi"
    );
    assert!(!h.ok(&Synchronize, args.clone()).await.changed);
    std::fs::write(format!("{dest}/stale"), "x").unwrap();
    assert!(h.ok(&Synchronize, args).await.changed);
    assert!(
        !std::path::Path::new(&format!("{dest}/stale")).exists(),
        "delete removes extra files"
    );
}

#[test]
fn synchronize_builds_ssh_from_the_connection_spec() {
    let h = Harness::new();
    let mut jump = h.spec.clone();
    jump.kind = ConnectionKind::Ssh;
    jump.address = "203.0.113.9".into();
    jump.user = "ubuntu".into();
    jump.identity_files = vec![PathBuf::from("/keys/my key")];
    let mut spec = jump.clone();
    spec.address = "10.0.0.5".into();
    spec.port = 2222;
    spec.host_key_policy = HostKeyPolicy::Strict;
    spec.known_hosts_files = vec![PathBuf::from("/state/known_hosts")];
    spec.connect_timeout = Duration::from_secs(7);
    spec.jump = Some(Box::new(jump));
    let words = ssh_words(&spec);
    assert_eq!(&words[..3], ["ssh", "-p", "2222"]);
    assert!(words.contains(&"StrictHostKeyChecking=yes".to_string()));
    assert!(
        words
            .iter()
            .any(|w| w.starts_with("UserKnownHostsFile=/state/known_hosts "))
    );
    let proxy = words
        .iter()
        .find(|w| w.starts_with("ProxyCommand="))
        .unwrap();
    assert!(proxy.contains("-i '/keys/my key'"), "{proxy}");
    assert!(proxy.ends_with("-W %h:%p ubuntu@203.0.113.9"), "{proxy}");
    assert!(
        proxy.contains("StrictHostKeyChecking=accept-new"),
        "{proxy}"
    );
    let o = SyncOpts {
        src: "/a/".into(),
        dest: "/b".into(),
        pull: false,
        flags: vec!["--archive".into()],
        rsync_path: None,
    };
    let args = rsync_args(&o, &spec).unwrap();
    assert_eq!(args.last().unwrap(), "ubuntu@10.0.0.5:/b");
    let e = &args[args.iter().position(|a| a == "-e").unwrap() + 1];
    assert!(e.contains("\"ProxyCommand=ssh -p 22"), "{e}");
}
