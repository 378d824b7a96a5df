//! Task modules: what a task does once the executor has decided to run it.
//!
//! The executor templates a task's arguments, then calls [`Module::run`] with a
//! [`ModuleCtx`] that holds the host's connection and the run's settings. A module
//! returns a [`ModuleResult`] in Ansible's shape (`changed`, `failed`, `msg`, plus
//! module-specific keys such as `rc` and `stdout`), which becomes the registered
//! variable. Modules are idempotent and tell the truth about `changed`; in check mode
//! they report what they would do without doing it.

pub mod args;
pub mod commands;
pub mod control;
pub mod files;
pub mod net;
pub mod registry;
pub mod remote;
pub mod system;
#[cfg(test)]
pub(crate) mod testutil;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::{Become, ConnError, Connection, ConnectionSpec};
use crate::template::Templar;

/// What a module sees of the run.
pub struct ModuleCtx<'a> {
    /// Inventory name of the host the task runs for.
    pub host: &'a str,
    /// The connection the task runs on (the delegate's, with `delegate_to`).
    pub conn: Arc<dyn Connection>,
    /// How `conn` was opened; `synchronize` builds its OpenSSH command line from it.
    pub conn_spec: &'a ConnectionSpec,
    pub check_mode: bool,
    pub diff: bool,
    pub become_: Option<Become>,
    /// `environment:` of the task, already templated.
    pub env: Vec<(String, String)>,
    /// All variables of the host for this task, as defined: a definition that is a template
    /// stays unrendered here (rendering every variable for every task and host cost more
    /// than the task itself at a hundred hosts). Modules that need a variable's value
    /// render it through `context`; this map only answers whether a name is defined.
    pub vars: &'a Map<String, Value>,
    /// The task's template context: the same one its arguments and `when` were rendered
    /// with (lazy `hostvars`, variables whose definitions are templates rendered when read,
    /// and an undefined one failing the render instead of being left as written). Modules
    /// that render or evaluate Jinja themselves (`template`, `debug: var=`, `assert`) use
    /// it, so a template file sees exactly what a task argument sees.
    pub context: &'a minijinja::Value,
    pub templar: &'a Templar,
    /// Where relative `src` paths are looked up, in order: the role's `files/` or
    /// `templates/` directory comes first, then the playbook's directory.
    pub search_paths: &'a [PathBuf],
    /// `async: N` with `poll: 0`: the module is asked to start in the background (only
    /// `command` and `shell` can; the executor finishes any other module before returning).
    pub async_job: Option<commands::async_job::AsyncJob>,
    /// Results of the run's background jobs that finished on the controller side.
    pub jobs: &'a commands::async_job::AsyncJobs,
}

impl ModuleCtx<'_> {
    /// Finds a controller-side file for `src` in `subdir` (`files` or `templates`) of each
    /// search path, then in the search path itself, as Ansible does.
    pub fn find_file(&self, subdir: &str, src: &str) -> Option<PathBuf> {
        let p = PathBuf::from(src);
        if p.is_absolute() {
            return p.exists().then_some(p);
        }
        for base in self.search_paths {
            for candidate in [base.join(subdir).join(src), base.join(src)] {
                if candidate.exists() {
                    return Some(candidate);
                }
            }
        }
        None
    }
}

/// The statically checkable part of a module's arguments.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgSpec {
    /// Every argument name the module accepts (aliases included).
    pub known: &'static [&'static str],
    /// Arguments that must be given: one name of each group (a name and its aliases).
    pub required: &'static [&'static [&'static str]],
    /// Arguments whose value is one of a closed set.
    pub choices: &'static [(&'static str, &'static [&'static str])],
    /// `src` names a controller file looked up in this directory of the role or play
    /// (`files`, `templates`), unless `remote_src` is set.
    pub src_dir: Option<&'static str>,
}

/// A module's outcome, in the shape Ansible registers.
#[derive(Clone, Debug, Default)]
pub struct ModuleResult {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    /// Module-specific keys (`rc`, `stdout`, `dest`, `stat`, ...).
    pub data: Map<String, Value>,
    /// Facts to set on the host (`set_fact`, `setup`), merged by the executor.
    pub facts: Option<Map<String, Value>>,
    /// `--diff` output: before and after text, with labels.
    pub diff: Option<Diff>,
}

#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
    /// A diff the module wrote itself (apt's plan), shown as it is instead of before/after,
    /// as Ansible shows a result's `prepared` diff.
    pub prepared: Option<String>,
}

impl ModuleResult {
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed() -> Self {
        ModuleResult {
            changed: true,
            ..Default::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        ModuleResult {
            failed: true,
            msg: Some(msg.into()),
            ..Default::default()
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// The registered variable: `changed`, `failed`, `msg`, `skipped` plus `data`.
    pub fn to_json(&self) -> Value {
        let mut m = self.data.clone();
        m.insert("changed".into(), Value::Bool(self.changed));
        m.insert("failed".into(), Value::Bool(self.failed));
        if self.skipped {
            m.insert("skipped".into(), Value::Bool(true));
        }
        if let Some(msg) = &self.msg {
            m.insert("msg".into(), Value::String(msg.clone()));
        }
        if let Some(facts) = &self.facts {
            m.insert("ansible_facts".into(), Value::Object(facts.clone()));
        }
        Value::Object(m)
    }
}

/// Errors that stop a module before it has a result. `Unreachable` marks the host
/// UNREACHABLE; `Args` and `Failed` are reported as a failed task.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// A bad or missing argument; the message names it.
    #[error("{0}")]
    Args(String),
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("{0}")]
    Failed(String),
}

/// Why a step of a module ended the task early: the result is decided (`Done`, a failure
/// reported the way Ansible's module reports it, or check mode's answer), or the module
/// cannot go on (`Error`). A module whose steps can end it returns `Result<T, Stop>` from
/// each, so `?` carries either kind of ending up, and its `run` ends with
/// [`Stop::finish`]; without it every step's caller would unpack a
/// `Result<Result<T, ModuleResult>, ModuleError>` by hand.
#[derive(Debug)]
pub enum Stop {
    /// Boxed: a result is large, and the `Ok` path should not carry its size.
    Done(Box<ModuleResult>),
    Error(ModuleError),
}

impl From<ModuleError> for Stop {
    fn from(e: ModuleError) -> Self {
        Stop::Error(e)
    }
}

impl From<ModuleResult> for Stop {
    fn from(r: ModuleResult) -> Self {
        Stop::Done(Box::new(r))
    }
}

impl From<ConnError> for Stop {
    fn from(e: ConnError) -> Self {
        Stop::Error(e.into())
    }
}

impl Stop {
    /// What [`Module::run`] returns for a module whose steps return [`Stop`].
    pub fn finish(r: Result<ModuleResult, Stop>) -> Result<ModuleResult, ModuleError> {
        match r {
            Ok(r) => Ok(r),
            Err(Stop::Done(r)) => Ok(*r),
            Err(Stop::Error(e)) => Err(e),
        }
    }
}

#[async_trait]
pub trait Module: Send + Sync {
    /// The name used in playbooks (`copy`); `ansible.builtin.copy` resolves to it too.
    fn name(&self) -> &'static str;

    /// Whether the module understands check mode. Modules that do not are skipped under `--check`.
    fn supports_check_mode(&self) -> bool {
        true
    }

    /// Modules that never touch the host (`debug`, `set_fact`, `assert`, `fail`, `pause`).
    fn runs_on_controller(&self) -> bool {
        false
    }

    /// Modules whose job is to wait for the host to answer (`wait_for_connection`): the
    /// executor hands them a connection that is opened on first use and retried on each
    /// call, instead of failing the task as unreachable before the module runs.
    fn waits_for_connection(&self) -> bool {
        false
    }

    /// The argument key that a free-form string maps to (`command: ls` → `cmd`), if any.
    fn free_form(&self) -> Option<&'static str> {
        None
    }

    /// What can be checked of a task's arguments before any host is contacted (see
    /// `executor::preflight`); `None` checks nothing.
    fn spec(&self) -> Option<ArgSpec> {
        None
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError>;
}
