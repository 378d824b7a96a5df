//! `service` and `systemd`: start, stop, restart or reload a service and set whether it
//! starts at boot.
//!
//! One round trip asks the host for the service's current state (`systemctl is-active`
//! / `is-enabled`, or `service NAME status` and the rc.d links without systemd); a second
//! one changes only what differs. `restarted` and `reloaded` always change, as in Ansible.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::remote;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

/// `service` and `systemd` differ only in name and a few systemd-only arguments.
pub struct Service {
    name: &'static str,
}

impl Service {
    pub const SERVICE: Service = Service { name: "service" };
    pub const SYSTEMD: Service = Service { name: "systemd" };
}

const KNOWN: &[&str] = &[
    "name",
    "state",
    "enabled",
    "daemon_reload",
    "daemon_reexec",
    "masked",
    "scope",
    "no_block",
    "force",
    "pattern",
    "sleep",
    "arguments",
    "args",
    "runlevel",
    "use",
];

const PROBE: &str = r#"n=$1
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  echo "mgr=systemd"
  echo "active=$(systemctl is-active "$n" 2>/dev/null)"
  echo "enabled=$(systemctl is-enabled "$n" 2>/dev/null)"
  echo "load=$(systemctl show -p LoadState --value "$n" 2>/dev/null)"
elif command -v service >/dev/null 2>&1 || [ -x "/etc/init.d/$n" ]; then
  echo "mgr=sysv"
  if service "$n" status >/dev/null 2>&1 || "/etc/init.d/$n" status >/dev/null 2>&1; then echo active=active; else echo active=inactive; fi
  if ls /etc/rc[2345].d/S*"$n" >/dev/null 2>&1; then echo enabled=enabled; else echo enabled=disabled; fi
  if [ -e "/etc/init.d/$n" ]; then echo load=loaded; else echo load=not-found; fi
else
  echo "mgr=none"
fi"#;

struct Probe {
    mgr: String,
    active: bool,
    enabled: Option<bool>,
    found: bool,
}

async fn probe(ctx: &ModuleCtx<'_>, name: &str) -> Result<Probe, ModuleError> {
    let out = remote::run(ctx, format!("set -- {}; {PROBE}", sh_quote(name))).await?;
    let text = out.stdout_str();
    let v = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let enabled = v("enabled");
    Ok(Probe {
        mgr: v("mgr"),
        active: matches!(v("active").as_str(), "active" | "activating" | "reloading"),
        enabled: match enabled.as_str() {
            "enabled" | "enabled-runtime" | "alias" | "static" | "indirect" | "generated" => {
                Some(true)
            }
            "disabled" | "masked" | "masked-runtime" => Some(false),
            _ => None,
        },
        found: v("load") != "not-found",
    })
}

fn action_cmd(mgr: &str, name: &str, action: &str) -> String {
    let n = sh_quote(name);
    match mgr {
        "systemd" => format!("systemctl {action} {n}"),
        _ => match action {
            "enable" => format!(
                "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} defaults; else chkconfig {n} on; fi"
            ),
            "disable" => format!(
                "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d {n} disable; else chkconfig {n} off; fi"
            ),
            _ => format!("service {n} {action}"),
        },
    }
}

#[async_trait]
impl Module for Service {
    fn name(&self) -> &'static str {
        self.name
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            choices: &[("state", &["started", "stopped", "restarted", "reloaded"])],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new(self.name, args, KNOWN)?;
        let state = match a.opt_str("state")? {
            Some(_) => Some(a.choice(
                "state",
                &["started", "stopped", "restarted", "reloaded"],
                "started",
            )?),
            None => None,
        };
        let enabled = a.opt_bool("enabled")?;
        let daemon_reload = a.bool_or("daemon_reload", false)?;
        let name = a.opt_str("name")?;
        if name.is_none() && !daemon_reload {
            return Err(a.err("name", "is required"));
        }
        let name = name.unwrap_or_default();
        if state.is_none() && enabled.is_none() && !daemon_reload {
            return Err(a.fail("at least one of 'state', 'enabled' or 'daemon_reload' is required"));
        }
        if daemon_reload && !ctx.check_mode {
            let out = remote::run(ctx, "systemctl daemon-reload").await?;
            if out.rc != 0 {
                return Ok(ModuleResult::failed(format!(
                    "daemon-reload failed: {}",
                    out.stderr_str().trim()
                )));
            }
        }
        if name.is_empty() {
            return Ok(ModuleResult::changed().with("name", ""));
        }
        let p = probe(ctx, &name).await?;
        if p.mgr == "none" {
            return Ok(ModuleResult::failed(format!(
                "cannot manage service {name}: neither systemctl (with systemd running) nor the 'service' command is available on this host"
            )));
        }
        if !p.found {
            return Ok(ModuleResult::failed(format!(
                "Could not find the requested service {name}: host"
            )));
        }
        let mut actions = Vec::new();
        match enabled {
            Some(true) if p.enabled != Some(true) => actions.push("enable"),
            Some(false) if p.enabled == Some(true) => actions.push("disable"),
            _ => {}
        }
        match state {
            Some("started") if !p.active => actions.push("start"),
            Some("stopped") if p.active => actions.push("stop"),
            Some("restarted") => actions.push("restart"),
            Some("reloaded") if p.active => actions.push("reload"),
            Some("reloaded") => actions.push("start"),
            _ => {}
        }
        let changed = !actions.is_empty();
        if changed && !ctx.check_mode {
            let cmd: Vec<String> = actions
                .iter()
                .map(|act| action_cmd(&p.mgr, &name, act))
                .collect();
            let out = remote::run(ctx, format!("set -e; {}", cmd.join("; "))).await?;
            if out.rc != 0 {
                let err = out.stderr_str();
                return Ok(ModuleResult::failed(format!(
                    "Unable to {} service {name}: {}",
                    actions.join(" and "),
                    err.trim()
                )));
            }
        }
        let final_active = match state {
            Some("stopped") => false,
            Some(_) => true,
            None => p.active,
        };
        let mut r = if changed {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        };
        r = r
            .with("name", name.clone())
            .with("state", if final_active { "started" } else { "stopped" })
            .with(
                "status",
                json!({"ActiveState": if final_active { "active" } else { "inactive" }}),
            );
        if let Some(e) = enabled.or(p.enabled) {
            r = r.with("enabled", e);
        }
        Ok(r)
    }
}
