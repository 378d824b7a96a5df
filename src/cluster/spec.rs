//! The desired shape of a cluster, read from module arguments (which the playbooks fill
//! from the command-line options and the config file).
//!
//! Argument names are the long option names with `_` for `-` (`instance_type`,
//! `openstack_network_communication_method`), so `-e` on `spark-openstack play` and the
//! shortcut commands speak the same language. Everything optional may also be taken from
//! the cluster as it exists (image, flavors, key pair, mode), so `launch --resume` and
//! `add-slaves` need no options at all.

use playbook_engine::modules::ModuleError;
use playbook_engine::modules::args::Args;
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

/// The launch options a cluster module call may carry, by argument name.
pub const LAUNCH_ARGS: &[&str] = &[
    "cluster",
    "slaves",
    "resume",
    "image",
    "key_pair",
    "key_pair_public_key",
    "instance_type",
    "master_instance_type",
    "openstack_network_communication_method",
    "zone",
    "network",
    "floating_ip_pool",
    "ssh_user",
    "authorized_address",
    "slave_volume_size",
    "persistent_volume_size",
    "boot_timeout",
];

/// The arguments without the empty strings: an option given empty (`-e image=`, or a
/// playbook's `"{{ x | default('') }}"`) means "not given", for every option alike.
pub fn without_empty(args: &Map<String, Value>) -> Map<String, Value> {
    args.iter()
        .filter(|(_, v)| v.as_str() != Some(""))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl LaunchSpec {
    /// Reads the launch options from a module's arguments (see [`LAUNCH_ARGS`]; the caller
    /// has checked for unknown names and dropped empty values with [`without_empty`]).
    pub fn from_args(a: &Args) -> Result<LaunchSpec, ModuleError> {
        let cluster = a.str("cluster")?;
        model::validate_name(&cluster).map_err(|e| a.err("cluster", e))?;
        let slaves = match a.opt_int("slaves")? {
            Some(n) if !(0..=1000).contains(&n) => {
                return Err(a.err("slaves", format!("must be 0 to 1000, got {n}")));
            }
            n => n.map(|n| n as u32),
        };
        let method = "openstack_network_communication_method";
        let net_mode = a
            .opt_str(method)?
            .map(|s| NetMode::parse(&s).map_err(|e| a.fail(e)))
            .transpose()?;
        let authorized_address = a.opt_str("authorized_address")?;
        if let Some(cidr) = &authorized_address {
            super::secgroups::validate_cidr(cidr).map_err(|e| a.err("authorized_address", e))?;
        }
        let size = |key: &str| -> Result<Option<u64>, ModuleError> {
            match a.opt_int(key)? {
                Some(n) if n < 0 => Err(a.err(key, format!("must be a size in GB, got {n}"))),
                n => Ok(n.filter(|n| *n > 0).map(|n| n as u64)),
            }
        };
        let boot_timeout = match a.int_or("boot_timeout", 900)? {
            n if n > 0 => n as u64,
            n => return Err(a.err("boot_timeout", format!("must be seconds > 0, got {n}"))),
        };
        Ok(LaunchSpec {
            cluster,
            slaves,
            resume: a.bool_or("resume", false)?,
            image: a.opt_str("image")?,
            key_pair: a.opt_str("key_pair")?,
            key_pair_public_key: a.opt_str("key_pair_public_key")?,
            instance_type: a.opt_str("instance_type")?,
            master_instance_type: a.opt_str("master_instance_type")?,
            net_mode,
            zones: a.str_list("zone")?,
            network: a.opt_str("network")?,
            floating_ip_pool: a.opt_str("floating_ip_pool")?,
            ssh_user: a.opt_str("ssh_user")?,
            authorized_address,
            slave_volume_size: size("slave_volume_size")?,
            persistent_volume_size: size("persistent_volume_size")?,
            boot_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<LaunchSpec, String> {
        let map = without_empty(v.as_object().unwrap());
        let a =
            Args::new("spark_openstack.cluster", &map, LAUNCH_ARGS).map_err(|e| e.to_string())?;
        LaunchSpec::from_args(&a).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_strings_numbers_and_lists() {
        let s = spec(json!({
            "cluster": "demo", "slaves": "3", "zone": "az1,az2", "image": "",
            "openstack_network_communication_method": "static", "slave_volume_size": 0
        }))
        .unwrap();
        assert_eq!(s.slaves, Some(3));
        assert_eq!(s.zones, ["az1", "az2"]);
        assert_eq!(s.net_mode, Some(NetMode::Static));
        assert_eq!(s.slave_volume_size, None);
        assert_eq!(s.image, None, "an empty option is not given");
    }

    #[test]
    fn bad_values_are_named() {
        let e = spec(json!({"cluster": "demo", "slaves": "x"})).unwrap_err();
        assert!(e.contains("'slaves'"), "{e}");
        let e = spec(json!({"slaves": 1})).unwrap_err();
        assert!(e.contains("'cluster'"), "{e}");
        let e = spec(json!({
            "cluster": "demo", "openstack_network_communication_method": "public"
        }))
        .unwrap_err();
        assert!(e.contains("floating, static"), "{e}");
        let e = spec(json!({"cluster": "demo", "resume": "perhaps"})).unwrap_err();
        assert!(e.contains("'resume'"), "{e}");
    }

    #[test]
    fn a_misspelt_option_is_refused_with_a_hint() {
        let e = spec(json!({"cluster": "demo", "instance_typ": "m1.large"})).unwrap_err();
        assert!(
            e.contains("'instance_typ'") && e.contains("did you mean 'instance_type'"),
            "{e}"
        );
    }
}
