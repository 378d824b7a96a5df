//! Checks made before any host is contacted, on every task the playbooks load (not on the
//! files of dynamic `include_*`, which exist only at run time): arguments a module does
//! not accept, required arguments that are missing, values outside a closed set, and a
//! controller-side `src` file or template that cannot be found. Each error names the
//! `file:line:column` of the argument (of the task for a missing one) and, for a typo,
//! the closest valid word.
//!
//! Ansible finds these only when the task runs, after the tasks before it changed the
//! hosts; a run that would fail half-way is better refused whole. What a template decides
//! (`{{ }}` in a name or value) is left to run time, and so is `src` when the run writes
//! on the controller itself (`fetch`, `delegate_to: localhost`): the file may be made by
//! then.

use std::path::PathBuf;

use serde_json::Value;

use crate::modules::ArgSpec;
use crate::modules::args::{did_you_mean, unknown_argument};
use crate::modules::registry::Registry;
use crate::playbook::{ParseError, Playbook, Task, TaskItem};
use crate::template::filters::parse_bool;
use crate::template::lookup::plugins::find_file;
use crate::yaml::Loc;

/// Every problem found, one message each, in playbook order.
pub fn check(books: &[Playbook], registry: &Registry) -> Vec<String> {
    let mut tasks: Vec<(PathBuf, &Task)> = Vec::new();
    for book in books {
        let dir = super::play::abs(book.dir());
        for play in &book.plays {
            let mut mine = Vec::new();
            for items in [&play.pre_tasks, &play.roles, &play.tasks, &play.post_tasks] {
                collect(items, &mut mine);
            }
            mine.extend(play.handlers.iter().map(|h| &**h));
            tasks.extend(mine.into_iter().map(|t| (dir.clone(), t)));
        }
    }
    let check_src = !tasks.iter().any(|(_, t)| writes_on_controller(t));
    let mut out: Vec<String> = Vec::new();
    for (dir, t) in tasks {
        let Some(spec) = registry.get(&t.action).and_then(|m| m.spec()) else {
            continue;
        };
        for (loc, msg) in check_task(t, &spec, check_src.then_some(dir.as_path())) {
            let msg = ParseError::at(loc, msg).msg;
            if !out.contains(&msg) {
                out.push(msg);
            }
        }
    }
    out
}

fn collect<'a>(items: &'a [TaskItem], out: &mut Vec<&'a Task>) {
    for item in items {
        match item {
            TaskItem::Task(t) => out.push(t),
            TaskItem::Block(b) => {
                collect(&b.block, out);
                collect(&b.rescue, out);
                collect(&b.always, out);
            }
        }
    }
}

/// A task that may leave files on the controller for a later `src` to find.
fn writes_on_controller(t: &Task) -> bool {
    let local = |v: &Value| matches!(v.as_str(), Some("localhost" | "127.0.0.1"));
    t.action == "fetch" || t.scope.kw.delegate_to.as_ref().is_some_and(local)
}

fn literal(v: &Value) -> Option<&str> {
    v.as_str()
        .filter(|s| !s.contains("{{") && !s.contains("{%"))
}

/// The problems of one task's arguments against its module's `spec`, each where it was
/// written (the argument, else the task); `book_dir` is `None` when `src` is not to be
/// checked.
pub(crate) fn check_task<'t>(
    t: &'t Task,
    spec: &ArgSpec,
    book_dir: Option<&std::path::Path>,
) -> Vec<(&'t Loc, String)> {
    let module = t.action.as_str();
    let at = |key: &str| t.arg_locs.get(key).unwrap_or(&t.loc);
    let mut out = Vec::new();
    for key in t.args.keys().filter(|k| !k.contains("{{")) {
        out.extend(unknown_argument(module, key, spec.known).map(|m| (at(key), m)));
    }
    for group in spec.required {
        if !group.iter().any(|k| t.args.contains_key(*k)) {
            let msg = format!("{module}: missing required arguments: {}", group[0]);
            out.push((&t.loc, msg));
        }
    }
    for (name, allowed) in spec.choices {
        if let Some(v) = t.args.get(*name).and_then(literal)
            && !allowed.contains(&v)
        {
            let hint = did_you_mean(v, allowed)
                .map(|k| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            let msg = format!(
                "{module}: value of {name} must be one of: {}, got: {v}{hint}",
                allowed.join(", ")
            );
            out.push((at(name), msg));
        }
    }
    if let (Some(dir), Some(base)) = (spec.src_dir, book_dir)
        && let Some(src) = t.args.get("src").and_then(literal)
        && !src.starts_with('/')
        && !src.starts_with('~')
        && !remote_src(t)
    {
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(r) = &t.scope.role {
            paths.push(super::play::abs(&r.path));
        }
        if let Some(d) = t.loc.file().parent() {
            paths.push(super::play::abs(d));
        }
        if find_file(&paths, base, Some(dir), src, t.scope.role.is_some()).is_none() {
            let msg = format!(
                "{module}: could not find or access '{src}': not in {dir}/ of the role or of the playbook, nor next to them"
            );
            out.push((at("src"), msg));
        }
    }
    out
}

/// Whether `src` is on the host: `remote_src` (or unarchive's old `copy: no`) set to
/// anything but a literal false.
fn remote_src(t: &Task) -> bool {
    let literal_bool = |v: &Value| match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        _ => None,
    };
    let remote = t
        .args
        .get("remote_src")
        .map(|v| literal_bool(v) != Some(false));
    let copy_no = t.args.get("copy").map(|v| literal_bool(v) != Some(true));
    remote.unwrap_or(false) || copy_no.unwrap_or(false)
}

#[cfg(test)]
mod tests;
