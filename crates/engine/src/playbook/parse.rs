//! YAML → plays, blocks and tasks, with Ansible's dynamic task shape: the module is
//! whichever key is not a task keyword.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{string_list, vars_map};
use super::roles::{RoleRef, RoleSet};
use super::task::{conditions, parse_task};
use super::*;
use crate::yaml::{self, Node, NodeKind};

/// Play keys that are not inheritable keywords.
const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "fact_path",
    "serial",
    "strategy",
    "max_fail_percentage",
    "force_handlers",
    "order",
    "tags",
    "pre_tasks",
    "roles",
    "tasks",
    "post_tasks",
    "handlers",
    "collections",
    "module_defaults",
    "debugger",
];

/// Parses playbooks and task files: knows the modules (to find a task's action) and
/// where roles live.
pub struct Loader {
    pub registry: Arc<Registry>,
    /// Extra role directories (`--roles-path`, `SPARK_OPENSTACK_ROLES_PATH`).
    pub roles_path: Vec<PathBuf>,
}

/// Reads a playbook file, following `import_playbook`.
pub fn load_playbook(path: &Path, loader: &Loader) -> Result<Playbook> {
    let mut plays = Vec::new();
    load_into(path, loader, &mut plays, 0)?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

fn load_into(path: &Path, loader: &Loader, plays: &mut Vec<Play>, depth: usize) -> Result<()> {
    let root = yaml::load_file(path)?;
    let items = match &root.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Null => return Ok(()),
        _ => {
            return Err(ParseError::at(
                &root.loc,
                format!(
                    "a playbook must be a list of plays, found {}",
                    root.type_name()
                ),
            ));
        }
    };
    for node in items {
        if let Some(target) = node
            .get("import_playbook")
            .or_else(|| node.get("ansible.builtin.import_playbook"))
        {
            let file = target.as_str().ok_or_else(|| {
                ParseError::at(&target.loc, "'import_playbook' needs a file name")
            })?;
            let full = relative_to(&node.loc, file);
            if depth > 20 {
                return Err(ParseError::at(
                    &node.loc,
                    "import_playbook nests too deeply",
                ));
            }
            if !full.exists() {
                return Err(ParseError::at(
                    &target.loc,
                    format!(
                        "cannot import playbook '{}': file not found",
                        full.display()
                    ),
                ));
            }
            load_into(&full, loader, plays, depth + 1)?;
            continue;
        }
        plays.push(parse_play(node, path, loader)?);
    }
    Ok(())
}

/// `file` relative to the directory of the file `loc` is in.
pub fn relative_to(loc: &Loc, file: &str) -> PathBuf {
    let p = PathBuf::from(file);
    if p.is_absolute() {
        return p;
    }
    loc.file().parent().unwrap_or(Path::new(".")).join(p)
}

/// A task file named by `import_tasks`/`include_tasks`, found where Ansible's
/// `path_dwim_relative` looks: next to the including file, then (in a role) the role's
/// `tasks/` and the role itself (`include_tasks: tasks/x.yml` in `tasks/main.yml` means
/// the role's `tasks/x.yml`). When none exists, the first candidate, for the error.
pub fn task_file(task: &super::Task, file: &str) -> PathBuf {
    let first = relative_to(&task.loc, file);
    if first.exists() {
        return first;
    }
    let mut candidates = Vec::new();
    if let Some(role) = &task.scope.role {
        candidates.push(role.path.join("tasks").join(file));
        candidates.push(role.path.join(file));
    }
    candidates.into_iter().find(|c| c.exists()).unwrap_or(first)
}

pub(super) fn expect_map<'a>(node: &'a Node, what: &str) -> Result<&'a [(String, Node)]> {
    node.as_map().ok_or_else(|| {
        ParseError::at(
            &node.loc,
            format!("{what} must be a mapping, found {}", node.type_name()),
        )
    })
}

pub(super) fn as_bool(node: &Node, key: &str) -> Result<bool> {
    // Ansible's keywords take its boolean strings too (`become: "yes"`).
    let parsed = match &node.kind {
        NodeKind::Bool(b) => Some(*b),
        NodeKind::Str(s) => crate::template::filters::parse_bool(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ParseError::at(
            &node.loc,
            format!("'{key}' must be a boolean, found {}", node.type_name()),
        )
    })
}

fn parse_play(node: &Node, path: &Path, loader: &Loader) -> Result<Play> {
    let entries = expect_map(node, "a play")?;
    let mut kw = Keywords::default();
    for (k, v) in entries {
        if PLAY_KEYS.contains(&k.as_str()) || kw.set(k, v)? {
            continue;
        }
        return Err(ParseError::at(
            &v.loc,
            format!("'{k}' is not a valid attribute for a Play"),
        ));
    }
    let hosts = match node.get("hosts") {
        None => {
            return Err(ParseError::at(
                &node.loc,
                "the field 'hosts' is required but was not set",
            ));
        }
        Some(h) => match h.to_json() {
            Value::String(s) => s,
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                return Err(ParseError::at(
                    &h.loc,
                    "'hosts' must be a pattern or a list",
                ));
            }
        },
    };
    let name = node
        .get("name")
        .map(scalar_string)
        .unwrap_or_else(|| hosts.clone());
    let tags = match node.get("tags") {
        Some(t) => string_list(t, "tags")?,
        None => Vec::new(),
    };
    let scope = Scope {
        kw: kw.clone(),
        tags: tags.clone(),
        ..Default::default()
    };
    let mut ctx = PlayCtx {
        loader,
        roles: RoleSet::default(),
        handlers: Vec::new(),
    };
    let section = |key: &str, ctx: &mut PlayCtx| -> Result<Vec<TaskItem>> {
        match node.get(key) {
            Some(n) => ctx.items(n, &scope),
            None => Ok(Vec::new()),
        }
    };
    let pre_tasks = section("pre_tasks", &mut ctx)?;
    let mut roles = Vec::new();
    if let Some(list) = node.get("roles") {
        let items = list
            .as_seq()
            .ok_or_else(|| ParseError::at(&list.loc, "'roles' must be a list"))?;
        for item in items {
            let r = RoleRef::parse(item)?;
            roles.extend(ctx.role_items(&r, &scope, true)?);
        }
    }
    let tasks = section("tasks", &mut ctx)?;
    let post_tasks = section("post_tasks", &mut ctx)?;
    if let Some(h) = node.get("handlers") {
        let handler_scope = Scope {
            is_handler: true,
            ..scope.clone()
        };
        let items = ctx.items(h, &handler_scope)?;
        flatten_tasks(&items, &mut ctx.handlers);
    }
    Ok(Play {
        name,
        hosts,
        loc: node.loc.clone(),
        path: path.to_path_buf(),
        vars: Arc::new(match node.get("vars") {
            Some(v) => vars_map(v)?,
            None => Map::new(),
        }),
        vars_prompt: match node.get("vars_prompt").and_then(Node::as_seq) {
            Some(items) => items
                .iter()
                .map(|i| {
                    let name = i.get("name").and_then(Node::as_str).ok_or_else(|| {
                        ParseError::at(&i.loc, "a vars_prompt entry needs 'name'")
                    })?;
                    Ok((
                        name.to_string(),
                        i.get("default").map(Node::to_json),
                        i.loc.clone(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        },
        vars_files: match node.get("vars_files") {
            Some(v) => match v.as_seq() {
                Some(items) => items.iter().map(|i| (i.to_json(), i.loc.clone())).collect(),
                None => vec![(v.to_json(), v.loc.clone())],
            },
            None => Vec::new(),
        },
        gather_facts: node.get("gather_facts").map(Node::to_json),
        serial: match node.get("serial") {
            Some(s) => parse_serial(s)?,
            None => Vec::new(),
        },
        strategy: match node.get("strategy").map(scalar_string).as_deref() {
            None | Some("linear") => Strategy::Linear,
            Some("free") | Some("host_pinned") => Strategy::Free,
            Some(other) => {
                let loc = &node
                    .get("strategy")
                    .map(|n| n.loc.clone())
                    .unwrap_or(node.loc.clone());
                return Err(ParseError::at(
                    loc,
                    format!("unknown strategy '{other}' (expected linear or free)"),
                ));
            }
        },
        any_errors_fatal: match node.get("any_errors_fatal") {
            Some(n) => as_bool(n, "any_errors_fatal")?,
            None => false,
        },
        max_fail_percentage: match node.get("max_fail_percentage") {
            Some(n) => Some(number(n, "max_fail_percentage")?),
            None => None,
        },
        force_handlers: match node.get("force_handlers") {
            Some(n) => as_bool(n, "force_handlers")?,
            None => false,
        },
        order: match node.get("order").map(scalar_string).as_deref() {
            None | Some("inventory") => HostOrder::Inventory,
            Some("reverse_inventory") => HostOrder::ReverseInventory,
            Some("sorted") => HostOrder::Sorted,
            Some("reverse_sorted") => HostOrder::ReverseSorted,
            Some("shuffle") => HostOrder::Shuffle,
            Some(other) => {
                return Err(ParseError::at(
                    &node.loc,
                    format!("unknown host order '{other}'"),
                ));
            }
        },
        kw,
        tags,
        pre_tasks,
        roles,
        tasks,
        post_tasks,
        handlers: ctx.handlers,
        role_list: ctx.roles.loaded(),
    })
}

pub(super) fn scalar_string(n: &Node) -> String {
    match n.to_json() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

pub(super) fn number(n: &Node, key: &str) -> Result<f64> {
    match &n.kind {
        NodeKind::Int(i) => Ok(*i as f64),
        NodeKind::Float(f) => Ok(*f),
        NodeKind::Str(s) => {
            s.trim().trim_end_matches('%').parse().map_err(|_| {
                ParseError::at(&n.loc, format!("'{key}' must be a number, found '{s}'"))
            })
        }
        _ => Err(ParseError::at(
            &n.loc,
            format!("'{key}' must be a number, found {}", n.type_name()),
        )),
    }
}

fn parse_serial(n: &Node) -> Result<Vec<SerialStep>> {
    let one = |n: &Node| -> Result<SerialStep> {
        match &n.kind {
            NodeKind::Int(i) if *i >= 0 => Ok(SerialStep::Count(*i as usize)),
            NodeKind::Str(s) if s.trim().ends_with('%') => {
                Ok(SerialStep::Percent(number(n, "serial")?))
            }
            NodeKind::Str(s) => s.trim().parse().map(SerialStep::Count).map_err(|_| {
                ParseError::at(
                    &n.loc,
                    format!("'serial' must be a count or a percentage, found '{s}'"),
                )
            }),
            _ => Err(ParseError::at(
                &n.loc,
                format!(
                    "'serial' must be a count or a percentage, found {}",
                    n.type_name()
                ),
            )),
        }
    };
    match n.as_seq() {
        Some(items) => items.iter().map(one).collect(),
        None => Ok(vec![one(n)?]),
    }
}

/// Collects the tasks of `items` (through blocks) into `out`, for handler lists.
fn flatten_tasks(items: &[TaskItem], out: &mut Vec<Arc<Task>>) {
    for item in items {
        match item {
            TaskItem::Task(t) => out.push(t.clone()),
            TaskItem::Block(b) => {
                flatten_tasks(&b.block, out);
                flatten_tasks(&b.rescue, out);
                flatten_tasks(&b.always, out);
            }
        }
    }
}

/// Per-play parsing state: roles already loaded (run once per play) and handlers found.
pub(super) struct PlayCtx<'a> {
    pub loader: &'a Loader,
    pub roles: RoleSet,
    pub handlers: Vec<Arc<Task>>,
}

impl PlayCtx<'_> {
    /// A list of tasks/blocks.
    pub fn items(&mut self, node: &Node, scope: &Scope) -> Result<Vec<TaskItem>> {
        let list = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => return Ok(Vec::new()),
            _ => {
                return Err(ParseError::at(
                    &node.loc,
                    format!("expected a list of tasks, found {}", node.type_name()),
                ));
            }
        };
        let mut out = Vec::new();
        for item in list {
            self.item(item, scope, &mut out)?;
        }
        Ok(out)
    }

    /// Reads a task file (for `import_tasks`, `include_tasks` and roles).
    pub fn task_file(&mut self, path: &Path, scope: &Scope, at: &Loc) -> Result<Vec<TaskItem>> {
        if !path.is_file() {
            return Err(ParseError::at(
                at,
                format!("could not find or access task file '{}'", path.display()),
            ));
        }
        let node = yaml::load_file(path)?;
        self.items(&node, scope)
    }

    fn item(&mut self, node: &Node, scope: &Scope, out: &mut Vec<TaskItem>) -> Result<()> {
        let entries = expect_map(node, "a task")?;
        if node.get("block").is_some() {
            out.push(TaskItem::Block(Arc::new(self.block(node, entries, scope)?)));
            return Ok(());
        }
        for bad in ["rescue", "always"] {
            if let Some(n) = node.get(bad) {
                return Err(ParseError::at(
                    &n.loc,
                    format!("'{bad}' is only valid in a block (with 'block:')"),
                ));
            }
        }
        let task = parse_task(node, entries, scope, &self.loader.registry)?;
        match task.action.as_str() {
            "import_tasks" => {
                let file = arg_file(&task)?;
                let path = task_file(&task, &file);
                let child = child_scope(&task);
                out.extend(self.task_file(&path, &child, &task.loc)?);
            }
            "import_role" => {
                let r = RoleRef::from_task(&task)?;
                let child = child_scope(&task);
                out.extend(self.role_items(&r, &child, false)?);
            }
            "include_role" => {
                // Loaded now so a missing role is a parse error, as in Ansible; its
                // handlers join the play's.
                let r = RoleRef::from_task(&task)?;
                self.roles
                    .load(&r, self.loader, &mut self.handlers, scope)?;
                out.push(TaskItem::Task(Arc::new(task)));
            }
            _ => out.push(TaskItem::Task(Arc::new(task))),
        }
        Ok(())
    }

    fn block(&mut self, node: &Node, entries: &[(String, Node)], scope: &Scope) -> Result<Block> {
        let mut own = Scope::default();
        for (k, v) in entries {
            match k.as_str() {
                "block" | "rescue" | "always" | "name" => {}
                "when" => own.when = conditions(v)?,
                "tags" => own.tags = string_list(v, "tags")?,
                "vars" => own.vars = vec![Arc::new(vars_map(v)?)],
                _ if own.kw.set(k, v)? => {}
                "debugger" | "module_defaults" | "collections" | "notify" => {}
                _ => {
                    return Err(ParseError::at(
                        &v.loc,
                        format!("'{k}' is not a valid attribute for a Block"),
                    ));
                }
            }
        }
        let inner = merge_scope(scope, &own);
        let section = |this: &mut Self, key: &str| -> Result<Vec<TaskItem>> {
            match node.get(key) {
                Some(n) => this.items(n, &inner),
                None => Ok(Vec::new()),
            }
        };
        Ok(Block {
            name: node.get("name").map(scalar_string),
            loc: node.loc.clone(),
            block: section(self, "block")?,
            rescue: section(self, "rescue")?,
            always: section(self, "always")?,
        })
    }
}

/// The scope children of a static import get: the import's own when/tags/keywords/vars.
fn child_scope(task: &Task) -> Scope {
    let mut s = task.scope.clone();
    if !task.vars.is_empty() {
        s.vars.push(task.vars.clone());
    }
    s
}

/// `parent` extended by `own` (a block's or a task's keywords, when, tags, vars).
pub(super) fn merge_scope(parent: &Scope, own: &Scope) -> Scope {
    let mut when = parent.when.clone();
    when.extend(own.when.iter().cloned());
    let mut tags = parent.tags.clone();
    for t in &own.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let mut vars = parent.vars.clone();
    vars.extend(own.vars.iter().cloned());
    Scope {
        kw: own.kw.inherit(&parent.kw),
        when,
        tags,
        vars,
        role: own.role.clone().or_else(|| parent.role.clone()),
        is_handler: parent.is_handler || own.is_handler,
    }
}

/// The file argument of `import_tasks`/`include_tasks`.
pub(super) fn arg_file(task: &Task) -> Result<String> {
    task.args
        .get("file")
        .or_else(|| task.args.get("_raw_params"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ParseError::at(&task.loc, format!("'{}' needs a file name", task.action)))
}
