//! One task on one host: `when`, loops, the module call with `until` retries,
//! `changed_when`/`failed_when`, `register`, facts, and the result events.

use std::sync::Arc;
use std::time::Duration;

use minijinja::Value as JValue;
use serde_json::{Map, Value, json};

use super::events::{HostResult, Status};
use super::play::Batch;
use super::vars::{self, Vars};
use crate::connection::{Become, ConnError, ConnectionSpec};
use crate::modules::{ModuleCtx, ModuleError};
use crate::output::pyjson::py_str;
use crate::playbook::{Cond, LoopKind, Task, TaskItem, expand_include_role, expand_include_tasks};
use crate::template::TemplateError;

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
}

impl HostOutcome {
    fn new(status: Status, result: Value) -> Self {
        HostOutcome {
            status,
            ignored: false,
            result,
            includes: Vec::new(),
            unreachable_ignored: false,
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
    let vars = b.task_vars(task, &host, extra_magic);
    let ctx = vars::context(&vars, &b.scope);
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
        let detail = match &name {
            Some(n) => format!("'{n}' is undefined. '{n}' is undefined"),
            None => e.msg.clone(),
        };
        let msg = format!(
            "The task includes an option with an undefined variable. The error was: {detail}\n\nThe error appears to be in '{}': line {}, column {}, but may\nbe elsewhere in the file depending on the exact syntax problem.\n",
            loc.file().display(),
            loc.line,
            loc.col
        );
        let mut out = HostOutcome::new(Status::Failed, json!({"msg": msg}));
        out.ignored = false;
        out
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

    async fn run_loop(&self) -> HostOutcome {
        let items = match self.loop_items() {
            Ok(items) => items,
            Err(out) => return out,
        };
        let lc = &self.task.loop_control;
        let loop_var = lc.loop_var.clone().unwrap_or_else(|| "item".into());
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped) = (false, false, true);
        let mut includes = Vec::new();
        let n = items.len();
        for (i, item) in items.iter().enumerate() {
            if i > 0
                && let Some(p) = lc.pause
            {
                tokio::time::sleep(Duration::from_secs_f64(p)).await;
            }
            let mut v = self.vars.clone();
            v.insert(loop_var.clone(), item.clone());
            v.insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
            if let Some(iv) = &lc.index_var {
                v.insert(iv.clone(), json!(i));
            }
            if lc.extended {
                v.insert(
                    "ansible_loop".into(),
                    json!({"index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == n, "length": n,
                           "revindex": n - i, "revindex0": n - i - 1, "allitems": items,
                           "previtem": if i > 0 { items[i - 1].clone() } else { Value::Null },
                           "nextitem": items.get(i + 1).cloned().unwrap_or(Value::Null)}),
                );
            }
            let ctx = vars::context(&v, &self.b.scope);
            let label = match &lc.label {
                Some(l) => self
                    .templar()
                    .render_value(l, &ctx)
                    .map(|x| py_str(&x))
                    .unwrap_or_else(|_| py_str(item)),
                None => py_str(item),
            };
            let mut out = match self.check_when(&v, &ctx) {
                Err(out) => out,
                Ok(false) => HostOutcome::new(
                    Status::Skipped,
                    skipped_result(&self.task.scope.when, &v, &ctx, self.b),
                ),
                Ok(true) => self.run_once_item(&v, &ctx, Some(&label)).await,
            };
            if let Some(m) = out.result.as_object_mut() {
                m.insert(loop_var.clone(), item.clone());
                m.insert("ansible_loop_var".into(), Value::String(loop_var.clone()));
                if let Some(iv) = &lc.index_var {
                    m.insert(iv.clone(), json!(i));
                    m.insert("ansible_index_var".into(), Value::String(iv.clone()));
                }
            }
            any_changed |= out.status == Status::Changed;
            any_failed |= matches!(out.status, Status::Failed | Status::Unreachable);
            all_skipped &= out.status == Status::Skipped;
            includes.append(&mut out.includes);
            if !is_include(self.task) || out.status == Status::Failed {
                self.emit(&out, Some(label), false);
            }
            results.push(out.result);
        }
        let status = if any_failed {
            Status::Failed
        } else if n > 0 && all_skipped {
            Status::Skipped
        } else if any_changed {
            Status::Changed
        } else {
            Status::Ok
        };
        let mut result = json!({"changed": any_changed, "results": results});
        let m = result.as_object_mut().expect("object literal");
        if any_failed {
            m.insert("failed".into(), json!(true));
            m.insert("msg".into(), json!("One or more items failed"));
        } else if n > 0 && all_skipped {
            m.insert("skipped".into(), json!(true));
            m.insert("msg".into(), json!("All items skipped"));
        } else {
            m.insert("msg".into(), json!("All items completed"));
        }
        let mut out = HostOutcome::new(status, result);
        out.includes = includes;
        out
    }

    /// The list a loop iterates over, as each `with_*` lookup builds it.
    fn loop_items(&self) -> Result<Vec<Value>, HostOutcome> {
        let spec = self.task.loop_.as_ref().expect("called for loops");
        let rendered = self
            .templar()
            .render_value(&spec.value, self.ctx)
            .map_err(|e| self.template_failure(&e, &spec.value.to_string()))?;
        let bad = |what: &str, got: &Value| {
            HostOutcome::new(
                Status::Failed,
                json!({"msg": format!("Invalid data passed to '{what}', it requires a list, got this instead: {}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup.", py_str(got))}),
            )
        };
        match &spec.kind {
            LoopKind::Loop | LoopKind::List => match rendered {
                Value::Array(a) => Ok(a),
                other => Err(bad("loop", &other)),
            },
            LoopKind::Items => match rendered {
                Value::Array(a) => Ok(a
                    .into_iter()
                    .flat_map(|x| match x {
                        Value::Array(inner) => inner,
                        other => vec![other],
                    })
                    .collect()),
                Value::Null => Ok(Vec::new()),
                other => Ok(vec![other]),
            },
            LoopKind::Dict => match rendered {
                Value::Object(m) => Ok(m
                    .into_iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect()),
                other => Err(HostOutcome::new(
                    Status::Failed,
                    json!({"msg": format!("with_dict expects a dict, got {}", py_str(&other))}),
                )),
            },
            LoopKind::Fileglob => {
                let pats = match rendered {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                let base = self
                    .task
                    .loc
                    .file()
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default();
                let mut out = Vec::new();
                for p in pats {
                    let pat = py_str(&p);
                    let full = if pat.starts_with('/') {
                        pat
                    } else {
                        base.join("files").join(&pat).display().to_string()
                    };
                    let matcher = globset::Glob::new(&full).map(|g| g.compile_matcher());
                    let dir = std::path::Path::new(&full)
                        .parent()
                        .map(|d| d.to_path_buf())
                        .unwrap_or_default();
                    if let (Ok(m), Ok(rd)) = (matcher, std::fs::read_dir(&dir)) {
                        let mut found: Vec<String> = rd
                            .filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.is_file() && m.is_match(p))
                            .map(|p| p.display().to_string())
                            .collect();
                        found.sort();
                        out.extend(found.into_iter().map(Value::String));
                    }
                }
                Ok(out)
            }
            LoopKind::Lookup(name) => Err(HostOutcome::new(
                Status::Failed,
                json!({"msg": format!("'with_{name}' is not supported; use 'loop:' with a filter or lookup")}),
            )),
        }
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
            let mut v = vars.clone();
            if let Some(reg) = &task.register {
                v.insert(reg.clone(), out.result.clone());
            }
            // Conditions also see the result's keys through the registered name only.
            let rctx = vars::context(&v, &self.b.scope);
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
                        m.insert("attempts".into(), json!(attempt));
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
        let mut changed = out.status == Status::Changed;
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

    fn include(&self, vars: &Vars, ctx: &JValue, label: Option<&str>) -> HostOutcome {
        let task = self.task;
        let args = match self
            .templar()
            .render_value(&Value::Object(task.args.clone()), ctx)
        {
            Ok(Value::Object(m)) => m,
            Ok(_) => Map::new(),
            Err(e) => {
                return self.template_failure(&e, &Value::Object(task.args.clone()).to_string());
            }
        };
        let rendered = Task {
            args: args.clone(),
            ..clone_task(task)
        };
        let loader = &self.b.shared.loader;
        let mut shown = None;
        let items = if task.action == "include_tasks" {
            let file = args
                .get("file")
                .or_else(|| args.get("_raw_params"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let full = crate::playbook::relative_path(&task.loc, file);
            shown = Some(
                std::path::absolute(&full)
                    .unwrap_or(full)
                    .display()
                    .to_string(),
            );
            expand_include_tasks(&rendered, file, loader)
        } else {
            expand_include_role(&rendered, loader)
        };
        match items {
            Ok(items) => {
                let key = format!(
                    "{}{}",
                    Value::Object(args),
                    vars.get(task.loop_control.loop_var.as_deref().unwrap_or("item"))
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                );
                // Loop variables must stay visible to the included tasks.
                let mut items = items;
                if task.loop_.is_some() {
                    items = with_loop_vars(items, vars, task);
                }
                let mut out =
                    HostOutcome::new(Status::Ok, json!({"changed": false, "include": key}));
                out.includes.push(Included {
                    key,
                    file: shown,
                    label: label.map(str::to_string),
                    items,
                });
                out
            }
            Err(e) => HostOutcome::new(Status::Failed, json!({"msg": e.msg})),
        }
    }

    /// Renders the arguments, finds the connection and runs the module.
    async fn execute(&self, vars: &Vars, ctx: &JValue) -> HostOutcome {
        let task = self.task;
        let shared = &self.b.shared;
        let Some(module) = shared.registry.get(&task.action) else {
            let mut msg = format!("couldn't resolve module/action '{}'", task.action);
            if let Some(s) = shared.registry.suggest(&task.action) {
                msg.push_str(&format!(". Did you mean '{s}'?"));
            }
            return HostOutcome::new(Status::Failed, json!({"msg": msg}));
        };
        let args = match self
            .templar()
            .render_value(&Value::Object(task.args.clone()), ctx)
        {
            Ok(Value::Object(mut m)) => {
                strip_omit(&mut m);
                m
            }
            Ok(_) => Map::new(),
            Err(e) => {
                return self.template_failure(&e, &Value::Object(task.args.clone()).to_string());
            }
        };
        let kw = &task.scope.kw;
        let check = match &kw.check_mode {
            Some(v) => self.flag(&Some(v.clone()), ctx),
            None => shared.opts.check,
        };
        let diff = match &kw.diff {
            Some(v) => self.flag(&Some(v.clone()), ctx),
            None => shared.opts.diff,
        };
        if check && !module.supports_check_mode() {
            return HostOutcome::new(
                Status::Skipped,
                json!({"changed": false, "msg": "skipped, running in check mode", "skipped": true}),
            );
        }
        let delegate = match self.text(&kw.delegate_to, ctx) {
            Ok(d) => d,
            Err(out) => return out,
        };
        let spec = match self.b.connection_spec(
            self.host,
            delegate.as_deref(),
            vars,
            task,
            ctx,
            module.runs_on_controller(),
        ) {
            Ok(s) => s,
            Err(msg) => return HostOutcome::new(Status::Failed, json!({"msg": msg})),
        };
        let conn = match shared.conns.get(&spec).await {
            Ok(c) => c,
            Err(e) => return unreachable(&e),
        };
        let become_ = self.become_(vars, ctx);
        let env = match self.environment(ctx) {
            Ok(e) => e,
            Err(out) => return out,
        };
        let search = self.b.search_paths(task);
        let vars = &vars::resolved(vars, ctx, self.templar());
        let mctx = ModuleCtx {
            host: self.host,
            conn,
            conn_spec: &spec,
            check_mode: check,
            diff,
            become_,
            env,
            vars,
            templar: &shared.templar,
            search_paths: &search,
        };
        let timeout = self.number(&kw.timeout, ctx).filter(|t| *t > 0.0);
        let run = module.run(&mctx, &args);
        let res = match timeout {
            Some(t) => match tokio::time::timeout(Duration::from_secs_f64(t), run).await {
                Ok(r) => r,
                Err(_) => Err(ModuleError::Failed(format!(
                    "The {} action failed to execute in the expected time frame ({t}) and was terminated",
                    task.action
                ))),
            },
            None => run.await,
        };
        match res {
            Ok(r) => {
                self.store_facts(&task.action, r.facts.as_ref(), delegate.as_deref(), ctx);
                let mut result = r.to_json();
                if module.runs_on_controller() || task.action == "debug" {
                    if let Some(m) = result.as_object_mut() {
                        m.remove("ansible_facts");
                    }
                }
                if r.diff.is_some() && diff {
                    // Diff display is left to -v output for now; the data is in the result.
                }
                let status = if r.failed {
                    Status::Failed
                } else if r.skipped {
                    Status::Skipped
                } else if r.changed {
                    Status::Changed
                } else {
                    Status::Ok
                };
                HostOutcome::new(status, result)
            }
            Err(ModuleError::Conn(e)) if e.is_unreachable() => unreachable(&e),
            Err(e) => HostOutcome::new(
                Status::Failed,
                json!({"changed": false, "msg": e.to_string()}),
            ),
        }
    }

    fn store_facts(
        &self,
        action: &str,
        facts: Option<&Map<String, Value>>,
        delegate: Option<&str>,
        ctx: &JValue,
    ) {
        let Some(facts) = facts else { return };
        let target = match delegate {
            Some(d) if self.flag(&self.task.scope.kw.delegate_facts, ctx) => d,
            _ => self.host,
        };
        let store = &self.b.shared.store;
        store.update(target, |d| {
            let layer = match action {
                "set_fact" => &mut d.set_facts,
                "include_vars" => &mut d.include_vars,
                _ => &mut d.facts,
            };
            let m = Arc::make_mut(layer);
            for (k, v) in facts {
                m.insert(k.clone(), v.clone());
            }
        });
    }

    /// `become` from keywords, `ansible_become*` variables, then the command line.
    fn become_(&self, vars: &Vars, ctx: &JValue) -> Option<Become> {
        let kw = &self.task.scope.kw;
        let on = match (&kw.become_, vars.get("ansible_become")) {
            (_, Some(v)) => self.flag(&Some(v.clone()), ctx),
            (Some(v), None) => self.flag(&Some(v.clone()), ctx),
            (None, None) => self.b.shared.opts.become_,
        };
        if !on {
            return None;
        }
        let var = |k: &str| vars.get(k).map(py_str);
        let user = var("ansible_become_user")
            .or_else(|| self.text(&kw.become_user, ctx).ok().flatten())
            .or_else(|| self.b.shared.opts.become_user.clone())
            .unwrap_or_else(|| "root".into());
        let method = var("ansible_become_method")
            .or_else(|| self.text(&kw.become_method, ctx).ok().flatten())
            .unwrap_or_else(|| "sudo".into());
        Some(Become {
            user,
            method,
            password: var("ansible_become_password").or_else(|| var("ansible_become_pass")),
        })
    }

    fn environment(&self, ctx: &JValue) -> Result<Vec<(String, String)>, HostOutcome> {
        let mut env: Vec<(String, String)> = Vec::new();
        for e in &self.task.scope.kw.environment {
            let rendered = self
                .templar()
                .render_value(e, ctx)
                .map_err(|err| self.template_failure(&err, &e.to_string()))?;
            if let Value::Object(m) = rendered {
                for (k, v) in m {
                    env.retain(|(x, _)| x != &k);
                    env.push((k, py_str(&v)));
                }
            }
        }
        Ok(env)
    }

    /// Censors `no_log` results, reports, and records facts-free bookkeeping.
    fn finish(&self, out: &mut HostOutcome) {
        let ctx = self.ctx;
        let kw = &self.task.scope.kw;
        if out.status == Status::Failed
            && self.flag(&kw.ignore_errors, ctx)
            && !is_template_failure(&out.result)
        {
            out.ignored = true;
        }
        if out.status == Status::Unreachable && self.flag(&kw.ignore_unreachable, ctx) {
            out.unreachable_ignored = true;
        }
        if self.flag(&kw.no_log, ctx) {
            out.result = json!({"censored": NO_LOG_MSG, "changed": out.status == Status::Changed});
        }
        if let Some(reg) = &self.task.register {
            self.b
                .shared
                .store
                .set_fact(self.host, reg, out.result.clone());
        }
        let is_loop = self.task.loop_.is_some();
        if !is_include(self.task) || out.status == Status::Failed {
            self.emit(out, None, is_loop);
        }
    }

    fn emit(&self, out: &HostOutcome, item: Option<String>, loop_summary: bool) {
        let delegate = self
            .task
            .scope
            .kw
            .delegate_to
            .as_ref()
            .and_then(|d| self.templar().render_str(&py_str(d), self.ctx).ok());
        let result = if self.flag(&self.task.scope.kw.no_log, self.ctx) {
            json!({"censored": NO_LOG_MSG, "changed": out.status == Status::Changed})
        } else {
            out.result.clone()
        };
        self.b.shared.output.host_result(&HostResult {
            host: self.host.to_string(),
            delegate,
            task: self.task.display_name(),
            action: self.task.action.clone(),
            status: out.status,
            result,
            ignored: out.ignored && item.is_none(),
            item,
            verbose_always: self.task.action == "debug",
            loop_summary,
        });
    }
}

/// Includes report through `included:` lines, not per-host results.
fn is_include(task: &Task) -> bool {
    matches!(task.action.as_str(), "include_tasks" | "include_role")
}

fn is_template_failure(v: &Value) -> bool {
    v.get("msg")
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("The task includes an option with an undefined variable"))
}

fn unreachable(e: &ConnError) -> HostOutcome {
    HostOutcome::new(
        Status::Unreachable,
        json!({"changed": false, "msg": e.to_string(), "unreachable": true}),
    )
}

/// Drops arguments set to `omit`, at any depth.
fn strip_omit(m: &mut Map<String, Value>) {
    m.retain(|_, v| v.as_str() != Some(OMIT));
    for v in m.values_mut() {
        if let Value::Object(inner) = v {
            strip_omit(inner);
        }
    }
}

fn clone_task(t: &Task) -> Task {
    Task {
        name: t.name.clone(),
        action: t.action.clone(),
        args: t.args.clone(),
        loc: t.loc.clone(),
        scope: t.scope.clone(),
        parent_scope: t.parent_scope.clone(),
        vars: t.vars.clone(),
        loop_: t.loop_.clone(),
        loop_control: t.loop_control.clone(),
        register: t.register.clone(),
        notify: t.notify.clone(),
        listen: t.listen.clone(),
        changed_when: t.changed_when.clone(),
        failed_when: t.failed_when.clone(),
        until: t.until.clone(),
        retries: t.retries.clone(),
        delay: t.delay.clone(),
    }
}

/// Included tasks of a looped include see the loop variable as an include parameter.
fn with_loop_vars(items: Vec<TaskItem>, vars: &Vars, task: &Task) -> Vec<TaskItem> {
    let lv = task
        .loop_control
        .loop_var
        .clone()
        .unwrap_or_else(|| "item".into());
    let mut params = Map::new();
    for k in [lv.as_str(), "ansible_loop_var", "ansible_loop"] {
        if let Some(v) = vars.get(k) {
            params.insert(k.to_string(), v.clone());
        }
    }
    if let Some(iv) = &task.loop_control.index_var
        && let Some(v) = vars.get(iv)
    {
        params.insert(iv.clone(), v.clone());
    }
    let params = Arc::new(params);
    items.into_iter().map(|i| add_vars(i, &params)).collect()
}

fn add_vars(item: TaskItem, params: &Arc<Map<String, Value>>) -> TaskItem {
    match item {
        TaskItem::Task(t) => {
            let mut nt = clone_task(&t);
            nt.scope.vars.push(params.clone());
            TaskItem::Task(Arc::new(nt))
        }
        TaskItem::Block(b) => TaskItem::Block(Arc::new(crate::playbook::Block {
            name: b.name.clone(),
            loc: b.loc.clone(),
            block: b
                .block
                .iter()
                .cloned()
                .map(|i| add_vars(i, params))
                .collect(),
            rescue: b
                .rescue
                .iter()
                .cloned()
                .map(|i| add_vars(i, params))
                .collect(),
            always: b
                .always
                .iter()
                .cloned()
                .map(|i| add_vars(i, params))
                .collect(),
        })),
    }
}

/// Connection settings for a host from its variables, keywords and the command line.
pub(super) fn spec_from_vars(
    name: &str,
    vars: &Vars,
    remote_user: Option<String>,
    opts: &super::RunOptions,
) -> ConnectionSpec {
    let var = |k: &str| vars.get(k).map(py_str).filter(|s| !s.is_empty());
    let kind = match var("ansible_connection")
        .or_else(|| opts.connection.clone())
        .as_deref()
    {
        Some("local") => crate::connection::ConnectionKind::Local,
        _ if name == "localhost" && var("ansible_host").is_none() => {
            crate::connection::ConnectionKind::Local
        }
        _ => crate::connection::ConnectionKind::Ssh,
    };
    let mut identity_files = Vec::new();
    if let Some(k) = var("ansible_ssh_private_key_file").or_else(|| var("ansible_private_key_file"))
    {
        identity_files.push(std::path::PathBuf::from(k));
    }
    if let Some(k) = &opts.private_key {
        identity_files.push(k.clone());
    }
    ConnectionSpec {
        name: name.to_string(),
        kind,
        address: var("ansible_host").unwrap_or_else(|| name.to_string()),
        port: var("ansible_port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(22),
        user: var("ansible_user")
            .or(remote_user)
            .or_else(|| opts.user.clone())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into()),
        identity_files,
        jump: None,
        host_key_policy: opts.host_key_policy,
        known_hosts_files: opts.known_hosts_files.clone(),
        connect_timeout: opts.connect_timeout,
        connect_retries: 3,
    }
}
