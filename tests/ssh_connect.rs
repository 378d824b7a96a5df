//! Establishing SSH connections against real sshd hosts: host key policies, failures in
//! plain words, jump hosts and the connection manager.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use playbook_engine::connection::manager::ConnectionManager;
use playbook_engine::connection::{
    ConnError, ConnectionSpec, ExecRequest, HostKeyPolicy, Unreachable, ssh,
};
use sshd_testbed::TestbedOptions;

async fn fail(spec: &ConnectionSpec) -> (Unreachable, String) {
    match ssh::connect(spec, None).await {
        Ok(_) => panic!("connecting to {} should fail", spec.name),
        Err(ConnError::Unreachable { reason, detail }) => (reason, detail),
        Err(e) => panic!("expected unreachable, got: {e}"),
    }
}

fn keygen(path: &Path, passphrase: &str) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn accept_new_learns_and_a_changed_key_is_refused_with_file_and_line() {
    let scratch = tempfile::tempdir().unwrap();
    let kh = scratch.path().join("known_hosts");
    std::fs::write(&kh, "# learned keys follow\n").unwrap();
    let first = support::start(1);
    let mut spec = first.spec(0);
    // The testbed directory goes away with the first host; keep its client key.
    let key = scratch.path().join("id_ed25519");
    std::fs::copy(first.key(), &key).unwrap();
    spec.identity_files = vec![key];
    spec.host_key_policy = HostKeyPolicy::AcceptNew;
    spec.known_hosts_files = vec![kh.clone()];
    let c = ssh::connect(&spec, None).await.unwrap();
    c.close().await;
    let learned = std::fs::read_to_string(&kh).unwrap();
    let pattern = format!("[127.0.0.1]:{} ssh-ed25519 ", spec.port);
    assert!(
        learned.lines().nth(1).unwrap().starts_with(&pattern),
        "{learned}"
    );
    // Connecting again uses the learned key without adding it twice.
    ssh::connect(&spec, None).await.unwrap().close().await;
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), learned);

    // The "same" host comes back with a new host key on the same port.
    let port = spec.port;
    drop(first);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = TestbedOptions::new(dir.path(), 1, Some(port));
    opts.hosts[0].name = "host1".into();
    let _second = sshd_testbed::Testbed::up(&opts).unwrap();
    let (reason, detail) = fail(&spec).await;
    assert_eq!(
        reason,
        Unreachable::HostKeyMismatch {
            known_hosts: kh.clone(),
            line: 2
        }
    );
    assert!(detail.contains(&format!("{}:2", kh.display())), "{detail}");
    assert!(detail.contains("CHANGED"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_refuses_unknown_keys_and_off_accepts_them() {
    let h = support::start(1);
    let scratch = tempfile::tempdir().unwrap();
    let empty = scratch.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let mut spec = h.spec(0);
    spec.known_hosts_files = vec![empty.clone()];
    let (reason, detail) = fail(&spec).await;
    assert_eq!(reason, Unreachable::HostKeyUnknown);
    assert!(detail.contains("strict"), "{detail}");
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "strict must not learn"
    );
    spec.host_key_policy = HostKeyPolicy::Off;
    let c = ssh::connect(&spec, None).await.unwrap();
    assert_eq!(
        c.exec(ExecRequest::new("echo ok"))
            .await
            .unwrap()
            .stdout_str(),
        "ok\n"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_problems_are_named() {
    let h = support::start(1);
    let scratch = tempfile::tempdir().unwrap();

    let wrong = scratch.path().join("wrong_key");
    keygen(&wrong, "");
    let mut spec = h.spec(0);
    spec.identity_files = vec![wrong.clone()];
    spec.connect_retries = 1;
    let (reason, detail) = fail(&spec).await;
    assert_eq!(reason, Unreachable::AuthFailed);
    assert!(
        detail.contains("authentication failed for user root"),
        "{detail}"
    );
    assert!(detail.contains(&wrong.display().to_string()), "{detail}");

    let loose = scratch.path().join("loose_key");
    std::fs::copy(h.key(), &loose).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    spec.identity_files = vec![loose.clone()];
    match ssh::connect(&spec, None)
        .await
        .err()
        .expect("loose key must be refused")
    {
        ConnError::Setup(msg) => {
            assert!(
                msg.contains(&loose.display().to_string()) && msg.contains("too open"),
                "{msg}"
            )
        }
        e => panic!("expected a setup error, got {e}"),
    }

    if std::env::var_os(ssh::PASSPHRASE_ENV).is_none() {
        let locked = scratch.path().join("locked_key");
        keygen(&locked, "secret passphrase");
        spec.identity_files = vec![locked.clone()];
        match ssh::connect(&spec, None)
            .await
            .err()
            .expect("encrypted key needs a passphrase")
        {
            ConnError::Setup(msg) => {
                assert!(
                    msg.contains(ssh::PASSPHRASE_ENV) && msg.contains("encrypted"),
                    "{msg}"
                )
            }
            e => panic!("expected a setup error, got {e}"),
        }
    }

    spec.identity_files = vec![scratch.path().join("does_not_exist")];
    let err = ssh::connect(&spec, None).await.err().unwrap();
    assert!(err.to_string().contains("does_not_exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_port_is_reported_in_plain_words() {
    let h = support::start(1);
    let mut spec = h.spec(0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    spec.port = listener.local_addr().unwrap().port();
    drop(listener);
    spec.connect_retries = 2;
    let (reason, detail) = fail(&spec).await;
    assert_eq!(reason, Unreachable::Refused);
    assert!(detail.contains("connection refused"), "{detail}");
    assert!(detail.contains("after 2 attempts"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jump_host_tunnels_and_the_manager_shares_connections() {
    // host1 logs forwarded connections; host2 listens on 127.0.0.2.
    let h = support::start_with(2, |o| {
        if o.name == "host1" {
            o.log_level = "DEBUG1".into();
        } else {
            o.listen = [127, 0, 0, 2].into();
        }
    });
    let jump = h.spec(0);
    let mut behind = h.spec(1);
    behind.jump = Some(Box::new(jump.clone()));
    let mgr = ConnectionManager::new();
    let c = mgr.get(&behind).await.unwrap_or_else(|e| panic!("{e}"));
    let out = c
        .exec(ExecRequest::new("echo $SSH_CONNECTION"))
        .await
        .unwrap();
    assert!(
        out.stdout_str().contains("127.0.0.2"),
        "{}",
        out.stdout_str()
    );
    // sshd logs through its privilege-separation monitor, so give the line a moment.
    let forwarded = format!("target 127.0.0.2 port {}", behind.port);
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(&h.tb.hosts[0].log).unwrap();
        if log.contains(&forwarded) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        log.contains(&forwarded),
        "host1's sshd did not forward ({forwarded}):\n{log}"
    );
    // The jump connection is the one the manager hands out for host1, and is reused.
    let j1 = mgr.get(&jump).await.unwrap();
    let j2 = mgr.get(&jump).await.unwrap();
    assert!(Arc::ptr_eq(&j1, &j2));
    assert!(Arc::ptr_eq(&c, &mgr.get(&behind).await.unwrap()));
    mgr.close_all().await;
}
