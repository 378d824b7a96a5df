//! One `serial` batch of a play: the walker over tasks and blocks shared by the linear
//! and free strategies, and how a task's outcome changes a host's state and the recap.
//!
//! Linear walks the batch's hosts together (each task runs on all of them, concurrently,
//! then the next task starts); free walks each host alone, concurrently with the others.
//! Block semantics fall out of the walker: hosts that fail inside `block` go to `rescue`
//! once the others are done with `block`, and every host that entered runs `always`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, join_all};
use minijinja::Value as JValue;
use serde_json::{Value, json};

use super::events::Status;
use super::hosts::Host;
use super::play::{GATHERING_FACTS, synthetic_task};
use super::task::{self, HostOutcome, Included};
use super::vars::PlayScope;
use super::{Shared, tags};
use crate::playbook::{Play, Strategy, Task, TaskItem};

/// Where a host stands in the current batch.
#[derive(Default)]
pub(super) struct HostRun {
    pub failed: bool,
    /// Failed inside a block that has a `rescue` (here or further out).
    pub pending_rescue: bool,
    pub unreachable: bool,
    pub ended: bool,
    /// Indices into `play.handlers` this host has been notified for.
    pub notified: HashSet<usize>,
}

/// One `serial` batch of a play.
pub(super) struct Batch<'a> {
    pub shared: &'a Arc<Shared>,
    pub play: &'a Play,
    pub book_dir: PathBuf,
    pub scope: Arc<PlayScope>,
    pub hosts: Vec<Arc<Host>>,
    pub state: Vec<Mutex<HostRun>>,
    pub banners: Mutex<HashSet<usize>>,
    /// `meta: end_play`, `any_errors_fatal` or `max_fail_percentage` stopped the play.
    pub end_play: AtomicBool,
}

impl Batch<'_> {
    pub(super) fn lock(&self, h: usize) -> std::sync::MutexGuard<'_, HostRun> {
        self.state[h].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn halted(&self) -> bool {
        self.end_play.load(Ordering::Relaxed) || self.shared.stopped()
    }

    pub(super) fn active(&self, members: &[usize]) -> Vec<usize> {
        members
            .iter()
            .copied()
            .filter(|&h| {
                let s = self.lock(h);
                !(s.failed || s.pending_rescue || s.unreachable || s.ended)
            })
            .collect()
    }

    pub(super) async fn run(&self) {
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

    pub(super) async fn gather_facts(&self, all: &[usize]) {
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
        // Shown every play as Ansible does; the module runs once per host per run.
        let task = Arc::new(synthetic_task(module, GATHERING_FACTS, self.play));
        self.run_task(&task, all, false, false).await;
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
    pub(super) async fn run_always(&self, items: &[TaskItem], entered: &[usize], rescuable: bool) {
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

    pub(super) async fn run_task(
        &self,
        task: &Arc<Task>,
        members: &[usize],
        rescuable: bool,
        handler: bool,
    ) {
        if task.action == "meta" {
            return self.meta(task, members).await;
        }
        if !handler && !self.reached_start(task) {
            return;
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
        // `add_host` changes the inventory, not a host: it runs once for the batch, as
        // Ansible's BYPASS_HOST_LOOP actions do.
        let run_once = task.action == "add_host"
            || matches!(&task.scope.kw.run_once, Some(Value::Bool(true)))
            || matches!(&task.scope.kw.run_once, Some(Value::String(s)) if crate::template::filters::ansible_bool(&JValue::from(s.as_str())));
        let runners: Vec<usize> = if run_once {
            vec![targets[0]]
        } else {
            targets.clone()
        };
        let outcomes = self.run_with_progress(task, &runners).await;
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
        // Unlike `run_once`, Ansible registers an `add_host` result on the host it ran for only.
        if run_once
            && task.action != "add_host"
            && let Some(out) = outcomes.first()
        {
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

    /// `--start-at-task`: tasks before the named one are skipped silently.
    fn reached_start(&self, task: &Task) -> bool {
        if self.shared.started.load(Ordering::Relaxed) {
            return true;
        }
        let wanted = self.shared.opts.start_at_task.as_deref().unwrap_or("");
        let name = task.name.as_deref().unwrap_or("");
        if name == wanted || task.display_name() == wanted {
            self.shared.started.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Runs the task on `runners` concurrently; while some hosts are slow, tells the
    /// output which ones it is waiting for (the console shows a progress line on a TTY).
    async fn run_with_progress(&self, task: &Arc<Task>, runners: &[usize]) -> Vec<HostOutcome> {
        let pending: Mutex<Vec<usize>> = Mutex::new(runners.to_vec());
        // `throttle` only lowers the parallelism that `--forks` allows.
        let throttle = match &task.scope.kw.throttle {
            Some(Value::Number(n)) => n.as_u64().filter(|n| *n > 0).map(|n| n as usize),
            Some(Value::String(s)) => s.trim().parse().ok().filter(|n| *n > 0),
            _ => None,
        };
        let limit = tokio::sync::Semaphore::new(throttle.unwrap_or(runners.len().max(1)));
        let magic = self.task_magic(task);
        let all = join_all(runners.iter().map(|&h| {
            let pending = &pending;
            let limit = &limit;
            let magic = magic.clone();
            async move {
                let _slot = limit.acquire().await;
                let out = task::run_on_host(self, task, h, magic).await;
                if let Ok(mut p) = pending.lock() {
                    p.retain(|&x| x != h);
                }
                out
            }
        }));
        tokio::pin!(all);
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        tick.tick().await;
        let mut shown = false;
        let outcomes = loop {
            tokio::select! {
                out = &mut all => break out,
                _ = tick.tick() => {
                    let names: Vec<String> = pending
                        .lock()
                        .map(|p| p.iter().map(|&h| self.hosts[h].name.clone()).collect())
                        .unwrap_or_default();
                    self.shared.output.waiting(&names);
                    shown = true;
                }
            }
        };
        if shown {
            self.shared.output.waiting(&[]);
        }
        outcomes
    }

    /// `run_once`: the first host's result (register, `set_fact`/`include_vars` variables,
    /// notifications, includes) applies to every host of the batch.
    pub(super) fn share_run_once(
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
            if let Some(f) = &out.facts {
                let (action, facts) = &**f;
                super::task::store_facts_on(&self.shared.store, &self.hosts[h].name, action, facts);
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
    pub(super) fn check_abort(&self, task: &Task, newly_failed: bool) {
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
    pub(super) fn apply(&self, h: usize, task: &Task, out: &HostOutcome, rescuable: bool) -> bool {
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
            // Ansible's strategy also counts an ignored failure's `changed`.
            Status::Failed if out.ignored => {
                let changed = out.result.get("changed").and_then(|c| c.as_bool()) == Some(true);
                stat(&|s| {
                    s.ok += 1;
                    s.ignored += 1;
                    s.changed += u32::from(changed)
                })
            }
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
            Status::Unreachable if out.unreachable_ignored => stat(&|s| {
                s.ok += 1;
                s.ignored += 1
            }),
            Status::Unreachable => {
                stat(&|s| s.unreachable += 1);
                self.lock(h).unreachable = true;
                return true;
            }
        }
        false
    }
}
