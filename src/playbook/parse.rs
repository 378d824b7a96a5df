//! YAML → plays, blocks and tasks, with Ansible's dynamic task shape: the module is
//! whichever key is not a task keyword.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{string_list, vars_map};
use super::roles::{RoleRef, RoleSet};
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

fn expect_map<'a>(node: &'a Node, what: &str) -> Result<&'a [(String, Node)]> {
    node.as_map().ok_or_else(|| {
        ParseError::at(
            &node.loc,
            format!("{what} must be a mapping, found {}", node.type_name()),
        )
    })
}

fn as_bool(node: &Node, key: &str) -> Result<bool> {
    match node.kind {
        NodeKind::Bool(b) => Ok(b),
        _ => Err(ParseError::at(
            &node.loc,
            format!("'{key}' must be a boolean, found {}", node.type_name()),
        )),
    }
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
        .map(|n| scalar_string(n))
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

fn scalar_string(n: &Node) -> String {
    match n.to_json() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn number(n: &Node, key: &str) -> Result<f64> {
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
                let path = relative_to(&task.loc, &file);
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

/// `when:`-style value: a string, a boolean or a list of them.
fn conditions(node: &Node) -> Result<Vec<Cond>> {
    let one = |n: &Node| -> Result<Cond> {
        let expr = match &n.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            NodeKind::Int(i) => i.to_string(),
            _ => {
                return Err(ParseError::at(
                    &n.loc,
                    format!("a condition must be a string, found {}", n.type_name()),
                ));
            }
        };
        Ok(Cond {
            expr,
            loc: n.loc.clone(),
        })
    };
    match &node.kind {
        NodeKind::Seq(items) => items.iter().map(one).collect(),
        NodeKind::Null => Ok(Vec::new()),
        _ => Ok(vec![one(node)?]),
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

/// Parses one task mapping.
pub(super) fn parse_task(
    node: &Node,
    entries: &[(String, Node)],
    parent: &Scope,
    registry: &Registry,
) -> Result<Task> {
    let mut own = Scope::default();
    let mut action: Option<(String, &Node)> = None;
    let mut args = Map::new();
    let mut unknown: Option<(&str, &Node)> = None;
    let mut loop_: Option<LoopSpec> = None;
    let mut t = TaskFields::default();
    for (k, v) in entries {
        let key = k.as_str();
        if let Some(lookup) = key.strip_prefix("with_") {
            let kind = match lookup {
                "items" => LoopKind::Items,
                "list" => LoopKind::List,
                "dict" => LoopKind::Dict,
                "fileglob" => LoopKind::Fileglob,
                other => LoopKind::Lookup(other.to_string()),
            };
            set_loop(&mut loop_, kind, v)?;
            continue;
        }
        match key {
            "name" => t.name = Some(scalar_string(v)),
            "when" => own.when = conditions(v)?,
            "loop" => set_loop(&mut loop_, LoopKind::Loop, v)?,
            "loop_control" => t.loop_control = loop_control(v)?,
            "register" => {
                t.register =
                    Some(v.as_str().map(str::to_string).ok_or_else(|| {
                        ParseError::at(&v.loc, "'register' must be a variable name")
                    })?)
            }
            "notify" => t.notify = string_list(v, "notify")?,
            "listen" => t.listen = string_list(v, "listen")?,
            "changed_when" => t.changed_when = conditions(v)?,
            "failed_when" => t.failed_when = conditions(v)?,
            "until" => t.until = conditions(v)?,
            "retries" => t.retries = Some(v.to_json()),
            "delay" => t.delay = Some(v.to_json()),
            "tags" => own.tags = string_list(v, "tags")?,
            "vars" => t.vars = vars_map(v)?,
            "args" => match v.to_json() {
                Value::Object(m) => args.extend(m),
                Value::Null => {}
                _ => return Err(ParseError::at(&v.loc, "'args' must be a mapping")),
            },
            "action" | "local_action" => {
                let (name, a) = action_form(v)?;
                if key == "local_action" {
                    own.kw.delegate_to = Some(Value::String("localhost".into()));
                }
                set_action(&mut action, name, v)?;
                args.extend(a);
            }
            "debugger" | "module_defaults" | "async" | "poll" | "collections" => {}
            _ if own.kw.set(key, v)? => {}
            _ if is_action(registry, key) => {
                set_action(&mut action, Registry::canonical(key).to_string(), v)?;
                args.extend(module_args(registry, Registry::canonical(key), v)?);
            }
            _ => {
                if unknown.is_none() {
                    unknown = Some((key, v));
                }
            }
        }
    }
    let (action, _) = match (action, unknown) {
        (Some(a), None) => a,
        (Some(_), Some((k, v))) => {
            return Err(ParseError::at(
                &v.loc,
                format!("'{k}' is not a valid attribute for a Task"),
            ));
        }
        (None, Some((k, v))) => {
            let mut msg = format!(
                "couldn't resolve module/action '{k}'. This often indicates a misspelling, missing collection, or incorrect module path."
            );
            if let Some(s) = registry.suggest(k) {
                msg.push_str(&format!(" Did you mean '{s}'?"));
            }
            let _ = v;
            return Err(ParseError::at(&node.loc, msg));
        }
        (None, None) => {
            return Err(ParseError::at(
                &node.loc,
                "no module/action detected in task",
            ));
        }
    };
    if loop_.is_none() && t.loop_control.loop_var.is_some() {
        // Harmless in Ansible; nothing to do.
    }
    let scope = merge_scope(parent, &own);
    Ok(Task {
        name: t.name,
        action,
        args,
        loc: node.loc.clone(),
        scope,
        parent_scope: Arc::new(parent.clone()),
        vars: Arc::new(t.vars),
        loop_,
        loop_control: t.loop_control,
        register: t.register,
        notify: t.notify,
        listen: t.listen,
        changed_when: t.changed_when,
        failed_when: t.failed_when,
        until: t.until,
        retries: t.retries,
        delay: t.delay,
    })
}

#[derive(Default)]
struct TaskFields {
    name: Option<String>,
    loop_control: LoopControl,
    register: Option<String>,
    notify: Vec<String>,
    listen: Vec<String>,
    changed_when: Vec<Cond>,
    failed_when: Vec<Cond>,
    until: Vec<Cond>,
    retries: Option<Value>,
    delay: Option<Value>,
    vars: Map<String, Value>,
}

fn set_loop(slot: &mut Option<LoopSpec>, kind: LoopKind, v: &Node) -> Result<()> {
    if slot.is_some() {
        return Err(ParseError::at(
            &v.loc,
            "a task can have only one loop (loop or with_*)",
        ));
    }
    *slot = Some(LoopSpec {
        kind,
        value: v.to_json(),
    });
    Ok(())
}

fn set_action<'a>(slot: &mut Option<(String, &'a Node)>, name: String, v: &'a Node) -> Result<()> {
    if let Some((prev, _)) = slot {
        return Err(ParseError::at(
            &v.loc,
            format!("conflicting action statements: {prev}, {name}"),
        ));
    }
    *slot = Some((name, v));
    Ok(())
}

fn loop_control(v: &Node) -> Result<LoopControl> {
    let entries = expect_map(v, "'loop_control'")?;
    let mut lc = LoopControl::default();
    for (k, n) in entries {
        match k.as_str() {
            "loop_var" => lc.loop_var = Some(scalar_string(n)),
            "index_var" => lc.index_var = Some(scalar_string(n)),
            "label" => lc.label = Some(n.to_json()),
            "pause" => lc.pause = Some(number(n, "pause")?),
            "extended" => lc.extended = as_bool(n, "extended")?,
            "extended_allitems" | "break_when" => {}
            _ => {
                return Err(ParseError::at(
                    &n.loc,
                    format!("'{k}' is not a valid attribute for loop_control"),
                ));
            }
        }
    }
    Ok(lc)
}

/// `action: copy src=a dest=b` or `action: {module: copy, src: a}`.
fn action_form(v: &Node) -> Result<(String, Map<String, Value>)> {
    match v.to_json() {
        Value::String(s) => {
            let s = s.trim();
            let (name, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
            let name = Registry::canonical(name).to_string();
            Ok((name.clone(), parse_kv(&name, rest.trim(), None)))
        }
        Value::Object(mut m) => {
            let name = m
                .remove("module")
                .and_then(|n| n.as_str().map(str::to_string))
                .ok_or_else(|| ParseError::at(&v.loc, "'action' needs a 'module' key"))?;
            Ok((Registry::canonical(&name).to_string(), m))
        }
        _ => Err(ParseError::at(
            &v.loc,
            "'action' must be a string or a mapping",
        )),
    }
}

/// Arguments written under the module key: a mapping, or a free-form string.
fn module_args(registry: &Registry, name: &str, v: &Node) -> Result<Map<String, Value>> {
    match v.to_json() {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::String(s) => {
            let free = registry.get(name).and_then(|m| m.free_form());
            Ok(parse_kv(name, &s, free))
        }
        other if matches!(name, "meta" | "include_tasks" | "import_tasks") => {
            let mut m = Map::new();
            m.insert("_raw_params".into(), other);
            Ok(m)
        }
        _ => Err(ParseError::at(
            &v.loc,
            format!(
                "the arguments of '{name}' must be a mapping or a string, found {}",
                v.type_name()
            ),
        )),
    }
}

/// Modules whose free-form string is a command line; only a few `k=v` words are options.
const COMMAND_LIKE: &[&str] = &["command", "shell", "raw", "script"];
const COMMAND_OPTIONS: &[&str] = &["chdir", "creates", "removes", "executable", "stdin", "warn"];

/// Ansible's `k=v` argument strings. For command-like modules the rest of the line is the
/// command (`_raw_params`, or the module's free-form key).
pub(super) fn parse_kv(name: &str, s: &str, free_form: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    let raw_key = free_form.unwrap_or("_raw_params");
    let words = shell_words::split(s)
        .unwrap_or_else(|_| s.split_whitespace().map(str::to_string).collect());
    let command_like = COMMAND_LIKE.contains(&name);
    if command_like {
        for w in &words {
            if let Some((k, v)) = w.split_once('=')
                && COMMAND_OPTIONS.contains(&k)
            {
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
        }
        let rest = s_without_options(s, &out).unwrap_or_else(|| s.trim().to_string());
        if !rest.is_empty() {
            out.insert(raw_key.to_string(), Value::String(rest));
        }
        return out;
    }
    let mut free = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                out.insert(k.to_string(), Value::String(v.to_string()));
            }
            _ => free.push(w),
        }
    }
    if !free.is_empty() {
        out.insert(raw_key.to_string(), Value::String(free.join(" ")));
    }
    out
}

/// The command text with option words removed, keeping the user's own spacing and quoting.
fn s_without_options(s: &str, opts: &Map<String, Value>) -> Option<String> {
    let mut text = s.to_string();
    for k in opts.keys() {
        let pat = format!("{k}=");
        let pos = text.find(&pat)?;
        let end = text[pos..]
            .find(char::is_whitespace)
            .map(|e| pos + e)
            .unwrap_or(text.len());
        text.replace_range(pos..end, "");
    }
    Some(text.trim().to_string())
}
