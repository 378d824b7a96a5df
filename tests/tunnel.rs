//! `tunnel` end to end against real machines: devcloud with the netns backend makes the
//! master (a network namespace with its own sshd), an HTTP server listens on the master's
//! fixed IP on the Spark master UI's port (so loopback forwarding would not reach it), and
//! `spark-openstack tunnel --json` must list exactly that service, carry HTTP through the
//! local port it printed (and through a port asked for with `--port`), leave out what does
//! not listen, stop with exit 0 on SIGINT, and name the cluster and address when the master
//! cannot be reached. No Spark is installed (`launch --cloud-only`): seconds, not minutes.
//!
//! The machines behave like a cloud's: the login user is the image's (`debian`, taken from
//! its `os_admin_user` without `--ssh-user`), sshd answers a few seconds after ACTIVE, and
//! the security groups let only SSH in, so the page is reached through the tunnel or not at
//! all. Needs root, `ip`, `sshd`, `ssh-keygen` and `python3`; skipped with the reason
//! otherwise, but failed when `CI` is set.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

/// A child process killed on drop (the HTTP server, a tunnel that failed an assertion).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 -m http.server` in the master's network namespace, bound to `addr:port` only,
/// serving `root`; returns once it listens.
fn http_server(netns: &str, addr: &str, port: u16, root: &Path) -> Reaped {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, PYTHON, "-u", "-m", "http.server"])
        .arg(port.to_string())
        .args(["--bind", addr, "--directory"])
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3 -m http.server");
    let stdout = child.stdout.take().unwrap();
    let server = Reaped(child);
    let first = support::first_line(stdout, Duration::from_secs(20));
    assert!(
        first
            .as_deref()
            .is_some_and(|l| l.starts_with("Serving HTTP")),
        "the HTTP server did not start: {first:?}"
    );
    server
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A port nothing listens on right now (the kernel's pick, released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tunnel_forwards_what_runs_on_the_master_and_stops_on_sigint() {
    if let Some(why) = support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh-keygen",
            "/usr/sbin/ip",
            PYTHON,
        ],
        "apt-get install openssh-server iproute2 python3",
    ) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the tunnel test cannot run in CI: {why}"
        );
        eprintln!("SKIPPED tunnel test: {why}");
        return;
    }
    // Its own prefix and range of addresses (see `TestCloud::netns`).
    let cloud = support::TestCloud::netns("u", (250, 5));
    // Cloud resources only: a master with sshd and the key (imported from its .pub), no
    // Spark.
    cloud.cluster(&[
        "launch",
        "tun",
        "-s",
        "0",
        "-a",
        "debian-12",
        "-k",
        "tunnel",
        "-t",
        "m1.small",
        "--cloud-only",
    ]);
    let d: Value = serde_json::from_str(&cloud.ok(&["describe", "tun", "--json"])).unwrap();
    let fixed = d["master"]["fixed_ip"]
        .as_str()
        .expect("fixed IP")
        .to_string();
    let address = d["master_address"].as_str().expect("address").to_string();

    // The master's sshd answers once the machine has booted.
    let start = Instant::now();
    loop {
        let out = cloud
            .cluster_cmd(&["run-command", "tun", "--master-only", "true"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the master never answered SSH: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The "Spark master UI": a page only the master's fixed IP serves.
    let netns = cloud.namespaces();
    assert_eq!(netns.len(), 1, "one machine, one namespace: {netns:?}");
    let www = cloud.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let token = format!("spark master UI stand-in {}", std::process::id());
    std::fs::write(www.join("index.html"), &token).unwrap();
    let server = http_server(&netns[0], &fixed, 8080, &www);

    let asked = free_port();
    let log = std::fs::File::create(cloud.path("tunnel.err")).unwrap();
    let mut tunnel = Reaped(
        cloud
            .cluster_cmd(&[
                "tunnel",
                "tun",
                "--json",
                "-v",
                "--port",
                &format!("spark_master={asked}"),
            ])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let stdout = tunnel.0.stdout.take().unwrap();
    let err_log = || std::fs::read_to_string(cloud.path("tunnel.err")).unwrap_or_default();
    let line = support::first_line(stdout, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("tunnel printed no mapping; stderr:\n{}", err_log()));
    let map: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));

    // Exactly what runs: the stand-in on 8080, nothing of what does not listen.
    let names: Vec<&String> = map.as_object().unwrap().keys().collect();
    assert_eq!(names, ["spark_master"], "{line}");
    let m = &map["spark_master"];
    assert_eq!(m["local_port"], asked, "{line}");
    assert_eq!(m["url"], format!("http://localhost:{asked}/"), "{line}");
    assert_eq!(m["remote"], format!("{fixed}:8080"), "{line}");

    // The page through the local port, twice at once (one channel per connection).
    let pages: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || support::http_get(asked, "/index.html")))
        .collect();
    for p in pages {
        let (status, body) = p.join().unwrap();
        assert!(status.contains(" 200 "), "{status}\n{body}");
        assert!(body.contains(&token), "{body}");
    }
    let (status, _) = support::http_get(asked, "/no-such-page");
    assert!(status.contains(" 404 "), "{status}");

    // Ctrl-C: exit 0, and -v said what was skipped.
    kill(Pid::from_raw(tunnel.0.id() as i32), Signal::SIGINT).unwrap();
    let st = wait_exit(&mut tunnel.0, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("tunnel did not stop on SIGINT; stderr:\n{}", err_log()));
    let err = err_log();
    assert_eq!(st.code(), Some(0), "stderr:\n{err}");
    for skipped in ["spark_connect", "hdfs_namenode", "spark_application"] {
        assert!(err.contains(&format!("skipped {skipped}:")), "{err}");
    }
    assert!(
        TcpStream::connect(("127.0.0.1", asked)).is_err(),
        "the local port still listens after the tunnel stopped"
    );

    // A free port when none is asked for; SIGTERM stops it too.
    let mut tunnel = Reaped(
        cloud
            .cluster_cmd(&["tunnel", "tun"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let line = support::first_line(tunnel.0.stdout.take().unwrap(), Duration::from_secs(60))
        .expect("tunnel printed nothing");
    let url = line
        .strip_prefix("spark_master")
        .map(str::trim)
        .unwrap_or_else(|| panic!("{line}"));
    let port: u16 = url
        .strip_prefix("http://localhost:")
        .and_then(|p| p.strip_suffix('/'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let (status, body) = support::http_get(port, "/");
    assert!(status.contains(" 200 ") && body.contains(&token), "{body}");
    kill(Pid::from_raw(tunnel.0.id() as i32), Signal::SIGTERM).unwrap();
    let st = wait_exit(&mut tunnel.0, Duration::from_secs(20)).expect("stops on SIGTERM");
    assert_eq!(st.code(), Some(0));

    // A master whose sshd is gone: one error naming the cluster and the address.
    drop(server);
    cloud.cluster(&["stop", "tun", "--yes"]);
    let out = cloud.cluster_cmd(&["tunnel", "tun"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("cluster 'tun'") && err.contains(&address),
        "{err}"
    );
}
