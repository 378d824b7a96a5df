//! The desired shape of a cluster, read from module arguments (which the playbooks fill
//! from the command-line options and the config file).
//!
//! Argument names are the long option names with `_` for `-` (`instance_type`,
//! `openstack_network_communication_method`), so `-e` on `spark-openstack play` and the
//! shortcut commands speak the same language. Everything optional may also be taken from
//! the cluster as it exists (image, flavors, key pair, mode), so `launch --resume` and
//! `add-slaves` need no options at all.

use serde_json::{Map, Value};

use super::model;

/// How the controller reaches the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// A floating IP on the master only; slaves through the master as a jump host.
    Floating,
    /// Every node on its fixed address (the controller sees the cluster network).
    Static,
}

impl NetMode {
    pub fn parse(s: &str) -> Result<NetMode, String> {
        match s {
            "floating" => Ok(NetMode::Floating),
            "static" => Ok(NetMode::Static),
            other => Err(format!(
                "openstack_network_communication_method: '{other}' is not one of floating, static"
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            NetMode::Floating => "floating",
            NetMode::Static => "static",
        }
    }
}

/// What `launch` (and `add-slaves`) should converge to.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    pub cluster: String,
    /// Wanted number of slaves; `None` keeps the current number (`--resume`).
    pub slaves: Option<u32>,
    /// Fail when the cluster does not exist yet (`--resume`).
    pub resume: bool,
    pub image: Option<String>,
    pub key_pair: Option<String>,
    /// The public half of `--identity-file` (its `.pub` file): a `--key-pair` missing
    /// from Nova is imported from it, so a first launch needs no `openstack keypair create`.
    pub key_pair_public_key: Option<String>,
    pub instance_type: Option<String>,
    pub master_instance_type: Option<String>,
    pub net_mode: Option<NetMode>,
    /// Availability zones; slaves are spread over them round-robin.
    pub zones: Vec<String>,
    pub network: Option<String>,
    pub floating_ip_pool: Option<String>,
    pub ssh_user: Option<String>,
    pub authorized_address: Option<String>,
    /// Cinder volume per slave (GB), for HDFS data.
    pub slave_volume_size: Option<u64>,
    /// Cinder volume per node (GB) that survives stop/start, for persistent HDFS.
    pub persistent_volume_size: Option<u64>,
    /// Seconds to wait for all servers to become ACTIVE.
    pub boot_timeout: u64,
}

/// Reads module arguments with one clear error per bad value.
pub struct Args<'a>(pub &'a Map<String, Value>);

impl Args<'_> {
    pub fn str(&self, key: &str) -> Result<Option<String>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("argument '{key}' must be a string")),
        }
    }
    pub fn req(&self, key: &str) -> Result<String, String> {
        self.str(key)?
            .ok_or_else(|| format!("missing required argument '{key}'"))
    }
    pub fn uint(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("argument '{key}' must be a whole number, got '{s}'")),
            Some(v) => Err(format!("argument '{key}' must be a whole number, got {v}")),
        }
    }
    pub fn bool(&self, key: &str) -> Result<bool, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" => Ok(true),
                "no" | "false" | "off" | "0" | "" => Ok(false),
                _ => Err(format!("argument '{key}' must be a boolean, got '{s}'")),
            },
            Some(v) => Err(format!("argument '{key}' must be a boolean, got {v}")),
        }
    }
    pub fn list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::String(s)) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .ok_or_else(|| format!("argument '{key}' must be a list of strings"))
                })
                .collect(),
            Some(_) => Err(format!("argument '{key}' must be a list of strings")),
        }
    }
}

impl LaunchSpec {
    pub fn from_args(args: &Map<String, Value>) -> Result<LaunchSpec, String> {
        let a = Args(args);
        let cluster = a.req("cluster")?;
        model::validate_name(&cluster)?;
        let slaves = match a.uint("slaves")? {
            Some(n) if n > 1000 => return Err(format!("slaves: {n} is more than 1000")),
            n => n.map(|n| n as u32),
        };
        let net_mode = a
            .str("openstack_network_communication_method")?
            .map(|s| NetMode::parse(&s))
            .transpose()?;
        let authorized_address = a.str("authorized_address")?;
        if let Some(cidr) = &authorized_address {
            super::secgroups::validate_cidr(cidr)?;
        }
        let positive =
            |key: &str| -> Result<Option<u64>, String> { Ok(a.uint(key)?.filter(|n| *n > 0)) };
        Ok(LaunchSpec {
            cluster,
            slaves,
            resume: a.bool("resume")?,
            image: a.str("image")?,
            key_pair: a.str("key_pair")?,
            key_pair_public_key: a.str("key_pair_public_key")?,
            instance_type: a.str("instance_type")?,
            master_instance_type: a.str("master_instance_type")?,
            net_mode,
            zones: a.list("zone")?,
            network: a.str("network")?,
            floating_ip_pool: a.str("floating_ip_pool")?,
            ssh_user: a.str("ssh_user")?,
            authorized_address,
            slave_volume_size: positive("slave_volume_size")?,
            persistent_volume_size: positive("persistent_volume_size")?,
            boot_timeout: a.uint("boot_timeout")?.unwrap_or(900),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reads_strings_numbers_and_lists() {
        let s = LaunchSpec::from_args(&args(json!({
            "cluster": "demo", "slaves": "3", "zone": "az1,az2",
            "openstack_network_communication_method": "static", "slave_volume_size": 0
        })))
        .unwrap();
        assert_eq!(s.slaves, Some(3));
        assert_eq!(s.zones, ["az1", "az2"]);
        assert_eq!(s.net_mode, Some(NetMode::Static));
        assert_eq!(s.slave_volume_size, None);
    }

    #[test]
    fn bad_values_are_named() {
        let e =
            LaunchSpec::from_args(&args(json!({"cluster": "demo", "slaves": "x"}))).unwrap_err();
        assert!(e.contains("'slaves'"), "{e}");
        let e = LaunchSpec::from_args(&args(json!({"slaves": 1}))).unwrap_err();
        assert!(e.contains("'cluster'"), "{e}");
        let e = LaunchSpec::from_args(&args(json!({
            "cluster": "demo", "openstack_network_communication_method": "public"
        })))
        .unwrap_err();
        assert!(e.contains("floating, static"), "{e}");
    }
}
