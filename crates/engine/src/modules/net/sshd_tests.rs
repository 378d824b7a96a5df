//! `synchronize` against a real OpenSSH server on a loopback port, with throw-away host
//! and client keys: push, pull, idempotence, and the jump-host `ProxyCommand`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::json;

use super::synchronize::Synchronize;
use crate::connection::{ConnectionKind, ConnectionSpec, HostKeyPolicy};
use crate::modules::testutil::Harness;

/// An sshd child that is killed when the test ends.
struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed");
    assert!(st.success());
}

/// Starts sshd on a free loopback port, trusting `client_key.pub`.
fn start_sshd(dir: &Path) -> (Sshd, u16, PathBuf) {
    let host_key = dir.join("host_key");
    let client_key = dir.join("client_key");
    keygen(&host_key);
    keygen(&client_key);
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             PermitRootLogin yes\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             AllowTcpForwarding yes\nSubsystem sftp internal-sftp\n",
            host_key.display(),
            dir.join("authorized_keys").display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let _ = std::fs::create_dir_all("/run/sshd");
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("/usr/sbin/sshd (openssh-server) must be installed");
    let sshd = Sshd(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (sshd, port, client_key);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sshd did not start on port {port}");
}

fn spec(port: u16, key: &Path, known_hosts: &Path) -> ConnectionSpec {
    ConnectionSpec {
        name: "node1".into(),
        kind: ConnectionKind::Ssh,
        address: "127.0.0.1".into(),
        port,
        user: nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap()
            .name,
        identity_files: vec![key.to_path_buf()],
        jump: None,
        host_key_policy: HostKeyPolicy::AcceptNew,
        known_hosts_files: vec![known_hosts.to_path_buf()],
        connect_timeout: Duration::from_secs(10),
        connect_retries: 1,
    }
}

#[tokio::test]
async fn push_pull_and_jump_over_real_ssh() {
    let mut h = Harness::new();
    let (_sshd, port, key) = start_sshd(h.dir.path());
    let known = h.dir.path().join("known_hosts");
    h.spec = spec(port, &key, &known);
    let site = h.dir.path().join("files/site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("a.txt"), "A").unwrap();
    let dest = h.path("remote-www");

    let push = json!({"src": "site/", "dest": dest});
    let r = h.ok(&Synchronize, push.clone()).await;
    assert!(!r.failed, "{:?}", r.msg);
    assert!(r.changed);
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/a.txt")).unwrap(),
        "A"
    );
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains("ssh-ed25519"),
        "accept-new learned the host key"
    );
    let r = h.ok(&Synchronize, push).await;
    assert!(!r.changed && !r.failed, "{:?}", r.msg);

    let back = h.path("pulled");
    let r = h
        .ok(
            &Synchronize,
            json!({"mode": "pull", "src": format!("{dest}/a.txt"), "dest": back}),
        )
        .await;
    assert!(r.changed && !r.failed, "{:?}", r.msg);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "A");

    // Through a jump host (the same sshd): rsync's ssh runs `ssh -W` with the jump's options.
    let mut via_jump = h.spec.clone();
    via_jump.jump = Some(Box::new(h.spec.clone()));
    h.spec = via_jump;
    std::fs::write(site.join("b.txt"), "B").unwrap();
    let r = h
        .ok(&Synchronize, json!({"src": "site/", "dest": dest}))
        .await;
    assert!(r.changed && !r.failed, "{:?}", r.msg);
    assert_eq!(
        std::fs::read_to_string(format!("{dest}/b.txt")).unwrap(),
        "B"
    );

    // A wrong key is refused and reported, not hung on a prompt.
    h.spec.jump = None;
    h.spec.identity_files = vec![h.dir.path().join("host_key")];
    let r = h
        .ok(&Synchronize, json!({"src": "site/", "dest": dest}))
        .await;
    assert!(r.failed);
    assert!(r.msg.unwrap().contains("rsync exited with"));
}
