//! The engine over real sshd hosts (the testbed): the same playbook semantics as with
//! local hosts, through SSH connections.

mod support;

use std::path::Path;
use std::process::Command;

#[test]
fn playbook_runs_over_ssh_hosts() {
    let hosts = support::start(3);
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/playbooks/ssh_basic.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i"])
        .arg(hosts.inventory())
        .arg(&book)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        let root = hosts.root(i);
        let name = &hosts.tb.hosts[i].name;
        let text = std::fs::read_to_string(root.join("engine.txt")).unwrap();
        assert!(text.starts_with(&format!("{name} ")), "{text}");
        assert!(text.trim_end().ends_with("True"), "{text}");
        assert_eq!(
            std::fs::read_to_string(root.join("items")).unwrap(),
            "1\n2\n"
        );
        assert!(root.join("handler-ran").exists());
        let recap = format!("{name:<26} : ok=5    changed=3    unreachable=0    failed=0");
        assert!(stdout.contains(&recap), "{stdout}");
    }
}

/// A host whose sshd starts answering only after the play began, as a cloud VM does 20-90 s
/// after Nova reports it ACTIVE: `wait_for_connection` must wait for it (connection refused
/// is an answer to wait on, not a reason to mark the host unreachable before the module runs),
/// and the tasks after it must then run over the new connection.
#[test]
fn wait_for_connection_waits_for_a_host_whose_sshd_starts_late() {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    let hosts = support::start(1);
    let real_port = hosts.tb.hosts[0].port;
    // A port nothing listens on yet; after the delay a forwarder to the real sshd opens it.
    let late_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let delay = Duration::from_secs(4);
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let listener = TcpListener::bind(("127.0.0.1", late_port)).expect("late port");
        for client in listener.incoming().flatten() {
            let server = TcpStream::connect(("127.0.0.1", real_port)).expect("real sshd");
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c, mut s) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("late.yml");
    let mut f = std::fs::File::create(&inventory).unwrap();
    write!(
        f,
        "all:\n  hosts:\n    late:\n      ansible_host: 127.0.0.1\n      ansible_port: {late_port}\n      \
         ansible_user: {}\n      ansible_ssh_private_key_file: {}\n      ansible_host_key_checking: false\n",
        hosts.tb.user,
        hosts.key().display()
    )
    .unwrap();
    let book = dir.path().join("wait.yml");
    std::fs::write(
        &book,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for_connection:\n        timeout: 60\n    \
         - command: echo reached\n      register: r\n    - debug: var=r.stdout\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i"])
        .arg(&inventory)
        .arg(&book)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() >= delay,
        "the play cannot have reached the host before its port opened"
    );
    assert!(stdout.contains("\"r.stdout\": \"reached\""), "{stdout}");
    assert!(
        stdout.contains(
            "late                       : ok=3    changed=1    unreachable=0    failed=0"
        ),
        "{stdout}"
    );
}

/// A changed host key is not something waiting fixes: `wait_for_connection` reports it at
/// once, with the known_hosts line to remove, instead of retrying until its timeout.
#[test]
fn wait_for_connection_reports_a_changed_host_key_at_once() {
    use std::time::{Duration, Instant};

    let hosts = support::start(1);
    let port = hosts.tb.hosts[0].port;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    // Another machine's key recorded for this address, as after a recycled floating IP.
    let other = dir.path().join("other");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let blob: Vec<&str> = public.split_whitespace().take(2).collect();
    std::fs::write(
        home.join(".ssh/known_hosts"),
        format!("[127.0.0.1]:{port} {}\n", blob.join(" ")),
    )
    .unwrap();
    let inventory = dir.path().join("hosts.yml");
    std::fs::write(
        &inventory,
        format!(
            "all:\n  hosts:\n    recycled:\n      ansible_host: 127.0.0.1\n      ansible_port: {port}\n      \
             ansible_user: {}\n      ansible_ssh_private_key_file: {}\n",
            hosts.tb.user,
            hosts.key().display()
        ),
    )
    .unwrap();
    let book = dir.path().join("wait.yml");
    std::fs::write(
        &book,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for_connection:\n        timeout: 600\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i"])
        .arg(&inventory)
        .arg(&book)
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("has CHANGED"), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "waited out the timeout instead of reporting at once: {stdout}"
    );
}
