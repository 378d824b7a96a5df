//! Names and address ranges of one netns setup. Everything the backend creates on the host is
//! derived from here, so tests can use their own prefix and range and never clash with a running
//! devcloud (or with each other).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::error::{NetnsError, Result};

/// Longest prefix that keeps every interface name within Linux's 15 characters
/// (`<prefix>br-tenant`, `<prefix>t-<8 chars>`).
pub const MAX_PREFIX_LEN: usize = 5;

/// Directories that are private inside each machine; the state dir must not live under them,
/// or sshd could not read its configuration and keys from inside the machine.
const SHADOWED_DIRS: [&str; 4] = ["/root", "/tmp", "/mnt", "/home"];

/// The layout of one netns setup.
///
/// Default: tenant network 10.213.0.0/20 on bridge `dcbr-tenant` (no host address: the
/// controller cannot reach it, exactly like a cloud's private network), floating range
/// 10.213.255.0/24 on bridge `dcbr-ext` where the controller is 10.213.255.1, and an
/// `unreachable` route for all of 10.213.0.0/16 so nothing in the range ever leaves the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsConfig {
    /// Prefix of every namespace, bridge and veth name (1-5 chars of `[a-z0-9]`).
    pub prefix: String,
    /// Where machine directories and the state file live (not under /root, /tmp or /mnt).
    pub state_dir: PathBuf,
    /// The whole range reserved for devcloud; covered by a reject route on the host.
    #[serde(with = "net_str")]
    pub supernet: Ipv4Net,
    /// The tenant (fixed IP) network; must lie inside `supernet`.
    #[serde(with = "net_str")]
    pub tenant: Ipv4Net,
    /// The floating IP range carried by the external bridge; inside `supernet`.
    #[serde(with = "net_str")]
    pub floating: Ipv4Net,
    /// The controller's own address on the external bridge (inside `floating`).
    pub controller_ip: Ipv4Addr,
    /// The sshd binary started in every machine.
    pub sshd: PathBuf,
}

impl Default for NetnsConfig {
    fn default() -> Self {
        NetnsConfig {
            prefix: "dc".into(),
            state_dir: PathBuf::from("/var/lib/spark-openstack/devcloud-netns"),
            supernet: net("10.213.0.0/16"),
            tenant: net("10.213.0.0/20"),
            floating: net("10.213.255.0/24"),
            controller_ip: Ipv4Addr::new(10, 213, 255, 1),
            sshd: PathBuf::from("/usr/sbin/sshd"),
        }
    }
}

fn net(s: &str) -> Ipv4Net {
    // Only called on the literal defaults above, which are valid.
    s.parse().unwrap_or_default()
}

impl NetnsConfig {
    /// A config whose ranges are `10.<second_octet>.0.0/16`, laid out like the default.
    pub fn with_range(prefix: &str, second_octet: u8, state_dir: &Path) -> Self {
        let o = second_octet;
        NetnsConfig {
            prefix: prefix.into(),
            state_dir: state_dir.to_path_buf(),
            supernet: Ipv4Net::new(Ipv4Addr::new(10, o, 0, 0), 16).unwrap_or_default(),
            tenant: Ipv4Net::new(Ipv4Addr::new(10, o, 0, 0), 20).unwrap_or_default(),
            floating: Ipv4Net::new(Ipv4Addr::new(10, o, 255, 0), 24).unwrap_or_default(),
            controller_ip: Ipv4Addr::new(10, o, 255, 1),
            sshd: PathBuf::from("/usr/sbin/sshd"),
        }
    }

    /// Checks names and ranges before anything touches the host.
    pub fn validate(&self) -> Result<()> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > MAX_PREFIX_LEN
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(NetnsError::Invalid(format!(
                "prefix `{p}` must be 1-{MAX_PREFIX_LEN} characters of a-z0-9 \
                 (interface names are limited to 15 characters)"
            )));
        }
        for (name, sub) in [("tenant", self.tenant), ("floating", self.floating)] {
            if !self.supernet.contains(&sub) {
                return Err(NetnsError::Invalid(format!(
                    "{name} range {sub} is not inside the supernet {}",
                    self.supernet
                )));
            }
        }
        if self.tenant.contains(&self.floating) || self.floating.contains(&self.tenant) {
            return Err(NetnsError::Invalid(format!(
                "tenant range {} and floating range {} overlap",
                self.tenant, self.floating
            )));
        }
        if !usable(self.floating, self.controller_ip) {
            return Err(NetnsError::Invalid(format!(
                "controller address {} is not a host address of the floating range {}",
                self.controller_ip, self.floating
            )));
        }
        if !self.state_dir.is_absolute() {
            return Err(NetnsError::Invalid(format!(
                "state dir {} must be an absolute path",
                self.state_dir.display()
            )));
        }
        Ok(())
    }

    /// Rejects a state dir that machines could not see (it would be hidden by their private
    /// /root, /tmp or /mnt). Needs the directory to exist, to resolve symlinks.
    pub fn check_state_dir_visible(&self) -> Result<()> {
        let real = std::fs::canonicalize(&self.state_dir)
            .map_err(|e| NetnsError::io(&self.state_dir, e))?;
        for dir in SHADOWED_DIRS {
            if real.starts_with(dir) {
                return Err(NetnsError::Invalid(format!(
                    "state dir {} resolves to {}, under {dir}, which every machine replaces \
                     with its own; choose a directory elsewhere (e.g. under /var/lib)",
                    self.state_dir.display(),
                    real.display()
                )));
            }
        }
        Ok(())
    }

    pub fn tenant_bridge(&self) -> String {
        format!("{}br-tenant", self.prefix)
    }

    pub fn ext_bridge(&self) -> String {
        format!("{}br-ext", self.prefix)
    }

    /// Network namespace of a machine: `<prefix>-<short>`.
    pub fn netns_name(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// The tenant network's router (see `network`): not `<prefix>-...`, which names machines.
    pub fn router_netns(&self) -> String {
        format!("{}router", self.prefix)
    }

    /// Host end of the router's veth on `side` (`tenant` or `ext`).
    pub fn router_veth(&self, side: &str) -> String {
        format!("{}r-{side}", self.prefix)
    }

    /// The tenant subnet's gateway: its first host address, as Neutron reports it
    /// (`gateway_ip`), held by the router.
    pub fn tenant_gateway(&self) -> Ipv4Addr {
        self.tenant.hosts().next().unwrap_or(self.tenant.addr())
    }

    /// The router's address on the external network: the floating range's last host
    /// address, kept out of the floating IP pool (as a router's gateway port takes one).
    pub fn router_external_ip(&self) -> Ipv4Addr {
        self.floating.hosts().last().unwrap_or(self.floating.addr())
    }

    /// Host end of the machine's tenant veth.
    pub fn tenant_veth(&self, short: &str) -> String {
        format!("{}t-{short}", self.prefix)
    }

    /// Host end of the machine's floating veth.
    pub fn floating_veth(&self, short: &str) -> String {
        format!("{}f-{short}", self.prefix)
    }

    pub fn machines_dir(&self) -> PathBuf {
        self.state_dir.join("machines")
    }

    /// Where Cinder volumes' backing files live (see [`super::disks`]): beside the machines,
    /// since a volume outlives the machines it is attached to.
    pub fn volumes_dir(&self) -> PathBuf {
        self.state_dir.join("volumes")
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("netns-state.json")
    }
}

/// True when `ip` is a host address of `net` (not its network or broadcast address).
pub fn usable(net: Ipv4Net, ip: Ipv4Addr) -> bool {
    net.contains(&ip) && (net.prefix_len() >= 31 || (ip != net.network() && ip != net.broadcast()))
}

/// The short, interface-name-safe form of a machine id: its first 8 characters of `[a-z0-9]`
/// (a UUID gives its first 8 hex digits).
pub fn short_id(id: &str) -> Result<String> {
    let short: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(8)
        .collect();
    if short.is_empty() {
        return Err(NetnsError::Invalid(format!(
            "machine id `{id}` has no letters or digits to name its namespace after"
        )));
    }
    Ok(short)
}

/// A collision-free alternative to [`short_id`]: `h` and 7 hex digits of the id's SHA-256.
pub fn hashed_short_id(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(id.as_bytes()));
    format!("h{}", &digest[..7])
}

/// Serializes networks as their usual `a.b.c.d/n` text (ipnet is built without serde here).
mod net_str {
    use ipnet::Ipv4Net;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(net: &Ipv4Net, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(net)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_names_fit_linux_limits() {
        let c = NetnsConfig::default();
        c.validate().unwrap();
        let long = NetnsConfig {
            prefix: "abcde".into(),
            ..c
        };
        long.validate().unwrap();
        for name in [
            long.tenant_bridge(),
            long.ext_bridge(),
            long.tenant_veth("12345678"),
            long.floating_veth("12345678"),
        ] {
            assert!(name.len() <= 15, "{name} is too long for an interface");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let c = NetnsConfig {
            prefix: "toolong".into(),
            ..NetnsConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("prefix"));
        let c = NetnsConfig {
            tenant: "10.99.0.0/24".parse().unwrap(),
            ..NetnsConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("not inside"));
        let c = NetnsConfig {
            controller_ip: Ipv4Addr::new(10, 213, 255, 255),
            ..NetnsConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("controller"));
    }

    #[test]
    fn short_ids_are_interface_safe() {
        assert_eq!(
            short_id("3F2504E0-4F89-11D3-9A0C-0305E82C3301").unwrap(),
            "3f2504e0"
        );
        assert_eq!(short_id("master").unwrap(), "master");
        assert!(short_id("--").is_err());
        let h = hashed_short_id("slave-0002");
        assert_eq!(h.len(), 8);
        assert_ne!(h, hashed_short_id("slave-0001"));
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = NetnsConfig::with_range("t1", 77, Path::new("/var/lib/x"));
        c.validate().unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains("\"10.77.0.0/16\""));
        let back: NetnsConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
    }
}
