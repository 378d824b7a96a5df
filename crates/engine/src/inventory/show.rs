//! `ansible-inventory`'s outputs: `--list` (dynamic-inventory JSON), `--graph`, `--host`.

use serde_json::{Map, Value, json};

use super::{Inventory, InventoryError};
use crate::template::filters::serial::sorted;

/// `--list`: `_meta.hostvars` with every host's merged variables, then each group with
/// its direct `hosts` and `children`. Hosts without variables and groups with neither
/// hosts nor children are left out, as Ansible does.
pub fn list(inv: &Inventory) -> Result<Value, InventoryError> {
    let mut hostvars = Map::new();
    for host in inv.hosts.keys() {
        let vars = inv.get_vars(host)?;
        if !vars.is_empty() {
            hostvars.insert(host.clone(), Value::Object(vars));
        }
    }
    let mut out = Map::new();
    out.insert(
        "_meta".into(),
        json!({"hostvars": hostvars, "profile": "inventory_legacy"}),
    );
    for g in inv.groups.values() {
        let mut entry = Map::new();
        if !g.hosts.is_empty() && g.name != "all" {
            entry.insert("hosts".into(), json!(g.hosts));
        }
        if !g.children.is_empty() {
            entry.insert("children".into(), json!(g.children));
        }
        if !entry.is_empty() {
            out.insert(g.name.clone(), Value::Object(entry));
        }
    }
    Ok(sorted(Value::Object(out)))
}

/// `--graph [GROUP]`: the group tree with hosts, in inventory order.
pub fn graph(inv: &Inventory, group: &str) -> Result<String, InventoryError> {
    if !inv.groups.contains_key(group) {
        return Err(InventoryError::Invalid(format!(
            "Pattern must be valid group name when using --graph: {group}"
        )));
    }
    let mut out = String::new();
    graph_group(inv, group, 0, &mut out, &mut Vec::new());
    Ok(out)
}

fn graph_group(
    inv: &Inventory,
    group: &str,
    depth: usize,
    out: &mut String,
    path: &mut Vec<String>,
) {
    let indent = |d: usize| {
        if d == 0 {
            String::new()
        } else {
            format!("{}|--", "  |".repeat(d).trim_end_matches('|'))
        }
    };
    out.push_str(&format!("{}@{group}:\n", indent(depth)));
    if path.iter().any(|p| p == group) {
        return;
    }
    path.push(group.to_string());
    if let Some(g) = inv.groups.get(group) {
        for c in &g.children {
            graph_group(inv, c, depth + 1, out, path);
        }
        // `all` lists its hosts through `ungrouped` and the other groups.
        for h in g.hosts.iter().filter(|_| group != "all") {
            out.push_str(&format!("{}{h}\n", indent(depth + 1)));
        }
    }
    path.pop();
}

/// `--host HOST`: the host's merged variables, keys sorted.
pub fn host(inv: &Inventory, host: &str) -> Result<Value, InventoryError> {
    if !inv.hosts.contains_key(host) && !inv.is_implicit_localhost(host) {
        return Err(InventoryError::Invalid(format!(
            "You must pass a single valid host to --host parameter: {host}"
        )));
    }
    Ok(sorted(Value::Object(inv.get_vars(host)?)))
}

/// `--list --yaml`: Ansible's YAML inventory tree (`all: children: g: hosts: h: vars`).
/// A host's variables appear at its first occurrence only; empty groups are left out.
pub fn yaml_tree(inv: &Inventory) -> Result<Value, InventoryError> {
    let mut seen_groups = Vec::new();
    let mut seen_hosts = Vec::new();
    let mut out = Map::new();
    if let Some(tree) = yaml_group(inv, "all", &mut seen_groups, &mut seen_hosts)? {
        out.insert("all".into(), tree);
    }
    Ok(sorted(Value::Object(out)))
}

fn yaml_group(
    inv: &Inventory,
    name: &str,
    seen_groups: &mut Vec<String>,
    seen_hosts: &mut Vec<String>,
) -> Result<Option<Value>, InventoryError> {
    let Some(g) = inv.groups.get(name) else {
        return Ok(None);
    };
    let mut children = Map::new();
    for c in g.children.iter().filter(|c| c.as_str() != "all") {
        if seen_groups.contains(c) {
            children.insert(c.clone(), json!({}));
        } else {
            seen_groups.push(c.clone());
            if let Some(tree) = yaml_group(inv, c, seen_groups, seen_hosts)? {
                children.insert(c.clone(), tree);
            }
        }
    }
    let mut hosts = Map::new();
    for h in g.hosts.iter().filter(|_| name != "all") {
        let vars = if seen_hosts.contains(h) {
            Map::new()
        } else {
            seen_hosts.push(h.clone());
            inv.get_vars(h)?
        };
        hosts.insert(h.clone(), Value::Object(vars));
    }
    let mut entry = Map::new();
    if !children.is_empty() {
        entry.insert("children".into(), Value::Object(children));
    }
    if !hosts.is_empty() {
        entry.insert("hosts".into(), Value::Object(hosts));
    }
    Ok((!entry.is_empty()).then_some(Value::Object(entry)))
}

/// Python's `json.dumps(indent=4)`.
pub fn to_pretty_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).ok();
    String::from_utf8_lossy(&buf).into_owned()
}
