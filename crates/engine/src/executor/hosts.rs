//! The executor's view of an inventory: hosts in order, their variables and groups, and
//! host patterns. A thin adapter so the engine does not depend on how an inventory was
//! built (files, a `a,b,` list, or Nova); `crate::inventory` fills it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// One host: its name, merged inventory variables (all < parent < child < host) and groups.
#[derive(Debug)]
pub struct Host {
    pub name: String,
    pub vars: Arc<Map<String, Value>>,
    /// Group names the host belongs to (without `all`), sorted.
    pub groups: Vec<String>,
}

/// Hosts and groups in inventory order.
#[derive(Debug, Default)]
pub struct Inventory {
    pub hosts: Vec<Arc<Host>>,
    /// Group → member host names (`all` and `ungrouped` included).
    pub groups: BTreeMap<String, Vec<String>>,
    /// The inventory this view was built from: patterns and jump hosts resolve through it.
    pub source: Option<Arc<crate::inventory::Inventory>>,
}

impl Inventory {
    /// `-i 'a,b,'`: a comma-separated host list, all in `ungrouped`.
    pub fn from_host_list(list: &str) -> Inventory {
        let mut inv = Inventory::default();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            inv.add_host(name, Map::new(), &["ungrouped"]);
        }
        inv.groups.entry("all".into()).or_default();
        inv.groups.entry("ungrouped".into()).or_default();
        inv
    }

    /// The engine's view of an inventory: every host's merged variables (group_vars and
    /// host_vars included), its groups, and the groups' members.
    pub fn from_inventory(inv: crate::inventory::Inventory) -> Result<Inventory, String> {
        let mut out = Inventory::default();
        for name in inv.hosts.keys() {
            let vars = inv.get_vars(name).map_err(|e| e.to_string())?;
            let groups: Vec<String> = inv
                .host_groups(name)
                .into_iter()
                .filter(|g| g != "all")
                .collect();
            let mut groups_sorted = groups.clone();
            groups_sorted.sort();
            out.hosts.push(Arc::new(Host {
                name: name.clone(),
                vars: Arc::new(vars),
                groups: groups_sorted,
            }));
        }
        for g in inv.groups.keys() {
            out.groups.insert(g.clone(), inv.group_hosts(g));
        }
        out.source = Some(Arc::new(inv));
        Ok(out)
    }

    /// Adds a host (or replaces its vars) in the given groups.
    pub fn add_host(&mut self, name: &str, vars: Map<String, Value>, groups: &[&str]) {
        let mut gs: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        gs.sort();
        let host = Arc::new(Host {
            name: name.to_string(),
            vars: Arc::new(vars),
            groups: gs.clone(),
        });
        match self.hosts.iter_mut().find(|h| h.name == name) {
            Some(h) => *h = host,
            None => {
                self.hosts.push(host);
                self.groups
                    .entry("all".into())
                    .or_default()
                    .push(name.to_string());
            }
        }
        for g in gs {
            let members = self.groups.entry(g).or_default();
            if !members.iter().any(|m| m == name) {
                members.push(name.to_string());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Host>> {
        self.hosts.iter().find(|h| h.name == name).cloned()
    }

    /// The implicit `localhost` Ansible provides when the inventory has none.
    pub fn implicit_localhost() -> Arc<Host> {
        let mut vars = Map::new();
        vars.insert("ansible_connection".into(), Value::String("local".into()));
        Arc::new(Host {
            name: "localhost".into(),
            vars: Arc::new(vars),
            groups: Vec::new(),
        })
    }

    /// Hosts matching an Ansible pattern: `all`/`*`, names, groups, globs, `a:b` or `a,b`
    /// unions, `:&g` intersections and `:!g` exclusions. Order is inventory order.
    pub fn select(&self, pattern: &str) -> Vec<Arc<Host>> {
        if let Some(src) = &self.source {
            let names = src.select(pattern).map(|s| s.hosts).unwrap_or_default();
            return names
                .iter()
                .filter_map(|n| {
                    self.get(n)
                        .or_else(|| src.is_implicit_localhost(n).then(Self::implicit_localhost))
                })
                .collect();
        }
        let mut chosen: Vec<String> = Vec::new();
        let parts: Vec<&str> = pattern
            .split([',', ':'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        // Unions first, then intersections, then exclusions, as Ansible does.
        for p in parts
            .iter()
            .filter(|p| !p.starts_with('&') && !p.starts_with('!'))
        {
            for h in self.match_one(p) {
                if !chosen.contains(&h) {
                    chosen.push(h);
                }
            }
        }
        for p in parts.iter().filter_map(|p| p.strip_prefix('&')) {
            let keep = self.match_one(p);
            chosen.retain(|h| keep.contains(h));
        }
        for p in parts.iter().filter_map(|p| p.strip_prefix('!')) {
            let drop = self.match_one(p);
            chosen.retain(|h| !drop.contains(h));
        }
        let mut out: Vec<Arc<Host>> = self
            .hosts
            .iter()
            .filter(|h| chosen.contains(&h.name))
            .cloned()
            .collect();
        if chosen.iter().any(|c| c == "localhost") && !out.iter().any(|h| h.name == "localhost") {
            out.push(Self::implicit_localhost());
        }
        out
    }

    fn match_one(&self, p: &str) -> Vec<String> {
        if p == "all" || p == "*" {
            return self.hosts.iter().map(|h| h.name.clone()).collect();
        }
        if let Some(members) = self.groups.get(p) {
            return members.clone();
        }
        if (p.contains('*') || p.contains('?') || p.contains('['))
            && let Ok(glob) = globset::Glob::new(p)
        {
            {
                let m = glob.compile_matcher();
                let mut out: Vec<String> = self
                    .hosts
                    .iter()
                    .filter(|h| m.is_match(&h.name))
                    .map(|h| h.name.clone())
                    .collect();
                for (g, members) in &self.groups {
                    if m.is_match(g) {
                        out.extend(members.iter().cloned());
                    }
                }
                return out;
            }
        }
        if let Some(re) = p.strip_prefix('~')
            && let Ok(re) = regex::Regex::new(re)
        {
            return self
                .hosts
                .iter()
                .filter(|h| re.is_match(&h.name))
                .map(|h| h.name.clone())
                .collect();
        }
        if p == "localhost" || self.hosts.iter().any(|h| h.name == p) {
            return vec![p.to_string()];
        }
        Vec::new()
    }

    /// `groups` as templates see it: every group → its members.
    pub fn groups_value(&self) -> Value {
        Value::Object(
            self.groups
                .iter()
                .map(|(g, m)| {
                    (
                        g.clone(),
                        Value::Array(m.iter().cloned().map(Value::String).collect()),
                    )
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        let mut i = Inventory::default();
        i.add_host("web1", Map::new(), &["web"]);
        i.add_host("web2", Map::new(), &["web"]);
        i.add_host("db1", Map::new(), &["db"]);
        i
    }

    fn names(v: Vec<Arc<Host>>) -> Vec<String> {
        v.iter().map(|h| h.name.clone()).collect()
    }

    #[test]
    fn patterns() {
        let i = inv();
        assert_eq!(names(i.select("all")), ["web1", "web2", "db1"]);
        assert_eq!(names(i.select("web:!web2")), ["web1"]);
        assert_eq!(names(i.select("all:&db")), ["db1"]);
        assert_eq!(names(i.select("web*")), ["web1", "web2"]);
        assert_eq!(names(i.select("db1,web1")), ["web1", "db1"]);
        assert_eq!(names(i.select("nothing")), Vec::<String>::new());
    }
}
