//! Nova: flavors, keypairs, availability zones, servers, actions, limits, volume
//! attachments.
//! Waiting for servers lives in [`super::wait`].

use std::collections::BTreeMap;

use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{CloudError, Result};
use super::{Cloud, Service, pick_one, q};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub ram: u64,
    pub vcpus: u32,
    pub disk: u64,
    #[serde(rename = "OS-FLV-EXT-DATA:ephemeral", default)]
    pub ephemeral: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Keypair {
    pub name: String,
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Address {
    pub addr: String,
    #[serde(default)]
    pub version: u8,
    /// "fixed" or "floating".
    #[serde(rename = "OS-EXT-IPS:type", default)]
    pub kind: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Fault {
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub message: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Server {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub addresses: BTreeMap<String, Vec<Address>>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(rename = "OS-EXT-AZ:availability_zone", default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub fault: Option<Fault>,
    /// `{id, links}` before 2.47, the embedded flavor after.
    #[serde(default)]
    pub flavor: Value,
    /// `{id, links}`, or "" when booted from volume.
    #[serde(default)]
    pub image: Value,
    #[serde(default)]
    pub created: Option<String>,
}

impl Server {
    /// Addresses of one kind ("fixed"/"floating") over all networks, IPv4 first.
    pub fn ips(&self, kind: &str) -> Vec<&str> {
        let mut v: Vec<&Address> = self
            .addresses
            .values()
            .flatten()
            .filter(|a| a.kind.as_deref() == Some(kind))
            .collect();
        v.sort_by_key(|a| if a.version == 6 { 1 } else { 0 });
        v.into_iter().map(|a| a.addr.as_str()).collect()
    }
}

/// One block device mapping (boot from volume, extra ephemeral volumes).
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockDevice {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_index: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub source_type: String,
    pub destination_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<u64>,
    pub delete_on_termination: bool,
}

/// What `POST /servers` needs. `networks` empty means `"auto"`.
#[derive(Clone, Debug, Default)]
pub struct ServerCreate {
    pub name: String,
    pub image_id: Option<String>,
    pub flavor_id: String,
    pub key_name: Option<String>,
    pub security_groups: Vec<String>,
    pub network_ids: Vec<String>,
    pub availability_zone: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub user_data: Option<String>,
    pub block_devices: Vec<BlockDevice>,
}

impl ServerCreate {
    /// The request body at `microversion`.
    pub fn body(&self, microversion: Option<(u32, u32)>) -> Result<Value> {
        let mv = microversion.unwrap_or((2, 1));
        let mut s = json!({"name": self.name, "flavorRef": self.flavor_id});
        if let Some(img) = &self.image_id {
            s["imageRef"] = json!(img);
        }
        if let Some(k) = &self.key_name {
            s["key_name"] = json!(k);
        }
        if !self.security_groups.is_empty() {
            s["security_groups"] = self
                .security_groups
                .iter()
                .map(|n| json!({"name": n}))
                .collect();
        }
        if !self.network_ids.is_empty() {
            s["networks"] = self
                .network_ids
                .iter()
                .map(|n| json!({"uuid": n}))
                .collect();
        } else if mv >= (2, 37) {
            s["networks"] = json!("auto");
        }
        if let Some(az) = &self.availability_zone {
            s["availability_zone"] = json!(az);
        }
        if !self.metadata.is_empty() {
            s["metadata"] = json!(self.metadata);
        }
        if !self.tags.is_empty() {
            if mv < (2, 52) {
                return Err(CloudError::Config(format!(
                    "server tags need compute API 2.52 but this cloud offers {}.{}",
                    mv.0, mv.1
                )));
            }
            s["tags"] = json!(self.tags);
        }
        if let Some(ud) = &self.user_data {
            s["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(ud));
        }
        if !self.block_devices.is_empty() {
            s["block_device_mapping_v2"] = json!(self.block_devices);
        }
        Ok(json!({"server": s}))
    }
}

/// Filters for `GET /servers/detail` that Nova applies for non-admins.
#[derive(Clone, Debug, Default)]
pub struct ServerFilter {
    /// A regular expression (Nova semantics: unanchored).
    pub name: Option<String>,
    pub status: Option<String>,
    /// Servers having all these tags (2.26).
    pub tags: Vec<String>,
    /// Metadata items every returned server must have. Nova offers no metadata filter to
    /// non-admins, so this is applied to the listed servers, not sent.
    pub metadata: BTreeMap<String, String>,
}

impl ServerFilter {
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("name={}", q(n)));
        }
        if let Some(s) = &self.status {
            parts.push(format!("status={}", q(s)));
        }
        if !self.tags.is_empty() {
            parts.push(format!("tags={}", q(&self.tags.join(","))));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VolumeAttachment {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "serverId", default)]
    pub server_id: Option<String>,
    #[serde(rename = "volumeId")]
    pub volume_id: String,
    #[serde(default)]
    pub device: Option<String>,
}

impl Cloud {
    pub async fn list_flavors(&self) -> Result<Vec<Flavor>> {
        self.list_all(
            Service::Compute,
            "/flavors/detail?is_public=None",
            "flavors",
        )
        .await
    }

    /// A flavor by id or exact name (ambiguous names are an error listing the ids).
    pub async fn find_flavor(&self, name_or_id: &str) -> Result<Flavor> {
        let all = self.list_flavors().await?;
        if let Some(f) = all.iter().find(|f| f.id == name_or_id) {
            return Ok(f.clone());
        }
        let hits = all.into_iter().filter(|f| f.name == name_or_id).collect();
        pick_one("flavor", name_or_id, hits, |f| &f.id)
    }

    pub async fn list_keypairs(&self) -> Result<Vec<Keypair>> {
        #[derive(Deserialize)]
        struct Wrapped {
            keypair: Keypair,
        }
        let v: Vec<Wrapped> = self
            .list_all(Service::Compute, "/os-keypairs", "keypairs")
            .await?;
        Ok(v.into_iter().map(|w| w.keypair).collect())
    }

    /// `None` when no keypair has that name.
    pub async fn get_keypair(&self, name: &str) -> Result<Option<Keypair>> {
        let path = format!("/os-keypairs/{}", q(name));
        match self.get_at(Service::Compute, &path, "keypair").await {
            Ok(k) => Ok(Some(k)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Imports a public key (Nova >= 2.92 no longer generates keys).
    pub async fn create_keypair(&self, name: &str, public_key: &str) -> Result<Keypair> {
        let body = json!({"keypair": {"name": name, "public_key": public_key.trim()}});
        self.call(Service::Compute, Method::POST, "/os-keypairs", Some(body))
            .await?
            .json_at("keypair")
    }

    pub async fn delete_keypair(&self, name: &str) -> Result<()> {
        self.call(
            Service::Compute,
            Method::DELETE,
            &format!("/os-keypairs/{}", q(name)),
            None,
        )
        .await?;
        Ok(())
    }

    /// Names of the availability zones that are up.
    pub async fn availability_zones(&self) -> Result<Vec<String>> {
        self.service_zones(Service::Compute).await
    }

    /// The available zones of a service that has `/os-availability-zone` (Nova, Cinder):
    /// each service has its own, and a Nova zone need not exist in Cinder.
    pub(crate) async fn service_zones(&self, service: Service) -> Result<Vec<String>> {
        let v: Value = self.get(service, "/os-availability-zone").await?;
        Ok(v.get("availabilityZoneInfo")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|z| {
                z.pointer("/zoneState/available")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
            })
            .filter_map(|z| z.get("zoneName").and_then(Value::as_str).map(String::from))
            .collect())
    }

    /// `POST /servers`. Not retried on 5xx (it may have worked): wrap it in
    /// [`super::create_idempotently`] with a lookup by name, as [`Cloud::ensure_server`] does.
    pub async fn create_server(&self, spec: &ServerCreate) -> Result<Server> {
        let body = spec.body(self.compute_microversion().await?)?;
        let created: Server = self
            .call(Service::Compute, Method::POST, "/servers", Some(body))
            .await?
            .json_at("server")?;
        Ok(Server {
            name: spec.name.clone(),
            ..created
        })
    }

    /// Creates the server unless one with exactly this name exists; after a transient
    /// failure it looks again before retrying, so a flaky network never duplicates it.
    pub async fn ensure_server(&self, spec: &ServerCreate) -> Result<Server> {
        let exact = format!("^{}$", regex::escape(&spec.name));
        super::create_idempotently(
            self.retry_policy(),
            || async {
                let found = self
                    .list_servers(&ServerFilter {
                        name: Some(exact.clone()),
                        ..Default::default()
                    })
                    .await?;
                Ok(found.into_iter().find(|s| s.name == spec.name))
            },
            || self.create_server(spec),
        )
        .await
    }

    /// All servers matching `filter`, in one call per page.
    pub async fn list_servers(&self, filter: &ServerFilter) -> Result<Vec<Server>> {
        let all: Vec<Server> = self
            .list_all(
                Service::Compute,
                &format!("/servers/detail{}", filter.query()),
                "servers",
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|s| {
                filter
                    .metadata
                    .iter()
                    .all(|(k, v)| s.metadata.get(k) == Some(v))
            })
            .collect())
    }

    pub async fn get_server(&self, id: &str) -> Result<Server> {
        self.get_at(Service::Compute, &format!("/servers/{id}"), "server")
            .await
    }

    /// Deletes; an already deleted server is not an error.
    pub async fn delete_server(&self, id: &str) -> Result<()> {
        match self
            .call(
                Service::Compute,
                Method::DELETE,
                &format!("/servers/{id}"),
                None,
            )
            .await
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Adds or replaces metadata items (`POST /servers/{id}/metadata` merges; other keys stay).
    pub async fn merge_server_metadata(
        &self,
        id: &str,
        items: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.call(
            Service::Compute,
            Method::POST,
            &format!("/servers/{id}/metadata"),
            Some(json!({ "metadata": items })),
        )
        .await
        .map(drop)
    }

    /// Removes one metadata item; a missing one is not an error.
    pub async fn delete_server_metadata_item(&self, id: &str, key: &str) -> Result<()> {
        match self
            .call(
                Service::Compute,
                Method::DELETE,
                &format!("/servers/{id}/metadata/{}", q(key)),
                None,
            )
            .await
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    async fn action(&self, id: &str, body: Value) -> Result<Value> {
        let r = self
            .call(
                Service::Compute,
                Method::POST,
                &format!("/servers/{id}/action"),
                Some(body),
            )
            .await?;
        Ok(if r.body.is_empty() {
            Value::Null
        } else {
            r.json()?
        })
    }

    pub async fn stop_server(&self, id: &str) -> Result<()> {
        self.action(id, json!({"os-stop": null})).await.map(drop)
    }

    pub async fn start_server(&self, id: &str) -> Result<()> {
        self.action(id, json!({"os-start": null})).await.map(drop)
    }

    pub async fn reboot_server(&self, id: &str, hard: bool) -> Result<()> {
        let t = if hard { "HARD" } else { "SOFT" };
        self.action(id, json!({"reboot": {"type": t}}))
            .await
            .map(drop)
    }

    /// The last `lines` lines of the console log (all when `None`).
    pub async fn console_output(&self, id: &str, lines: Option<u32>) -> Result<String> {
        let v = self
            .action(id, json!({"os-getConsoleOutput": {"length": lines}}))
            .await?;
        Ok(v.get("output")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// Nova absolute limits (`maxTotalInstances`, `totalCoresUsed`, ...), -1 = unlimited.
    pub async fn compute_limits(&self) -> Result<BTreeMap<String, i64>> {
        let v: Value = self.get(Service::Compute, "/limits").await?;
        let abs = v
            .pointer("/limits/absolute")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Ok(abs
            .into_iter()
            .filter_map(|(k, v)| v.as_i64().map(|n| (k, n)))
            .collect())
    }

    pub async fn attach_volume(
        &self,
        server_id: &str,
        volume_id: &str,
        device: Option<&str>,
    ) -> Result<VolumeAttachment> {
        let mut a = json!({"volumeId": volume_id});
        if let Some(d) = device {
            a["device"] = json!(d);
        }
        let path = format!("/servers/{server_id}/os-volume_attachments");
        self.call(
            Service::Compute,
            Method::POST,
            &path,
            Some(json!({"volumeAttachment": a})),
        )
        .await?
        .json_at("volumeAttachment")
    }

    pub async fn list_volume_attachments(&self, server_id: &str) -> Result<Vec<VolumeAttachment>> {
        let path = format!("/servers/{server_id}/os-volume_attachments");
        self.list_all(Service::Compute, &path, "volumeAttachments")
            .await
    }

    pub async fn detach_volume(&self, server_id: &str, volume_id: &str) -> Result<()> {
        let path = format!("/servers/{server_id}/os-volume_attachments/{volume_id}");
        self.call(Service::Compute, Method::DELETE, &path, None)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_follows_microversion() {
        let spec = ServerCreate {
            name: "w1".into(),
            image_id: Some("img".into()),
            flavor_id: "2".into(),
            security_groups: vec!["sg".into()],
            tags: vec!["spark".into()],
            user_data: Some("#!/bin/sh\n".into()),
            ..Default::default()
        };
        let b = spec.body(Some((2, 79))).unwrap();
        assert_eq!(b["server"]["networks"], json!("auto"));
        assert_eq!(b["server"]["security_groups"], json!([{"name": "sg"}]));
        assert_eq!(b["server"]["tags"], json!(["spark"]));
        assert_eq!(b["server"]["user_data"], json!("IyEvYmluL3NoCg=="));
        let e = spec.body(None).unwrap_err().to_string();
        assert!(e.contains("server tags need compute API 2.52"), "{e}");
    }

    #[test]
    fn server_ips_and_flavor_fields() {
        let s: Server = serde_json::from_value(json!({"id": "1", "name": "a", "status": "ACTIVE",
            "addresses": {"net": [
                {"addr": "fe80::1", "version": 6, "OS-EXT-IPS:type": "fixed"},
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                {"addr": "172.24.4.9", "version": 4, "OS-EXT-IPS:type": "floating"}]}}))
        .unwrap();
        assert_eq!(s.ips("fixed"), vec!["10.0.0.5", "fe80::1"]);
        assert_eq!(s.ips("floating"), vec!["172.24.4.9"]);
        let f: Flavor = serde_json::from_value(json!({"id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 10})).unwrap();
        assert_eq!(f.ephemeral, 10);
    }

    #[test]
    fn filter_query_is_encoded() {
        let f = ServerFilter {
            name: Some("^c1-".into()),
            status: Some("ACTIVE".into()),
            tags: vec!["a".into(), "b".into()],
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        };
        assert_eq!(f.query(), "?name=%5Ec1-&status=ACTIVE&tags=a%2Cb");
    }
}
