//! Handlers (notify, listen, flush at section ends and `meta: flush_handlers`) and the
//! other `meta` actions.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;

use super::vars::{self, Vars};
use crate::playbook::Task;
use crate::template::Templar;
use crate::template::pyjson::py_str;

use super::batch::Batch;

impl Batch<'_> {
    pub(super) fn notify(&self, h: usize, task: &Task) {
        // `notify: "restart {{ service }}"` is rendered with the host's variables.
        let names: Vec<String> = if task.notify.iter().any(|n| Templar::is_template(n)) {
            let vars = self.task_vars(task, &self.hosts[h], Vars::new());
            let ctx = vars::context(Arc::new(vars), &self.scope);
            task.notify
                .iter()
                .map(|n| {
                    self.shared
                        .templar
                        .render_str(n, &ctx)
                        .unwrap_or_else(|_| n.clone())
                })
                .collect()
        } else {
            task.notify.clone()
        };
        for n in &names {
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
    pub(super) fn run_handlers<'s>(&'s self, members: &'s [usize]) -> BoxFuture<'s, ()> {
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

    pub(super) async fn meta(&self, task: &Arc<Task>, members: &[usize]) {
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
            "refresh_inventory" => {
                if let Err(e) = self.shared.refresh_inventory().await {
                    self.shared
                        .output
                        .warning(&format!("{}: refresh_inventory: {e}", task.loc));
                }
            }
            "noop" | "reset_connection" | "end_play" | "end_batch" => {}
            other => self.shared.output.warning(&format!(
                "{}: unknown meta action '{other}' ignored",
                task.loc
            )),
        }
    }

    pub(super) fn when_true(&self, task: &Task, h: usize) -> bool {
        if task.scope.when.is_empty() {
            return true;
        }
        let vars = self.task_vars(task, &self.hosts[h], Vars::new());
        let ctx = vars::context(Arc::new(vars), &self.scope);
        task.scope.when.iter().all(|c| {
            self.shared
                .templar
                .eval_condition(&c.expr, &ctx)
                .unwrap_or(false)
        })
    }
}
