//! What the executor tells the outside world while it runs, and the recap counters.
//!
//! The executor only emits events; [`crate::output`] decides how they look (Ansible's
//! default callback, JSON lines, or quiet for the cluster commands). Keeping the sink a
//! trait lets embedded playbook runs swap the presentation without touching execution.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// How one task (or loop item) ended on one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// One host's result for a task or a loop item.
#[derive(Clone, Debug, Serialize)]
pub struct HostResult {
    pub host: String,
    /// The `delegate_to` host, when the task was delegated.
    pub delegate: Option<String>,
    /// The delegate's `ansible_host` when it is not the delegate's name: Ansible shows
    /// `host -> delegate(address)`.
    pub delegate_address: Option<String>,
    pub task: String,
    /// The task's action (`debug`, `command`, ...); the console hides keys for `debug`.
    pub action: String,
    pub status: Status,
    /// The result as shown: the registered value, censored for `no_log`.
    pub result: Value,
    /// A failure that `ignore_errors`/`ignore_unreachable` turned into "...ignoring".
    pub ignored: bool,
    /// Loop item label for per-item lines; `None` for a task's overall result.
    pub item: Option<String>,
    /// Show the result even without `-v` (`debug` does).
    pub verbose_always: bool,
    /// The overall result of a looped task, after its per-item results; the console
    /// shows only `...ignoring` for it, JSON output shows it all.
    pub loop_summary: bool,
}

/// Per-host recap counters, as Ansible's `AggregateStats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// Recap counters for every host that ran something, sorted by name.
pub type Stats = BTreeMap<String, HostStats>;

/// Receives the run's events. Implementations must be cheap and never block for long:
/// they are called from the executor's tasks.
pub trait EventSink: Send + Sync {
    fn play_start(&self, name: &str, check_mode: bool);
    /// The hosts the play (or `serial` batch) just started runs on, after `play_start`;
    /// optional. Ansible's output does not show them; a progress display counts them.
    fn play_hosts(&self, _hosts: &[String]) {}
    fn task_start(&self, name: &str, handler: bool);
    fn host_result(&self, r: &HostResult);
    /// A line that is not a result (`skipping: no hosts matched`, `NO MORE HOSTS LEFT`).
    fn notice(&self, msg: &str);
    fn warning(&self, msg: &str);
    fn recap(&self, stats: &Stats);
    /// Hosts still running the current task (for a live progress line); optional.
    fn waiting(&self, _pending: &[String]) {}
}
