//! Plays, blocks, tasks and roles, parsed from YAML into typed structs.
//!
//! Ansible resolves inherited keywords (`become`, `when`, `tags`, block `vars`, ...) by
//! walking a task's parent chain at run time. We resolve them once, at parse time: every
//! [`Task`] carries its effective keywords, its full `when` list (parents first) and its
//! effective tags, so the executor never walks parents. Blocks survive as structure only,
//! because `rescue`/`always` decide control flow. Static imports (`import_tasks`,
//! `import_role`, `roles:`) are expanded here; dynamic includes (`include_tasks`,
//! `include_role`) stay tasks and are expanded per host by the executor, using the scope
//! saved on the include task ([`Scope`]).

mod keywords;
mod parse;
mod roles;
mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::modules::registry::Registry;
use crate::yaml::Loc;

pub use keywords::Keywords;
pub use parse::{Loader, load_playbook, relative_to as relative_path};
pub use roles::{RoleInfo, expand_include_role, expand_include_tasks};
pub(crate) use task::parse_kv;

/// A parse or load error, already formatted with the `file:line:col` at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct ParseError {
    pub msg: String,
}

impl ParseError {
    pub fn at(loc: &Loc, msg: impl std::fmt::Display) -> Self {
        ParseError {
            msg: format!("{loc}: {msg}"),
        }
    }
}

impl From<crate::yaml::YamlError> for ParseError {
    fn from(e: crate::yaml::YamlError) -> Self {
        ParseError { msg: e.to_string() }
    }
}

pub type Result<T> = std::result::Result<T, ParseError>;

/// A whole playbook file: plays in order (imported playbooks already spliced in).
#[derive(Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

impl Playbook {
    /// The directory relative paths and `roles/` are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Linear,
    Free,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HostOrder {
    #[default]
    Inventory,
    ReverseInventory,
    Sorted,
    ReverseSorted,
    Shuffle,
}

/// One `serial:` step: a host count or a percentage of the play's hosts.
#[derive(Clone, Debug, PartialEq)]
pub enum SerialStep {
    Count(usize),
    Percent(f64),
}

#[derive(Debug)]
pub struct Play {
    pub name: String,
    /// Host pattern; may contain a template, rendered with extra vars.
    pub hosts: String,
    pub loc: Loc,
    pub path: PathBuf,
    pub vars: Arc<Map<String, Value>>,
    /// `vars_files` entries (templated at run time); a list entry means "first that exists".
    pub vars_files: Vec<(Value, Loc)>,
    /// `vars_prompt` entries: name, default, location. Runs are non-interactive, so a
    /// prompt needs a default or an extra var.
    pub vars_prompt: Vec<(String, Option<Value>, Loc)>,
    pub gather_facts: Option<Value>,
    pub serial: Vec<SerialStep>,
    pub strategy: Strategy,
    pub any_errors_fatal: bool,
    pub max_fail_percentage: Option<f64>,
    pub force_handlers: bool,
    pub order: HostOrder,
    pub kw: Keywords,
    pub tags: Vec<String>,
    pub pre_tasks: Vec<TaskItem>,
    /// `roles:` expanded into their tasks (dependencies first), in order.
    pub roles: Vec<TaskItem>,
    pub tasks: Vec<TaskItem>,
    pub post_tasks: Vec<TaskItem>,
    /// Play handlers and role handlers, in definition order (role handlers first, as loaded).
    pub handlers: Vec<Arc<Task>>,
    /// Every role loaded by the play, for role defaults/vars visible play-wide.
    pub role_list: Vec<Arc<RoleInfo>>,
}

#[derive(Clone, Debug)]
pub enum TaskItem {
    Task(Arc<Task>),
    Block(Arc<Block>),
}

#[derive(Debug)]
pub struct Block {
    pub name: Option<String>,
    pub loc: Loc,
    pub block: Vec<TaskItem>,
    pub rescue: Vec<TaskItem>,
    pub always: Vec<TaskItem>,
}

/// A `when`/`changed_when`/`failed_when`/`until` expression with where it was written.
#[derive(Clone, Debug)]
pub struct Cond {
    pub expr: String,
    pub loc: Loc,
}

/// What a task inherits from its parents; saved on dynamic includes so the included
/// tasks get the include's parents (not the include's own `when`/`tags`).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub kw: Keywords,
    pub when: Vec<Cond>,
    pub tags: Vec<String>,
    /// Block vars (outer first), then include params.
    pub vars: Vec<Arc<Map<String, Value>>>,
    pub role: Option<Arc<RoleInfo>>,
    pub is_handler: bool,
}

#[derive(Clone, Debug)]
pub enum LoopKind {
    /// `loop:` — no flattening.
    Loop,
    /// `with_items:` — flattens one level.
    Items,
    /// `with_list:`
    List,
    /// `with_dict:` — `{key, value}` items.
    Dict,
    /// `with_fileglob:`, `with_sequence:` and other lookups, by name.
    Lookup(String),
}

#[derive(Clone, Debug)]
pub struct LoopSpec {
    pub kind: LoopKind,
    pub value: Value,
}

#[derive(Clone, Debug, Default)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<Value>,
    pub pause: Option<f64>,
    pub extended: bool,
}

#[derive(Debug)]
pub struct Task {
    pub name: Option<String>,
    /// Canonical module or action name (`ansible.builtin.` stripped).
    pub action: String,
    pub args: Map<String, Value>,
    pub loc: Loc,
    /// Where each argument was written (its value's place; a free-form string's for
    /// `k=v` words), for errors about one argument.
    pub arg_locs: std::collections::BTreeMap<String, Loc>,
    /// The inherited scope plus this task's own keywords, `when` and tags.
    pub scope: Scope,
    /// The scope the task was written in (for dynamic includes).
    pub parent_scope: Arc<Scope>,
    /// Task `vars:` (highest of the scoped levels).
    pub vars: Arc<Map<String, Value>>,
    pub loop_: Option<LoopSpec>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    pub changed_when: Vec<Cond>,
    pub failed_when: Vec<Cond>,
    pub until: Vec<Cond>,
    pub retries: Option<Value>,
    pub delay: Option<Value>,
    /// `async`: seconds the task may run; with `poll: 0` it runs in the background and
    /// `async_status` reads its outcome later.
    pub async_: Option<Value>,
    /// `poll`: seconds between checks of an `async` task (Ansible's default is 15).
    pub poll: Option<Value>,
}

impl Task {
    /// The banner name: `role : name`, or the action when the task has no name.
    /// An `include_role` is named by itself or by the role it includes
    /// (`include_role : spark`), never prefixed by the role it is written in, as
    /// Ansible's `IncludeRole.get_name`.
    pub fn display_name(&self) -> String {
        if self.action == "include_role" {
            let role = self.args.get("name").or_else(|| self.args.get("role"));
            return match (&self.name, role.and_then(Value::as_str)) {
                (Some(n), _) => n.clone(),
                (None, Some(r)) => format!("include_role : {r}"),
                (None, None) => self.action.clone(),
            };
        }
        let base = self.name.clone().unwrap_or_else(|| self.action.clone());
        match &self.scope.role {
            Some(r) => format!("{} : {base}", r.name),
            None => base,
        }
    }
}

/// True for actions the executor implements itself rather than a module.
pub fn is_internal_action(name: &str) -> bool {
    matches!(
        name,
        "meta" | "include_tasks" | "import_tasks" | "include_role" | "import_role"
    )
}

/// Whether `name` names something a task can run.
pub fn is_action(registry: &Registry, name: &str) -> bool {
    is_internal_action(Registry::canonical(name))
        || registry.contains(name)
        || not_implemented(name)
}

/// Modules of ansible-core (and of the collections roles use most) that this engine does
/// not implement. A task using one still parses, as in Ansible, so a role whose `zypper`
/// task is for SUSE only runs on Debian, where that task is skipped by its `when:`;
/// the task fails with a clear message only if it actually runs.
const NOT_IMPLEMENTED: &[&str] = &[
    "dnf5",
    "apt_key",
    "deb822_repository",
    "debconf",
    "dpkg_selections",
    "rpm_key",
    "yum_repository",
    "known_hosts",
    "cron",
    "hostname",
    "iptables",
    "reboot",
    "replace",
    "find",
    "uri",
    "assemble",
    "expect",
    "getent",
    "group_by",
    "package_facts",
    "service_facts",
    "systemd_service",
    "sysvinit",
    "subversion",
    "tempfile",
    "validate_argument_spec",
    "alternatives",
    "timezone",
    "parted",
    "filesystem",
    "npm",
    "pkgng",
    "zypper",
    "apk",
    "pacman",
    "snap",
    "ufw",
    "firewalld",
    "selinux",
    "seboolean",
    "htpasswd",
    "openssl_privatekey",
    "openssl_csr",
    "openssl_certificate",
    "x509_certificate",
    "luks_device",
    "crypttab",
    "docker_container",
];

/// Collections whose modules may be named in full (`community.general.pip`).
const NOT_IMPLEMENTED_PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "ansible.posix.",
    "community.general.",
    "community.crypto.",
];

/// Whether `name` is a known Ansible module this engine does not implement.
pub fn not_implemented(name: &str) -> bool {
    let short = NOT_IMPLEMENTED_PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    NOT_IMPLEMENTED.contains(&short)
}

#[cfg(test)]
mod tests;
