//! Hosts, groups and their variables, from static files (INI, YAML, comma lists,
//! directories of those) or, later, from a dynamic source beside them ([`InventorySource`]).
//!
//! ## Variable precedence implemented by [`Inventory::get_vars`] (lowest first)
//! This is what ansible-core 2.19 actually does (its `VARIABLE_PRECEDENCE` default),
//! checked against `ansible-inventory --list`:
//! 1. the `all` group's vars from inventory files;
//! 2. the vars of the host's other groups from inventory files, ordered by
//!    (depth, `ansible_group_priority`, name), so children beat parents;
//! 3. inventory-adjacent `group_vars/all`, then playbook-adjacent `group_vars/all`;
//! 4. inventory-adjacent `group_vars/<group>`, then playbook-adjacent, same group order;
//! 5. the host's vars from inventory files;
//! 6. inventory-adjacent `host_vars/<host>`, then playbook-adjacent.
//!
//! Within one level the last definition wins; dicts are replaced, not merged
//! (`hash_behaviour=replace`). Several `-i` sources merge into one inventory, later
//! sources overriding earlier ones. `ansible_group_priority` is read from inventory-file
//! group vars only, as Ansible does, and is not itself a variable.

pub mod conn;
mod hostrange;
mod ini;
mod literal;
pub mod pattern;
pub mod show;
mod vars_dirs;
mod yaml_inv;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

pub use conn::{ConnDefaults, connection_spec};

/// Variables: a JSON object, keys in definition order.
pub type Vars = serde_json::Map<String, Value>;

/// Names that reach the controller itself when no inventory host has them.
pub const LOCALHOST_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A problem in an inventory file, located as `file:line` or `file:line:col`.
    #[error("{0}")]
    Parse(String),
    #[error("{path}: {msg}")]
    Io { path: PathBuf, msg: String },
    /// A variable with a value that cannot be used (bad port, unknown connection type).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Default)]
pub struct Host {
    pub name: String,
    pub vars: Vars,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub name: String,
    /// Hosts directly in this group, in the order they were added.
    pub hosts: Vec<String>,
    /// Child groups, in the order they were added.
    pub children: Vec<String>,
    pub vars: Vars,
    /// `ansible_group_priority` (default 1): higher wins among groups of equal depth.
    pub priority: i64,
}

/// Where group_vars/host_vars directories are looked for.
#[derive(Clone, Debug, Default)]
pub struct VarsDirs {
    /// Directories next to the inventory sources, in source order.
    pub inventory: Vec<PathBuf>,
    /// The playbook's directory (wins over the inventory's).
    pub playbook: Option<PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
    pub vars_dirs: VarsDirs,
    /// group_vars/host_vars files already read.
    pub vars_cache: vars_dirs::VarsCache,
}

/// Something that produces an inventory: a static file or directory, a host list,
/// or a dynamic source (OpenStack) added later.
pub trait InventorySource {
    fn load(&self) -> Result<Inventory, InventoryError>;
}

impl Inventory {
    /// An inventory with only `all` and `ungrouped`.
    pub fn new() -> Self {
        let mut inv = Inventory::default();
        inv.add_group("all");
        inv.add_group("ungrouped");
        inv.add_child("all", "ungrouped");
        inv
    }

    pub fn add_group(&mut self, name: &str) {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                priority: 1,
                ..Default::default()
            });
    }

    /// Adds `host` to `group` (creating both as needed).
    pub fn add_host(&mut self, host: &str, group: &str) {
        self.hosts.entry(host.to_string()).or_insert_with(|| Host {
            name: host.to_string(),
            vars: Vars::new(),
        });
        self.add_group(group);
        if let Some(g) = self.groups.get_mut(group)
            && !g.hosts.iter().any(|h| h == host)
        {
            g.hosts.push(host.to_string());
        }
    }

    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.add_group(parent);
        self.add_group(child);
        if let Some(g) = self.groups.get_mut(parent)
            && !g.children.iter().any(|c| c == child)
        {
            g.children.push(child.to_string());
        }
    }

    /// Sets a group variable; `ansible_group_priority` sets the priority instead.
    pub fn set_group_var(&mut self, group: &str, key: &str, value: Value) -> Result<(), String> {
        self.add_group(group);
        let Some(g) = self.groups.get_mut(group) else {
            return Ok(());
        };
        if key == "ansible_group_priority" {
            g.priority = priority_of(&value)?;
        } else {
            g.vars.insert(key.to_string(), value);
        }
        Ok(())
    }

    pub fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.vars.insert(key.to_string(), value);
        }
    }

    /// Ansible's `reconcile_inventory`: parentless groups become children of `all`,
    /// and hosts in no group but `all`/`ungrouped` are listed in `ungrouped`.
    pub fn reconcile(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in &names {
            if name == "all" {
                continue;
            }
            let has_parent = self.groups.values().any(|g| g.children.contains(name));
            if !has_parent {
                self.add_child("all", name);
            }
        }
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for h in hosts {
            let grouped = self
                .groups
                .values()
                .any(|g| g.name != "all" && g.name != "ungrouped" && g.hosts.contains(&h));
            let ungrouped = &mut self.groups["ungrouped"].hosts;
            if grouped {
                ungrouped.retain(|x| x != &h);
            } else if !ungrouped.contains(&h) {
                ungrouped.push(h);
            }
        }
    }

    /// Merges `other` into `self`: hosts and groups are added, later vars win.
    pub fn merge(&mut self, other: Inventory) {
        for (name, host) in other.hosts {
            let entry = self.hosts.entry(name.clone()).or_insert_with(|| Host {
                name,
                vars: Vars::new(),
            });
            entry.vars.extend(host.vars);
        }
        for (name, group) in other.groups {
            self.add_group(&name);
            for h in &group.hosts {
                self.add_host(h, &name);
            }
            for c in &group.children {
                self.add_child(&name, c);
            }
            if let Some(g) = self.groups.get_mut(&name) {
                g.vars.extend(group.vars);
                if group.priority != 1 {
                    g.priority = group.priority;
                }
            }
        }
        self.vars_dirs.inventory.extend(other.vars_dirs.inventory);
        self.reconcile();
    }

    /// Every host of `group` and its descendants, in inventory order, without duplicates.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen_groups = Vec::new();
        self.collect_hosts(group, &mut out, &mut seen_groups);
        if group == "all" {
            // `all` holds every host, also those only known through other sources.
            for h in self.hosts.keys() {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
        }
        out
    }

    fn collect_hosts(&self, group: &str, out: &mut Vec<String>, seen: &mut Vec<String>) {
        if seen.iter().any(|s| s == group) {
            return;
        }
        seen.push(group.to_string());
        let Some(g) = self.groups.get(group) else {
            return;
        };
        for h in &g.hosts {
            if !out.contains(h) {
                out.push(h.clone());
            }
        }
        for c in &g.children {
            self.collect_hosts(c, out, seen);
        }
    }

    /// The groups `host` belongs to, directly or through children (including `all`).
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self.groups.values() {
            if g.hosts.iter().any(|h| h == host) {
                self.add_with_ancestors(&g.name, &mut out);
            }
        }
        if !out.iter().any(|g| g == "all") && self.hosts.contains_key(host) {
            out.insert(0, "all".into());
        }
        out
    }

    fn add_with_ancestors(&self, group: &str, out: &mut Vec<String>) {
        if out.iter().any(|g| g == group) {
            return;
        }
        out.push(group.to_string());
        let parents: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.children.iter().any(|c| c == group))
            .map(|g| g.name.clone())
            .collect();
        for p in parents {
            self.add_with_ancestors(&p, out);
        }
    }

    /// A group's depth: the longest path from `all` (`all` is 0).
    fn depth(&self, group: &str, guard: usize) -> usize {
        if group == "all" || guard > self.groups.len() {
            return 0;
        }
        self.groups
            .values()
            .filter(|g| g.children.iter().any(|c| c == group))
            .map(|g| self.depth(&g.name, guard + 1) + 1)
            .max()
            .unwrap_or(1)
    }

    /// The host's groups other than `all`, in the order their variables apply.
    fn sorted_groups(&self, host: &str) -> Vec<&Group> {
        let mut groups: Vec<&Group> = self
            .host_groups(host)
            .iter()
            .filter(|g| g.as_str() != "all")
            .filter_map(|g| self.groups.get(g))
            .collect();
        groups.sort_by_key(|g| (self.depth(&g.name, 0), g.priority, g.name.clone()));
        groups
    }

    /// True for `localhost` & co. when the inventory does not define them: Ansible's
    /// implicit localhost, reached with the local connection.
    pub fn is_implicit_localhost(&self, host: &str) -> bool {
        LOCALHOST_NAMES.contains(&host) && !self.hosts.contains_key(host)
    }

    /// The host's variables, merged in Ansible's order (see the module documentation).
    pub fn get_vars(&self, host: &str) -> Result<Vars, InventoryError> {
        let mut vars = Vars::new();
        let groups = self.sorted_groups(host);
        if let Some(all) = self.groups.get("all") {
            vars.extend(all.vars.clone());
        }
        for g in &groups {
            vars.extend(g.vars.clone());
        }
        let dirs = self.vars_dir_list();
        for dir in &dirs {
            vars.extend(self.dir_vars(dir, "group_vars", "all")?);
        }
        for g in &groups {
            for dir in &dirs {
                vars.extend(self.dir_vars(dir, "group_vars", &g.name)?);
            }
        }
        if let Some(h) = self.hosts.get(host) {
            vars.extend(h.vars.clone());
        } else if self.is_implicit_localhost(host) {
            vars.insert("ansible_connection".into(), Value::from("local"));
        }
        for dir in &dirs {
            vars.extend(self.dir_vars(dir, "host_vars", host)?);
        }
        Ok(vars)
    }

    fn dir_vars(&self, dir: &Path, kind: &str, name: &str) -> Result<Vars, InventoryError> {
        Ok((*self.vars_cache.load(&dir.join(kind), name)?).clone())
    }

    fn vars_dir_list(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in self
            .vars_dirs
            .inventory
            .iter()
            .chain(&self.vars_dirs.playbook)
        {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        dirs
    }

    /// The directory of the first file-based source, where `known_hosts` may live.
    pub fn base_dir(&self) -> Option<&Path> {
        self.vars_dirs.inventory.first().map(PathBuf::as_path)
    }
}

fn priority_of(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("ansible_group_priority must be an integer, got {s:?}")),
        other => Err(format!(
            "ansible_group_priority must be an integer, got {other}"
        )),
    }
}

/// One `-i` argument: a file, a directory, or a comma-separated host list (`a,b,`).
pub struct StaticSource {
    pub spec: String,
}

impl InventorySource for StaticSource {
    fn load(&self) -> Result<Inventory, InventoryError> {
        let path = Path::new(&self.spec);
        if !path.exists() && self.spec.contains(',') {
            return host_list(&self.spec);
        }
        // `-i localhost` (no comma, no such file): Ansible parses nothing and plays run on
        // the implicit localhost; scripts that configure the machine they run on rely on it.
        if !path.exists() && self.spec == "localhost" {
            return Ok(Inventory::new());
        }
        if path.is_dir() {
            return load_dir(path);
        }
        let mut inv = load_file(path)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        inv.vars_dirs
            .inventory
            .push(dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf));
        Ok(inv)
    }
}

/// `-i 'a,b:2222,'`: hosts in `ungrouped`.
fn host_list(spec: &str) -> Result<Inventory, InventoryError> {
    let mut inv = Inventory::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, port) = hostrange::split_port(item)
            .map_err(|e| InventoryError::Parse(format!("host list {spec:?}: {e}")))?;
        inv.add_host(&name, "ungrouped");
        if let Some(p) = port {
            inv.set_host_var(&name, "ansible_port", Value::from(p));
        }
    }
    inv.reconcile();
    Ok(inv)
}

/// Extensions Ansible skips in inventory directories (`INVENTORY_IGNORE_EXTS`, ansible-core 2.19).
const IGNORED_EXTS: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

fn load_dir(dir: &Path) -> Result<Inventory, InventoryError> {
    let io = |e: std::io::Error| InventoryError::Io {
        path: dir.to_path_buf(),
        msg: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut inv = Inventory::new();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.')
            || name == "group_vars"
            || name == "host_vars"
            || name == "known_hosts"
            || IGNORED_EXTS.iter().any(|ext| name.ends_with(ext))
        {
            continue;
        }
        let sub = if p.is_dir() {
            load_dir(&p)?
        } else {
            load_file(&p)?
        };
        inv.merge(sub);
    }
    inv.vars_dirs.inventory.insert(0, dir.to_path_buf());
    Ok(inv)
}

/// Loads one file, choosing the format from the extension, else from the content.
pub fn load_file(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| InventoryError::Io {
        path: path.to_path_buf(),
        msg: format!("cannot read inventory: {e}"),
    })?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let is_yaml = match ext {
        "yml" | "yaml" | "json" => true,
        "ini" => false,
        _ => yaml_inv::looks_like_yaml(&text, path),
    };
    // As Ansible tries its inventory plugins in turn (yaml accepts only YAML-named files,
    // ini any file), a YAML-named file written in INI (`[group]` first) is read as INI.
    // A broken YAML inventory still gets the YAML error: INI would read its lines as
    // host names.
    let mut inv = if is_yaml {
        match yaml_inv::parse(&text, path) {
            Ok(inv) => inv,
            Err(yaml_err) if ext != "json" && ini_shaped(&text) => {
                ini::parse(&text, path).map_err(|_| yaml_err)?
            }
            Err(e) => return Err(e),
        }
    } else {
        ini::parse(&text, path)?
    };
    inv.reconcile();
    Ok(inv)
}

/// True when the first line that says something is an INI `[section]` header.
fn ini_shaped(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .is_some_and(|l| l.starts_with('[') && l.ends_with(']'))
}

/// Loads every `-i` source and merges them in order.
pub fn load_sources(specs: &[String]) -> Result<Inventory, InventoryError> {
    let mut inv = Inventory::new();
    for spec in specs {
        inv.merge(StaticSource { spec: spec.clone() }.load()?);
    }
    Ok(inv)
}

#[cfg(test)]
mod tests;
