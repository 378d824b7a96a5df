//! A play: its hosts, `serial` batches, sections and handlers, blocks with
//! rescue/always, and the linear and free strategies.
//!
//! Both strategies share one walker ([`Batch::run_items`]) over a set of hosts: linear
//! walks the batch's hosts together (each task runs on all of them, concurrently, then the
//! next task starts), free walks each host alone, concurrently with the others. Block
//! semantics fall out of the walker: hosts that fail inside `block` go to `rescue` once
//! the others are done with `block`, and every host that entered runs `always`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, join_all};
use minijinja::Value as JValue;
use serde_json::{Map, Value, json};

use super::events::Status;
use super::hosts::{Host, Inventory};
use super::task::{self, HostOutcome, Included, OMIT};
use super::vars::{self, PlayScope, TaskLayers, Vars};
use super::{RunOptions, Shared, tags};
use crate::connection::ConnectionSpec;
use crate::output::pyjson::py_str;
use crate::playbook::{HostOrder, Play, Playbook, SerialStep, Strategy, Task, TaskItem};
use crate::template::Templar;

/// Where a host stands in the current batch.
#[derive(Default)]
struct HostRun {
    failed: bool,
    /// Failed inside a block that has a `rescue` (here or further out).
    pending_rescue: bool,
    unreachable: bool,
    ended: bool,
    /// Indices into `play.handlers` this host has been notified for.
    notified: HashSet<usize>,
}

/// One `serial` batch of a play.
pub(super) struct Batch<'a> {
    pub shared: &'a Arc<Shared>,
    pub play: &'a Play,
    pub book_dir: PathBuf,
    pub scope: Arc<PlayScope>,
    pub hosts: Vec<Arc<Host>>,
    state: Vec<Mutex<HostRun>>,
    banners: Mutex<HashSet<usize>>,
    /// `meta: end_play`, `any_errors_fatal` or `max_fail_percentage` stopped the play.
    end_play: AtomicBool,
}

/// Runs one play of `book`. An `Err` is a run-stopping error (bad `vars_files`).
pub(super) async fn run_play(
    shared: &Arc<Shared>,
    book: &Playbook,
    play: &Play,
) -> Result<(), String> {
    let t = &shared.templar;
    let mut base = (*play.vars).clone();
    base.extend(shared.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let ctx = Templar::context(&base);
    let pattern = t
        .render_str(&play.hosts, &ctx)
        .map_err(|e| format!("{}: hosts: {}", play.loc, e.msg))?;
    let name = t
        .render_str(&play.name, &ctx)
        .unwrap_or_else(|_| play.name.clone());
    let mut hosts = select(&shared.inventory, &pattern, &shared.opts);
    order_hosts(&mut hosts, play.order);
    let check = match &play.kw.check_mode {
        Some(Value::Bool(b)) => *b,
        _ => shared.opts.check,
    };
    if hosts.is_empty() {
        shared.output.play_start(&name, check);
        shared.output.warning(&format!(
            "Could not match supplied host pattern, ignoring: {pattern}"
        ));
        shared.output.notice("skipping: no hosts matched");
        return Ok(());
    }
    let vars_files = Arc::new(load_vars_files(play, &base, t)?);
    let all_names: Vec<Value> = hosts
        .iter()
        .map(|h| Value::String(h.name.clone()))
        .collect();
    let mut inventory_hosts: HashMap<String, Arc<Host>> = shared
        .inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.clone()))
        .collect();
    for h in &hosts {
        inventory_hosts
            .entry(h.name.clone())
            .or_insert_with(|| h.clone());
    }
    let groups = shared.inventory.groups_value();
    for batch_hosts in batches(&hosts, &play.serial) {
        // Ansible prints the play banner again for every `serial` batch.
        shared.output.play_start(&name, check);
        let batch_names: Vec<Value> = batch_hosts
            .iter()
            .map(|h| Value::String(h.name.clone()))
            .collect();
        let mut magic = Map::new();
        magic.insert("groups".into(), groups.clone());
        magic.insert("play_hosts".into(), Value::Array(batch_names.clone()));
        magic.insert("ansible_play_hosts".into(), Value::Array(all_names.clone()));
        magic.insert(
            "ansible_play_hosts_all".into(),
            Value::Array(all_names.clone()),
        );
        magic.insert("ansible_play_batch".into(), Value::Array(batch_names));
        magic.insert("ansible_play_name".into(), Value::String(name.clone()));
        magic.insert(
            "playbook_dir".into(),
            Value::String(abs(book.dir()).display().to_string()),
        );
        magic.insert("ansible_check_mode".into(), Value::Bool(check));
        magic.insert("ansible_diff_mode".into(), Value::Bool(shared.opts.diff));
        magic.insert("ansible_verbosity".into(), json!(shared.opts.verbosity));
        magic.insert(
            "ansible_run_tags".into(),
            json!(if shared.opts.tags.is_empty() {
                vec!["all".to_string()]
            } else {
                shared.opts.tags.clone()
            }),
        );
        magic.insert("ansible_skip_tags".into(), json!(shared.opts.skip_tags));
        magic.insert("omit".into(), Value::String(OMIT.into()));
        let scope = Arc::new(PlayScope {
            templar: shared.templar.clone(),
            play_vars: play.vars.clone(),
            vars_files: vars_files.clone(),
            extra: shared.extra.clone(),
            magic,
            hosts: inventory_hosts.clone(),
            store: shared.store.clone(),
        });
        let batch = Batch {
            shared,
            play,
            book_dir: abs(book.dir()),
            scope,
            state: batch_hosts
                .iter()
                .map(|_| Mutex::new(HostRun::default()))
                .collect(),
            hosts: batch_hosts,
            banners: Mutex::new(HashSet::new()),
            end_play: AtomicBool::new(false),
        };
        batch.run().await;
        if batch.end_play.load(Ordering::Relaxed) || shared.stopped() {
            break;
        }
        let all_failed = (0..batch.hosts.len()).all(|h| {
            let s = batch.lock(h);
            s.failed || s.unreachable
        });
        if all_failed {
            break;
        }
    }
    Ok(())
}

fn abs(p: &std::path::Path) -> PathBuf {
    std::path::absolute(if p.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        p
    })
    .unwrap_or_else(|_| p.to_path_buf())
}

fn select(inv: &Inventory, pattern: &str, opts: &RunOptions) -> Vec<Arc<Host>> {
    let mut hosts = inv.select(pattern);
    if let Some(limit) = &opts.limit {
        let keep: HashSet<String> = inv
            .select(limit)
            .into_iter()
            .map(|h| h.name.clone())
            .collect();
        hosts.retain(|h| keep.contains(&h.name));
    }
    hosts
}

fn order_hosts(hosts: &mut [Arc<Host>], order: HostOrder) {
    match order {
        HostOrder::Inventory => {}
        HostOrder::ReverseInventory => hosts.reverse(),
        HostOrder::Sorted => hosts.sort_by(|a, b| a.name.cmp(&b.name)),
        HostOrder::ReverseSorted => hosts.sort_by(|a, b| b.name.cmp(&a.name)),
        HostOrder::Shuffle => {
            use rand::seq::SliceRandom;
            hosts.shuffle(&mut rand::rng());
        }
    }
}

/// Splits hosts into `serial` batches; the last step repeats, every batch has ≥ 1 host.
fn batches(hosts: &[Arc<Host>], serial: &[SerialStep]) -> Vec<Vec<Arc<Host>>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let total = hosts.len();
    let mut out = Vec::new();
    let mut i = 0;
    let mut step = 0;
    while i < total {
        let size = match &serial[step.min(serial.len() - 1)] {
            SerialStep::Count(0) => total,
            SerialStep::Count(n) => *n,
            SerialStep::Percent(p) => ((total as f64) * p / 100.0) as usize,
        }
        .max(1);
        let end = (i + size).min(total);
        out.push(hosts[i..end].to_vec());
        i = end;
        step += 1;
    }
    out
}

/// `vars_files`: each entry templated with play and extra vars; a list entry takes the
/// first file that exists.
fn load_vars_files(play: &Play, base: &Vars, t: &Templar) -> Result<Vars, String> {
    let ctx = Templar::context(base);
    let mut out = Vars::new();
    for (entry, loc) in &play.vars_files {
        let candidates: Vec<Value> = match entry {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let mut found = None;
        for c in &candidates {
            let name = t
                .render_str(&py_str(c), &ctx)
                .map_err(|e| format!("{loc}: vars_files: {}", e.msg))?;
            let path = play
                .path
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(&name);
            if path.is_file() {
                found = Some(path);
                break;
            }
        }
        let Some(path) = found else {
            return Err(format!("{loc}: vars file {} was not found", py_str(entry)));
        };
        let node = crate::yaml::load_file(&path).map_err(|e| e.to_string())?;
        match node.to_json() {
            Value::Object(m) => out.extend(m),
            Value::Null => {}
            _ => return Err(format!("{}: a vars file must be a mapping", path.display())),
        }
    }
    Ok(out)
}

impl Batch<'_> {
    fn lock(&self, h: usize) -> std::sync::MutexGuard<'_, HostRun> {
        self.state[h].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn halted(&self) -> bool {
        self.end_play.load(Ordering::Relaxed) || self.shared.stopped()
    }

    fn active(&self, members: &[usize]) -> Vec<usize> {
        members
            .iter()
            .copied()
            .filter(|&h| {
                let s = self.lock(h);
                !(s.failed || s.pending_rescue || s.unreachable || s.ended)
            })
            .collect()
    }

    async fn run(&self) {
        let all: Vec<usize> = (0..self.hosts.len()).collect();
        self.gather_facts(&all).await;
        let play = self.play;
        let main: Vec<TaskItem> = play
            .roles
            .iter()
            .chain(play.tasks.iter())
            .cloned()
            .collect();
        for section in [&play.pre_tasks, &main, &play.post_tasks] {
            if self.halted() {
                break;
            }
            match play.strategy {
                Strategy::Linear => self.run_items(section, all.clone(), false).await,
                Strategy::Free => {
                    join_all(all.iter().map(|&h| self.run_items(section, vec![h], false))).await;
                }
            }
            if !self.halted() {
                self.run_handlers(&all).await;
            }
        }
    }

    async fn gather_facts(&self, all: &[usize]) {
        let wanted = match &self.play.gather_facts {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => {
                crate::template::filters::ansible_bool(&JValue::from(s.as_str()))
            }
            Some(_) => true,
        };
        let module = ["setup", "gather_facts", "facts"]
            .into_iter()
            .find(|m| self.shared.registry.contains(m));
        let (true, Some(module)) = (wanted, module) else {
            return;
        };
        let targets: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&h| !self.shared.store.has_facts(&self.hosts[h].name))
            .collect();
        if targets.is_empty() {
            return;
        }
        let task = Arc::new(synthetic_task(module, "Gathering Facts", self.play));
        self.run_task(&task, &targets, false, false).await;
    }

    pub(super) fn run_items<'s>(
        &'s self,
        items: &'s [TaskItem],
        members: Vec<usize>,
        rescuable: bool,
    ) -> BoxFuture<'s, ()> {
        Box::pin(async move {
            for item in items {
                if self.halted() || self.active(&members).is_empty() {
                    return;
                }
                match item {
                    TaskItem::Task(t) => self.run_task(t, &members, rescuable, false).await,
                    TaskItem::Block(b) => {
                        let entered = self.active(&members);
                        let has_rescue = !b.rescue.is_empty();
                        self.run_items(&b.block, entered.clone(), rescuable || has_rescue)
                            .await;
                        if has_rescue {
                            let to_rescue: Vec<usize> = entered
                                .iter()
                                .copied()
                                .filter(|&h| {
                                    let mut s = self.lock(h);
                                    let r = s.pending_rescue && !s.unreachable;
                                    if r {
                                        s.pending_rescue = false;
                                    }
                                    r
                                })
                                .collect();
                            if !to_rescue.is_empty() {
                                self.run_items(&b.rescue, to_rescue, rescuable).await;
                            }
                        }
                        if !b.always.is_empty() && !self.halted() {
                            self.run_always(&b.always, &entered, rescuable).await;
                        }
                    }
                }
            }
        })
    }

    /// `always` runs for every host that entered the block, failed or not; a host's
    /// failure state survives it.
    async fn run_always(&self, items: &[TaskItem], entered: &[usize], rescuable: bool) {
        let mut saved = Vec::new();
        for &h in entered {
            let mut s = self.lock(h);
            if s.unreachable || s.ended {
                continue;
            }
            saved.push((h, s.failed, s.pending_rescue));
            s.failed = false;
            s.pending_rescue = false;
        }
        let members: Vec<usize> = saved.iter().map(|x| x.0).collect();
        self.run_items(items, members, rescuable).await;
        for (h, failed, pending) in saved {
            let mut s = self.lock(h);
            s.failed |= failed;
            s.pending_rescue |= pending;
        }
    }

    async fn run_task(&self, task: &Arc<Task>, members: &[usize], rescuable: bool, handler: bool) {
        if task.action == "meta" {
            return self.meta(task, members).await;
        }
        if !handler
            && !tags::should_run(
                &task.scope.tags,
                &self.shared.opts.tags,
                &self.shared.opts.skip_tags,
            )
        {
            return;
        }
        let force = self.play.force_handlers || self.shared.opts.force_handlers;
        let targets: Vec<usize> = if handler {
            members
                .iter()
                .copied()
                .filter(|&h| {
                    let s = self.lock(h);
                    !s.unreachable && !s.ended && (!s.failed || force)
                })
                .collect()
        } else {
            self.active(members)
        };
        if targets.is_empty() {
            return;
        }
        self.banner(task, handler);
        let run_once = matches!(&task.scope.kw.run_once, Some(Value::Bool(true)))
            || matches!(&task.scope.kw.run_once, Some(Value::String(s)) if crate::template::filters::ansible_bool(&JValue::from(s.as_str())));
        let runners: Vec<usize> = if run_once {
            vec![targets[0]]
        } else {
            targets.clone()
        };
        let outcomes = join_all(
            runners
                .iter()
                .map(|&h| task::run_on_host(self, task, h, self.task_magic(task))),
        )
        .await;
        let mut includes: Vec<(Included, Vec<usize>)> = Vec::new();
        let mut newly_failed = false;
        for (&h, out) in runners.iter().zip(&outcomes) {
            newly_failed |= self.apply(h, task, out, rescuable);
            for inc in &out.includes {
                match includes.iter_mut().find(|(i, _)| i.key == inc.key) {
                    Some(entry) => entry.1.push(h),
                    None => includes.push((inc.clone(), vec![h])),
                }
            }
        }
        if run_once && let Some(out) = outcomes.first() {
            self.share_run_once(task, &targets[1..], out, &mut includes);
        }
        self.check_abort(task, newly_failed);
        for (inc, hosts) in &includes {
            if let Some(file) = &inc.file {
                let names: Vec<&str> = hosts.iter().map(|&h| self.hosts[h].name.as_str()).collect();
                let item = inc
                    .label
                    .as_ref()
                    .map(|l| format!(" => (item={l})"))
                    .unwrap_or_default();
                self.shared
                    .output
                    .notice(&format!("included: {file} for {}{item}", names.join(", ")));
            }
        }
        for (inc, hosts) in includes {
            self.run_items(&inc.items, hosts, rescuable).await;
        }
    }

    /// `run_once`: the first host's result (register, notifications, includes) applies
    /// to every host of the batch.
    fn share_run_once(
        &self,
        task: &Task,
        others: &[usize],
        out: &HostOutcome,
        includes: &mut [(Included, Vec<usize>)],
    ) {
        for &h in others {
            if let Some(reg) = &task.register {
                self.shared
                    .store
                    .set_fact(&self.hosts[h].name, reg, out.result.clone());
            }
            if out.status == Status::Changed {
                self.notify(h, task);
            }
            for entry in includes.iter_mut() {
                entry.1.push(h);
            }
        }
    }

    /// `any_errors_fatal` and `max_fail_percentage` (failures must *exceed* it).
    fn check_abort(&self, task: &Task, newly_failed: bool) {
        let fatal = self.play.any_errors_fatal
            || matches!(task.scope.kw.any_errors_fatal, Some(Value::Bool(true)));
        if newly_failed && fatal {
            self.end_play.store(true, Ordering::Relaxed);
            self.shared.aborted.store(true, Ordering::Relaxed);
            return;
        }
        if let Some(pct) = self.play.max_fail_percentage {
            let n = self.hosts.len();
            let failed = (0..n)
                .filter(|&h| {
                    let s = self.lock(h);
                    s.failed || s.unreachable
                })
                .count();
            if n > 0 && (failed as f64) * 100.0 / (n as f64) > pct {
                self.end_play.store(true, Ordering::Relaxed);
                self.shared.aborted.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Counts the outcome and updates the host's state. True when the host now failed.
    fn apply(&self, h: usize, task: &Task, out: &HostOutcome, rescuable: bool) -> bool {
        let name = self.hosts[h].name.clone();
        let stat = |f: &dyn Fn(&mut super::events::HostStats)| self.shared.stat(&name, f);
        match out.status {
            // Ansible counts every file an include loop included.
            Status::Ok => {
                let n = out.includes.len().max(1) as u32;
                stat(&|s| s.ok += n)
            }
            Status::Changed => {
                stat(&|s| {
                    s.ok += 1;
                    s.changed += 1
                });
                self.notify(h, task);
            }
            Status::Skipped => stat(&|s| s.skipped += 1),
            Status::Failed if out.ignored => stat(&|s| {
                s.ok += 1;
                s.ignored += 1
            }),
            Status::Failed if rescuable => {
                stat(&|s| s.rescued += 1);
                self.lock(h).pending_rescue = true;
                let failed_task =
                    json!({"name": task.name.clone().unwrap_or_default(), "action": task.action});
                self.shared
                    .store
                    .set_fact(&name, "ansible_failed_task", failed_task);
                self.shared
                    .store
                    .set_fact(&name, "ansible_failed_result", out.result.clone());
            }
            Status::Failed => {
                stat(&|s| s.failed += 1);
                self.lock(h).failed = true;
                return true;
            }
            Status::Unreachable if out.unreachable_ignored => stat(&|s| s.skipped += 1),
            Status::Unreachable => {
                stat(&|s| s.unreachable += 1);
                self.lock(h).unreachable = true;
                return true;
            }
        }
        false
    }

    fn notify(&self, h: usize, task: &Task) {
        for n in &task.notify {
            let found: Vec<usize> = self
                .play
                .handlers
                .iter()
                .enumerate()
                .filter(|(_, hd)| {
                    hd.name.as_deref() == Some(n)
                        || hd.display_name() == *n
                        || hd.listen.contains(n)
                })
                .map(|(i, _)| i)
                .collect();
            if found.is_empty() {
                self.shared.output.warning(&format!(
                    "The requested handler '{n}' was not found in either the main handlers list nor in the listening handlers list"
                ));
            }
            // A later handler with the same name shadows an earlier one, except listeners.
            let mut s = self.lock(h);
            let by_name: Vec<usize> = found
                .iter()
                .copied()
                .filter(|&i| self.play.handlers[i].listen.iter().all(|l| l != n))
                .collect();
            if let Some(last) = by_name.last() {
                s.notified.insert(*last);
            }
            for i in found
                .into_iter()
                .filter(|i| self.play.handlers[*i].listen.contains(n))
            {
                s.notified.insert(i);
            }
        }
    }

    /// Runs notified handlers in definition order; handlers may notify later ones.
    fn run_handlers<'s>(&'s self, members: &'s [usize]) -> BoxFuture<'s, ()> {
        Box::pin(async move {
            for _round in 0..8 {
                let mut ran = false;
                for (i, handler) in self.play.handlers.iter().enumerate() {
                    let targets: Vec<usize> = members
                        .iter()
                        .copied()
                        .filter(|&h| self.lock(h).notified.remove(&i))
                        .collect();
                    if targets.is_empty() || self.halted() {
                        continue;
                    }
                    ran = true;
                    self.run_task(handler, &targets, false, true).await;
                }
                if !ran {
                    break;
                }
            }
        })
    }

    async fn meta(&self, task: &Arc<Task>, members: &[usize]) {
        let what = task
            .args
            .get("_raw_params")
            .or_else(|| task.args.get("free_form"))
            .map(py_str)
            .unwrap_or_default();
        let active = self.active(members);
        let chosen: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&h| self.when_true(task, h))
            .collect();
        match what.trim() {
            "flush_handlers" => self.run_handlers(&active).await,
            "end_play" if !chosen.is_empty() => {
                for h in 0..self.hosts.len() {
                    self.lock(h).ended = true;
                }
                self.end_play.store(true, Ordering::Relaxed);
            }
            "end_batch" if !chosen.is_empty() => {
                for h in 0..self.hosts.len() {
                    self.lock(h).ended = true;
                }
            }
            "end_host" => {
                for h in chosen {
                    self.lock(h).ended = true;
                }
            }
            "clear_host_errors" => {
                for &h in members {
                    self.lock(h).failed = false;
                }
            }
            "clear_facts" => {
                for h in chosen {
                    self.shared
                        .store
                        .update(&self.hosts[h].name, |d| d.facts = Default::default());
                }
            }
            "noop" | "refresh_inventory" | "reset_connection" | "end_play" | "end_batch" => {}
            other => self.shared.output.warning(&format!(
                "{}: unknown meta action '{other}' ignored",
                task.loc
            )),
        }
    }

    fn when_true(&self, task: &Task, h: usize) -> bool {
        if task.scope.when.is_empty() {
            return true;
        }
        let vars = self.task_vars(task, &self.hosts[h], Vars::new());
        let ctx = vars::context(&vars, &self.scope);
        task.scope.when.iter().all(|c| {
            self.shared
                .templar
                .eval_condition(&c.expr, &ctx)
                .unwrap_or(false)
        })
    }

    fn banner(&self, task: &Arc<Task>, handler: bool) {
        let key = Arc::as_ptr(task) as usize;
        let first = self
            .banners
            .lock()
            .map(|mut b| b.insert(key))
            .unwrap_or(true);
        if first || self.play.strategy == Strategy::Linear {
            if self.play.strategy == Strategy::Free && !first {
                return;
            }
            let ctx = Templar::context(&self.scope.play_vars);
            let name = task.display_name();
            let name = self.shared.templar.render_str(&name, &ctx).unwrap_or(name);
            self.shared.output.task_start(&name, handler);
        }
    }

    /// Per-task magic (`role_path`, `role_name`).
    fn task_magic(&self, task: &Task) -> Vars {
        let mut m = Vars::new();
        if let Some(r) = &task.scope.role {
            m.insert(
                "role_path".into(),
                Value::String(r.path.display().to_string()),
            );
            m.insert("role_name".into(), Value::String(r.name.clone()));
        }
        m
    }

    /// All variables of `host` for `task`.
    pub(super) fn task_vars(&self, task: &Task, host: &Host, extra_magic: Vars) -> Vars {
        let role = task.scope.role.as_deref();
        self.scope.task_vars(
            host,
            &TaskLayers {
                role_defaults: role.map(|r| &*r.defaults),
                role_vars: role.map(|r| &*r.vars),
                role_params: role.map(|r| &*r.params),
                scoped: &task.scope.vars,
                task_vars: &task.vars,
                extra_magic,
            },
        )
    }

    /// Where the module's connection goes: the host, its delegate, or the controller.
    pub(super) fn connection_spec(
        &self,
        host: &str,
        delegate: Option<&str>,
        vars: &Vars,
        task: &Task,
        ctx: &JValue,
        controller: bool,
    ) -> Result<ConnectionSpec, String> {
        let opts = &self.shared.opts;
        if controller {
            let mut local = Vars::new();
            local.insert("ansible_connection".into(), json!("local"));
            return Ok(task::spec_from_vars("localhost", &local, None, opts));
        }
        let remote_user = match &task.scope.kw.remote_user {
            Some(v) => Some(
                self.shared
                    .templar
                    .render_str(&py_str(v), ctx)
                    .map_err(|e| e.msg)?,
            ),
            None => None,
        };
        match delegate {
            Some(d) if d != host => {
                let dvars = match self.scope.hosts.get(d) {
                    Some(dh) => self.scope.host_vars(dh),
                    None if matches!(d, "localhost" | "127.0.0.1") => {
                        let mut m = Vars::new();
                        m.insert("ansible_connection".into(), json!("local"));
                        m
                    }
                    None => Vars::new(),
                };
                Ok(task::spec_from_vars(d, &dvars, remote_user, opts))
            }
            _ => Ok(task::spec_from_vars(host, vars, remote_user, opts)),
        }
    }

    /// Controller-side file search: the role, the task file's directory, the playbook's.
    pub(super) fn search_paths(&self, task: &Task) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(r) = &task.scope.role {
            out.push(r.path.clone());
        }
        if let Some(d) = task.loc.file().parent() {
            out.push(abs(d));
        }
        out.push(self.book_dir.clone());
        out.dedup();
        out
    }
}

/// A task the engine adds itself (fact gathering).
fn synthetic_task(action: &str, name: &str, play: &Play) -> Task {
    let scope = crate::playbook::Scope {
        kw: play.kw.clone(),
        tags: vec!["always".into()],
        ..Default::default()
    };
    Task {
        name: Some(name.into()),
        action: action.into(),
        args: Map::new(),
        loc: play.loc.clone(),
        parent_scope: Arc::new(scope.clone()),
        scope,
        vars: Arc::new(Map::new()),
        loop_: None,
        loop_control: Default::default(),
        register: None,
        notify: Vec::new(),
        listen: Vec::new(),
        changed_when: Vec::new(),
        failed_when: Vec::new(),
        until: Vec::new(),
        retries: None,
        delay: None,
    }
}

/// `--list-hosts` / `--list-tasks` in `ansible-playbook`'s layout.
pub(super) fn listing(
    books: &[Playbook],
    inv: &Inventory,
    opts: &RunOptions,
    hosts: bool,
    tasks: bool,
) -> String {
    let mut out = String::new();
    for book in books {
        out.push_str(&format!("\nplaybook: {}\n", book.path.display()));
        for (i, play) in book.plays.iter().enumerate() {
            out.push_str(&format!(
                "\n  play #{} ({}): {}\tTAGS: [{}]\n",
                i + 1,
                play.hosts,
                play.name,
                play.tags.join(", ")
            ));
            if hosts {
                let hs = select(inv, &play.hosts, opts);
                out.push_str(&format!(
                    "    pattern: ['{}']\n    hosts ({}):\n",
                    play.hosts,
                    hs.len()
                ));
                for h in hs {
                    out.push_str(&format!("      {}\n", h.name));
                }
            }
            if tasks {
                out.push_str("    tasks:\n");
                let mut list = Vec::new();
                for section in [&play.pre_tasks, &play.roles, &play.tasks, &play.post_tasks] {
                    flatten(section, &mut list);
                }
                for t in list {
                    if t.action == "meta"
                        || !tags::should_run(&t.scope.tags, &opts.tags, &opts.skip_tags)
                    {
                        continue;
                    }
                    out.push_str(&format!(
                        "      {}\tTAGS: [{}]\n",
                        t.display_name(),
                        t.scope.tags.join(", ")
                    ));
                }
            }
        }
    }
    out
}

fn flatten(items: &[TaskItem], out: &mut Vec<Arc<Task>>) {
    for i in items {
        match i {
            TaskItem::Task(t) => out.push(t.clone()),
            TaskItem::Block(b) => {
                flatten(&b.block, out);
                flatten(&b.rescue, out);
                flatten(&b.always, out);
            }
        }
    }
}
