//! devcloud's knobs: how slow, how flaky and how small the simulated cloud is.
//!
//! Tests use these to make the client's retry, wait and quota paths observable without a real
//! cloud. Every knob has a default that behaves like a healthy, fast cloud, so an empty (or
//! missing) config file is valid.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::netns::NetnsConfig;

/// The whole configuration, as read from the YAML file given to `devcloud up/serve --config`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Extra delay added to every API response, in milliseconds.
    pub latency_ms: u64,
    /// How long a server stays in BUILD.
    pub boot_time: BootTime,
    /// How long stop/start/reboot take (task_state set, status unchanged meanwhile), in ms.
    pub action_time_ms: u64,
    /// Probability (0..=1) that a boot ends in ERROR with a "No valid host" fault.
    pub boot_error_rate: f64,
    /// Injected failures, per service.
    pub faults: Faults,
    /// Quotas of every project.
    pub quotas: Quotas,
    /// Address layout (both backends), names and boot behaviour (netns backend) of the
    /// simulated networks and machines.
    pub netns: NetnsSettings,
    /// How long after Neutron associated a floating IP Nova's `addresses` of the server show
    /// it, in ms: a uniform random time in `[min, max]` per association (default
    /// `[1000, 3000]`, like Nova's network info cache on a real cloud; Neutron's own floating
    /// IP list shows the association at once). `[0, 0]` turns the lag off.
    pub floating_ip_delay_ms: [u64; 2],
    /// Nova's availability zones (default `[nova]`, Nova's default zone). A server create
    /// naming another zone is refused with 400, as Nova refuses it.
    pub compute_zones: Vec<String>,
    /// Object storage: a real OpenStack Swift behind devcloud's Keystone (see
    /// [`crate::swift`]).
    pub object_storage: ObjectStorage,
}

/// `object_storage: {enabled: true}` (or `devcloud up/serve --object-storage`) runs Swift
/// with s3api; off by default, since starting it costs seconds that most tests do not need.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStorage {
    pub enabled: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            latency_ms: 0,
            boot_time: BootTime::default(),
            action_time_ms: 0,
            boot_error_rate: 0.0,
            faults: Faults::default(),
            quotas: Quotas::default(),
            netns: NetnsSettings::default(),
            floating_ip_delay_ms: DEFAULT_FLOATING_IP_DELAY_MS,
            compute_zones: vec!["nova".into()],
            object_storage: ObjectStorage::default(),
        }
    }
}

/// Real clouds show a new floating IP in the server's addresses 1-3 s after associating it.
pub const DEFAULT_FLOATING_IP_DELAY_MS: [u64; 2] = [1000, 3000];

/// A booting cloud VM answers SSH some 10-40 s after it is ACTIVE.
pub const DEFAULT_SSH_DELAY_S: [f64; 2] = [10.0, 40.0];

/// The address ranges devcloud's networks use, and how the netns backend names what it
/// creates on the host. Both backends seed `private` and `public` from the same ranges, so a
/// state dir looks the same whichever backend serves it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetnsSettings {
    /// Prefix of every namespace, bridge and veth (1-5 of `a-z0-9`) (default: `dc`).
    pub prefix: Option<String>,
    /// The whole range, a /8 to /20 (default: 10.213.0.0/16). Its first /20 is the tenant
    /// network (`private`), its last /24 the floating range (`public`, .1 is the controller).
    pub supernet: Option<String>,
    /// Where the machines live (not under /root, /tmp or /mnt) (default: `DIR/netns`, or
    /// `/var/lib/spark-openstack/devcloud-netns-<hash of DIR>` when DIR is under one).
    pub state_dir: Option<PathBuf>,
    /// The sshd each machine runs (default: /usr/sbin/sshd).
    pub sshd: Option<PathBuf>,
    /// How long a machine boots after its server is ACTIVE before its sshd answers, in
    /// seconds: a uniform random time in `[min, max]` per boot (create, start, reboot),
    /// during which connections to port 22 are refused (default: `[10, 40]`, like a cloud
    /// VM; at most 600 s). Not part of the recorded layout: a restart may change it.
    pub ssh_delay_s: Option<[f64; 2]>,
    /// What a machine's filesystem is: `image` (default), its own root filesystem made from
    /// its Glance image (only `debian-12` can be built here), a stock cloud image with
    /// packages from the apt cache (see `devcloud::apt_proxy`); or `host`, the host's own,
    /// with private /root, /home, /tmp, /mnt and user database: quicker to boot and
    /// needing no image, for tests of the cloud side. Not part of the recorded layout:
    /// machines keep what they were created with.
    pub machine_fs: MachineFs,
    /// Where built images are kept (default: `$SPARK_OPENSTACK_DEVCLOUD_IMAGES`, else
    /// `/var/lib/spark-openstack/devcloud-images`).
    pub image_dir: Option<PathBuf>,
    /// Cloud-like links for machines made from now on: `{rate_mbit: 1000, latency_ms: 0}`
    /// shapes every machine interface to that bandwidth in each direction (and one-way
    /// latency, where the kernel has netem). Default: none, veths at memory speed, for
    /// quick tests; the scale benchmark sets one. Not part of the recorded layout.
    pub link: Option<super::netns::LinkShape>,
}

/// See [`NetnsSettings::machine_fs`].
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MachineFs {
    Host,
    #[default]
    Image,
}

impl NetnsSettings {
    /// The image directory (see `image_dir`).
    pub fn images_dir(&self) -> PathBuf {
        self.image_dir
            .clone()
            .unwrap_or_else(super::netns::image::default_images_dir)
    }
}

impl NetnsSettings {
    /// True when any setting of the recorded layout (names, ranges, paths) is given.
    pub fn has_layout_settings(&self) -> bool {
        self.prefix.is_some()
            || self.supernet.is_some()
            || self.state_dir.is_some()
            || self.sshd.is_some()
    }

    /// The boot delay range (see `ssh_delay_s`), checked.
    pub fn ssh_delay(&self) -> Result<(Duration, Duration), String> {
        let [min, max] = self.ssh_delay_s.unwrap_or(DEFAULT_SSH_DELAY_S);
        if !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max && max <= 600.0) {
            return Err(format!(
                "netns.ssh_delay_s: [{min}, {max}] must be two numbers of seconds with \
                 0 <= min <= max <= 600"
            ));
        }
        Ok((Duration::from_secs_f64(min), Duration::from_secs_f64(max)))
    }

    /// The full netns layout for devcloud state dir `dir`; an error names the bad setting.
    pub fn layout(&self, dir: &Path) -> Result<NetnsConfig, String> {
        let mut cfg = NetnsConfig::default();
        if let Some(p) = &self.prefix {
            cfg.prefix = p.clone();
        }
        if let Some(text) = &self.supernet {
            let net: Ipv4Net = text
                .parse()
                .map_err(|_| format!("netns.supernet: `{text}` is not an IPv4 network"))?;
            if !(8..=20).contains(&net.prefix_len()) {
                return Err(format!(
                    "netns.supernet: {net} must be a /8 to /20 (its first /20 is the tenant \
                     network, its last /24 the floating range)"
                ));
            }
            let net = net.trunc();
            let last24 = Ipv4Net::new(net.broadcast(), 24).map_err(|e| e.to_string())?;
            cfg.supernet = net;
            cfg.tenant = Ipv4Net::new(net.network(), 20).map_err(|e| e.to_string())?;
            cfg.floating = last24.trunc();
            cfg.controller_ip = Ipv4Addr::from(u32::from(cfg.floating.network()) + 1);
        }
        if let Some(sshd) = &self.sshd {
            cfg.sshd = sshd.clone();
        }
        cfg.state_dir = match &self.state_dir {
            Some(d) => d.clone(),
            None => default_machines_dir(dir),
        };
        cfg.validate().map_err(|e| format!("netns: {e}"))?;
        Ok(cfg)
    }
}

/// `DIR/netns`, unless DIR lies where machines cannot see it (their private /root, /tmp and
/// /mnt hide it): then a directory under /var/lib named after DIR, so two devclouds never
/// share one.
fn default_machines_dir(dir: &Path) -> PathBuf {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hidden = ["/root", "/tmp", "/mnt", "/home"]
        .iter()
        .any(|h| abs.starts_with(h));
    if hidden {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(abs.to_string_lossy().as_bytes()));
        PathBuf::from(format!(
            "/var/lib/spark-openstack/devcloud-netns-{}",
            &digest[..12]
        ))
    } else {
        abs.join("netns")
    }
}

/// A fixed boot time, or a uniform random one between `min_ms` and `max_ms`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BootTime {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Default for BootTime {
    fn default() -> Self {
        BootTime {
            min_ms: 1000,
            max_ms: 1000,
        }
    }
}

/// Failure injection rates, per service (identity, compute, network, image, volume).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub identity: FaultRates,
    pub compute: FaultRates,
    pub network: FaultRates,
    pub image: FaultRates,
    pub volume: FaultRates,
}

/// Probabilities (each 0..=1) that one request of a service fails in a given way.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRates {
    /// 503 Service Unavailable with the service's error body.
    pub error_5xx: f64,
    /// 429 Too Many Requests with a `Retry-After` header (seconds given by `retry_after_s`).
    pub rate_limit: f64,
    /// The connection is dropped before a complete response is sent.
    pub drop_connection: f64,
    /// The `Retry-After` value sent with 429s.
    pub retry_after_s: u64,
}

/// Per-project quotas (a negative value means unlimited, as in OpenStack).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub instances: i64,
    pub cores: i64,
    pub ram_mb: i64,
    pub key_pairs: i64,
    pub floating_ips: i64,
    pub volumes: i64,
    pub gigabytes: i64,
    pub security_groups: i64,
    pub security_group_rules: i64,
    pub networks: i64,
    pub ports: i64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            instances: 20,
            cores: 64,
            ram_mb: 256 * 1024,
            key_pairs: 100,
            floating_ips: 20,
            volumes: 20,
            gigabytes: 2000,
            security_groups: 20,
            security_group_rules: 200,
            networks: 20,
            ports: 100,
        }
    }
}

impl Config {
    /// Reads a config file; an error names the file and, for YAML errors, the line and column.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read devcloud config {}: {e}", path.display()))?;
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let cfg: Config = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid devcloud config {}: {e}", path.display()))?;
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("invalid devcloud config {}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Rejects values that would make the simulation meaningless (probabilities outside 0..=1,
    /// an inverted boot-time range).
    pub fn validate(&self) -> Result<(), String> {
        let mut probs = vec![("boot_error_rate", self.boot_error_rate)];
        for (svc, r) in self.faults.iter() {
            probs.push((svc, r.error_5xx));
            probs.push((svc, r.rate_limit));
            probs.push((svc, r.drop_connection));
        }
        for (name, p) in probs {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name}: probability {p} is not between 0 and 1"));
            }
        }
        // The ranges are needed whatever the backend; the state dir does not matter here.
        self.netns.layout(Path::new("/var/lib/devcloud"))?;
        self.netns.ssh_delay()?;
        if let Some(link) = &self.netns.link {
            link.validate()?;
        }
        let [fmin, fmax] = self.floating_ip_delay_ms;
        if fmin > fmax {
            return Err(format!(
                "floating_ip_delay_ms: min ({fmin}) is greater than max ({fmax})"
            ));
        }
        if self.boot_time.min_ms > self.boot_time.max_ms {
            return Err(format!(
                "boot_time: min_ms ({}) is greater than max_ms ({})",
                self.boot_time.min_ms, self.boot_time.max_ms
            ));
        }
        Ok(())
    }
}

impl Faults {
    /// The fault rates of each service, with the service name (for messages and lookups).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &FaultRates)> {
        [
            ("identity", &self.identity),
            ("compute", &self.compute),
            ("network", &self.network),
            ("image", &self.image),
            ("volume", &self.volume),
        ]
        .into_iter()
    }

    /// The fault rates of one service, by the first path segment it is served under.
    pub fn for_service(&self, service: &str) -> Option<&FaultRates> {
        self.iter().find(|(s, _)| *s == service).map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_partial_yaml_with_defaults() {
        let cfg: Config = serde_saphyr::from_str(
            "boot_time: {min_ms: 10, max_ms: 20}\nfaults:\n  compute: {rate_limit: 0.5, retry_after_s: 3}\nquotas: {instances: 2}\n",
        )
        .unwrap();
        assert_eq!(cfg.boot_time.max_ms, 20);
        assert_eq!(cfg.faults.compute.rate_limit, 0.5);
        assert_eq!(cfg.quotas.instances, 2);
        assert_eq!(cfg.quotas.cores, Quotas::default().cores);
        assert!(cfg.validate().is_ok());
        assert!(!cfg.object_storage.enabled);
        let cfg: Config = serde_saphyr::from_str("object_storage: {enabled: true}\n").unwrap();
        assert!(cfg.object_storage.enabled);
        assert!(serde_saphyr::from_str::<Config>("object_storage: {enable: true}\n").is_err());
    }

    #[test]
    fn netns_layout_follows_the_supernet() {
        let cfg: Config =
            serde_saphyr::from_str("netns: {prefix: t9, supernet: 10.77.0.0/16}\n").unwrap();
        let l = cfg.netns.layout(Path::new("/var/lib/x")).unwrap();
        assert_eq!(l.tenant.to_string(), "10.77.0.0/20");
        assert_eq!(l.floating.to_string(), "10.77.255.0/24");
        assert_eq!(l.controller_ip.to_string(), "10.77.255.1");
        assert_eq!(l.state_dir, Path::new("/var/lib/x/netns"));
        assert_eq!(
            l,
            NetnsConfig::with_range("t9", 77, Path::new("/var/lib/x/netns"))
        );
        let default = Config::default()
            .netns
            .layout(Path::new("/root/dc"))
            .unwrap();
        assert!(default.state_dir.starts_with("/var/lib/spark-openstack"));
        let bad: Config = serde_saphyr::from_str("netns: {supernet: 10.1.2.0/24}\n").unwrap();
        assert!(bad.validate().unwrap_err().contains("netns.supernet"));
        let bad: Config = serde_saphyr::from_str("netns: {prefix: TooLong}\n").unwrap();
        assert!(bad.validate().unwrap_err().contains("prefix"));
    }

    #[test]
    fn delays_default_to_a_real_clouds_and_are_checked() {
        let cfg = Config::default();
        assert_eq!(cfg.floating_ip_delay_ms, [1000, 3000]);
        assert_eq!(
            cfg.netns.ssh_delay().unwrap(),
            (Duration::from_secs(10), Duration::from_secs(40))
        );
        let cfg: Config = serde_saphyr::from_str(
            "floating_ip_delay_ms: [0, 0]\nnetns: {ssh_delay_s: [2, 4.5]}\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(
            cfg.netns.ssh_delay().unwrap(),
            (Duration::from_secs(2), Duration::from_millis(4500))
        );
        assert!(!cfg.netns.has_layout_settings());
        for bad in [
            "netns: {ssh_delay_s: [5, 2]}\n",
            "netns: {ssh_delay_s: [-1, 2]}\n",
            "netns: {ssh_delay_s: [1, 601]}\n",
            "floating_ip_delay_ms: [3, 1]\n",
        ] {
            let cfg: Config = serde_saphyr::from_str(bad).unwrap();
            assert!(cfg.validate().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn link_settings_are_read_and_checked() {
        let cfg: Config =
            serde_saphyr::from_str("netns: {link: {rate_mbit: 1000, latency_ms: 0.5}}\n").unwrap();
        cfg.validate().unwrap();
        let link = cfg.netns.link.unwrap();
        assert_eq!((link.rate_mbit, link.latency_ms), (1000.0, 0.5));
        assert!(!cfg.netns.has_layout_settings(), "links are not layout");
        let cfg: Config = serde_saphyr::from_str("netns: {link: {rate_mbit: 0}}\n").unwrap();
        assert!(cfg.validate().unwrap_err().contains("netns.link.rate_mbit"));
        let typo = serde_saphyr::from_str::<Config>("netns: {link: {rate: 10}}\n");
        assert!(typo.is_err(), "unknown key accepted");
    }

    #[test]
    fn rejects_bad_probability() {
        let cfg = Config {
            boot_error_rate: 1.5,
            ..Config::default()
        };
        assert!(cfg.validate().unwrap_err().contains("boot_error_rate"));
    }
}
