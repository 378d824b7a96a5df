//! The action itself: includes, the module call on the right connection (with become
//! and environment), facts, and connection settings from host variables.

use super::{HostOutcome, Included, OMIT, Runner, unreachable};
use crate::connection::Become;
use crate::executor::events::Status;
use crate::executor::play::GATHERING_FACTS;
use crate::executor::vars::Vars;
use crate::modules::commands::async_job::AsyncJob;
use crate::modules::control::add_host::Request as AddHostRequest;
use crate::modules::{ModuleCtx, ModuleError};
use crate::playbook::{Task, TaskItem, expand_include_role, expand_include_tasks};
use crate::template::pyjson::py_str;
use minijinja::Value as JValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

impl Runner<'_, '_> {
    pub(super) fn include(&self, vars: &Vars, ctx: &JValue, label: Option<&str>) -> HostOutcome {
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
        let shown;
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
            shown = args.get("name").or_else(|| args.get("role")).map(py_str);
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
    pub(super) async fn execute(&self, vars: &Vars, ctx: &JValue) -> HostOutcome {
        let task = self.task;
        let shared = &self.b.shared;
        if task.name.as_deref() == Some(GATHERING_FACTS) && shared.store.has_facts(self.host) {
            // Facts are gathered once per run; later plays reuse them.
            return HostOutcome::new(Status::Ok, json!({"changed": false}));
        }
        let Some(module) = shared.registry.get(&task.action) else {
            if crate::playbook::not_implemented(&task.action) {
                let msg = format!(
                    "module '{}' is part of Ansible but not implemented by this engine; \
                     the README lists the modules it has (a task for another platform can \
                     stay in the role: it fails only when it runs)",
                    task.action
                );
                return HostOutcome::new(Status::Failed, json!({"msg": msg}));
            }
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
        let conn = if module.waits_for_connection() {
            shared.conns.lazy(&spec)
        } else {
            match shared.conns.get(&spec).await {
                Ok(c) => c,
                Err(e) => return unreachable(&e),
            }
        };
        let become_ = self.become_(vars, ctx);
        let env = match self.environment(ctx) {
            Ok(e) => e,
            Err(out) => return out,
        };
        let search = self.b.search_paths(task);
        let async_secs = self.number(&task.async_, ctx).filter(|s| *s > 0.0);
        if async_secs.is_some() && check {
            return HostOutcome::new(
                Status::Failed,
                json!({"msg": "check mode and async cannot be used on same task."}),
            );
        }
        let poll = self.number(&task.poll, ctx).unwrap_or(15.0);
        let background = async_secs
            .filter(|_| poll <= 0.0)
            .map(|s| AsyncJob::new(s.ceil() as u64));
        let mctx = ModuleCtx {
            host: self.host,
            conn,
            conn_spec: &spec,
            check_mode: check,
            diff,
            become_,
            env,
            vars,
            context: ctx,
            templar: &shared.templar,
            search_paths: &search,
            async_job: background.clone(),
            jobs: &shared.jobs,
        };
        // `async` with `poll` > 0 waits for the end: the async limit is the task's timeout.
        let keyword_timeout = self.number(&kw.timeout, ctx).filter(|t| *t > 0.0);
        let async_timeout = async_secs.filter(|_| background.is_none());
        let timeout = match (keyword_timeout, async_timeout) {
            (Some(k), Some(a)) => Some(k.min(a)),
            (k, a) => k.or(a),
        };
        let run = module.run(&mctx, &args);
        let res = match timeout {
            Some(t) => match tokio::time::timeout(Duration::from_secs_f64(t), run).await {
                Ok(r) => r,
                Err(_) if async_timeout == Some(t) => Err(ModuleError::Failed(format!(
                    "async task did not complete within the requested time - {t}s"
                ))),
                Err(_) => Err(ModuleError::Failed(format!(
                    "The {} action failed to execute in the expected time frame ({t}) and was terminated",
                    task.action
                ))),
            },
            None => run.await,
        };
        match res {
            Ok(r) => {
                let r = match (&background, async_secs) {
                    (Some(job), _) if !r.data.contains_key("ansible_job_id") => {
                        // The module cannot run in the background: it has finished; keep
                        // its result for `async_status`, and say the job started.
                        let mut done = r.to_json();
                        if let Some(m) = done.as_object_mut() {
                            m.insert("ansible_job_id".into(), json!(job.jid));
                            m.insert("started".into(), json!(true));
                            m.insert("finished".into(), json!(true));
                        }
                        shared.jobs.finish(&job.jid, done);
                        job.started("")
                    }
                    (None, Some(_)) => {
                        let job = AsyncJob::new(0);
                        r.with("ansible_job_id", job.jid)
                            .with("started", true)
                            .with("finished", true)
                    }
                    _ => r,
                };
                self.store_facts(&task.action, r.facts.as_ref(), delegate.as_deref(), ctx);
                let mut result = r.to_json();
                if (module.runs_on_controller() || task.action == "debug")
                    && let Some(m) = result.as_object_mut()
                {
                    m.remove("ansible_facts");
                }
                if let (Some(d), true, Some(m)) = (&r.diff, diff, result.as_object_mut()) {
                    let shown = match &d.prepared {
                        Some(p) => json!({"prepared": p}),
                        None => json!({"before": d.before, "after": d.after,
                               "before_header": d.before_header, "after_header": d.after_header}),
                    };
                    m.insert("diff".into(), shown);
                }
                let mut r = r;
                if task.action == "add_host"
                    && !r.failed
                    && let Some(req) = AddHostRequest::from_result(&result)
                {
                    match self.b.shared.add_host(&req) {
                        Ok(changed) => r.changed = changed,
                        Err(e) => {
                            r.failed = true;
                            r.msg = Some(format!("add_host: {e}"));
                        }
                    }
                    if let Some(m) = result.as_object_mut() {
                        m.insert("changed".into(), Value::Bool(r.changed));
                        m.insert("failed".into(), Value::Bool(r.failed));
                        if let Some(msg) = &r.msg {
                            m.insert("msg".into(), Value::String(msg.clone()));
                        }
                    }
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
                let mut out = HostOutcome::new(status, result);
                if matches!(task.action.as_str(), "set_fact" | "include_vars") {
                    out.facts = r.facts.clone().map(|f| Box::new((task.action.clone(), f)));
                }
                out
            }
            Err(ModuleError::Conn(e)) if e.is_unreachable() => unreachable(&e),
            Err(e) => HostOutcome::new(
                Status::Failed,
                json!({"changed": false, "msg": e.to_string()}),
            ),
        }
    }

    pub(super) fn store_facts(
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
        store_facts_on(&self.b.shared.store, target, action, facts);
    }

    /// `become` from keywords, `ansible_become*` variables, then the command line.
    pub(super) fn become_(&self, vars: &Vars, ctx: &JValue) -> Option<Become> {
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

    pub(super) fn environment(&self, ctx: &JValue) -> Result<Vec<(String, String)>, HostOutcome> {
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
        arg_locs: t.arg_locs.clone(),
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
        async_: t.async_.clone(),
        poll: t.poll.clone(),
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

/// Puts the facts a module returned into `host`'s layer for `action` (`set_fact`,
/// `include_vars`, or gathered facts for everything else).
pub(in crate::executor) fn store_facts_on(
    store: &crate::executor::vars::HostStore,
    host: &str,
    action: &str,
    facts: &Map<String, Value>,
) {
    store.update(host, |d| {
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
