//! The YAML inventory format (`all: {hosts, vars, children}`, nested to any depth), as
//! Ansible's `yaml` plugin reads it. Errors are `file:line:col: what is wrong`.

use std::path::Path;

use crate::yaml::{self, Node, NodeKind};

use super::{Inventory, InventoryError, hostrange};

fn located(node: &Node, msg: impl std::fmt::Display) -> InventoryError {
    InventoryError::Parse(format!("{}: {msg}", node.loc))
}

/// True when `text` is a YAML mapping whose values are all mappings or empty: the shape
/// of a YAML inventory (an INI file is a YAML string or a syntax error).
pub fn looks_like_yaml(text: &str, path: &Path) -> bool {
    match yaml::load_str(text, path) {
        Ok(node) => node.as_map().is_some_and(|entries| {
            entries
                .iter()
                .all(|(_, v)| v.is_null() || v.as_map().is_some())
        }),
        Err(_) => false,
    }
}

pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let root = yaml::load_str(text, path).map_err(|e| InventoryError::Parse(e.to_string()))?;
    let mut inv = Inventory::new();
    if root.is_null() {
        return Ok(inv);
    }
    let Some(entries) = root.as_map() else {
        return Err(located(
            &root,
            format!(
                "a YAML inventory must be a mapping of groups, found {}",
                root.type_name()
            ),
        ));
    };
    for (name, body) in entries {
        parse_group(&mut inv, name, body, None)?;
    }
    Ok(inv)
}

fn parse_group(
    inv: &mut Inventory,
    name: &str,
    body: &Node,
    parent: Option<&str>,
) -> Result<(), InventoryError> {
    inv.add_group(name);
    if let Some(p) = parent {
        inv.add_child(p, name);
    }
    if body.is_null() {
        return Ok(());
    }
    let Some(entries) = body.as_map() else {
        return Err(located(
            body,
            format!(
                "group '{name}' must be a mapping (hosts, vars, children), found {}",
                body.type_name()
            ),
        ));
    };
    for (key, value) in entries {
        match key.as_str() {
            "vars" => {
                for (k, v) in expect_map(value, name, "vars")? {
                    inv.set_group_var(name, k, v.to_json())
                        .map_err(|e| located(v, e))?;
                }
            }
            "hosts" => {
                for (pattern, hvars) in expect_map(value, name, "hosts")? {
                    parse_hosts(inv, name, pattern, hvars)?;
                }
            }
            "children" => {
                for (child, cbody) in expect_map(value, name, "children")? {
                    parse_group(inv, child, cbody, Some(name))?;
                }
            }
            other => {
                return Err(located(
                    value,
                    format!(
                        "unexpected key '{other}' in group '{name}': only 'vars', 'children' and 'hosts' are valid"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn expect_map<'a>(
    node: &'a Node,
    group: &str,
    what: &str,
) -> Result<&'a [(String, Node)], InventoryError> {
    if node.is_null() {
        return Ok(&[]);
    }
    node.as_map().ok_or_else(|| {
        located(
            node,
            format!(
                "invalid \"{what}\" entry for \"{group}\" group: requires a mapping, found {}",
                node.type_name()
            ),
        )
    })
}

fn parse_hosts(
    inv: &mut Inventory,
    group: &str,
    pattern: &str,
    vars: &Node,
) -> Result<(), InventoryError> {
    let (pattern, port) = hostrange::split_port(pattern).map_err(|e| located(vars, e))?;
    let hosts = hostrange::expand(&pattern).map_err(|e| located(vars, e))?;
    let var_entries = match &vars.kind {
        NodeKind::Null => &[][..],
        NodeKind::Map(entries) => entries.as_slice(),
        _ => {
            return Err(located(
                vars,
                format!(
                    "host '{pattern}' must have a mapping of variables, found {}",
                    vars.type_name()
                ),
            ));
        }
    };
    for h in hosts {
        inv.add_host(&h, group);
        if let Some(p) = port {
            inv.set_host_var(&h, "ansible_port", serde_json::Value::from(p));
        }
        for (k, v) in var_entries {
            inv.set_host_var(&h, k, v.to_json());
        }
    }
    Ok(())
}
