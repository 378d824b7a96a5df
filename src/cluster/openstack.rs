//! [`ClusterApi`] on the real OpenStack client ([`openstack_client::Cloud`]).
//!
//! Mostly a translation of types. Two things the typed client does not carry are read
//! here from the raw JSON: the `description` of floating IPs and the `metadata` of
//! volumes, which is how destroy recognises what launch allocated.

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{
    Address, ApiError, ApiResult, ClusterApi, Flavor, FloatingIp, Image, Network, Port,
    PowerAction, Rule, SecurityGroup, Server, ServerCreate, Volume,
};
use openstack_client::compute::ServerCreate as NovaCreate;
use openstack_client::network::SecurityGroupRule;
use openstack_client::{Cloud, CloudError, Service};

/// The cluster layer's view of one connected cloud.
pub struct OpenStack {
    pub cloud: Cloud,
}

fn err(e: CloudError) -> ApiError {
    ApiError {
        status: e.status(),
        msg: e.to_string(),
    }
}

fn server(s: openstack_client::compute::Server) -> Server {
    let mut addresses = Vec::new();
    for (net, addrs) in &s.addresses {
        for a in addrs.iter().filter(|a| a.version != 6) {
            addresses.push(Address {
                network: net.clone(),
                addr: a.addr.clone(),
                floating: a.kind.as_deref() == Some("floating"),
            });
        }
    }
    // Before 2.47 the flavor is {id}; after, it is embedded and named by original_name.
    let flavor_id = s
        .flavor
        .get("id")
        .or_else(|| s.flavor.get("original_name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Server {
        flavor_id,
        image_id: s
            .image
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        addresses,
        security_groups: Vec::new(),
        fault: s.fault.map(|f| f.message),
        id: s.id,
        name: s.name,
        status: s.status,
        metadata: s.metadata,
        availability_zone: s.availability_zone,
        key_name: s.key_name,
    }
}

/// Nova lists security groups by name on each server; the typed client drops them.
#[derive(Deserialize)]
struct RawServer {
    id: String,
    #[serde(default)]
    security_groups: Vec<RawName>,
}

#[derive(Deserialize)]
struct RawName {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RawFip {
    id: String,
    floating_ip_address: String,
    floating_network_id: String,
    #[serde(default)]
    port_id: Option<String>,
    #[serde(default)]
    fixed_ip_address: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl From<RawFip> for FloatingIp {
    fn from(f: RawFip) -> Self {
        FloatingIp {
            id: f.id,
            address: f.floating_ip_address,
            network_id: f.floating_network_id,
            port_id: f.port_id,
            fixed_ip_address: f.fixed_ip_address,
            description: f.description.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct RawVolume {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    attachments: Vec<Value>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl From<RawVolume> for Volume {
    fn from(v: RawVolume) -> Self {
        Volume {
            attached_to: v
                .attachments
                .iter()
                .filter_map(|a| a.get("server_id").and_then(Value::as_str).map(String::from))
                .collect(),
            id: v.id,
            name: v.name.unwrap_or_default(),
            size_gb: v.size,
            status: v.status,
            metadata: v.metadata,
        }
    }
}

#[async_trait]
impl ClusterApi for OpenStack {
    async fn servers(&self) -> ApiResult<Vec<Server>> {
        // One listing, decoded twice: typed fields plus the security group names.
        let raw: Vec<Value> = self
            .cloud
            .list_all(Service::Compute, "/servers/detail", "servers")
            .await
            .map_err(err)?;
        let mut out = Vec::with_capacity(raw.len());
        for v in raw {
            let groups: Option<RawServer> = serde_json::from_value(v.clone()).ok();
            let typed: openstack_client::compute::Server = serde_json::from_value(v)
                .map_err(|e| ApiError::new(format!("compute: cannot decode a server: {e}")))?;
            let mut s = server(typed);
            if let Some(g) = groups.filter(|g| g.id == s.id) {
                s.security_groups = g.security_groups.into_iter().map(|n| n.name).collect();
            }
            out.push(s);
        }
        Ok(out)
    }

    async fn create_server(&self, req: &ServerCreate) -> ApiResult<Server> {
        let spec = NovaCreate {
            name: req.name.clone(),
            image_id: Some(req.image_id.clone()),
            flavor_id: req.flavor_id.clone(),
            key_name: req.key_name.clone(),
            security_groups: req.security_groups.clone(),
            network_ids: req.network_ids.clone(),
            availability_zone: req.availability_zone.clone(),
            metadata: req.metadata.clone(),
            tags: Vec::new(),
            user_data: None,
            block_devices: Vec::new(),
        };
        self.cloud
            .create_server(&spec)
            .await
            .map(server)
            .map_err(err)
    }

    async fn delete_server(&self, id: &str) -> ApiResult<()> {
        self.cloud.delete_server(id).await.map_err(err)
    }

    async fn power(&self, id: &str, action: PowerAction) -> ApiResult<()> {
        match action {
            PowerAction::Start => self.cloud.start_server(id).await,
            PowerAction::Stop => self.cloud.stop_server(id).await,
        }
        .map_err(err)
    }

    async fn flavors(&self) -> ApiResult<Vec<Flavor>> {
        let list = self.cloud.list_flavors().await.map_err(err)?;
        Ok(list
            .into_iter()
            .map(|f| Flavor {
                id: f.id,
                name: f.name,
                vcpus: f.vcpus,
                ram_mb: f.ram,
                disk_gb: f.disk,
                ephemeral_gb: f.ephemeral,
            })
            .collect())
    }

    async fn compute_limits(&self) -> ApiResult<BTreeMap<String, i64>> {
        self.cloud.compute_limits().await.map_err(err)
    }

    async fn compute_zones(&self) -> ApiResult<Vec<String>> {
        self.cloud.availability_zones().await.map_err(err)
    }

    async fn images(&self) -> ApiResult<Vec<Image>> {
        let list = self.cloud.list_images(&[]).await.map_err(err)?;
        Ok(list
            .into_iter()
            .map(|i| {
                let prop = |k: &str| {
                    i.properties
                        .get(k)
                        .and_then(|v| v.as_str())
                        .map(String::from)
                };
                Image {
                    os_admin_user: prop("os_admin_user"),
                    os_distro: prop("os_distro"),
                    name: i.name.unwrap_or_default(),
                    id: i.id,
                }
            })
            .collect())
    }

    async fn networks(&self) -> ApiResult<Vec<Network>> {
        let list = self.cloud.list_networks(&[]).await.map_err(err)?;
        Ok(list
            .into_iter()
            .map(|n| Network {
                id: n.id,
                name: n.name,
                external: n.external,
            })
            .collect())
    }

    async fn merge_server_metadata(
        &self,
        id: &str,
        items: &BTreeMap<String, String>,
    ) -> ApiResult<()> {
        self.cloud
            .merge_server_metadata(id, items)
            .await
            .map_err(err)
    }

    async fn delete_server_metadata_item(&self, id: &str, key: &str) -> ApiResult<()> {
        self.cloud
            .delete_server_metadata_item(id, key)
            .await
            .map_err(err)
    }

    async fn keypair_names(&self) -> ApiResult<Vec<String>> {
        let list = self.cloud.list_keypairs().await.map_err(err)?;
        Ok(list.into_iter().map(|k| k.name).collect())
    }

    async fn keypair_public_key(&self, name: &str) -> ApiResult<Option<String>> {
        let k = self.cloud.get_keypair(name).await.map_err(err)?;
        Ok(k.map(|k| k.public_key))
    }

    async fn import_keypair(&self, name: &str, public_key: &str) -> ApiResult<()> {
        self.cloud
            .create_keypair(name, public_key)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn security_groups(&self) -> ApiResult<Vec<SecurityGroup>> {
        let list = self.cloud.list_security_groups(&[]).await.map_err(err)?;
        Ok(list
            .into_iter()
            .map(|g| SecurityGroup {
                rules: g
                    .security_group_rules
                    .into_iter()
                    .map(|r| Rule {
                        direction: r.direction,
                        ethertype: r.ethertype,
                        protocol: r.protocol,
                        port_min: r.port_range_min,
                        port_max: r.port_range_max,
                        remote_ip_prefix: r.remote_ip_prefix,
                        remote_group_id: r.remote_group_id,
                    })
                    .collect(),
                id: g.id,
                name: g.name,
            })
            .collect())
    }

    async fn create_security_group(
        &self,
        name: &str,
        description: &str,
    ) -> ApiResult<SecurityGroup> {
        let g = self
            .cloud
            .ensure_security_group(name, description)
            .await
            .map_err(err)?;
        Ok(SecurityGroup {
            id: g.id,
            name: g.name,
            rules: Vec::new(),
        })
    }

    async fn create_rule(&self, group_id: &str, r: &Rule) -> ApiResult<()> {
        let rule = SecurityGroupRule {
            id: String::new(),
            security_group_id: group_id.to_string(),
            direction: r.direction.clone(),
            ethertype: r.ethertype.clone(),
            protocol: r.protocol.clone(),
            port_range_min: r.port_min,
            port_range_max: r.port_max,
            remote_ip_prefix: r.remote_ip_prefix.clone(),
            remote_group_id: r.remote_group_id.clone(),
        };
        self.cloud
            .add_security_group_rule(&rule)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn delete_security_group(&self, id: &str) -> ApiResult<()> {
        self.cloud.delete_security_group(id).await.map_err(err)
    }

    async fn floating_ips(&self) -> ApiResult<Vec<FloatingIp>> {
        let raw: Vec<RawFip> = self
            .cloud
            .list_all(Service::Network, "/floatingips", "floatingips")
            .await
            .map_err(err)?;
        Ok(raw.into_iter().map(FloatingIp::from).collect())
    }

    async fn create_floating_ip(
        &self,
        network_id: &str,
        description: &str,
    ) -> ApiResult<FloatingIp> {
        let body =
            json!({"floatingip": {"floating_network_id": network_id, "description": description}});
        let raw: RawFip = self
            .cloud
            .call(Service::Network, Method::POST, "/floatingips", Some(body))
            .await
            .and_then(|r| r.json_at("floatingip"))
            .map_err(err)?;
        Ok(raw.into())
    }

    async fn associate_floating_ip(&self, fip_id: &str, port_id: &str) -> ApiResult<()> {
        self.cloud
            .set_floating_ip_port(fip_id, Some(port_id))
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn delete_floating_ip(&self, id: &str) -> ApiResult<()> {
        self.cloud.delete_floating_ip(id).await.map_err(err)
    }

    async fn server_ports(&self, server_id: &str) -> ApiResult<Vec<Port>> {
        let ports = self.cloud.server_ports(server_id).await.map_err(err)?;
        Ok(ports
            .into_iter()
            .map(|p| Port {
                id: p.id,
                device_id: p.device_id,
            })
            .collect())
    }

    async fn volume_zones(&self) -> ApiResult<Vec<String>> {
        self.cloud.volume_availability_zones().await.map_err(err)
    }

    async fn volumes(&self) -> ApiResult<Vec<Volume>> {
        let raw: Vec<RawVolume> = self
            .cloud
            .list_all(Service::Volume, "/volumes/detail", "volumes")
            .await
            .map_err(err)?;
        Ok(raw.into_iter().map(Volume::from).collect())
    }

    async fn create_volume(
        &self,
        name: &str,
        size_gb: u64,
        availability_zone: Option<&str>,
        metadata: &BTreeMap<String, String>,
    ) -> ApiResult<Volume> {
        let mut v = json!({"name": name, "size": size_gb, "metadata": metadata});
        if let Some(az) = availability_zone {
            v["availability_zone"] = json!(az);
        }
        let raw: RawVolume = self
            .cloud
            .call(
                Service::Volume,
                Method::POST,
                "/volumes",
                Some(json!({"volume": v})),
            )
            .await
            .and_then(|r| r.json_at("volume"))
            .map_err(err)?;
        Ok(raw.into())
    }

    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> ApiResult<()> {
        self.cloud
            .attach_volume(server_id, volume_id, None)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn delete_volume(&self, id: &str) -> ApiResult<()> {
        self.cloud.delete_volume(id).await.map_err(err)
    }

    fn calls(&self) -> u64 {
        self.cloud.api_calls()
    }
}

/// Connects to the cloud named `os_cloud` (clouds.yaml / `OS_*`, as `openstack --os-cloud`).
pub async fn connect(os_cloud: Option<String>) -> Result<OpenStack, String> {
    let cfg = openstack_client::config::load_default(os_cloud).map_err(|e| e.to_string())?;
    let cloud = Cloud::connect(&cfg).await.map_err(|e| e.to_string())?;
    Ok(OpenStack { cloud })
}
