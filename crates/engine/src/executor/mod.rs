//! Runs plays over hosts in parallel, with Ansible's semantics.
//!
//! [`run_playbook`] is the library entry point used by `play` and by the cluster
//! commands (which bring their own inventory, variables and a quieter [`EventSink`]).
//! Structure:
//! - `play.rs`: a play's hosts, `serial` batches, sections, handlers, blocks and the
//!   linear/free strategies;
//! - `task.rs`: one task on one host — conditions, loops, retries, the module call,
//!   `changed_when`/`failed_when`;
//! - `vars.rs`: variable precedence and the template context;
//! - `hosts.rs`: the inventory as the engine sees it;
//! - `tags.rs`: `--tags`/`--skip-tags`;
//! - `events.rs`: what is reported, and the recap counters.

mod batch;
pub mod events;
mod handlers;
mod hostctx;
pub mod hosts;
mod play;
pub mod preflight;
mod tags;
mod task;
pub mod vars;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

use crate::connection::HostKeyPolicy;
use crate::connection::manager::ConnectionManager;
use crate::modules::registry::Registry;
use crate::playbook::{Loader, Playbook, load_playbook};
use crate::template::Templar;
use events::{EventSink, Stats};
use hosts::Inventory;
use vars::HostStore;

/// Settings of a run that are not variables (command-line options).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub forks: usize,
    pub check: bool,
    pub diff: bool,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub limit: Option<String>,
    pub user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub become_: bool,
    pub become_user: Option<String>,
    pub host_key_policy: HostKeyPolicy,
    pub force_handlers: bool,
    /// `-c local`: the connection type for every host without `ansible_connection`.
    pub connection: Option<String>,
    pub roles_path: Vec<PathBuf>,
    pub verbosity: u8,
    pub start_at_task: Option<String>,
    pub known_hosts_files: Vec<PathBuf>,
    pub connect_timeout: std::time::Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            forks: 256,
            check: false,
            diff: false,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            limit: None,
            user: None,
            private_key: None,
            become_: false,
            become_user: None,
            host_key_policy: HostKeyPolicy::default(),
            force_handlers: false,
            connection: None,
            roles_path: Vec::new(),
            verbosity: 0,
            start_at_task: None,
            known_hosts_files: Vec::new(),
            connect_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Reads the inventory again for `meta: refresh_inventory`: a playbook that creates servers
/// (launch) can then configure them in the same run. Called off the async runtime.
pub type InventoryRefresh = Arc<dyn Fn() -> Result<Inventory, String> + Send + Sync>;

/// Everything a playbook run needs.
pub struct PlaybookRun {
    pub playbooks: Vec<PathBuf>,
    pub inventory: Arc<Inventory>,
    /// Where `meta: refresh_inventory` reads from; without it the meta task is a no-op, as
    /// for static inventory files that did not change.
    pub refresh: Option<InventoryRefresh>,
    pub extra_vars: Map<String, Value>,
    pub options: RunOptions,
    pub output: Arc<dyn EventSink>,
    pub registry: Arc<Registry>,
}

/// How a run ended, in `ansible-playbook` terms (the application maps it to an exit code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    HostsFailed,
    Unreachable,
    /// A playbook could not be parsed; the message names file:line:col.
    ParseError(String),
    /// Any other error that stopped the run (bad pattern, vars_files missing, ...).
    Error(String),
    Interrupted,
}

pub struct RunOutcome {
    pub outcome: Outcome,
    pub stats: Stats,
}

/// What every task of the run shares.
pub(crate) struct Shared {
    pub templar: Arc<Templar>,
    pub registry: Arc<Registry>,
    pub loader: Loader,
    pub conns: ConnectionManager,
    /// Replaced by `meta: refresh_inventory`; plays read it when they start.
    inventory: std::sync::RwLock<Arc<Inventory>>,
    refresh: Option<InventoryRefresh>,
    pub output: Arc<dyn EventSink>,
    pub opts: RunOptions,
    pub extra: Arc<Map<String, Value>>,
    pub store: Arc<HostStore>,
    pub stats: std::sync::Mutex<Stats>,
    pub forks: tokio::sync::Semaphore,
    pub interrupted: AtomicBool,
    /// `any_errors_fatal`/`max_fail_percentage` stopped everything.
    pub aborted: AtomicBool,
    /// Hosts that failed or became unreachable; later plays skip them.
    pub dead_hosts: std::sync::Mutex<std::collections::HashSet<String>>,
    /// False until `--start-at-task` names the current task.
    pub started: AtomicBool,
    /// How many times `add_host` changed the inventory: while zero, a play's `groups`
    /// (computed when it starts) is current, and tasks need not recompute it.
    pub inventory_changes: std::sync::atomic::AtomicU64,
    /// Background (`async`, `poll: 0`) jobs that finished on the controller side.
    pub jobs: crate::modules::commands::async_job::AsyncJobs,
}

impl Shared {
    /// The inventory as it is now (see `meta: refresh_inventory`).
    pub fn inventory(&self) -> Arc<Inventory> {
        match self.inventory.read() {
            Ok(i) => i.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// `meta: refresh_inventory`: reads the inventory again where the run has a source.
    pub async fn refresh_inventory(&self) -> Result<(), String> {
        let Some(refresh) = self.refresh.clone() else {
            return Ok(());
        };
        let inv = tokio::task::spawn_blocking(move || refresh())
            .await
            .map_err(|e| format!("the inventory reader stopped: {e}"))??;
        match self.inventory.write() {
            Ok(mut i) => *i = Arc::new(inv),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(inv),
        }
        Ok(())
    }

    /// `add_host`: adds the host, its groups and variables to the run's inventory, which
    /// plays read when they start. Returns whether anything changed, by Ansible's rule: a
    /// new host, a new group, a new membership, or variables that differ.
    pub fn add_host(
        &self,
        req: &crate::modules::control::add_host::Request,
    ) -> Result<bool, String> {
        let mut guard = match self.inventory.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let view: &hosts::Inventory = &guard;
        let mut src = match &view.source {
            Some(s) => (**s).clone(),
            None => {
                // A `-i a,b,` host list: rebuild it as a real inventory to add to.
                let mut inv = crate::inventory::Inventory::new();
                for h in &view.hosts {
                    let groups: Vec<&str> = if h.groups.is_empty() {
                        vec!["ungrouped"]
                    } else {
                        h.groups.iter().map(String::as_str).collect()
                    };
                    for g in groups {
                        inv.add_host(&h.name, g);
                    }
                    for (k, v) in h.vars.iter() {
                        inv.set_host_var(&h.name, k, v.clone());
                    }
                }
                inv
            }
        };
        let mut changed = false;
        if !src.hosts.contains_key(&req.name) {
            src.add_host(&req.name, "all");
            changed = true;
        }
        if let Some(h) = src.hosts.get_mut(&req.name) {
            for (k, v) in &req.vars {
                if h.vars.get(k) != Some(v) {
                    h.vars.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
        }
        for g in &req.groups {
            let member = src
                .groups
                .get(g)
                .is_some_and(|grp| grp.hosts.iter().any(|h| h == &req.name));
            if !member {
                src.add_host(&req.name, g);
                changed = true;
            }
        }
        if changed {
            src.reconcile();
            *guard = Arc::new(hosts::Inventory::from_inventory(src)?);
            self.inventory_changes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(changed)
    }

    pub fn stat(&self, host: &str, f: impl FnOnce(&mut events::HostStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(s.entry(host.to_string()).or_default());
        }
    }

    pub fn stopped(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed) || self.aborted.load(Ordering::Relaxed)
    }
}

/// Parses every playbook first (so a syntax error runs nothing), then runs their plays.
pub fn load_all(paths: &[PathBuf], loader: &Loader) -> Result<Vec<Playbook>, String> {
    paths
        .iter()
        .map(|p| {
            if !p.is_file() {
                return Err(format!("the playbook: {} could not be found", p.display()));
            }
            load_playbook(p, loader).map_err(|e| e.msg)
        })
        .collect()
}

/// Runs playbooks to the end (or to Ctrl-C) and prints the recap.
pub async fn run_playbook(run: PlaybookRun) -> RunOutcome {
    let loader = Loader {
        registry: run.registry.clone(),
        roles_path: run.options.roles_path.clone(),
    };
    let books = match load_all(&run.playbooks, &loader) {
        Ok(b) => b,
        Err(msg) => {
            return RunOutcome {
                outcome: Outcome::ParseError(msg),
                stats: Stats::new(),
            };
        }
    };
    // Arguments that cannot work are refused before any host is contacted.
    let problems = preflight::check(&books, &run.registry);
    if !problems.is_empty() {
        return RunOutcome {
            outcome: Outcome::ParseError(problems.join("\n")),
            stats: Stats::new(),
        };
    }
    let shared = Arc::new(Shared {
        templar: Arc::new(Templar::new()),
        registry: run.registry,
        loader,
        conns: ConnectionManager::new(),
        inventory: std::sync::RwLock::new(run.inventory),
        refresh: run.refresh,
        output: run.output,
        forks: tokio::sync::Semaphore::new(run.options.forks.max(1)),
        dead_hosts: Default::default(),
        started: AtomicBool::new(run.options.start_at_task.is_none()),
        inventory_changes: std::sync::atomic::AtomicU64::new(0),
        jobs: Default::default(),
        opts: run.options,
        extra: Arc::new(run.extra_vars),
        store: Arc::new(HostStore::default()),
        stats: std::sync::Mutex::new(Stats::new()),
        interrupted: AtomicBool::new(false),
        aborted: AtomicBool::new(false),
    });
    let work = {
        let shared = shared.clone();
        async move {
            for book in &books {
                for p in &book.plays {
                    play::run_play(&shared, book, p).await?;
                    if shared.stopped() {
                        return Ok(());
                    }
                }
            }
            Ok::<(), String>(())
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            shared.interrupted.store(true, Ordering::Relaxed);
            Ok(())
        }
    };
    shared.conns.close_all().await;
    let stats = shared.stats.lock().map(|s| s.clone()).unwrap_or_default();
    if let Err(msg) = &result {
        if !stats.is_empty() {
            shared.output.recap(&stats);
        }
        return RunOutcome {
            outcome: Outcome::Error(msg.clone()),
            stats,
        };
    }
    shared.output.recap(&stats);
    let outcome = if shared.interrupted.load(Ordering::Relaxed) {
        Outcome::Interrupted
    } else if stats.values().any(|s| s.unreachable > 0) {
        Outcome::Unreachable
    } else if stats.values().any(|s| s.failed > 0) || shared.aborted.load(Ordering::Relaxed) {
        Outcome::HostsFailed
    } else {
        Outcome::Ok
    };
    RunOutcome { outcome, stats }
}

/// `--list-hosts` / `--list-tasks`: what would run, Ansible's listing format.
pub fn list(
    books: &[Playbook],
    inventory: &Inventory,
    opts: &RunOptions,
    hosts: bool,
    tasks: bool,
) -> String {
    play::listing(books, inventory, opts, hosts, tasks)
}
