//! The files a testbed hands to its users: an Ansible inventory, a known_hosts with every
//! host key, and an ssh_config so plain OpenSSH (benchmarks, debugging) reaches the hosts.

use anyhow::{Context, Result};

use super::Testbed;
use playbook_engine::connection::ssh::host_pattern;

/// A YAML/JSON double-quoted scalar (JSON strings are valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("'{s}'"))
}

pub fn write_all(tb: &Testbed, host_keys: &[String]) -> Result<()> {
    write(&tb.inventory, &inventory(tb))?;
    write(&tb.known_hosts, &known_hosts(tb, host_keys))?;
    write(&tb.ssh_config, &ssh_config(tb))
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn inventory(tb: &Testbed) -> String {
    let mut s = String::from(
        "# Written by `spark-openstack testbed up`; hosts are local sshd processes.\n\
         all:\n  children:\n    testhosts:\n      hosts:\n",
    );
    let key = tb.client_key.to_string_lossy();
    let common = format!(
        "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
        tb.known_hosts.display()
    );
    for h in &tb.hosts {
        s.push_str(&format!(
            "        {name}:\n          ansible_host: {addr}\n          ansible_port: {port}\n          \
             ansible_user: {user}\n          ansible_ssh_private_key_file: {key}\n          \
             ansible_ssh_common_args: {common}\n",
            name = q(&h.name),
            addr = q(&h.address),
            port = h.port,
            user = q(&tb.user),
            key = q(&key),
            common = q(&common),
        ));
    }
    s
}

fn known_hosts(tb: &Testbed, host_keys: &[String]) -> String {
    let mut s = String::new();
    for (h, key) in tb.hosts.iter().zip(host_keys) {
        // "ssh-ed25519 AAAA... comment": keep the type and key, drop the comment.
        let mut parts = key.split_whitespace();
        let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
            continue;
        };
        s.push_str(&format!(
            "{} {kind} {b64}\n",
            host_pattern(&h.address, h.port)
        ));
    }
    s
}

fn ssh_config(tb: &Testbed) -> String {
    let mut s = String::from("# Use with: ssh -F ssh_config host1\n");
    for h in &tb.hosts {
        s.push_str(&format!(
            "Host {name}\n  HostName {addr}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  \
             BatchMode yes\n\n",
            name = h.name,
            addr = h.address,
            port = h.port,
            user = tb.user,
            key = tb.client_key.display(),
            kh = tb.known_hosts.display(),
        ));
    }
    s
}
