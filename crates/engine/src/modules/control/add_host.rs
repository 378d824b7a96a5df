//! `add_host`: puts a host (and its variables) into the run's in-memory inventory, so a
//! later play can target a machine an earlier play created. The module only reads its
//! arguments, as Ansible's action plugin does; the executor changes the inventory and
//! decides `changed` (a new host, group, membership or variable), and runs the task once
//! per batch, as Ansible's `BYPASS_HOST_LOOP` does.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

pub struct AddHost;

/// The request an `add_host` result carries under `add_host`, as in Ansible's result.
pub struct Request {
    pub name: String,
    pub groups: Vec<String>,
    pub vars: Map<String, Value>,
}

impl Request {
    /// Reads the request back from a result (`None` when there is none).
    pub fn from_result(result: &Value) -> Option<Request> {
        let r = result.get("add_host")?;
        Some(Request {
            name: r.get("host_name")?.as_str()?.to_string(),
            groups: r
                .get("groups")?
                .as_array()?
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            vars: r.get("host_vars")?.as_object()?.clone(),
        })
    }
}

#[async_trait]
impl Module for AddHost {
    fn name(&self) -> &'static str {
        "add_host"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    async fn run(
        &self,
        _ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let given = ["name", "hostname", "host"]
            .iter()
            .find_map(|k| args.get(*k).filter(|v| !v.is_null()))
            .map(text)
            .ok_or_else(|| {
                ModuleError::Args("add_host: name, host or hostname needs to be provided".into())
            })?;
        let mut vars: Map<String, Value> = Map::new();
        // `host:port` names a port, which becomes the host's SSH port.
        let name = match given.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && !h.is_empty() && p.parse::<u16>().is_ok() => {
                vars.insert(
                    "ansible_ssh_port".into(),
                    json!(p.parse::<u16>().unwrap_or(22)),
                );
                h.to_string()
            }
            _ => given,
        };
        let groups_arg = ["groupname", "groups", "group"]
            .iter()
            .find_map(|k| args.get(*k).filter(|v| !v.is_null()));
        let mut groups: Vec<String> = Vec::new();
        match groups_arg {
            None => {}
            Some(Value::String(s)) => {
                for g in s.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                    if !groups.iter().any(|x| x == g) {
                        groups.push(g.to_string());
                    }
                }
            }
            Some(Value::Array(items)) => {
                for g in items.iter().map(text) {
                    let g = g.trim().to_string();
                    if !g.is_empty() && !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
            Some(_) => {
                return Err(ModuleError::Args(
                    "add_host: Groups must be specified as a list.".into(),
                ));
            }
        }
        // Every other argument is a host variable (Ansible keeps `host` and `group` too).
        for (k, v) in args {
            if !matches!(k.as_str(), "name" | "hostname" | "groupname" | "groups")
                && !k.starts_with('_')
            {
                vars.insert(k.clone(), v.clone());
            }
        }
        Ok(ModuleResult::ok().with(
            "add_host",
            json!({"host_name": name, "groups": groups, "host_vars": vars}),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::Harness;

    #[tokio::test]
    async fn names_ports_groups_and_variables_read_as_ansible_reads_them() {
        let h = Harness::new();
        let r = h
            .ok(
                &AddHost,
                json!({"name": "db1:2222", "groups": "a, b,a", "role": "db"}),
            )
            .await;
        let req = Request::from_result(&r.to_json()).unwrap();
        assert_eq!(req.name, "db1");
        assert_eq!(req.groups, ["a", "b"]);
        assert_eq!(req.vars["ansible_ssh_port"], json!(2222));
        assert_eq!(req.vars["role"], json!("db"));
        // An IPv6 address is not a name with a port.
        let r = h
            .ok(&AddHost, json!({"hostname": "fe80::1", "group": ["x"]}))
            .await;
        let req = Request::from_result(&r.to_json()).unwrap();
        assert_eq!((req.name.as_str(), req.groups.len()), ("fe80::1", 1));
        assert!(h.run(&AddHost, json!({"groups": "a"})).await.is_err());
    }
}
