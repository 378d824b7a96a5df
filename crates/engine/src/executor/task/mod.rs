//! One task on one host: `when`, loops, the module call with `until` retries,
//! `changed_when`/`failed_when`, `register`, facts, and the result events.

mod action;
pub(super) use action::store_facts_on;
mod loops;

use std::sync::Arc;
use std::time::Duration;

use minijinja::Value as JValue;
use serde_json::{Map, Value, json};

use super::batch::Batch;
use super::events::{HostResult, Status};
use super::vars::{self, Vars};
use crate::connection::ConnError;
use crate::playbook::{Cond, Task, TaskItem};
use crate::template::pyjson::py_str;
use crate::template::{Templar, TemplateError};

/// The placeholder `omit` renders to; arguments equal to it are dropped.
pub const OMIT: &str = "__omit_place_holder__spark_openstack";

const NO_LOG_MSG: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// Tasks an include produced; hosts with the same `key` run them together.
#[derive(Clone)]
pub(super) struct Included {
    pub key: String,
    /// The included file, for the `included: FILE for HOSTS` line.
    pub file: Option<String>,
    /// The loop item label, for `included: FILE for HOSTS => (item=x)`.
    pub label: Option<String>,
    pub items: Vec<TaskItem>,
}

/// A task's end on one host, for the play runner to count and act on.
pub(super) struct HostOutcome {
    pub status: Status,
    pub ignored: bool,
    pub result: Value,
    /// Tasks to run next for this host (`include_tasks`/`include_role`).
    pub includes: Vec<Included>,
    /// The delegate that received facts with `delegate_facts`.
    pub unreachable_ignored: bool,
    /// Variables `set_fact`/`include_vars` set on the host, which `run_once` gives to
    /// every host of the batch as well (as Ansible does).
    pub facts: Option<Box<(String, Map<String, Value>)>>,
}

impl HostOutcome {
    /// A failed outcome always carries `failed: true`, whatever failed (the module, its
    /// arguments, their templating): a registered failure is tested with `r.failed` or
    /// `r is failed`, which read that key.
    fn new(status: Status, mut result: Value) -> Self {
        if matches!(status, Status::Failed)
            && let Some(m) = result.as_object_mut()
        {
            m.entry("failed").or_insert(Value::Bool(true));
        }
        HostOutcome {
            status,
            ignored: false,
            result,
            includes: Vec::new(),
            unreachable_ignored: false,
            facts: None,
        }
    }
}

/// Runs `task` for host `h` of the batch, reports it, and returns the outcome.
pub(super) async fn run_on_host(
    b: &Batch<'_>,
    task: &Arc<Task>,
    h: usize,
    extra_magic: Vars,
) -> HostOutcome {
    let _permit = b.shared.forks.acquire().await;
    let host = b.hosts[h].clone();
    // Shared by the template context and the module, not copied.
    let vars = Arc::new(b.task_vars(task, &host, extra_magic));
    let ctx = vars::context(vars.clone(), &b.scope);
    let runner = Runner {
        b,
        task,
        host: &host.name,
        vars: &vars,
        ctx: &ctx,
    };
    let mut outcome = match &task.loop_ {
        Some(_) => runner.run_loop().await,
        None => match runner.check_when(&vars, &ctx) {
            Err(out) => out,
            Ok(false) => HostOutcome::new(
                Status::Skipped,
                skipped_result(&task.scope.when, &vars, &ctx, b),
            ),
            Ok(true) => runner.run_once_item(&vars, &ctx, None).await,
        },
    };
    runner.finish(&mut outcome);
    outcome
}

fn skipped_result(when: &[Cond], _vars: &Vars, ctx: &JValue, b: &Batch) -> Value {
    let false_cond = when
        .iter()
        .find(|c| {
            !b.shared
                .templar
                .eval_condition(&c.expr, ctx)
                .unwrap_or(false)
        })
        .map(|c| c.expr.clone())
        .unwrap_or_default();
    json!({"changed": false, "false_condition": false_cond, "skip_reason": "Conditional result was False", "skipped": true})
}

struct Runner<'a, 'b> {
    b: &'a Batch<'b>,
    task: &'a Arc<Task>,
    host: &'a str,
    vars: &'a Vars,
    ctx: &'a JValue,
}

impl Runner<'_, '_> {
    fn templar(&self) -> &crate::template::Templar {
        &self.b.shared.templar
    }

    /// Renders a keyword value (`ignore_errors: "{{ x }}"`) to a boolean.
    fn flag(&self, v: &Option<Value>, ctx: &JValue) -> bool {
        match v {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => self.templar().eval_condition(s, ctx).unwrap_or_else(|_| {
                matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1")
            }),
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0) != 0.0,
            Some(_) => false,
        }
    }

    fn text(&self, v: &Option<Value>, ctx: &JValue) -> Result<Option<String>, HostOutcome> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => self
                .templar()
                .render_str(s, ctx)
                .map(Some)
                .map_err(|e| self.template_failure(&e, s)),
            Some(other) => Ok(Some(py_str(other))),
        }
    }

    /// The failure for an undefined variable or a template error in the task's options.
    fn template_failure(&self, e: &TemplateError, src: &str) -> HostOutcome {
        let name = e
            .undefined
            .clone()
            .or_else(|| vars::undefined_name(src, self.vars));
        let loc = &self.task.loc;
        let what = match &name {
            Some(n) => format!(
                "The task includes an option with an undefined variable. The error was: '{n}' is undefined. '{n}' is undefined"
            ),
            None => format!("Error rendering template: {}", e.msg),
        };
        let msg = format!(
            "{what}\n\nThe error appears to be in '{}': line {}, column {}, but may\nbe elsewhere in the file depending on the exact syntax problem.\n",
            loc.file().display(),
            loc.line,
            loc.col
        );
        // `failed`/`changed` as Ansible registers them, so a task after an ignored failure
        // can test `r.failed`.
        HostOutcome::new(
            Status::Failed,
            json!({"changed": false, "failed": true, "msg": msg}),
        )
    }

    /// `when:` (all ANDed). An error is a failed task with Ansible's conditional message.
    fn check_when(&self, vars: &Vars, ctx: &JValue) -> Result<bool, HostOutcome> {
        self.conds(&self.task.scope.when, vars, ctx)
    }

    fn conds(&self, conds: &[Cond], vars: &Vars, ctx: &JValue) -> Result<bool, HostOutcome> {
        for c in conds {
            match self.templar().eval_condition(&c.expr, ctx) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    let why = match e
                        .undefined
                        .clone()
                        .or_else(|| vars::undefined_name(&c.expr, vars))
                    {
                        Some(n) => format!("'{n}' is undefined"),
                        None => e.msg,
                    };
                    let msg = format!(
                        "The conditional check '{}' failed. The error was: error while evaluating conditional ({}): {why}\n\nThe error appears to be in '{}': line {}, column {}, but may\nbe elsewhere in the file depending on the exact syntax problem.\n",
                        c.expr,
                        c.expr,
                        c.loc.file().display(),
                        c.loc.line,
                        c.loc.col
                    );
                    return Err(HostOutcome::new(Status::Failed, json!({"msg": msg})));
                }
            }
        }
        Ok(true)
    }

    /// One execution (a task without loop, or one loop item), with `until` retries.
    async fn run_once_item(&self, vars: &Vars, ctx: &JValue, label: Option<&str>) -> HostOutcome {
        let task = self.task;
        if matches!(task.action.as_str(), "include_tasks" | "include_role") {
            return self.include(vars, ctx, label);
        }
        let until = !task.until.is_empty();
        let retries = if until {
            self.number(&task.retries, ctx).unwrap_or(3.0) as u32
        } else {
            0
        };
        let delay = self.number(&task.delay, ctx).unwrap_or(5.0);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut out = self.execute(vars, ctx).await;
            if out.status == Status::Unreachable {
                return out;
            }
            if task.changed_when.is_empty() && task.failed_when.is_empty() && !until {
                return out;
            }
            // The conditions see the result through the registered name.
            let mut v = vars.clone();
            if let Some(reg) = &task.register {
                v.insert(reg.clone(), out.result.clone());
            }
            let v = Arc::new(v);
            let rctx = vars::context(v.clone(), &self.b.scope);
            if let Err(e) = self.post_conditions(&mut out, &v, &rctx) {
                return e;
            }
            if !until {
                return out;
            }
            match self.conds(&task.until, &v, &rctx) {
                Err(e) => return e,
                Ok(true) => {
                    if let Some(m) = out.result.as_object_mut() {
                        m.insert("attempts".into(), json!(attempt));
                    }
                    return out;
                }
                Ok(false) if attempt > retries => {
                    if let Some(m) = out.result.as_object_mut() {
                        // Ansible reports `retries` (one less than the runs made) when
                        // retries run out (task_executor: attempts = retries - 1).
                        m.insert("attempts".into(), json!(attempt - 1));
                        m.insert("failed".into(), json!(true));
                        m.entry("msg").or_insert(json!("Retries exhausted"));
                    }
                    out.status = Status::Failed;
                    return out;
                }
                Ok(false) => {
                    let host = self.host;
                    self.b.shared.output.notice(&format!(
                        "FAILED - RETRYING: [{host}]: {} ({} retries left).",
                        task.display_name(),
                        retries + 1 - attempt
                    ));
                    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                }
            }
        }
    }

    fn number(&self, v: &Option<Value>, ctx: &JValue) -> Option<f64> {
        match v.as_ref()? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => self.templar().render_str(s, ctx).ok()?.trim().parse().ok(),
            _ => None,
        }
    }

    /// `changed_when` / `failed_when`, evaluated with the registered variable set.
    fn post_conditions(
        &self,
        out: &mut HostOutcome,
        v: &Vars,
        ctx: &JValue,
    ) -> Result<(), HostOutcome> {
        let task = self.task;
        if out.status == Status::Skipped {
            return Ok(());
        }
        // A failed result keeps the module's own `changed` (a command that ran and exited
        // non-zero did change things): failed_when: false or ignore_errors counts it.
        let mut changed = out.status == Status::Changed
            || out.result.get("changed").and_then(Value::as_bool) == Some(true);
        let mut failed = out.status == Status::Failed;
        if !task.changed_when.is_empty() {
            changed = self.conds(&task.changed_when, v, ctx)?;
        }
        if !task.failed_when.is_empty() {
            failed = self.conds(&task.failed_when, v, ctx)?;
            if let Some(m) = out.result.as_object_mut() {
                m.insert("failed_when_result".into(), json!(failed));
            }
        }
        if let Some(m) = out.result.as_object_mut() {
            m.insert("changed".into(), json!(changed));
            m.insert("failed".into(), json!(failed));
        }
        out.status = if failed {
            Status::Failed
        } else if changed {
            Status::Changed
        } else {
            Status::Ok
        };
        Ok(())
    }

    /// Registers the result, reports it (censored for `no_log`), and records facts-free
    /// bookkeeping.
    fn finish(&self, out: &mut HostOutcome) {
        let ctx = self.ctx;
        let kw = &self.task.scope.kw;
        // As in Ansible 2.19, `ignore_errors` covers a task whose arguments failed to
        // template (an undefined variable) too.
        if out.status == Status::Failed && self.flag(&kw.ignore_errors, ctx) {
            out.ignored = true;
        }
        if out.status == Status::Unreachable && self.flag(&kw.ignore_unreachable, ctx) {
            out.unreachable_ignored = true;
        }
        // `no_log` hides a result from the output (see `emit`), not from the play: as in
        // Ansible, the registered variable holds the real result, so a task can read a
        // secret with `no_log` and a later one use it (written to a file, say).
        if let Some(reg) = &self.task.register {
            self.b
                .shared
                .store
                .set_fact(self.host, reg, out.result.clone());
        }
        // A loop's result is a summary of the item lines already printed; a loop whose
        // item list could not be built (`loop: 5`, an unsupported `with_*`) printed no
        // item line, so its failure is reported like any task's, with its message.
        let is_loop = self.task.loop_.is_some() && out.result.get("results").is_some();
        if !is_include(self.task) || out.status == Status::Failed {
            self.emit(out, self.ctx, None, is_loop);
        }
    }

    /// Reports a result; `ctx` is the task's, or the loop item's for an item's line (so
    /// `delegate_to: "{{ item }}"` names each item's delegate).
    fn emit(&self, out: &HostOutcome, ctx: &JValue, item: Option<String>, loop_summary: bool) {
        let delegate = self
            .task
            .scope
            .kw
            .delegate_to
            .as_ref()
            .and_then(|d| self.templar().render_str(&py_str(d), ctx).ok());
        let delegate_address = delegate.as_deref().and_then(|d| delegate_address(ctx, d));
        let mut result = if self.flag(&self.task.scope.kw.no_log, self.ctx) {
            json!({"censored": NO_LOG_MSG, "changed": out.status == Status::Changed})
        } else {
            out.result.clone()
        };
        let secrets = secret_values(self.vars);
        if !secrets.is_empty() {
            redact(&mut result, &secrets);
        }
        let item = item.map(|mut i| {
            for s in &secrets {
                i = i.replace(s.as_str(), "********");
            }
            i
        });
        self.b.shared.output.host_result(&HostResult {
            host: self.host.to_string(),
            delegate,
            delegate_address,
            task: self.b.banner_name(self.task),
            action: self.task.action.clone(),
            status: out.status,
            result,
            ignored: (out.ignored || out.unreachable_ignored) && item.is_none(),
            item,
            verbose_always: self.task.action == "debug",
            loop_summary,
        });
    }
}

/// Values of variables named like secrets (`*password*`, `*token*`, ...), which are
/// masked wherever they would appear in output, whatever the verbosity.
fn secret_values(vars: &Vars) -> Vec<String> {
    vars.iter()
        .filter(|(k, _)| crate::template::is_secret_name(k))
        .filter_map(|(_, v)| v.as_str())
        .filter(|v| v.len() >= 4 && !Templar::is_template(v))
        .map(str::to_string)
        .collect()
}

fn redact(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), "********");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, secrets)),
        Value::Object(m) => m.values_mut().for_each(|i| redact(i, secrets)),
        _ => {}
    }
}

/// Includes report through `included:` lines, not per-host results.
fn is_include(task: &Task) -> bool {
    matches!(task.action.as_str(), "include_tasks" | "include_role")
}

fn unreachable(e: &ConnError) -> HostOutcome {
    HostOutcome::new(
        Status::Unreachable,
        json!({"changed": false, "msg": e.to_string(), "unreachable": true}),
    )
}

/// The address Ansible shows after a delegate's name: its `ansible_host` (or
/// `ansible_ssh_host`) from `hostvars`, when set and not the name itself.
fn delegate_address(ctx: &JValue, delegate: &str) -> Option<String> {
    let vars = ctx.get_attr("hostvars").ok()?.get_attr(delegate).ok()?;
    ["ansible_host", "ansible_ssh_host"]
        .iter()
        .filter_map(|k| vars.get_attr(k).ok())
        .find_map(|v| v.as_str().map(str::to_string))
        .filter(|a| a != delegate)
}
