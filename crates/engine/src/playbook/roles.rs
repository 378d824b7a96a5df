//! Roles: finding them, loading `defaults`/`vars`/`meta`/`tasks`/`handlers`, running
//! dependencies first and each role once per play (unless its parameters differ or it
//! sets `allow_duplicates`), and expanding dynamic includes at run time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{string_list, vars_map};
use super::parse::{PlayCtx, arg_file, merge_scope, relative_to};
use super::*;
use crate::yaml::{self, Node};

/// A loaded role, shared by its tasks: name, directory and its variables.
#[derive(Debug)]
pub struct RoleInfo {
    pub name: String,
    pub path: PathBuf,
    /// `defaults/` (lowest precedence).
    pub defaults: Arc<Map<String, Value>>,
    /// `vars/` (above play vars).
    pub vars: Arc<Map<String, Value>>,
    /// Parameters given where the role is used (above set_fact).
    pub params: Arc<Map<String, Value>>,
}

/// A use of a role: a `roles:` entry, `import_role`, `include_role` or a meta dependency.
#[derive(Debug)]
pub(super) struct RoleRef {
    name: String,
    loc: Loc,
    params: Map<String, Value>,
    own: Scope,
    tasks_from: String,
    defaults_from: String,
    vars_from: String,
}

const ROLE_ENTRY_KEYS: &[&str] = &["role", "name", "vars", "when", "tags"];

impl RoleRef {
    /// A `roles:` or `dependencies:` entry: a name, or a mapping with `role:` and params.
    pub fn parse(node: &Node) -> Result<RoleRef> {
        if let Some(name) = node.as_str() {
            return Ok(RoleRef::named(name, &node.loc));
        }
        let entries = node.as_map().ok_or_else(|| {
            ParseError::at(
                &node.loc,
                format!(
                    "a role must be a name or a mapping, found {}",
                    node.type_name()
                ),
            )
        })?;
        let name = node
            .get("role")
            .or_else(|| node.get("name"))
            .and_then(Node::as_str)
            .ok_or_else(|| ParseError::at(&node.loc, "a role entry needs 'role: NAME'"))?;
        let mut r = RoleRef::named(name, &node.loc);
        for (k, v) in entries {
            match k.as_str() {
                "role" | "name" => {}
                "when" => {
                    r.own.when = match v.to_json() {
                        Value::Array(items) => items
                            .iter()
                            .map(|i| Cond {
                                expr: value_text(i),
                                loc: v.loc.clone(),
                            })
                            .collect(),
                        other => vec![Cond {
                            expr: value_text(&other),
                            loc: v.loc.clone(),
                        }],
                    }
                }
                "tags" => r.own.tags = string_list(v, "tags")?,
                "vars" => r.params.extend(vars_map(v)?),
                _ if r.own.kw.set(k, v)? => {}
                _ => {
                    r.params.insert(k.clone(), v.to_json());
                }
            }
        }
        let _ = ROLE_ENTRY_KEYS;
        Ok(r)
    }

    fn named(name: &str, loc: &Loc) -> RoleRef {
        RoleRef {
            name: name.to_string(),
            loc: loc.clone(),
            params: Map::new(),
            own: Scope::default(),
            tasks_from: "main".into(),
            defaults_from: "main".into(),
            vars_from: "main".into(),
        }
    }

    /// `import_role`/`include_role` arguments: `name`, `tasks_from`, ...; task vars are params.
    pub fn from_task(task: &Task) -> Result<RoleRef> {
        let name = task
            .args
            .get("name")
            .or_else(|| task.args.get("role"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ParseError::at(&task.loc, format!("'{}' needs 'name: ROLE'", task.action))
            })?;
        let mut r = RoleRef::named(name, &task.loc);
        let get = |k: &str| task.args.get(k).and_then(Value::as_str).map(str::to_string);
        r.tasks_from = get("tasks_from").unwrap_or_else(|| "main".into());
        r.defaults_from = get("defaults_from").unwrap_or_else(|| "main".into());
        r.vars_from = get("vars_from").unwrap_or_else(|| "main".into());
        r.params = (*task.vars).clone();
        Ok(r)
    }

    /// Identity for "run once per play": the name and the parameters.
    fn key(&self) -> String {
        format!(
            "{}\u{0}{}\u{0}{}",
            self.name,
            self.tasks_from,
            Value::Object(self.params.clone())
        )
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// The roles a play has loaded, so each runs once and its handlers load once.
#[derive(Default)]
pub(super) struct RoleSet {
    ran: HashSet<String>,
    handlers_loaded: HashSet<PathBuf>,
    loaded: Vec<Arc<RoleInfo>>,
}

impl RoleSet {
    pub fn loaded(&self) -> Vec<Arc<RoleInfo>> {
        self.loaded.clone()
    }

    /// Loads a role's variables and handlers (not its tasks); returns the role.
    pub fn load(
        &mut self,
        r: &RoleRef,
        loader: &Loader,
        handlers: &mut Vec<Arc<Task>>,
        scope: &Scope,
    ) -> Result<Arc<RoleInfo>> {
        self.load_with_deps(r, loader, handlers, scope, &[])
    }

    /// Loads a role whose meta dependencies are `deps`: as in Ansible, the role's
    /// defaults and vars include its dependencies' (its own win), so the role sees them
    /// wherever it runs, `include_role` included.
    fn load_with_deps(
        &mut self,
        r: &RoleRef,
        loader: &Loader,
        handlers: &mut Vec<Arc<Task>>,
        scope: &Scope,
        deps: &[Arc<RoleInfo>],
    ) -> Result<Arc<RoleInfo>> {
        let path = find_role(&r.name, &r.loc, loader)?;
        let with_deps = |layer: fn(&RoleInfo) -> &Map<String, Value>, own: Map<String, Value>| {
            let mut m = Map::new();
            for d in deps {
                m.extend(layer(d).iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            m.extend(own);
            Arc::new(m)
        };
        let info = Arc::new(RoleInfo {
            name: r.name.clone(),
            defaults: with_deps(
                |i| &i.defaults,
                load_vars_dir(&path.join("defaults"), &r.defaults_from)?,
            ),
            vars: with_deps(
                |i| &i.vars,
                load_vars_dir(&path.join("vars"), &r.vars_from)?,
            ),
            params: Arc::new(r.params.clone()),
            path: path.clone(),
        });
        if self.handlers_loaded.insert(path.clone())
            && let Some(file) = main_file(&path.join("handlers"), "main")
        {
            let hscope = Scope {
                role: Some(info.clone()),
                is_handler: true,
                kw: scope.kw.clone(),
                ..Default::default()
            };
            let node = yaml::load_file(&file)?;
            let mut sub = PlayCtx {
                loader,
                roles: RoleSet::default(),
                handlers: Vec::new(),
            };
            let items = sub.items(&node, &hscope)?;
            collect(&items, handlers);
        }
        self.loaded.push(info.clone());
        Ok(info)
    }
}

fn collect(items: &[TaskItem], out: &mut Vec<Arc<Task>>) {
    for i in items {
        match i {
            TaskItem::Task(t) => out.push(t.clone()),
            TaskItem::Block(b) => {
                collect(&b.block, out);
                collect(&b.rescue, out);
                collect(&b.always, out);
            }
        }
    }
}

impl PlayCtx<'_> {
    /// A role's tasks, after its dependencies' tasks. Empty when the role already ran in
    /// this play with the same parameters (and does not allow duplicates).
    pub(super) fn role_items(
        &mut self,
        r: &RoleRef,
        scope: &Scope,
        _static_: bool,
    ) -> Result<Vec<TaskItem>> {
        Ok(self.role_and_items(r, scope)?.1)
    }

    /// The role (its variables merged with its dependencies') and its tasks.
    fn role_and_items(
        &mut self,
        r: &RoleRef,
        scope: &Scope,
    ) -> Result<(Arc<RoleInfo>, Vec<TaskItem>)> {
        let path = find_role(&r.name, &r.loc, self.loader)?;
        let meta = match main_file(&path.join("meta"), "main") {
            Some(f) => yaml::load_file(&f)?,
            None => Node {
                kind: crate::yaml::NodeKind::Null,
                loc: r.loc.clone(),
            },
        };
        let allow_dup = matches!(
            meta.get("allow_duplicates").map(|n| &n.kind),
            Some(crate::yaml::NodeKind::Bool(true))
        );
        let skip = !self.roles.ran.insert(r.key()) && !allow_dup;
        let mut out = Vec::new();
        let mut dep_infos = Vec::new();
        if let Some(deps) = meta.get("dependencies").and_then(Node::as_seq) {
            for d in deps {
                let dep = RoleRef::parse(d)?;
                let (info, items) = self.role_and_items(&dep, scope)?;
                dep_infos.push(info);
                out.extend(items);
            }
        }
        if skip {
            // Already ran: no tasks, but its variables for a role that depends on it.
            let mut unrecorded = RoleSet::default();
            let info =
                unrecorded.load_with_deps(r, self.loader, &mut Vec::new(), scope, &dep_infos)?;
            return Ok((info, Vec::new()));
        }
        let info =
            self.roles
                .load_with_deps(r, self.loader, &mut self.handlers, scope, &dep_infos)?;
        let own = Scope {
            role: Some(info.clone()),
            ..r.own.clone()
        };
        let inner = merge_scope(scope, &own);
        if let Some(file) = main_file(&path.join("tasks"), &r.tasks_from) {
            out.extend(self.task_file(&file, &inner, &r.loc)?);
        } else if r.tasks_from != "main" {
            return Err(ParseError::at(
                &r.loc,
                format!(
                    "role '{}' has no tasks file '{}' in {}",
                    r.name,
                    r.tasks_from,
                    path.join("tasks").display()
                ),
            ));
        }
        Ok((info, out))
    }
}

/// `dir/name.yml`, `dir/name.yaml` or `dir/name`.
fn main_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        format!("{name}.yml"),
        format!("{name}.yaml"),
        name.to_string(),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.is_file())
}

/// `defaults/` or `vars/`: the main file, or every YAML file of a `main/` directory in
/// name order.
fn load_vars_dir(dir: &Path, name: &str) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(f) = main_file(dir, name) {
        merge_file(&f, &mut out)?;
    } else if dir.join(name).is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(name))
            .map_err(|e| ParseError {
                msg: format!("{}: {e}", dir.display()),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yml" | "yaml" | "json")
                )
            })
            .collect();
        files.sort();
        for f in files {
            merge_file(&f, &mut out)?;
        }
    }
    Ok(out)
}

fn merge_file(f: &Path, out: &mut Map<String, Value>) -> Result<()> {
    let node = yaml::load_file(f)?;
    out.extend(vars_map(&node)?);
    Ok(())
}

/// Role search: a path as given, `roles/` next to the playbook, the roles path, then the
/// playbook directory itself.
fn find_role(name: &str, at: &Loc, loader: &Loader) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    let direct = relative_to(at, name);
    if name.contains('/') {
        candidates.push(direct.clone());
    }
    // `at` may be inside a role (dependency or import); search upward for a `roles/` dir.
    let mut dir = at.file().parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        candidates.push(d.join("roles").join(name));
        dir = d.parent().map(Path::to_path_buf);
        if candidates.len() > 6 {
            break;
        }
    }
    for p in &loader.roles_path {
        candidates.push(p.join(name));
    }
    candidates.push(at.file().parent().unwrap_or(Path::new(".")).join(name));
    if let Some(found) = candidates.iter().find(|p| p.is_dir()) {
        return Ok(found.clone());
    }
    let searched: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ParseError::at(
        at,
        format!("the role '{name}' was not found in: {}", searched.join(":")),
    ))
}

/// Expands an `include_tasks` at run time (file already templated) into tasks that
/// inherit the include's parents and get its `vars` as include params.
pub fn expand_include_tasks(task: &Task, file: &str, loader: &Loader) -> Result<Vec<TaskItem>> {
    let path = super::parse::task_file(task, file);
    let mut scope = (*task.parent_scope).clone();
    let mut params = (*task.vars).clone();
    for (k, v) in &task.args {
        if !matches!(k.as_str(), "file" | "_raw_params" | "apply") {
            params.insert(k.clone(), v.clone());
        }
    }
    if !params.is_empty() {
        scope.vars.push(Arc::new(params));
    }
    apply_keywords(task, &mut scope)?;
    let mut ctx = PlayCtx {
        loader,
        roles: RoleSet::default(),
        handlers: Vec::new(),
    };
    ctx.task_file(&path, &scope, &task.loc)
}

/// Expands an `include_role` at run time.
pub fn expand_include_role(task: &Task, loader: &Loader) -> Result<Vec<TaskItem>> {
    let r = RoleRef::from_task(task)?;
    let mut scope = (*task.parent_scope).clone();
    apply_keywords(task, &mut scope)?;
    let mut ctx = PlayCtx {
        loader,
        roles: RoleSet::default(),
        handlers: Vec::new(),
    };
    ctx.role_items(&r, &scope, false)
}

/// `apply: {tags: ..., become: ...}` on an include applies to the included tasks.
fn apply_keywords(task: &Task, scope: &mut Scope) -> Result<()> {
    let Some(Value::Object(apply)) = task.args.get("apply") else {
        return Ok(());
    };
    let text = serde_json::to_string(apply).unwrap_or_default();
    let node = yaml::load_str(&text, task.loc.file())?;
    let mut own = Scope::default();
    for (k, v) in node.as_map().unwrap_or(&[]) {
        if k == "tags" {
            own.tags = string_list(v, "tags")?;
        } else if !own.kw.set(k, v)? {
            return Err(ParseError::at(
                &task.loc,
                format!("'{k}' cannot be used in 'apply'"),
            ));
        }
    }
    *scope = merge_scope(scope, &own);
    let _ = arg_file;
    Ok(())
}
