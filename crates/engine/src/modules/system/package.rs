//! `package`: the distribution-neutral package module. Like Ansible's action plugin it
//! picks the host's package manager (`use:`, else the gathered `ansible_pkg_mgr` fact,
//! else a probe on the host) and runs that manager's module with the other arguments, so
//! a role written with `package:` behaves exactly as one written with `apt:`.
//!
//! `apt` and `dnf` (`yum`) are implemented; any other manager fails naming it, instead
//! of doing nothing, because a role that installs nothing fails much later and far away.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::apt::Apt;
use super::dnf::Dnf;
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Package;

/// `package`'s own arguments; everything else goes to the backend module, which checks it.
const OWN: &[&str] = &["name", "state", "use"];

/// What a task may give: ours plus the backends' (apt's and dnf's), so a typo is caught
/// before any host is contacted.
static KNOWN: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut k: Vec<&'static str> = super::apt::KNOWN.to_vec();
    for d in super::dnf::KNOWN {
        if !k.contains(d) {
            k.push(d);
        }
    }
    k.push("use");
    k
});

#[async_trait]
impl Module for Package {
    fn name(&self) -> &'static str {
        "package"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: &KNOWN,
            required: &[&["name"], &["state"]],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        // Unknown names are the backend's to judge, so `Args` sees only our own keys here.
        let own: Map<String, Value> = args
            .iter()
            .filter(|(k, _)| OWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let a = Args::new("package", &own, OWN)?;
        if !a.has("name") {
            return Err(a.err("name", "is required"));
        }
        if !a.has("state") {
            return Err(a.err("state", "is required"));
        }
        let wanted = a.str_or("use", "auto")?;
        let manager = if wanted != "auto" {
            wanted
        } else if let Some(Value::String(m)) = ctx.vars.get("ansible_pkg_mgr") {
            m.clone()
        } else {
            // Facts were not gathered: gather them, as Ansible's action plugin does.
            let facts = crate::facts::gather(ctx.conn.as_ref()).await?;
            match facts.get("ansible_pkg_mgr") {
                Some(Value::String(m)) if !m.is_empty() => m.clone(),
                _ => "unknown".to_string(),
            }
        };
        let rest: Map<String, Value> = args
            .iter()
            .filter(|(k, _)| k.as_str() != "use")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match manager.as_str() {
            "apt" => Apt.run(ctx, &rest).await,
            // Ansible's action plugin maps yum to dnf on hosts whose manager it finds.
            "dnf" | "yum" => Dnf::DNF.run(ctx, &rest).await,
            "unknown" => Ok(ModuleResult::failed(
                "Could not detect which package manager to use. Try gathering facts or \
                 setting the \"use\" option.",
            )),
            other => Ok(ModuleResult::failed(format!(
                "package: this host's package manager is '{other}', and this engine \
                 implements 'apt' and 'dnf'; use the '{other}' tasks of the role with \
                 ansible-playbook, or an apt-based image"
            ))),
        }
    }
}
