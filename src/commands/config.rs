//! The config file: defaults per cluster or for all clusters, overridden by the command line.
//!
//! Looked up as `spark-openstack.yaml` in the current directory, else
//! `~/.config/spark-openstack/config.yaml` (an explicit `--config` wins over both). Keys are
//! the long option names without `--`, so what a user types on the command line and what
//! they write in the file are the same words (Flintrock's model):
//!
//! ```yaml
//! defaults:                  # every cluster
//!   key-pair: mykey
//!   identity-file: ~/.ssh/id_ed25519
//!   image: ubuntu-22.04
//!   instance-type: m1.large
//! clusters:
//!   demo:                    # only for `... demo`
//!     slaves: 4
//!     zone: [az1, az2]
//!     vars:                  # role variables (roles/README.md), as `-e` would set them
//!       spark_source: pypi
//! ```
//!
//! `vars` is merged key by key (a cluster's `vars` add to and override the defaults'),
//! and `-e` on the command line wins over both.
//!
//! A `playbooks/` or `roles/` directory next to the file replaces the bundled ones
//! (see [`super::bundle`]).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use playbook_engine::yaml::{self, Node};

/// The keys the config file may set besides the shaping options of
/// [`super::options::OPTIONS`]; all are the long command-line option names.
pub const OTHER_KEYS: &[&str] = &["os-cloud", "identity-file", "ssh-user", "vars"];

/// Every option the config file may set: the shaping options, then [`OTHER_KEYS`].
pub fn keys() -> impl Iterator<Item = &'static str> {
    super::options::OPTIONS
        .iter()
        .map(|o| o.name)
        .chain(OTHER_KEYS.iter().copied())
}

/// One option's value and where it came from, for error messages.
#[derive(Clone, Debug)]
pub struct Setting {
    pub value: Value,
    /// `spark-openstack.yaml:4:12` or `--slaves`.
    pub origin: String,
}

/// The effective options of one command: file defaults, then the cluster's section, then
/// the command line, each layer replacing the keys it sets.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub values: IndexMap<String, Setting>,
    /// Directory of the config file, where `playbooks/` and `roles/` overrides live.
    pub config_dir: Option<PathBuf>,
}

impl Settings {
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.values.get(key)
    }

    pub fn set(&mut self, key: &str, value: Value, origin: impl Into<String>) {
        self.values.insert(
            key.to_string(),
            Setting {
                value,
                origin: origin.into(),
            },
        );
    }

    /// A string option (numbers are accepted and rendered).
    pub fn str(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(s) => match &s.value {
                Value::Null => Ok(None),
                Value::String(v) => Ok(Some(v.clone())),
                Value::Number(n) => Ok(Some(n.to_string())),
                _ => Err(format!("{}: {key} must be a string", s.origin)),
            },
        }
    }

    /// A non-negative integer option (strings of digits are accepted).
    pub fn uint(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(s) => match &s.value {
                Value::Null => Ok(None),
                Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
                Value::String(v) if v.parse::<u64>().is_ok() => Ok(v.parse().ok()),
                _ => Err(format!("{}: {key} must be a whole number >= 0", s.origin)),
            },
        }
    }

    /// A list option; a single string is a one-element list, commas separate items.
    pub fn list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(s) => match &s.value {
                Value::Null => Ok(vec![]),
                Value::String(v) => Ok(split_list(v)),
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(v) => Ok(v.clone()),
                        _ => Err(format!("{}: {key} must be a list of strings", s.origin)),
                    })
                    .collect(),
                _ => Err(format!("{}: {key} must be a string or a list", s.origin)),
            },
        }
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Where the config file is looked for, first match wins.
pub fn candidates(cwd: &Path, home_config: Option<&Path>) -> Vec<PathBuf> {
    let mut v = vec![cwd.join("spark-openstack.yaml")];
    if let Some(dir) = home_config {
        v.push(dir.join("spark-openstack").join("config.yaml"));
    }
    v
}

/// Loads the settings for `cluster` (`None` for commands that span clusters) from `path`,
/// or from the first existing candidate when `path` is `None`.
pub fn load(explicit: Option<&Path>, cluster: Option<&str>) -> Result<Settings, String> {
    let path = match explicit {
        Some(p) if !p.exists() => {
            return Err(format!("--config {}: no such file", p.display()));
        }
        Some(p) => Some(p.to_path_buf()),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            candidates(&cwd, dirs::config_dir().as_deref())
                .into_iter()
                .find(|p| p.is_file())
        }
    };
    match path {
        None => Ok(Settings::default()),
        Some(p) => {
            let node = yaml::load_file(&p).map_err(|e| e.to_string())?;
            let mut s = from_node(&node, cluster)?;
            s.config_dir = p.parent().map(Path::to_path_buf);
            Ok(s)
        }
    }
}

/// Reads an already parsed config document.
pub fn from_node(node: &Node, cluster: Option<&str>) -> Result<Settings, String> {
    let mut settings = Settings::default();
    if node.is_null() {
        return Ok(settings);
    }
    let top = node.as_map().ok_or_else(|| {
        format!(
            "{}: expected a mapping with 'defaults' and 'clusters', found {}",
            node.loc,
            node.type_name()
        )
    })?;
    for (key, value) in top {
        match key.as_str() {
            "defaults" => apply_section(&mut settings, value)?,
            "clusters" => {
                let sections = value.as_map().ok_or_else(|| {
                    format!("{}: clusters must map cluster names to options", value.loc)
                })?;
                for (name, section) in sections {
                    if Some(name.as_str()) == cluster {
                        // Applied after `defaults` below, whatever the order in the file.
                        continue;
                    }
                    check_section(section)?;
                }
            }
            other => {
                return Err(format!(
                    "{}: unknown top-level key '{other}' (expected 'defaults' or 'clusters')",
                    value.loc
                ));
            }
        }
    }
    if let Some(section) = cluster.and_then(|c| node.get("clusters")?.get(c)) {
        apply_section(&mut settings, section)?;
    }
    Ok(settings)
}

fn check_section(section: &Node) -> Result<(), String> {
    apply_section(&mut Settings::default(), section)
}

fn apply_section(settings: &mut Settings, section: &Node) -> Result<(), String> {
    if section.is_null() {
        return Ok(());
    }
    let entries = section.as_map().ok_or_else(|| {
        format!(
            "{}: expected a mapping of options, found {}",
            section.loc,
            section.type_name()
        )
    })?;
    for (key, value) in entries {
        if key == "vars" {
            merge_vars(settings, value)?;
            continue;
        }
        let key = key.replace('_', "-");
        if !keys().any(|k| k == key) {
            let hint = keys()
                .map(|k| (strsim::jaro_winkler(&key, k), k))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            return Err(format!("{}: unknown option '{key}'{hint}", value.loc));
        }
        let json = value.to_json();
        if let Some(def) = super::options::find(&key) {
            def.check(&json)
                .map_err(|e| format!("{}: {e}", value.loc))?;
        }
        settings.set(&key, json, value.loc.to_string());
    }
    Ok(())
}

/// Adds a section's `vars` mapping to the vars set so far, key by key.
fn merge_vars(settings: &mut Settings, value: &Node) -> Result<(), String> {
    let Some(entries) = value.as_map() else {
        return Err(format!(
            "{}: vars must map variable names to values, found {}",
            value.loc,
            value.type_name()
        ));
    };
    let mut vars = match settings.get("vars").map(|s| s.value.clone()) {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in entries {
        vars.insert(k.clone(), v.to_json());
    }
    settings.set("vars", Value::Object(vars), value.loc.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, cluster: Option<&str>) -> Result<Settings, String> {
        let node =
            yaml::load_str(text, Path::new("spark-openstack.yaml")).map_err(|e| e.to_string())?;
        from_node(&node, cluster)
    }

    #[test]
    fn cluster_section_overrides_defaults() {
        let text = "clusters:\n  demo:\n    slaves: 4\ndefaults:\n  slaves: 1\n  key_pair: k\n";
        let s = parse(text, Some("demo")).unwrap();
        assert_eq!(s.uint("slaves").unwrap(), Some(4));
        assert_eq!(s.str("key-pair").unwrap().as_deref(), Some("k"));
        let s = parse(text, Some("other")).unwrap();
        assert_eq!(s.uint("slaves").unwrap(), Some(1));
    }

    #[test]
    fn unknown_keys_are_located_and_suggested() {
        let err = parse("defaults:\n  slavse: 3\n", None).unwrap_err();
        assert!(err.starts_with("spark-openstack.yaml:2:"), "{err}");
        assert!(err.contains("did you mean 'slaves'"), "{err}");
        // Other clusters' sections are checked too, so typos do not hide.
        let err = parse("clusters:\n  x:\n    imgae: a\n", Some("y")).unwrap_err();
        assert!(err.contains("'image'"), "{err}");
    }

    #[test]
    fn bad_types_name_their_origin() {
        // Refused as the file is read, not when a command first uses the value.
        let err = parse("defaults:\n  slaves: many\n", None).unwrap_err();
        assert!(
            err.starts_with("spark-openstack.yaml:2:11: --slaves 'many'"),
            "{err}"
        );
        // In another cluster's section too, as unknown keys are.
        let err = parse("clusters:\n  x:\n    slave_volume_size: -3\n", Some("y")).unwrap_err();
        assert!(
            err.starts_with("spark-openstack.yaml:3:24: --slave-volume-size -3"),
            "{err}"
        );
    }

    #[test]
    fn vars_merge_across_sections() {
        let text = "defaults:\n  vars: {a: 1, b: 2}\nclusters:\n  demo:\n    vars: {b: 3}\n";
        let s = parse(text, Some("demo")).unwrap();
        assert_eq!(
            s.get("vars").unwrap().value,
            serde_json::json!({"a": 1, "b": 3})
        );
        let err = parse("defaults:\n  vars: [a]\n", None).unwrap_err();
        assert!(err.starts_with("spark-openstack.yaml:2:9"), "{err}");
        assert!(err.contains("vars must map"), "{err}");
    }

    #[test]
    fn lists_accept_commas() {
        let s = parse("defaults:\n  zone: az1, az2\n", None).unwrap();
        assert_eq!(s.list("zone").unwrap(), ["az1", "az2"]);
    }
}
