//! `supervisorctl` (community.general): programs under supervisord started, stopped,
//! restarted, signalled, added or removed. Like the collection's module it reads
//! `supervisorctl status` to decide, acts on each matching process, and trusts the
//! action only when supervisorctl reports it (`<name>: started`), so a program that
//! fails to start fails the task instead of being counted changed.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::connection::ExecOutput;
use crate::modules::args::Args;
use crate::modules::remote::{self, argv_line};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult, Stop};

pub struct Supervisorctl;

const KNOWN: &[&str] = &[
    "name",
    "config",
    "server_url",
    "username",
    "password",
    "supervisorctl_path",
    "state",
    "stop_before_removing",
    "signal",
];

const STATES: &[&str] = &[
    "present",
    "started",
    "restarted",
    "stopped",
    "absent",
    "signalled",
];

fn is_active(status: &str) -> bool {
    matches!(status, "RUNNING" | "STARTING")
}

/// The processes of `status` output that `name` designates: the program itself, every
/// member of a group (`name:`), or everything (`all`).
pub fn matching(status: &str, name: &str, is_group: bool) -> Vec<(String, String)> {
    status
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ').filter(|f| !f.is_empty());
            let process = fields.next()?;
            let state = fields.next()?;
            let wanted = if is_group {
                process.split_once(':').is_some_and(|(g, _)| g == name)
            } else {
                process == name || name == "all"
            };
            wanted.then(|| (process.to_string(), state.to_string()))
        })
        .collect()
}

/// supervisorctl with the connection options, run in the C locale (its answers are read).
struct Ctl<'a, 'c> {
    ctx: &'a ModuleCtx<'c>,
    base: Vec<String>,
}

impl Ctl<'_, '_> {
    async fn run(&self, cmd: &str, name: Option<&str>) -> Result<ExecOutput, ModuleError> {
        let mut argv = self.base.clone();
        argv.push(cmd.to_string());
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            argv.push(n.to_string());
        }
        remote::run(
            self.ctx,
            format!(
                "LANG=C LC_ALL=C LC_MESSAGES=C LC_CTYPE=C {}",
                argv_line(&argv)
            ),
        )
        .await
    }

    /// [`Ctl::run`] where a non-zero exit fails the task, as `check_rc=True` does.
    async fn checked(&self, cmd: &str, name: Option<&str>) -> Result<ExecOutput, Stop> {
        let out = self.run(cmd, name).await?;
        if out.rc == 0 {
            return Ok(out);
        }
        let mut argv = self.base.clone();
        argv.push(cmd.to_string());
        argv.extend(name.map(String::from));
        // The password is an argument; it must not reach the console.
        let password_at = self.base.iter().position(|b| b == "-p").map(|i| i + 1);
        let shown: Vec<String> = argv
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if Some(i) == password_at {
                    "********".to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        Err(Stop::from(
            ModuleResult::failed(out.stderr_str().trim_end())
                .with("cmd", argv_line(&shown))
                .with("rc", out.rc)
                .with("stdout", out.stdout_str())
                .with("stderr", out.stderr_str()),
        ))
    }

    async fn processes(
        &self,
        name: &str,
        is_group: bool,
    ) -> Result<Vec<(String, String)>, ModuleError> {
        let out = self.run("status", None).await?;
        Ok(matching(&out.stdout_str(), name, is_group))
    }
}

fn done(changed: bool, name: &str, state: &str) -> ModuleResult {
    let r = if changed {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    r.with("name", name).with("state", state)
}

/// The collection's `take_action_on_processes`: `action` on each process `filter`
/// selects, each confirmed by supervisorctl's `<process>: <expected>`; unchanged when
/// none is selected.
async fn act(
    ctl: &Ctl<'_, '_>,
    processes: &[(String, String)],
    filter: fn(&str) -> bool,
    (action, expected): (&str, &str),
    name: &str,
    state: &str,
) -> Result<ModuleResult, Stop> {
    let targets: Vec<&String> = processes
        .iter()
        .filter(|(_, s)| filter(s))
        .map(|(p, _)| p)
        .collect();
    if targets.is_empty() {
        return Ok(done(false, name, state));
    }
    if ctl.ctx.check_mode {
        return Ok(ModuleResult::changed());
    }
    for p in &targets {
        let text = ctl.checked(action, Some(p)).await?.stdout_str();
        if !text.contains(&format!("{p}: {expected}")) {
            return Err(ModuleResult::failed(text).into());
        }
    }
    Ok(done(true, name, state).with("affected", json!(targets)))
}

/// `reread`, then `add` or `remove` the program, trusted only when supervisorctl answers
/// `<name>: added process group` (or `removed`), as the collection's module does.
async fn membership(
    ctl: &Ctl<'_, '_>,
    name: &str,
    state: &str,
    verb: &str,
    confirmed: &str,
) -> Result<ModuleResult, Stop> {
    if ctl.ctx.check_mode {
        return Ok(ModuleResult::changed());
    }
    ctl.checked("reread", None).await?;
    let out = ctl.run(verb, Some(name)).await?.stdout_str();
    Ok(
        if out.contains(&format!("{name}: {confirmed} process group")) {
            done(true, name, state)
        } else {
            ModuleResult::failed(out)
                .with("name", name)
                .with("state", state)
        },
    )
}

#[async_trait]
impl Module for Supervisorctl {
    fn name(&self) -> &'static str {
        "supervisorctl"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["name"], &["state"]],
            choices: &[("state", STATES)],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        Stop::finish(control(ctx, args).await)
    }
}

/// The module's work, each step able to end it (see [`Stop`]).
async fn control(ctx: &ModuleCtx<'_>, args: &Map<String, Value>) -> Result<ModuleResult, Stop> {
    let a = Args::new("supervisorctl", args, KNOWN)?;
    let raw_name = a.str("name")?;
    if !a.has("state") {
        return Err(a.err("state", "is required").into());
    }
    let state = a.choice("state", STATES, "present")?;
    let signal = a.opt_str("signal")?;
    if state == "signalled" && signal.is_none() {
        return Err(a
            .fail("state is signalled but all of the following are missing: signal")
            .into());
    }
    let is_group = raw_name.ends_with(':');
    let name = raw_name.trim_end_matches(':').to_string();
    let stop_first = a.bool_or("stop_before_removing", false)?;

    let program = match a.opt_str("supervisorctl_path")? {
        Some(p) => {
            let ok = remote::run(ctx, format!("test -x {}", crate::connection::sh_quote(&p)))
                .await?
                .rc
                == 0;
            if !ok {
                return Ok(ModuleResult::failed(format!(
                    "Provided path to supervisorctl does not exist or isn't executable: {p}"
                )));
            }
            p
        }
        None => match remote::bin_path(ctx, "supervisorctl").await? {
            Some(p) => p,
            None => return Ok(ModuleResult::failed(remote::bin_missing("supervisorctl"))),
        },
    };
    let mut base = vec![program];
    for (key, flag) in [
        ("config", "-c"),
        ("server_url", "-s"),
        ("username", "-u"),
        ("password", "-p"),
    ] {
        if let Some(v) = a.opt_str(key)?.filter(|v| !v.is_empty()) {
            base.extend([flag.to_string(), v]);
        }
    }
    let ctl = Ctl { ctx, base };

    if name == "all" && matches!(state, "started" | "stopped" | "restarted") {
        if state == "restarted" {
            ctl.checked("update", None).await?;
        }
        let processes = ctl.processes(&name, is_group).await?;
        let to_act: Vec<&String> = processes
            .iter()
            .filter(|(_, s)| match state {
                "started" => !is_active(s),
                "stopped" => is_active(s),
                _ => true,
            })
            .map(|(p, _)| p)
            .collect();
        if to_act.is_empty() {
            return Ok(done(false, &name, state));
        }
        if ctx.check_mode {
            return Ok(ModuleResult::changed());
        }
        let action = match state {
            "started" => "start",
            "stopped" => "stop",
            _ => "restart",
        };
        ctl.checked(action, Some("all")).await?;
        return Ok(done(true, &name, state).with("affected", json!(to_act)));
    }

    if state == "restarted" {
        ctl.checked("update", None).await?;
        let processes = ctl.processes(&name, is_group).await?;
        if processes.is_empty() {
            return Ok(ModuleResult::failed("ERROR (no such process)").with("name", name));
        }
        return act(
            &ctl,
            &processes,
            |_| true,
            ("restart", "started"),
            &name,
            state,
        )
        .await;
    }

    let processes = ctl.processes(&name, is_group).await?;
    match state {
        "absent" => {
            if processes.is_empty() {
                return Ok(done(false, &name, state));
            }
            if stop_first {
                // Its result is not the task's: removing is what changes.
                act(
                    &ctl,
                    &processes,
                    is_active,
                    ("stop", "stopped"),
                    &name,
                    state,
                )
                .await?;
            }
            return membership(&ctl, &name, state, "remove", "removed").await;
        }
        "present" => {
            if !processes.is_empty() {
                return Ok(done(false, &name, state));
            }
            return membership(&ctl, &name, state, "add", "added").await;
        }
        _ => {}
    }
    if processes.is_empty() && name != "all" {
        return Ok(ModuleResult::failed("ERROR (no such process)").with("name", name));
    }
    let signal_action = format!("signal {}", signal.unwrap_or_default());
    let (filter, action, expected): (fn(&str) -> bool, &str, &str) = match state {
        "started" => (|s| !is_active(s), "start", "started"),
        "stopped" => (is_active, "stop", "stopped"),
        _ => (|s| s == "RUNNING", signal_action.as_str(), "signalled"),
    };
    act(&ctl, &processes, filter, (action, expected), &name, state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_match_programs_groups_and_all() {
        let status = "web RUNNING pid 7, uptime 0:01:00\n\
                      workers:w_00 STOPPED Dec 03 07:00 PM\n\
                      workers:w_01 STARTING\n\
                      webber FATAL Exited too quickly\n";
        let names = |n: &str, g: bool| -> Vec<String> {
            matching(status, n, g).into_iter().map(|(p, _)| p).collect()
        };
        assert_eq!(names("web", false), ["web"]);
        assert_eq!(names("workers", true), ["workers:w_00", "workers:w_01"]);
        assert_eq!(names("all", false).len(), 4);
        assert!(names("nothing", false).is_empty());
        assert_eq!(matching(status, "web", false)[0].1, "RUNNING");
    }
}
