//! A play: its hosts, `serial` batches, sections and handlers, blocks with
//! rescue/always, and the linear and free strategies.
//!
//! The batch itself (strategies, blocks, handlers) runs in `batch.rs`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::batch::{Batch, HostRun};
use super::hosts::{Host, Inventory};
use super::task::OMIT;
use super::vars::{PlayScope, Vars};
use super::{RunOptions, Shared, tags};
use crate::playbook::{HostOrder, Play, Playbook, RoleInfo, SerialStep, Task, TaskItem};
use crate::template::Templar;
use crate::template::pyjson::py_str;

/// Runs one play of `book`. An `Err` is a run-stopping error (bad `vars_files`).
pub(super) async fn run_play(
    shared: &Arc<Shared>,
    book: &Playbook,
    play: &Play,
) -> Result<(), String> {
    let t = &shared.templar;
    let mut base = (*play.vars).clone();
    base.extend(shared.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let ctx = Templar::context(&base);
    let pattern = t
        .render_str(&play.hosts, &ctx)
        .map_err(|e| format!("{}: hosts: {}", play.loc, e.msg))?;
    let name = t
        .render_str(&play.name, &ctx)
        .unwrap_or_else(|_| play.name.clone());
    let inventory = shared.inventory();
    let mut hosts = select(&inventory, &pattern, &shared.opts);
    if let Ok(dead) = shared.dead_hosts.lock() {
        hosts.retain(|h| !dead.contains(&h.name));
    }
    order_hosts(&mut hosts, play.order);
    let check = match &play.kw.check_mode {
        Some(Value::Bool(b)) => *b,
        _ => shared.opts.check,
    };
    if hosts.is_empty() {
        shared.output.play_start(&name, check);
        shared.output.warning(&format!(
            "Could not match supplied host pattern, ignoring: {pattern}"
        ));
        shared.output.notice("skipping: no hosts matched");
        return Ok(());
    }
    let mut files_vars = load_vars_files(play, &base, t)?;
    for (prompt, default, loc) in &play.vars_prompt {
        if shared.extra.contains_key(prompt) {
            continue;
        }
        match default {
            Some(v) => {
                files_vars.insert(prompt.clone(), v.clone());
            }
            None => {
                return Err(format!(
                    "{loc}: vars_prompt '{prompt}' has no default and runs are not interactive; pass -e {prompt}=VALUE"
                ));
            }
        }
    }
    let vars_files = Arc::new(files_vars);
    let all_names: Vec<Value> = hosts
        .iter()
        .map(|h| Value::String(h.name.clone()))
        .collect();
    let mut inventory_hosts: HashMap<String, Arc<Host>> = inventory
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.clone()))
        .collect();
    for h in &hosts {
        inventory_hosts
            .entry(h.name.clone())
            .or_insert_with(|| h.clone());
    }
    let groups = inventory.groups_value();
    let merged = |layer: fn(&RoleInfo) -> &Map<String, Value>| {
        let mut m = Map::new();
        for r in &play.role_list {
            m.extend(layer(r).iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Arc::new(m)
    };
    let roles_defaults = merged(|r| &r.defaults);
    let roles_vars = merged(|r| &r.vars);
    for batch_hosts in batches(&hosts, &play.serial) {
        // Ansible prints the play banner again for every `serial` batch.
        shared.output.play_start(&name, check);
        let batch_host_names: Vec<String> = batch_hosts.iter().map(|h| h.name.clone()).collect();
        shared.output.play_hosts(&batch_host_names);
        let batch_names: Vec<Value> = batch_hosts
            .iter()
            .map(|h| Value::String(h.name.clone()))
            .collect();
        let mut magic = Map::new();
        magic.insert("groups".into(), groups.clone());
        magic.insert("play_hosts".into(), Value::Array(batch_names.clone()));
        magic.insert("ansible_play_hosts".into(), Value::Array(all_names.clone()));
        magic.insert(
            "ansible_play_hosts_all".into(),
            Value::Array(all_names.clone()),
        );
        magic.insert("ansible_play_batch".into(), Value::Array(batch_names));
        magic.insert("ansible_play_name".into(), Value::String(name.clone()));
        magic.insert(
            "playbook_dir".into(),
            Value::String(abs(book.dir()).display().to_string()),
        );
        magic.insert("ansible_check_mode".into(), Value::Bool(check));
        magic.insert("ansible_diff_mode".into(), Value::Bool(shared.opts.diff));
        magic.insert("ansible_verbosity".into(), json!(shared.opts.verbosity));
        magic.insert(
            "ansible_run_tags".into(),
            json!(if shared.opts.tags.is_empty() {
                vec!["all".to_string()]
            } else {
                shared.opts.tags.clone()
            }),
        );
        magic.insert("ansible_skip_tags".into(), json!(shared.opts.skip_tags));
        magic.insert("omit".into(), Value::String(OMIT.into()));
        let scope = Arc::new(PlayScope {
            templar: shared.templar.clone(),
            roles_defaults: roles_defaults.clone(),
            roles_vars: roles_vars.clone(),
            play_vars: play.vars.clone(),
            vars_files: vars_files.clone(),
            extra: shared.extra.clone(),
            magic,
            hosts: inventory_hosts.clone(),
            store: shared.store.clone(),
        });
        let batch = Batch {
            shared,
            play,
            book_dir: abs(book.dir()),
            scope,
            state: batch_hosts
                .iter()
                .map(|_| Mutex::new(HostRun::default()))
                .collect(),
            hosts: batch_hosts,
            banners: Mutex::new(HashSet::new()),
            end_play: AtomicBool::new(false),
        };
        batch.run().await;
        if batch.end_play.load(Ordering::Relaxed) || shared.stopped() {
            break;
        }
        let mut all_failed = true;
        for (h, host) in batch.hosts.iter().enumerate() {
            let s = batch.lock(h);
            if s.failed || s.unreachable {
                // Failed hosts take no part in later plays.
                if let Ok(mut dead) = shared.dead_hosts.lock() {
                    dead.insert(host.name.clone());
                }
            } else {
                all_failed = false;
            }
        }
        if all_failed {
            // A batch where every host failed ends the whole run, as in Ansible.
            shared.aborted.store(true, Ordering::Relaxed);
            break;
        }
    }
    Ok(())
}

pub(super) fn abs(p: &std::path::Path) -> PathBuf {
    std::path::absolute(if p.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        p
    })
    .unwrap_or_else(|_| p.to_path_buf())
}

fn select(inv: &Inventory, pattern: &str, opts: &RunOptions) -> Vec<Arc<Host>> {
    let mut hosts = inv.select(pattern);
    if let Some(limit) = &opts.limit {
        let keep: HashSet<String> = inv
            .select(limit)
            .into_iter()
            .map(|h| h.name.clone())
            .collect();
        hosts.retain(|h| keep.contains(&h.name));
    }
    hosts
}

fn order_hosts(hosts: &mut [Arc<Host>], order: HostOrder) {
    match order {
        HostOrder::Inventory => {}
        HostOrder::ReverseInventory => hosts.reverse(),
        HostOrder::Sorted => hosts.sort_by(|a, b| a.name.cmp(&b.name)),
        HostOrder::ReverseSorted => hosts.sort_by(|a, b| b.name.cmp(&a.name)),
        HostOrder::Shuffle => {
            use rand::seq::SliceRandom;
            hosts.shuffle(&mut rand::rng());
        }
    }
}

/// Splits hosts into `serial` batches; the last step repeats, every batch has ≥ 1 host.
fn batches(hosts: &[Arc<Host>], serial: &[SerialStep]) -> Vec<Vec<Arc<Host>>> {
    if serial.is_empty() {
        return vec![hosts.to_vec()];
    }
    let total = hosts.len();
    let mut out = Vec::new();
    let mut i = 0;
    let mut step = 0;
    while i < total {
        let size = match &serial[step.min(serial.len() - 1)] {
            SerialStep::Count(0) => total,
            SerialStep::Count(n) => *n,
            SerialStep::Percent(p) => ((total as f64) * p / 100.0) as usize,
        }
        .max(1);
        let end = (i + size).min(total);
        out.push(hosts[i..end].to_vec());
        i = end;
        step += 1;
    }
    out
}

/// `vars_files`: each entry templated with play and extra vars; a list entry takes the
/// first file that exists.
fn load_vars_files(play: &Play, base: &Vars, t: &Templar) -> Result<Vars, String> {
    let ctx = Templar::context(base);
    let mut out = Vars::new();
    for (entry, loc) in &play.vars_files {
        let candidates: Vec<Value> = match entry {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let mut found = None;
        for c in &candidates {
            let name = t
                .render_str(&py_str(c), &ctx)
                .map_err(|e| format!("{loc}: vars_files: {}", e.msg))?;
            let path = play
                .path
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(&name);
            if path.is_file() {
                found = Some(path);
                break;
            }
        }
        let Some(path) = found else {
            return Err(format!("{loc}: vars file {} was not found", py_str(entry)));
        };
        let node = crate::yaml::load_file(&path).map_err(|e| e.to_string())?;
        match node.to_json() {
            Value::Object(m) => out.extend(m),
            Value::Null => {}
            _ => return Err(format!("{}: a vars file must be a mapping", path.display())),
        }
    }
    Ok(out)
}

/// The name of the implicit fact-gathering task.
pub(crate) const GATHERING_FACTS: &str = "Gathering Facts";

/// A task the engine adds itself (fact gathering).
pub(super) fn synthetic_task(action: &str, name: &str, play: &Play) -> Task {
    let scope = crate::playbook::Scope {
        kw: play.kw.clone(),
        tags: vec!["always".into()],
        ..Default::default()
    };
    Task {
        name: Some(name.into()),
        action: action.into(),
        args: Map::new(),
        loc: play.loc.clone(),
        arg_locs: Default::default(),
        parent_scope: Arc::new(scope.clone()),
        scope,
        vars: Arc::new(Map::new()),
        loop_: None,
        loop_control: Default::default(),
        register: None,
        notify: Vec::new(),
        listen: Vec::new(),
        changed_when: Vec::new(),
        failed_when: Vec::new(),
        until: Vec::new(),
        retries: None,
        delay: None,
        async_: None,
        poll: None,
    }
}

/// `--list-hosts` / `--list-tasks` in `ansible-playbook`'s layout.
pub(super) fn listing(
    books: &[Playbook],
    inv: &Inventory,
    opts: &RunOptions,
    hosts: bool,
    tasks: bool,
) -> String {
    let mut out = String::new();
    for book in books {
        out.push_str(&format!("\nplaybook: {}\n", book.path.display()));
        for (i, play) in book.plays.iter().enumerate() {
            out.push_str(&format!(
                "\n  play #{} ({}): {}\tTAGS: [{}]\n",
                i + 1,
                play.hosts,
                play.name,
                play.tags.join(", ")
            ));
            if hosts {
                let hs = select(inv, &play.hosts, opts);
                out.push_str(&format!(
                    "    pattern: ['{}']\n    hosts ({}):\n",
                    play.hosts,
                    hs.len()
                ));
                for h in hs {
                    out.push_str(&format!("      {}\n", h.name));
                }
            }
            if tasks {
                out.push_str("    tasks:\n");
                let mut list = Vec::new();
                for section in [&play.pre_tasks, &play.roles, &play.tasks, &play.post_tasks] {
                    flatten(section, &mut list);
                }
                for t in list {
                    if t.action == "meta"
                        || !tags::should_run(&t.scope.tags, &opts.tags, &opts.skip_tags)
                    {
                        continue;
                    }
                    out.push_str(&format!("      {}\tTAGS: [{}]\n", t.display_name(), {
                        let mut tags = t.scope.tags.clone();
                        tags.sort();
                        tags.join(", ")
                    }));
                }
            }
        }
    }
    out
}

fn flatten(items: &[TaskItem], out: &mut Vec<Arc<Task>>) {
    for i in items {
        match i {
            TaskItem::Task(t) => out.push(t.clone()),
            TaskItem::Block(b) => {
                flatten(&b.block, out);
                flatten(&b.rescue, out);
                flatten(&b.always, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<Arc<Host>> {
        let mut inv = Inventory::default();
        for i in 0..n {
            inv.add_host(&format!("h{i}"), Map::new(), &["ungrouped"]);
        }
        inv.hosts
    }

    fn sizes(serial: &[SerialStep], n: usize) -> Vec<usize> {
        batches(&hosts(n), serial).iter().map(Vec::len).collect()
    }

    #[test]
    fn serial_counts_percentages_and_lists() {
        assert_eq!(sizes(&[], 5), [5]);
        assert_eq!(sizes(&[SerialStep::Count(2)], 5), [2, 2, 1]);
        assert_eq!(sizes(&[SerialStep::Percent(30.0)], 10), [3, 3, 3, 1]);
        // Every batch has at least one host; the last step repeats.
        assert_eq!(sizes(&[SerialStep::Percent(1.0)], 3), [1, 1, 1]);
        assert_eq!(
            sizes(
                &[
                    SerialStep::Count(1),
                    SerialStep::Count(2),
                    SerialStep::Percent(50.0)
                ],
                10
            ),
            [1, 2, 5, 2]
        );
    }
}
