//! Host facts (`gather_facts`, the `setup` module), collected by ONE shell script in one
//! round trip and parsed here into Ansible's fact names.
//!
//! The script prints plain, machine-parsable sections (`[os]`, `[meminfo]`, `[addr]`,
//! ...) from `/proc`, `/etc/os-release`, `ip`, `df` and `lsblk`; every command is
//! optional, so a minimal host still yields what it has. Python is not needed.
//!
//! [`gather`] returns the facts with their `ansible_` prefix (`ansible_hostname`) plus
//! the same set without the prefix under `ansible_facts`, so merging the map into the
//! host's variables gives both spellings Ansible users write.

mod parse;

use serde_json::{Map, Value};

use crate::connection::{ConnError, Connection, ExecRequest};

/// The fact-gathering script. Sections start with a `[name]` line.
pub const SCRIPT: &str = r#"export LC_ALL=C
echo '[facts]'
echo "hostname=$(hostname 2>/dev/null || uname -n)"
echo "fqdn=$(hostname -f 2>/dev/null || hostname 2>/dev/null || uname -n)"
echo "nodename=$(uname -n)"
echo "kernel=$(uname -r)"
echo "kernel_version=$(uname -v)"
echo "machine=$(uname -m)"
echo "system=$(uname -s)"
echo "user_id=$(id -un)"
echo "user_uid=$(id -u)"
echo "user_gid=$(id -g)"
echo "nproc=$(nproc 2>/dev/null)"
echo "date=$(date '+%s|%Y|%m|%d|%H|%M|%S|%Z|%z|%A|%B|%j|%U|%u')"
echo "service_mgr=$(cat /proc/1/comm 2>/dev/null)"
echo "debian_version=$(cat /etc/debian_version 2>/dev/null)"
for m in apt-get dnf yum zypper apk pacman; do if command -v $m >/dev/null 2>&1; then echo "pkg_mgr=$m"; break; fi; done
echo '[os]'; cat /etc/os-release 2>/dev/null
echo '[meminfo]'; cat /proc/meminfo 2>/dev/null
echo '[cpuinfo]'; grep -E '^(processor|physical id|core id|cpu cores|model name)' /proc/cpuinfo 2>/dev/null
echo '[route]'; ip -4 route get 8.8.8.8 2>/dev/null | head -n 1
echo '[addr]'; ip -o -4 addr show 2>/dev/null
echo '[link]'; ip -o link show 2>/dev/null
echo '[mounts]'; cat /proc/mounts 2>/dev/null
echo '[df]'; (timeout 5 df -Pk 2>/dev/null || df -Pk 2>/dev/null)
echo '[lsblk]'; lsblk -P -b -o NAME,SIZE,TYPE,MOUNTPOINT,PKNAME 2>/dev/null || for d in /sys/block/*; do echo "NAME=\"${d##*/}\" SIZE=\"$(( $(cat $d/size) * 512 ))\" TYPE=\"disk\" MOUNTPOINT=\"\" PKNAME=\"\""; done
echo '[env]'; env
"#;

/// Gathers the facts of the host behind `conn` in one round trip.
pub async fn gather(conn: &dyn Connection) -> Result<Map<String, Value>, ConnError> {
    let out = conn.exec(ExecRequest::new(SCRIPT)).await?;
    Ok(with_facts_view(parse::parse(&out.stdout_str())))
}

/// Adds the `ansible_facts` view (names without the `ansible_` prefix) to prefixed facts.
pub fn with_facts_view(mut facts: Map<String, Value>) -> Map<String, Value> {
    facts.remove("ansible_facts");
    let view: Map<String, Value> = facts
        .iter()
        .map(|(k, v)| {
            (
                k.strip_prefix("ansible_").unwrap_or(k).to_string(),
                v.clone(),
            )
        })
        .collect();
    facts.insert("ansible_facts".into(), Value::Object(view));
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::local::LocalConnection;

    #[tokio::test]
    async fn gathers_this_machine() {
        let facts = gather(&LocalConnection::new("localhost")).await.unwrap();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(
            facts["ansible_hostname"],
            Value::from(host.trim().split('.').next().unwrap())
        );
        assert_eq!(facts["ansible_system"], "Linux");
        assert!(facts["ansible_memtotal_mb"].as_u64().unwrap() > 0);
        assert!(facts["ansible_processor_vcpus"].as_u64().unwrap() >= 1);
        assert_eq!(
            facts["ansible_facts"]["hostname"],
            facts["ansible_hostname"]
        );
        assert!(facts["ansible_all_ipv4_addresses"].is_array());
        let os = std::fs::read_to_string("/etc/os-release").unwrap();
        if os.contains("ID=debian") {
            assert_eq!(facts["ansible_os_family"], "Debian");
            assert_eq!(facts["ansible_distribution"], "Debian");
        }
        let mounts = facts["ansible_mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["mount"] == "/"), "{mounts:?}");
        assert!(
            facts["ansible_date_time"]["epoch"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 0
        );
        assert_eq!(
            facts["ansible_user_id"],
            Value::from(
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .unwrap()
                    .unwrap()
                    .name
            )
        );
    }
}
