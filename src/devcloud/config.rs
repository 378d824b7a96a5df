//! devcloud's knobs: how slow, how flaky and how small the simulated cloud is.
//!
//! Tests use these to make the client's retry, wait and quota paths observable without a real
//! cloud. Every knob has a default that behaves like a healthy, fast cloud, so an empty (or
//! missing) config file is valid.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole configuration, as read from the YAML file given to `devcloud up/serve --config`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
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
