//! What a cluster *is* on OpenStack, and how its parts are named.
//!
//! A cluster NAME is the set of servers in the security groups `NAME-master` and
//! `NAME-slaves`, as in the original `spark_openstack.py`. Every server is also tagged at
//! creation with the metadata `spark_openstack_cluster=NAME` and `role=master|slave`, so a
//! server is recognised even if its security groups were edited by hand, and a launch
//! interrupted between "server created" and anything else is still found. No local state
//! file exists: everything here is recomputed from Nova, Neutron and Cinder.

use std::collections::BTreeMap;

use super::api::{Address, FloatingIp, Server, Volume};

/// Metadata key holding the cluster name.
pub const META_CLUSTER: &str = "spark_openstack_cluster";
/// Metadata key holding the node's role (`master` or `slave`).
pub const META_ROLE: &str = "role";
/// Floating IPs and volumes we create carry this prefix in their description/metadata,
/// so destroy releases only what launch allocated.
pub const DESCRIPTION_PREFIX: &str = "spark-openstack cluster ";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Master,
    Slave,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

/// Checks a cluster name: it becomes part of server names (host names) and group names,
/// so only letters, digits and `-` are allowed, starting with a letter.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 48
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid cluster name '{name}': use 1-48 letters, digits and '-', starting with a letter \
             (it becomes part of host names)"
        ))
    }
}

pub fn master_group(cluster: &str) -> String {
    format!("{cluster}-master")
}

pub fn slaves_group(cluster: &str) -> String {
    format!("{cluster}-slaves")
}

pub fn master_name(cluster: &str) -> String {
    format!("{cluster}-master")
}

pub fn slave_name(cluster: &str, index: u32) -> String {
    format!("{cluster}-slave-{index}")
}

/// The description we put on the floating IPs we allocate for `cluster`.
pub fn owned_description(cluster: &str) -> String {
    format!("{DESCRIPTION_PREFIX}{cluster}")
}

/// The metadata every server of `cluster` with `role` is created with.
pub fn server_metadata(cluster: &str, role: Role) -> BTreeMap<String, String> {
    BTreeMap::from([
        (META_CLUSTER.to_string(), cluster.to_string()),
        (META_ROLE.to_string(), role.as_str().to_string()),
    ])
}

/// The role of `server` in `cluster`, or `None` when it is not part of it.
pub fn role_of(cluster: &str, server: &Server) -> Option<Role> {
    let tagged = server.metadata.get(META_CLUSTER).map(String::as_str) == Some(cluster);
    let role_meta = server.metadata.get(META_ROLE).map(String::as_str);
    let in_group = |g: String| server.security_groups.contains(&g);
    if in_group(master_group(cluster)) || (tagged && role_meta == Some("master")) {
        Some(Role::Master)
    } else if in_group(slaves_group(cluster)) || (tagged && role_meta == Some("slave")) {
        Some(Role::Slave)
    } else {
        None
    }
}

/// The slave index encoded in a server name (`demo-slave-3` → 3).
pub fn slave_index(cluster: &str, server_name: &str) -> Option<u32> {
    server_name
        .strip_prefix(&format!("{cluster}-slave-"))?
        .parse()
        .ok()
}

/// One cluster as found in the cloud.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub name: String,
    /// Normally one; several only after a hand-made mess, which describe shows as is.
    pub masters: Vec<Server>,
    /// Sorted by slave index, then name.
    pub slaves: Vec<Server>,
    pub floating_ips: Vec<FloatingIp>,
    pub volumes: Vec<Volume>,
}

impl Cluster {
    /// Picks the servers, floating IPs and volumes of `name` out of full project listings.
    pub fn collect(
        name: &str,
        servers: &[Server],
        fips: &[FloatingIp],
        volumes: &[Volume],
    ) -> Cluster {
        let mut c = Cluster {
            name: name.to_string(),
            ..Default::default()
        };
        for s in servers {
            let mut s = s.clone();
            floating_from_neutron(&mut s, fips);
            match role_of(name, &s) {
                Some(Role::Master) => c.masters.push(s),
                Some(Role::Slave) => c.slaves.push(s),
                None => {}
            }
        }
        c.slaves
            .sort_by_key(|s| (slave_index(name, &s.name), s.name.clone()));
        let owned = owned_description(name);
        c.floating_ips = fips
            .iter()
            .filter(|f| f.description == owned)
            .cloned()
            .collect();
        c.volumes = volumes
            .iter()
            .filter(|v| v.metadata.get(META_CLUSTER).map(String::as_str) == Some(name))
            .cloned()
            .collect();
        c
    }

    pub fn master(&self) -> Option<&Server> {
        self.masters.first()
    }

    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.masters.iter().chain(self.slaves.iter())
    }

    pub fn is_empty(&self) -> bool {
        self.masters.is_empty() && self.slaves.is_empty()
    }

    /// A one-word state: `running` when all are ACTIVE, `stopped` when all are SHUTOFF,
    /// `error`, `building`, else `mixed`.
    pub fn state(&self) -> &'static str {
        let statuses: Vec<&str> = self.servers().map(|s| s.status.as_str()).collect();
        if statuses.is_empty() {
            "absent"
        } else if statuses.iter().all(|s| *s == "ACTIVE") {
            "running"
        } else if statuses.iter().all(|s| *s == "SHUTOFF") {
            "stopped"
        } else if statuses.contains(&"ERROR") {
            "error"
        } else if statuses.contains(&"BUILD") {
            "building"
        } else {
            "mixed"
        }
    }
}

/// Makes `server`'s floating addresses agree with Neutron's floating-IP list.
///
/// Nova learns of an association from Neutron's notifications and shows it in `addresses`
/// only 1-3 s later (and keeps showing a disassociated one as long), so code that reads the
/// master's address right after associating it would otherwise dial the fixed IP. Neutron is
/// authoritative: a floating IP it lists on one of the server's fixed addresses is added, and
/// one Nova still shows but Neutron lists elsewhere (or unassociated) is dropped. With an
/// empty `fips` (a caller that did not list them) Nova's view is kept as it is.
fn floating_from_neutron(server: &mut Server, fips: &[FloatingIp]) {
    let fixed: Vec<Address> = server
        .addresses
        .iter()
        .filter(|a| !a.floating)
        .cloned()
        .collect();
    let on_server = |f: &FloatingIp| {
        f.port_id.is_some()
            && f.fixed_ip_address
                .as_deref()
                .is_some_and(|ip| fixed.iter().any(|a| a.addr == ip))
    };
    server.addresses.retain(|a| {
        !a.floating
            || fips
                .iter()
                .find(|f| f.address == a.addr)
                .is_none_or(on_server)
    });
    for f in fips.iter().filter(|f| on_server(f)) {
        if server.addresses.iter().any(|a| a.addr == f.address) {
            continue;
        }
        let network = fixed
            .iter()
            .find(|a| Some(a.addr.as_str()) == f.fixed_ip_address.as_deref())
            .map(|a| a.network.clone())
            .unwrap_or_default();
        server.addresses.push(Address {
            network,
            addr: f.address.clone(),
            floating: true,
        });
    }
}

/// The names of every cluster present in `servers` (by metadata or security group).
pub fn cluster_names(servers: &[Server]) -> Vec<String> {
    let mut names: Vec<String> = servers
        .iter()
        .filter_map(|s| {
            s.metadata.get(META_CLUSTER).cloned().or_else(|| {
                s.security_groups.iter().find_map(|g| {
                    g.strip_suffix("-master")
                        .or_else(|| g.strip_suffix("-slaves"))
                        .map(String::from)
                })
            })
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, meta: &[(&str, &str)], groups: &[&str]) -> Server {
        Server {
            id: format!("id-{name}"),
            name: name.into(),
            status: "ACTIVE".into(),
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            security_groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("demo-1").is_ok());
        for bad in ["", "1demo", "de_mo", "de mo", &"a".repeat(49)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_are_found_by_group_or_metadata() {
        let servers = vec![
            server("demo-master", &[], &["demo-master"]),
            server(
                "demo-slave-10",
                &[("spark_openstack_cluster", "demo"), ("role", "slave")],
                &[],
            ),
            server("demo-slave-2", &[], &["demo-slaves"]),
            server(
                "other-master",
                &[("spark_openstack_cluster", "other"), ("role", "master")],
                &[],
            ),
            server(
                "demo-master-x",
                &[("spark_openstack_cluster", "demox")],
                &["default"],
            ),
        ];
        let c = Cluster::collect("demo", &servers, &[], &[]);
        assert_eq!(c.master().map(|s| s.name.as_str()), Some("demo-master"));
        let slaves: Vec<_> = c.slaves.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(slaves, ["demo-slave-2", "demo-slave-10"]);
        assert_eq!(cluster_names(&servers), ["demo", "demox", "other"]);
    }

    fn fip(addr: &str, fixed: Option<&str>) -> FloatingIp {
        FloatingIp {
            id: format!("fip-{addr}"),
            address: addr.into(),
            port_id: fixed.map(|_| "port".to_string()),
            fixed_ip_address: fixed.map(String::from),
            ..Default::default()
        }
    }

    fn addr(a: &str, floating: bool) -> Address {
        Address {
            network: "private".into(),
            addr: a.into(),
            floating,
        }
    }

    #[test]
    fn neutron_decides_the_floating_address() {
        let mut master = server("demo-master", &[], &["demo-master"]);
        master.addresses = vec![addr("10.0.0.5", false)];
        // Associated a moment ago: Neutron lists it, Nova does not show it yet.
        let fips = [fip("172.24.4.9", Some("10.0.0.5")), fip("172.24.4.7", None)];
        let c = Cluster::collect("demo", std::slice::from_ref(&master), &fips, &[]);
        let m = c.master().unwrap();
        assert_eq!(m.floating_ip(), Some("172.24.4.9"));
        assert_eq!(m.fixed_ip(), Some("10.0.0.5"));
        assert_eq!(m.addresses[1].network, "private");
        // Disassociated a moment ago: Nova still shows it, Neutron has it unbound.
        master.addresses.push(addr("172.24.4.7", true));
        let c = Cluster::collect("demo", &[master.clone()], &[fip("172.24.4.7", None)], &[]);
        assert_eq!(c.master().unwrap().floating_ip(), None);
        // A caller that did not list floating IPs keeps Nova's view.
        let c = Cluster::collect("demo", &[master], &[], &[]);
        assert_eq!(c.master().unwrap().floating_ip(), Some("172.24.4.7"));
    }

    #[test]
    fn state_summarises_statuses() {
        let mut c = Cluster::default();
        assert_eq!(c.state(), "absent");
        c.masters.push(server("a", &[], &[]));
        assert_eq!(c.state(), "running");
        c.slaves.push(Server {
            status: "ERROR".into(),
            ..server("b", &[], &[])
        });
        assert_eq!(c.state(), "error");
    }
}
