//! Keywords shared by plays, blocks, roles and tasks, and how a child inherits them.
//!
//! Values stay untyped (`serde_json::Value`) where Ansible allows a template
//! (`ignore_errors: "{{ flag }}"`); the executor renders them per host.

use serde_json::{Map, Value};

use super::{ParseError, Result};
use crate::yaml::Node;

/// Inheritable keywords. `None` means "not set here": the parent's value applies.
#[derive(Clone, Debug, Default)]
pub struct Keywords {
    pub become_: Option<Value>,
    pub become_user: Option<Value>,
    pub become_method: Option<Value>,
    pub remote_user: Option<Value>,
    pub port: Option<Value>,
    pub connection: Option<Value>,
    pub check_mode: Option<Value>,
    pub diff: Option<Value>,
    pub ignore_errors: Option<Value>,
    pub ignore_unreachable: Option<Value>,
    pub no_log: Option<Value>,
    pub run_once: Option<Value>,
    pub any_errors_fatal: Option<Value>,
    pub delegate_to: Option<Value>,
    pub delegate_facts: Option<Value>,
    pub throttle: Option<Value>,
    pub timeout: Option<Value>,
    /// `environment:` maps, outer first; later keys win.
    pub environment: Vec<Value>,
}

impl Keywords {
    /// Reads `key` into the matching field. Returns false when `key` is not a keyword here.
    pub fn set(&mut self, key: &str, node: &Node) -> Result<bool> {
        let v = node.to_json();
        let slot = match key {
            "become" => &mut self.become_,
            "become_user" => &mut self.become_user,
            "become_method" => &mut self.become_method,
            "remote_user" => &mut self.remote_user,
            "port" => &mut self.port,
            "connection" => &mut self.connection,
            "check_mode" => &mut self.check_mode,
            "diff" => &mut self.diff,
            "ignore_errors" => &mut self.ignore_errors,
            "ignore_unreachable" => &mut self.ignore_unreachable,
            "no_log" => &mut self.no_log,
            "run_once" => &mut self.run_once,
            "any_errors_fatal" => &mut self.any_errors_fatal,
            "delegate_to" => &mut self.delegate_to,
            "delegate_facts" => &mut self.delegate_facts,
            "throttle" => &mut self.throttle,
            "timeout" => &mut self.timeout,
            "environment" => {
                if !matches!(v, Value::Object(_) | Value::String(_) | Value::Null) {
                    return Err(ParseError::at(
                        &node.loc,
                        format!(
                            "'environment' must be a mapping, found {}",
                            node.type_name()
                        ),
                    ));
                }
                if !v.is_null() {
                    self.environment.push(v);
                }
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if matches!(v, Value::Array(_) | Value::Object(_)) {
            return Err(ParseError::at(
                &node.loc,
                format!("'{key}' must be a scalar, found {}", node.type_name()),
            ));
        }
        *slot = Some(v);
        Ok(true)
    }

    /// `self` (the child) over `parent`.
    pub fn inherit(&self, parent: &Keywords) -> Keywords {
        fn pick(child: &Option<Value>, parent: &Option<Value>) -> Option<Value> {
            child.clone().or_else(|| parent.clone())
        }
        let mut environment = parent.environment.clone();
        environment.extend(self.environment.iter().cloned());
        Keywords {
            become_: pick(&self.become_, &parent.become_),
            become_user: pick(&self.become_user, &parent.become_user),
            become_method: pick(&self.become_method, &parent.become_method),
            remote_user: pick(&self.remote_user, &parent.remote_user),
            port: pick(&self.port, &parent.port),
            connection: pick(&self.connection, &parent.connection),
            check_mode: pick(&self.check_mode, &parent.check_mode),
            diff: pick(&self.diff, &parent.diff),
            ignore_errors: pick(&self.ignore_errors, &parent.ignore_errors),
            ignore_unreachable: pick(&self.ignore_unreachable, &parent.ignore_unreachable),
            no_log: pick(&self.no_log, &parent.no_log),
            run_once: pick(&self.run_once, &parent.run_once),
            any_errors_fatal: pick(&self.any_errors_fatal, &parent.any_errors_fatal),
            delegate_to: pick(&self.delegate_to, &parent.delegate_to),
            delegate_facts: pick(&self.delegate_facts, &parent.delegate_facts),
            throttle: pick(&self.throttle, &parent.throttle),
            timeout: pick(&self.timeout, &parent.timeout),
            environment,
        }
    }
}

/// A list of strings from a scalar or a list (`tags`, `notify`, `listen`).
pub fn string_list(node: &Node, key: &str) -> Result<Vec<String>> {
    let one = |n: &Node| -> Result<String> {
        match n.to_json() {
            Value::String(s) => Ok(s),
            Value::Number(x) => Ok(x.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(ParseError::at(
                &n.loc,
                format!("'{key}' entries must be strings, found {}", n.type_name()),
            )),
        }
    };
    match node.as_seq() {
        Some(items) => items.iter().map(one).collect(),
        None if node.is_null() => Ok(Vec::new()),
        None => {
            let s = one(node)?;
            // `tags: a,b` is a comma-separated list in Ansible.
            if key == "tags" {
                Ok(s.split(',').map(|t| t.trim().to_string()).collect())
            } else {
                Ok(vec![s])
            }
        }
    }
}

/// A `vars:` mapping (a list of mappings is accepted too, as Ansible does).
pub fn vars_map(node: &Node) -> Result<Map<String, Value>> {
    match node.to_json() {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let mut out = Map::new();
            for item in items {
                if let Value::Object(m) = item {
                    out.extend(m);
                }
            }
            Ok(out)
        }
        _ => Err(ParseError::at(
            &node.loc,
            format!("'vars' must be a mapping, found {}", node.type_name()),
        )),
    }
}
