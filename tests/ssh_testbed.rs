//! `spark-openstack testbed up/down` through the real binary: the hosts answer over SSH with
//! the files it writes, are isolated from each other, and are gone after `down`.

use std::process::Command;
use std::time::Duration;

use playbook_engine::connection::{
    ConnectionKind, ConnectionSpec, ExecRequest, HostKeyPolicy, ssh,
};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
}

/// Reads `key: value` lines of one host from the generated inventory.
fn inventory_value(inventory: &str, host: &str, key: &str) -> String {
    let block = inventory
        .split(&format!("\"{host}\":"))
        .nth(1)
        .unwrap_or_else(|| panic!("{host} missing from inventory:\n{inventory}"));
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} missing for {host}"));
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .trim_matches('"')
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_writes_working_files_and_down_stops_the_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let up = bin()
        .args(["testbed", "up", "--hosts", "2", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let inventory = std::fs::read_to_string(dir.path().join("inventory.yml")).unwrap();
    assert!(inventory.contains("testhosts:"), "{inventory}");

    for host in ["host1", "host2"] {
        let spec = ConnectionSpec {
            name: host.into(),
            kind: ConnectionKind::Ssh,
            address: inventory_value(&inventory, host, "ansible_host"),
            port: inventory_value(&inventory, host, "ansible_port")
                .parse()
                .unwrap(),
            user: inventory_value(&inventory, host, "ansible_user"),
            identity_files: vec![
                inventory_value(&inventory, host, "ansible_ssh_private_key_file").into(),
            ],
            jump: None,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts_files: vec![dir.path().join("known_hosts")],
            connect_timeout: Duration::from_secs(10),
            connect_retries: 2,
        };
        let c = ssh::connect(&spec, None)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let out = c
            .exec(ExecRequest::new(format!("echo {host} > ~/whoami; ls ~")))
            .await
            .unwrap();
        // Each host sees only its own home directory.
        assert_eq!(out.stdout_str(), "whoami\n", "{host}");
        c.close().await;
    }
    if nix::unistd::geteuid().is_root() {
        for host in ["host1", "host2"] {
            let written =
                std::fs::read_to_string(dir.path().join(host).join("root/whoami")).unwrap();
            assert_eq!(written, format!("{host}\n"));
        }
    }
    // Plain OpenSSH works with the generated ssh_config.
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(dir.path().join("ssh_config"))
        .args(["host2", "cat ~/whoami"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ssh.stdout),
        "host2\n",
        "{}",
        String::from_utf8_lossy(&ssh.stderr)
    );

    let pids: Vec<u32> = ["host1", "host2"]
        .iter()
        .map(|h| {
            std::fs::read_to_string(dir.path().join(h).join("pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    let down = bin()
        .args(["testbed", "down", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(down.status.success());
    assert_eq!(
        String::from_utf8_lossy(&down.stdout),
        "stopped 2 sshd process(es)\n"
    );
    for pid in pids {
        // Gone, or a zombie waiting for whichever process adopted it to reap it.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        assert!(
            stat.is_empty() || state.starts_with('Z'),
            "sshd {pid} still runs: {stat}"
        );
    }
}
