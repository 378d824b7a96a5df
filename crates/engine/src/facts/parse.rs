//! Parses the sections printed by the fact script into Ansible-named facts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// Splits the script output into `[section]` → lines.
fn sections(out: &str) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut current = "";
    for line in out.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']'))
            && name.chars().all(|c| c.is_ascii_lowercase())
        {
            current = name;
            map.entry(name).or_default();
            continue;
        }
        map.entry(current).or_default().push(line);
    }
    map
}

/// `KEY=value` lines (os-release values may be quoted).
fn key_values<'a>(lines: &[&'a str]) -> BTreeMap<&'a str, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k, v.trim().trim_matches('"').trim_matches('\'').to_string()))
        .collect()
}

pub fn parse(out: &str) -> Map<String, Value> {
    let s = sections(out);
    let get = |name: &str| s.get(name).cloned().unwrap_or_default();
    let kv = key_values(&get("facts"));
    let val = |k: &str| kv.get(k).cloned().unwrap_or_default();
    let mut f = Map::new();
    let mut put = |k: &str, v: Value| {
        f.insert(format!("ansible_{k}"), v);
    };
    let hostname = val("hostname");
    put(
        "hostname",
        json!(hostname.split('.').next().unwrap_or_default()),
    );
    put("fqdn", json!(val("fqdn")));
    put("nodename", json!(val("nodename")));
    put(
        "domain",
        json!(
            val("fqdn")
                .split_once('.')
                .map(|(_, d)| d)
                .unwrap_or_default()
        ),
    );
    put("kernel", json!(val("kernel")));
    put("kernel_version", json!(val("kernel_version")));
    put("architecture", json!(val("machine")));
    put("machine", json!(val("machine")));
    put("system", json!(val("system")));
    put("user_id", json!(val("user_id")));
    put(
        "user_uid",
        json!(val("user_uid").parse::<u64>().unwrap_or(0)),
    );
    put(
        "user_gid",
        json!(val("user_gid").parse::<u64>().unwrap_or(0)),
    );
    put(
        "service_mgr",
        json!(match val("service_mgr").as_str() {
            "systemd" => "systemd".to_string(),
            "init" => "sysvinit".to_string(),
            other => other.to_string(),
        }),
    );
    put(
        "pkg_mgr",
        json!(match val("pkg_mgr").as_str() {
            "apt-get" => "apt",
            other => other,
        }),
    );
    let os = key_values(&get("os"));
    for (k, v) in distribution(&os, &val("debian_version")) {
        put(k, v);
    }
    for (k, v) in memory(&get("meminfo")) {
        put(k, v);
    }
    for (k, v) in cpu(&get("cpuinfo"), val("nproc").parse().ok()) {
        put(k, v);
    }
    for (k, v) in network(&get("route"), &get("addr"), &get("link")) {
        f.insert(
            if k.starts_with("ansible_") {
                k
            } else {
                format!("ansible_{k}")
            },
            v,
        );
    }
    let mut put = |k: &str, v: Value| {
        f.insert(format!("ansible_{k}"), v);
    };
    put("mounts", mounts(&get("mounts"), &get("df")));
    put("devices", devices(&get("lsblk")));
    put("date_time", date_time(&val("date")));
    let env: Map<String, Value> = get("env")
        .iter()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    put("user_dir", env.get("HOME").cloned().unwrap_or(json!("")));
    put("user_shell", env.get("SHELL").cloned().unwrap_or(json!("")));
    put("env", Value::Object(env));
    f
}

/// `ansible_distribution*` and `ansible_os_family` from /etc/os-release.
/// `debian_version` is `/etc/debian_version`: Debian's point release (`12.11`), which
/// Ansible reports as the version where os-release says only `12`.
fn distribution(os: &BTreeMap<&str, String>, debian_version: &str) -> Vec<(&'static str, Value)> {
    let id = os.get("ID").cloned().unwrap_or_default();
    let like = os.get("ID_LIKE").cloned().unwrap_or_default();
    let name = match id.as_str() {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "rocky" => "Rocky",
        "centos" => "CentOS",
        "rhel" => "RedHat",
        "fedora" => "Fedora",
        "almalinux" => "AlmaLinux",
        "ol" => "OracleLinux",
        "amzn" => "Amazon",
        "alpine" => "Alpine",
        "arch" => "Archlinux",
        "sles" => "SLES",
        "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => "openSUSE Leap",
        _ => "",
    };
    let name = if name.is_empty() {
        os.get("NAME").cloned().unwrap_or_else(|| "Unknown".into())
    } else {
        name.to_string()
    };
    let family = match id.as_str() {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" => "Debian",
        "rocky" | "centos" | "rhel" | "fedora" | "almalinux" | "ol" | "amzn" => "RedHat",
        "alpine" => "Alpine",
        "arch" => "Archlinux",
        "sles" | "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => "Suse",
        _ if like.contains("debian") => "Debian",
        _ if like.contains("rhel") || like.contains("fedora") => "RedHat",
        _ if like.contains("suse") => "Suse",
        _ => name.as_str(),
    }
    .to_string();
    let mut version = os.get("VERSION_ID").cloned().unwrap_or_default();
    let point_release = !debian_version.is_empty()
        && debian_version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && debian_version.starts_with(&format!("{version}."));
    if id == "debian" && point_release {
        version = debian_version.to_string();
    }
    let release = os
        .get("VERSION_CODENAME")
        .filter(|c| !c.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            let v = os.get("VERSION").cloned().unwrap_or_default();
            v.split_once('(')
                .map(|(_, r)| r.trim_end_matches(')').to_string())
                .unwrap_or_default()
        });
    let minor = version.split('.').nth(1).map(str::to_string);
    let mut facts = vec![
        ("distribution", json!(name)),
        ("distribution_version", json!(version)),
        (
            "distribution_major_version",
            json!(version.split('.').next().unwrap_or_default()),
        ),
        ("distribution_release", json!(release)),
        ("os_family", json!(family)),
    ];
    if let Some(m) = minor {
        facts.push(("distribution_minor_version", json!(m)));
    }
    facts
}

fn memory(lines: &[&str]) -> Vec<(&'static str, Value)> {
    let kb = |key: &str| -> u64 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    vec![
        ("memtotal_mb", json!(kb("MemTotal") / 1024)),
        ("memfree_mb", json!(kb("MemFree") / 1024)),
        ("memavailable_mb", json!(kb("MemAvailable") / 1024)),
        ("swaptotal_mb", json!(kb("SwapTotal") / 1024)),
        ("swapfree_mb", json!(kb("SwapFree") / 1024)),
    ]
}

fn cpu(lines: &[&str], nproc: Option<u64>) -> Vec<(&'static str, Value)> {
    let field = |l: &&str| {
        l.split_once(':')
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    };
    let pairs: Vec<(String, String)> = lines.iter().filter_map(field).collect();
    let vcpus = pairs.iter().filter(|(k, _)| k == "processor").count() as u64;
    let sockets: BTreeSet<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "physical id")
        .map(|(_, v)| v.as_str())
        .collect();
    let cores: u64 = pairs
        .iter()
        .find(|(k, _)| k == "cpu cores")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1);
    let count = (sockets.len() as u64).max(1);
    let vcpus = if vcpus == 0 {
        nproc.unwrap_or(1)
    } else {
        vcpus
    };
    let models: Vec<Value> = pairs
        .iter()
        .filter(|(k, _)| k == "processor" || k == "model name")
        .map(|(_, v)| json!(v))
        .collect();
    vec![
        ("processor_vcpus", json!(vcpus)),
        ("processor_count", json!(count)),
        ("processor_cores", json!(cores)),
        (
            "processor_threads_per_core",
            json!((vcpus / (count * cores).max(1)).max(1)),
        ),
        ("processor_nproc", json!(nproc.unwrap_or(vcpus))),
        ("processor", Value::Array(models)),
    ]
}

/// Default IPv4, all IPv4 addresses, and `ansible_<iface>` dictionaries.
fn network(route: &[&str], addr: &[&str], link: &[&str]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut all = Vec::new();
    let mut per_iface: BTreeMap<String, Value> = BTreeMap::new();
    for l in addr {
        // "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\ ..."
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(iface), Some(pos)) = (w.get(1), w.iter().position(|x| *x == "inet")) else {
            continue;
        };
        let Some(cidr) = w.get(pos + 1) else { continue };
        let Ok(net) = cidr.parse::<ipnet::Ipv4Net>() else {
            continue;
        };
        let ip = net.addr().to_string();
        if !net.addr().is_loopback() {
            all.push(json!(ip));
        }
        per_iface.entry(iface.to_string()).or_insert_with(|| {
            json!({"device": iface, "active": true, "ipv4": {
                "address": ip, "netmask": net.netmask().to_string(),
                "network": net.network().to_string(), "prefix": net.prefix_len().to_string(),
                "broadcast": net.broadcast().to_string()}})
        });
    }
    let mut interfaces: Vec<String> = link
        .iter()
        .filter_map(|l| {
            l.split(':')
                .nth(1)
                .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        })
        .filter(|n| !n.is_empty())
        .collect();
    if interfaces.is_empty() {
        interfaces = per_iface.keys().cloned().collect();
    }
    // "8.8.8.8 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0"
    let w: Vec<&str> = route
        .first()
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let after = |key: &str| {
        w.iter()
            .position(|x| *x == key)
            .and_then(|i| w.get(i + 1))
            .map(|s| s.to_string())
    };
    let default = match (after("dev"), after("src")) {
        (Some(dev), Some(src)) => {
            let mut d = per_iface
                .get(&dev)
                .and_then(|v| v.get("ipv4"))
                .cloned()
                .unwrap_or(json!({}));
            if let Value::Object(m) = &mut d {
                m.insert("address".into(), json!(src));
                m.insert("interface".into(), json!(dev));
                m.insert("alias".into(), json!(dev));
                if let Some(gw) = after("via") {
                    m.insert("gateway".into(), json!(gw));
                }
            }
            d
        }
        _ => json!({}),
    };
    out.push(("default_ipv4".to_string(), default));
    out.push(("all_ipv4_addresses".to_string(), Value::Array(all)));
    out.push(("interfaces".to_string(), json!(interfaces)));
    for (iface, v) in per_iface {
        out.push((
            format!("ansible_{}", iface.replace(['-', '.', ':'], "_")),
            v,
        ));
    }
    out
}

/// Device-backed mounts (Ansible skips pseudo filesystems) with sizes from `df -Pk`.
fn mounts(mounts: &[&str], df: &[&str]) -> Value {
    let sizes: BTreeMap<&str, (u64, u64)> = df
        .iter()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let total: u64 = w.get(1)?.parse().ok()?;
            let avail: u64 = w.get(3)?.parse().ok()?;
            Some((*w.last()?, (total * 1024, avail * 1024)))
        })
        .collect();
    let list: Vec<Value> = mounts
        .iter()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (device, mount, fstype, options) =
                (*w.first()?, *w.get(1)?, *w.get(2)?, *w.get(3)?);
            if !(device.starts_with('/') || device.contains(":/")) || fstype == "none" {
                return None;
            }
            let mount = mount.replace("\\040", " ");
            let (total, avail) = sizes.get(mount.as_str()).copied().unwrap_or((0, 0));
            Some(
                json!({"mount": mount, "device": device, "fstype": fstype, "options": options,
                        "size_total": total, "size_available": avail}),
            )
        })
        .collect();
    Value::Array(list)
}

/// Sizes the way Ansible prints them: `20.00 GB`.
fn human(bytes: u64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.2} {}", units[i])
    }
}

/// `ansible_devices`: disks keyed by name, with their partitions.
fn devices(lines: &[&str]) -> Value {
    let re = regex::Regex::new(r#"(\w+)="([^"]*)""#).expect("static regex");
    let rows: Vec<BTreeMap<String, String>> = lines
        .iter()
        .map(|l| {
            re.captures_iter(l)
                .map(|c| (c[1].to_string(), c[2].to_string()))
                .collect()
        })
        .collect();
    let mut disks = Map::new();
    let describe = |r: &BTreeMap<String, String>| {
        let size: u64 = r.get("SIZE").and_then(|s| s.parse().ok()).unwrap_or(0);
        json!({"size": human(size), "sectors": (size / 512).to_string(), "sectorsize": 512,
               "type": r.get("TYPE").cloned().unwrap_or_default(),
               "mountpoint": r.get("MOUNTPOINT").cloned().unwrap_or_default()})
    };
    for r in rows
        .iter()
        .filter(|r| r.get("PKNAME").is_none_or(String::is_empty))
    {
        let Some(name) = r.get("NAME") else { continue };
        let mut d = describe(r);
        let parts: Map<String, Value> = rows
            .iter()
            .filter(|p| p.get("PKNAME") == Some(name))
            .filter_map(|p| Some((p.get("NAME")?.clone(), describe(p))))
            .collect();
        d["partitions"] = Value::Object(parts);
        disks.insert(name.clone(), d);
    }
    Value::Object(disks)
}

fn date_time(s: &str) -> Value {
    let p: Vec<&str> = s.split('|').collect();
    let g = |i: usize| p.get(i).copied().unwrap_or_default();
    json!({
        "epoch": g(0), "year": g(1), "month": g(2), "day": g(3), "hour": g(4), "minute": g(5),
        "second": g(6), "tz": g(7), "tz_offset": g(8), "weekday": g(9), "monthname": g(10),
        "date": format!("{}-{}-{}", g(1), g(2), g(3)), "time": format!("{}:{}:{}", g(4), g(5), g(6)),
        "iso8601": format!("{}-{}-{}T{}:{}:{}Z", g(1), g(2), g(3), g(4), g(5), g(6)),
        "weekday_number": g(13), "weeknumber": g(12), "julian": g(11),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROCKY: &str = "[facts]\nhostname=w1.novalocal\nfqdn=w1.novalocal\n[os]\nNAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION=\"9.3 (Blue Onyx)\"\nVERSION_ID=\"9.3\"\n[meminfo]\nMemTotal:        3907000 kB\nMemFree:  1000000 kB\n[cpuinfo]\nprocessor\t: 0\nphysical id\t: 0\ncpu cores\t: 2\nprocessor\t: 1\nphysical id\t: 0\ncpu cores\t: 2\n[route]\n8.8.8.8 via 10.0.0.1 dev eth0 src 10.0.0.7 uid 0\n[addr]\n1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.0.0.7/24 brd 10.0.0.255 scope global eth0\n[mounts]\n/dev/vda1 / xfs rw 0 0\ntmpfs /run tmpfs rw 0 0\n[df]\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda1 1000 10 990 1% /\n[lsblk]\nNAME=\"vda\" SIZE=\"21474836480\" TYPE=\"disk\" MOUNTPOINT=\"\" PKNAME=\"\"\nNAME=\"vda1\" SIZE=\"21473787904\" TYPE=\"part\" MOUNTPOINT=\"/\" PKNAME=\"vda\"\n[env]\nHOME=/root\n";

    #[test]
    fn parses_a_rocky_host() {
        let f = parse(ROCKY);
        assert_eq!(f["ansible_hostname"], "w1");
        assert_eq!(f["ansible_os_family"], "RedHat");
        assert_eq!(f["ansible_distribution"], "Rocky");
        assert_eq!(f["ansible_distribution_major_version"], "9");
        assert_eq!(f["ansible_distribution_release"], "Blue Onyx");
        assert_eq!(f["ansible_memtotal_mb"], 3815);
        assert_eq!(f["ansible_processor_vcpus"], 2);
        assert_eq!(f["ansible_processor_count"], 1);
        assert_eq!(f["ansible_default_ipv4"]["address"], "10.0.0.7");
        assert_eq!(f["ansible_default_ipv4"]["interface"], "eth0");
        assert_eq!(f["ansible_default_ipv4"]["netmask"], "255.255.255.0");
        assert_eq!(f["ansible_all_ipv4_addresses"], json!(["10.0.0.7"]));
        assert_eq!(f["ansible_eth0"]["ipv4"]["address"], "10.0.0.7");
        assert_eq!(
            f["ansible_mounts"],
            json!([{"mount": "/", "device": "/dev/vda1", "fstype": "xfs", "options": "rw", "size_total": 1024000, "size_available": 1013760}])
        );
        assert_eq!(f["ansible_devices"]["vda"]["size"], "20.00 GB");
        assert_eq!(
            f["ansible_devices"]["vda"]["partitions"]["vda1"]["mountpoint"],
            "/"
        );
        assert_eq!(f["ansible_user_dir"], "/root");
    }

    #[test]
    fn debian_reports_its_point_release_as_ansible_does() {
        let out = "[facts]\nhostname=m\ndebian_version=12.11\n[os]\nNAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";
        let f = parse(out);
        assert_eq!(f["ansible_distribution"], "Debian");
        assert_eq!(f["ansible_distribution_version"], "12.11");
        assert_eq!(f["ansible_distribution_major_version"], "12");
        assert_eq!(f["ansible_distribution_minor_version"], "11");
        assert_eq!(f["ansible_distribution_release"], "bookworm");
        // testing/unstable say "trixie/sid": the os-release version stays.
        let f = parse(&out.replace("12.11", "trixie/sid"));
        assert_eq!(f["ansible_distribution_version"], "12");
        assert!(f.get("ansible_distribution_minor_version").is_none());
    }
}
