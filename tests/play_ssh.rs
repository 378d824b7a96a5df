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
