//! Neutron: networks, subnets, security groups and rules, ports, floating IPs, quotas.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{CloudError, Result};
use super::{Cloud, Service, pick_one, q};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(rename = "router:external", default)]
    pub external: bool,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub subnets: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Subnet {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub network_id: String,
    #[serde(default)]
    pub cidr: String,
    #[serde(default)]
    pub ip_version: u8,
    #[serde(default)]
    pub gateway_ip: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct SecurityGroupRule {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub security_group_id: String,
    pub direction: String,
    #[serde(default = "ipv4")]
    pub ethertype: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<u16>,
    #[serde(default)]
    pub port_range_max: Option<u16>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
}

fn ipv4() -> String {
    "IPv4".into()
}

impl SecurityGroupRule {
    /// An ingress rule from a CIDR ("0.0.0.0/0") for a TCP port range.
    pub fn tcp_from_cidr(group: &str, from: u16, to: u16, cidr: &str) -> SecurityGroupRule {
        SecurityGroupRule {
            id: String::new(),
            security_group_id: group.into(),
            direction: "ingress".into(),
            ethertype: if cidr.contains(':') {
                "IPv6".into()
            } else {
                ipv4()
            },
            protocol: Some("tcp".into()),
            port_range_min: Some(from),
            port_range_max: Some(to),
            remote_ip_prefix: Some(cidr.into()),
            remote_group_id: None,
        }
    }

    /// All traffic from members of `remote_group` (cluster-internal traffic).
    pub fn all_from_group(group: &str, remote_group: &str, ethertype: &str) -> SecurityGroupRule {
        SecurityGroupRule {
            id: String::new(),
            security_group_id: group.into(),
            direction: "ingress".into(),
            ethertype: ethertype.into(),
            protocol: None,
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
            remote_group_id: Some(remote_group.into()),
        }
    }

    fn body(&self) -> Value {
        let mut r = json!({"security_group_id": self.security_group_id, "direction": self.direction, "ethertype": self.ethertype});
        for (k, v) in [
            ("protocol", json!(self.protocol)),
            ("port_range_min", json!(self.port_range_min)),
            ("port_range_max", json!(self.port_range_max)),
            ("remote_ip_prefix", json!(self.remote_ip_prefix)),
            ("remote_group_id", json!(self.remote_group_id)),
        ] {
            if !v.is_null() {
                r[k] = v;
            }
        }
        json!({"security_group_rule": r})
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub security_group_rules: Vec<SecurityGroupRule>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FixedIp {
    #[serde(default)]
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Port {
    pub id: String,
    pub network_id: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FloatingIp {
    pub id: String,
    pub floating_ip_address: String,
    pub floating_network_id: String,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub fixed_ip_address: Option<String>,
    #[serde(default)]
    pub status: String,
}

/// `?k=v&k2=v2` from pairs.
fn query(filters: &[(&str, &str)]) -> String {
    if filters.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = filters
        .iter()
        .map(|(k, v)| format!("{}={}", q(k), q(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

impl Cloud {
    pub async fn list_networks(&self, filters: &[(&str, &str)]) -> Result<Vec<Network>> {
        self.list_all(
            Service::Network,
            &format!("/networks{}", query(filters)),
            "networks",
        )
        .await
    }

    /// A network by id or exact name.
    pub async fn find_network(&self, name_or_id: &str) -> Result<Network> {
        let by_id = self.list_networks(&[("id", name_or_id)]).await?;
        if let Some(n) = by_id.into_iter().next() {
            return Ok(n);
        }
        let hits = self.list_networks(&[("name", name_or_id)]).await?;
        pick_one("network", name_or_id, hits, |n| &n.id)
    }

    /// The external network for floating IPs: the named one, or the only one there is.
    pub async fn external_network(&self, name_or_id: Option<&str>) -> Result<Network> {
        if let Some(n) = name_or_id {
            let net = self.find_network(n).await?;
            if !net.external {
                return Err(CloudError::Failed(format!(
                    "network '{n}' is not external (router:external is false), so it cannot provide floating IPs"
                )));
            }
            return Ok(net);
        }
        let mut ext = self.list_networks(&[("router:external", "true")]).await?;
        match ext.len() {
            1 => Ok(ext.remove(0)),
            0 => Err(CloudError::NotFound { kind: "external network", name: "(any)".into(), hint: "; this project sees no network with router:external, so floating IPs are unavailable".into() }),
            _ => Err(CloudError::Failed(format!(
                "several external networks exist ({}); choose one for floating IPs",
                ext.iter().map(|n| format!("{} ({})", n.name, n.id)).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    pub async fn list_subnets(&self, filters: &[(&str, &str)]) -> Result<Vec<Subnet>> {
        self.list_all(
            Service::Network,
            &format!("/subnets{}", query(filters)),
            "subnets",
        )
        .await
    }

    pub async fn list_security_groups(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<SecurityGroup>> {
        self.list_all(
            Service::Network,
            &format!("/security-groups{}", query(filters)),
            "security_groups",
        )
        .await
    }

    /// The group with this name, created if missing (names are not unique in Neutron, so
    /// a name held by several groups is an error listing them).
    pub async fn ensure_security_group(
        &self,
        name: &str,
        description: &str,
    ) -> Result<SecurityGroup> {
        super::create_idempotently(
            self.retry_policy(),
            || async {
                let hits = self.list_security_groups(&[("name", name)]).await?;
                if hits.is_empty() {
                    Ok(None)
                } else {
                    pick_one("security group", name, hits, |g| &g.id).map(Some)
                }
            },
            || async {
                let body = json!({"security_group": {"name": name, "description": description}});
                self.call(
                    Service::Network,
                    Method::POST,
                    "/security-groups",
                    Some(body),
                )
                .await?
                .json_at("security_group")
            },
        )
        .await
    }

    /// Adds a rule; `Ok(false)` when an identical rule already exists (409
    /// SecurityGroupRuleExists), so re-running a launch is harmless.
    pub async fn add_security_group_rule(&self, rule: &SecurityGroupRule) -> Result<bool> {
        match self
            .call(
                Service::Network,
                Method::POST,
                "/security-group-rules",
                Some(rule.body()),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(CloudError::Api {
                status: 409,
                message,
                ..
            }) if message.contains("already exists") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a group; a missing one is not an error.
    pub async fn delete_security_group(&self, id: &str) -> Result<()> {
        match self
            .call(
                Service::Network,
                Method::DELETE,
                &format!("/security-groups/{id}"),
                None,
            )
            .await
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Ports of a server (`device_id`).
    pub async fn server_ports(&self, server_id: &str) -> Result<Vec<Port>> {
        self.list_all(
            Service::Network,
            &format!("/ports?device_id={}", q(server_id)),
            "ports",
        )
        .await
    }

    pub async fn list_floating_ips(&self, filters: &[(&str, &str)]) -> Result<Vec<FloatingIp>> {
        self.list_all(
            Service::Network,
            &format!("/floatingips{}", query(filters)),
            "floatingips",
        )
        .await
    }

    pub async fn create_floating_ip(&self, network_id: &str) -> Result<FloatingIp> {
        let body = json!({"floatingip": {"floating_network_id": network_id}});
        self.call(Service::Network, Method::POST, "/floatingips", Some(body))
            .await?
            .json_at("floatingip")
    }

    /// Points a floating IP at a port (`None` disassociates).
    pub async fn set_floating_ip_port(
        &self,
        fip_id: &str,
        port_id: Option<&str>,
    ) -> Result<FloatingIp> {
        let body = json!({"floatingip": {"port_id": port_id}});
        self.call(
            Service::Network,
            Method::PUT,
            &format!("/floatingips/{fip_id}"),
            Some(body),
        )
        .await?
        .json_at("floatingip")
    }

    pub async fn delete_floating_ip(&self, id: &str) -> Result<()> {
        match self
            .call(
                Service::Network,
                Method::DELETE,
                &format!("/floatingips/{id}"),
                None,
            )
            .await
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Gives a server a floating IP from `network` (or the only external network):
    /// reuses one already on its port, else an unattached one, else creates one.
    pub async fn add_floating_ip(
        &self,
        server_id: &str,
        network: Option<&str>,
    ) -> Result<FloatingIp> {
        let ext = self.external_network(network).await?;
        let port = self
            .server_ports(server_id)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CloudError::Failed(format!(
                    "server {server_id} has no network port yet, so it cannot get a floating IP"
                ))
            })?;
        let on_net = self
            .list_floating_ips(&[("floating_network_id", &ext.id)])
            .await?;
        if let Some(f) = on_net
            .iter()
            .find(|f| f.port_id.as_deref() == Some(port.id.as_str()))
        {
            return Ok(f.clone());
        }
        let fip = match on_net.into_iter().find(|f| f.port_id.is_none()) {
            Some(free) => free,
            None => self.create_floating_ip(&ext.id).await?,
        };
        self.set_floating_ip_port(&fip.id, Some(&port.id)).await
    }

    /// Neutron quota limits of the token's project (`network`, `port`, `floatingip`,
    /// `security_group`, ...), -1 = unlimited.
    pub async fn network_quota(&self) -> Result<BTreeMap<String, i64>> {
        let project = self.project_id().await?.unwrap_or_default();
        let v: Value = self
            .get(Service::Network, &format!("/quotas/{project}"))
            .await?;
        let quota = v
            .get("quota")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(quota
            .into_iter()
            .filter_map(|(k, v)| v.as_i64().map(|n| (k, n)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_bodies_omit_unset_fields() {
        let r = SecurityGroupRule::tcp_from_cidr("g", 22, 22, "0.0.0.0/0");
        assert_eq!(
            r.body(),
            json!({"security_group_rule": {"security_group_id": "g", "direction": "ingress", "ethertype": "IPv4",
                "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}})
        );
        let g = SecurityGroupRule::all_from_group("g", "g", "IPv6");
        assert_eq!(
            g.body(),
            json!({"security_group_rule": {"security_group_id": "g", "direction": "ingress", "ethertype": "IPv6", "remote_group_id": "g"}})
        );
        assert_eq!(
            query(&[("router:external", "true")]),
            "?router%3Aexternal=true"
        );
    }
}
