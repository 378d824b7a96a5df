//! The security-group rules of a cluster, computed from its options.
//!
//! Secure by default: nodes talk to each other freely (rules whose remote is the other
//! cluster group, not an address range), the outside world gets SSH only, and the web UIs
//! are opened only to `--authorized-address` when the user gives one. Nothing is ever
//! opened to 0.0.0.0/0 except SSH. In `floating` mode the slaves get no outside rule at
//! all: they are reached through the master.

use super::api::Rule;

/// Web UI ports opened on the master to `--authorized-address`: Spark master (8080),
/// worker (8081), application UIs (4040-4050), history server (18080), HDFS NameNode
/// (50070 for Hadoop 2, 9870 for Hadoop 3), Ganglia (5080).
pub const MASTER_UI_PORTS: &[(u16, u16)] = &[
    (8080, 8081),
    (4040, 4050),
    (18080, 18080),
    (50070, 50070),
    (9870, 9870),
    (5080, 5080),
];
/// Worker UI and DataNode UI ports opened on slaves to `--authorized-address`.
pub const SLAVE_UI_PORTS: &[(u16, u16)] = &[(8081, 8081), (50075, 50075), (9864, 9864)];

fn tcp(min: u16, max: u16, cidr: &str) -> Rule {
    Rule {
        direction: "ingress".into(),
        ethertype: "IPv4".into(),
        protocol: Some("tcp".into()),
        port_min: Some(min),
        port_max: Some(max),
        remote_ip_prefix: Some(cidr.into()),
        remote_group_id: None,
    }
}

fn from_group(group_id: &str) -> Rule {
    Rule {
        direction: "ingress".into(),
        ethertype: "IPv4".into(),
        remote_group_id: Some(group_id.into()),
        ..Default::default()
    }
}

/// Inputs of the rule computation.
pub struct RulePlan<'a> {
    pub master_group_id: &'a str,
    pub slaves_group_id: &'a str,
    /// `--authorized-address`, if given.
    pub authorized: Option<&'a str>,
    /// `static` mode: the controller reaches slaves directly, so they need SSH too.
    pub slaves_need_ssh: bool,
}

impl RulePlan<'_> {
    /// The ingress rules each group must have: (master rules, slaves rules).
    pub fn rules(&self) -> (Vec<Rule>, Vec<Rule>) {
        let ssh_from = self.authorized.unwrap_or("0.0.0.0/0");
        let mut master = vec![
            from_group(self.master_group_id),
            from_group(self.slaves_group_id),
            tcp(22, 22, ssh_from),
        ];
        let mut slaves = vec![
            from_group(self.master_group_id),
            from_group(self.slaves_group_id),
        ];
        if self.slaves_need_ssh {
            slaves.push(tcp(22, 22, ssh_from));
        }
        if let Some(cidr) = self.authorized {
            master.extend(MASTER_UI_PORTS.iter().map(|&(a, b)| tcp(a, b, cidr)));
            slaves.extend(SLAVE_UI_PORTS.iter().map(|&(a, b)| tcp(a, b, cidr)));
        }
        (master, slaves)
    }
}

/// The rules of `wanted` that `existing` lacks. Neutron rejects duplicates with 409, and
/// a rerun of launch must not fail on them, so only missing rules are created.
pub fn missing<'a>(wanted: &'a [Rule], existing: &[Rule]) -> Vec<&'a Rule> {
    wanted
        .iter()
        .filter(|w| !existing.iter().any(|e| same_rule(w, e)))
        .collect()
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    let any_port = |r: &Rule| r.port_min.is_none() && r.port_max.is_none();
    a.direction == b.direction
        && a.ethertype == b.ethertype
        && a.protocol.as_deref().unwrap_or("any") == b.protocol.as_deref().unwrap_or("any")
        && ((any_port(a) && any_port(b)) || (a.port_min == b.port_min && a.port_max == b.port_max))
        && a.remote_ip_prefix == b.remote_ip_prefix
        && a.remote_group_id == b.remote_group_id
}

/// Checks `--authorized-address` early so a typo is reported before anything is created.
pub fn validate_cidr(cidr: &str) -> Result<(), String> {
    cidr.parse::<ipnet::IpNet>()
        .map(|_| ())
        .map_err(|_| format!("--authorized-address '{cidr}' is not a CIDR such as 203.0.113.7/32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_opens_only_ssh_to_the_world() {
        let plan = RulePlan {
            master_group_id: "m",
            slaves_group_id: "s",
            authorized: None,
            slaves_need_ssh: false,
        };
        let (master, slaves) = plan.rules();
        let world: Vec<_> = master
            .iter()
            .chain(&slaves)
            .filter(|r| r.remote_ip_prefix.is_some())
            .collect();
        assert_eq!(world.len(), 1);
        assert_eq!((world[0].port_min, world[0].port_max), (Some(22), Some(22)));
        assert!(slaves.iter().all(|r| r.remote_group_id.is_some()));
    }

    #[test]
    fn ui_ports_only_to_the_authorized_address() {
        let plan = RulePlan {
            master_group_id: "m",
            slaves_group_id: "s",
            authorized: Some("198.51.100.0/24"),
            slaves_need_ssh: true,
        };
        let (master, slaves) = plan.rules();
        for r in master.iter().chain(&slaves) {
            assert_ne!(r.remote_ip_prefix.as_deref(), Some("0.0.0.0/0"));
        }
        assert!(
            master
                .iter()
                .any(|r| r.port_min == Some(4040) && r.port_max == Some(4050))
        );
        assert!(slaves.iter().any(|r| r.port_min == Some(22)));
    }

    #[test]
    fn only_missing_rules_are_created() {
        let wanted = vec![tcp(22, 22, "0.0.0.0/0"), from_group("m")];
        let existing = vec![from_group("m")];
        assert_eq!(missing(&wanted, &existing), vec![&wanted[0]]);
        assert!(missing(&wanted, &wanted).is_empty());
    }

    #[test]
    fn cidrs_are_validated() {
        assert!(validate_cidr("10.0.0.0/8").is_ok());
        assert!(validate_cidr("10.0.0.300/8").is_err());
    }
}
