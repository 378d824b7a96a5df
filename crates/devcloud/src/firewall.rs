//! Security groups made real: the ingress rules each server's machine enforces, computed from
//! Neutron's state, and the sync that hands them to the backend whenever they may have changed.
//!
//! A server's rules are the ingress IPv4 rules of every group on its ports. A rule with a
//! `remote_group_id` admits the fixed and floating IPs of every port in that group (machines
//! reach each other by fixed IP, or by floating IP over the external network); the controller
//! reaches floating IPs from its own address (10.213.255.1 by default), which is in no group,
//! so it needs a `remote_ip_prefix` rule (e.g. 0.0.0.0/0 or 10.213.255.1/32 for port 22).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use super::netns::{Firewall, IngressRule};
use super::server::AppState;
use super::state::{Doc, Server, State, s as field};

/// The security group ids of a port.
fn groups_of(port: &Doc) -> Vec<&str> {
    port.get("security_groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Fixed IPv4 addresses of a port, plus the floating IPs associated with it.
fn addresses_of(st: &State, port: &Doc) -> Vec<Ipv4Addr> {
    let port_id = field(port, "id");
    let fixed = port
        .get("fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("ip_address")?.as_str()?.parse().ok());
    let floating = st
        .floatingips
        .iter()
        .filter(|f| field(f, "port_id") == port_id)
        .filter_map(|f| field(f, "floating_ip_address").parse().ok());
    fixed.chain(floating).collect()
}

/// The addresses of every port in group `group_id`.
fn members(st: &State, group_id: &str) -> Vec<Ipv4Net> {
    let mut out: Vec<Ipv4Net> = st
        .ports
        .iter()
        .filter(|p| groups_of(p).contains(&group_id))
        .flat_map(|p| addresses_of(st, p))
        .map(Ipv4Net::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn rule_of(st: &State, r: &Doc) -> Option<IngressRule> {
    if field(r, "direction") != "ingress" || field(r, "ethertype") != "IPv4" {
        return None;
    }
    let num = |k: &str| r.get(k).and_then(Value::as_u64).map(|n| n as u16);
    let protocol = r
        .get("protocol")
        .and_then(|p| match p {
            Value::String(s) => Some(s.to_lowercase()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|p| p != "any");
    let ports = match (num("port_range_min"), num("port_range_max")) {
        (Some(a), Some(b)) => Some((a, b)),
        (Some(a), None) => Some((
            a,
            if protocol.as_deref() == Some("icmp") {
                255
            } else {
                a
            },
        )),
        _ => None,
    };
    let sources = match (
        r.get("remote_ip_prefix").and_then(Value::as_str),
        r.get("remote_group_id").and_then(Value::as_str),
    ) {
        (Some(prefix), _) => {
            let net: Ipv4Net = prefix.parse().ok()?;
            (net.prefix_len() > 0).then(|| vec![net.trunc()])
        }
        (None, Some(group)) => Some(members(st, group)),
        (None, None) => None,
    };
    Some(IngressRule {
        protocol,
        ports,
        sources,
    })
}

/// What the machine of `srv` lets in.
pub fn firewall_of(st: &State, srv: &Server) -> Firewall {
    let mut groups: Vec<&str> = st
        .ports
        .iter()
        .filter(|p| srv.port_ids.iter().any(|id| id == field(p, "id")))
        .flat_map(groups_of)
        .collect();
    groups.sort();
    groups.dedup();
    let mut rules: Vec<IngressRule> = Vec::new();
    for r in st
        .security_group_rules
        .iter()
        .filter(|r| groups.contains(&field(r, "security_group_id")))
    {
        if let Some(rule) = rule_of(st, r)
            && !rules.contains(&rule)
        {
            rules.push(rule);
        }
    }
    Firewall { rules }
}

/// The firewall of every server, by id.
pub fn firewalls(st: &State) -> BTreeMap<String, Firewall> {
    st.servers
        .iter()
        .map(|s| (s.id.clone(), firewall_of(st, s)))
        .collect()
}

/// One sync at a time, so an older snapshot is never applied after a newer one.
static SYNC: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Recomputes every server's firewall and hands them to the backend (which applies only
/// what changed). Called after anything that can change them: rules created or deleted,
/// groups deleted, ports' groups changed, servers created or deleted, floating IPs moved.
/// A failure is logged: the API change stands, as Neutron's does when an agent lags.
pub async fn sync(app: &AppState) {
    let _one = SYNC.lock().await;
    let all = app.store.read(firewalls);
    if let Err(f) = app.backend.firewalls_changed(all).await {
        tracing::warn!("security groups not applied: {}", f.message);
    }
}

/// Returns `out` after a [`sync`]: for API handlers whose change may affect firewalls.
pub async fn synced<T>(app: &AppState, out: T) -> T {
    sync(app).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn remote_groups_admit_fixed_and_floating_ips_of_their_members() {
        let mut st = State {
            ports: vec![
                doc(json!({"id": "p1", "security_groups": ["web", "peers"],
                "fixed_ips": [{"ip_address": "10.213.0.5"}]})),
                doc(json!({"id": "p2", "security_groups": ["peers"],
                "fixed_ips": [{"ip_address": "10.213.0.6"}]})),
                doc(json!({"id": "p3", "security_groups": ["default"],
                "fixed_ips": [{"ip_address": "10.213.0.7"}]})),
            ],
            ..State::default()
        };
        st.floatingips = vec![doc(
            json!({"id": "f", "port_id": "p2", "floating_ip_address": "10.213.255.9"}),
        )];
        let rule = |sg: &str, extra: Value| {
            let mut d = doc(json!({"security_group_id": sg, "direction": "ingress",
                "ethertype": "IPv4"}));
            d.extend(doc(extra));
            d
        };
        st.security_group_rules = vec![
            rule(
                "web",
                json!({"protocol": "tcp", "port_range_min": 22,
                "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}),
            ),
            rule("peers", json!({"remote_group_id": "peers"})),
            rule("peers", json!({"direction": "egress"})),
            rule(
                "peers",
                json!({"ethertype": "IPv6", "remote_group_id": "peers"}),
            ),
            rule("default", json!({"remote_group_id": "default"})),
        ];
        let srv: Server = serde_json::from_value(json!({
            "id": "s1", "name": "s1", "project_id": "p", "user_id": "u", "image_id": "",
            "flavor_id": "1", "key_name": null, "security_groups": [], "metadata": {},
            "tags": [], "description": null, "availability_zone": "nova", "user_data": null,
            "config_drive": false, "vm_state": "active", "task_state": null,
            "power_state": 1, "created": "2024-01-01T00:00:00Z",
            "updated": "2024-01-01T00:00:00Z", "launched_at": null, "fault": null,
            "port_ids": ["p1"], "volumes": [], "pending_until": null, "boot_fails": false,
            "reservation_id": "r"}))
        .unwrap();
        let fw = firewall_of(&st, &srv);
        let nets = |v: &[&str]| Some(v.iter().map(|n| n.parse().unwrap()).collect());
        assert_eq!(
            fw.rules,
            vec![
                IngressRule {
                    protocol: Some("tcp".into()),
                    ports: Some((22, 22)),
                    sources: None,
                },
                IngressRule {
                    protocol: None,
                    ports: None,
                    sources: nets(&["10.213.0.5/32", "10.213.0.6/32", "10.213.255.9/32"]),
                },
            ]
        );
    }
}
