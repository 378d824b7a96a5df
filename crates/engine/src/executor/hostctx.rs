//! What a task on a host sees: its variables, banner name, connection and file search path.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use minijinja::Value as JValue;
use serde_json::{Value, json};

use super::hosts::Host;
use super::vars::{TaskLayers, Vars};
use crate::connection::ConnectionSpec;
use crate::playbook::{Strategy, Task};
use crate::template::Templar;
use crate::template::pyjson::py_str;

use super::batch::Batch;
use super::play::abs;

impl Batch<'_> {
    pub(super) fn banner(&self, task: &Arc<Task>, handler: bool) {
        let key = Arc::as_ptr(task) as usize;
        let first = self
            .banners
            .lock()
            .map(|mut b| b.insert(key))
            .unwrap_or(true);
        if first || self.play.strategy == Strategy::Linear {
            if self.play.strategy == Strategy::Free && !first {
                return;
            }
            let name = self.banner_name(task);
            self.shared.output.task_start(&name, handler);
        }
    }

    /// The task's name as banners and results show it (templated with play vars).
    pub(super) fn banner_name(&self, task: &Task) -> String {
        // Ansible templates a task's name without a host: play vars, vars files and extra
        // vars (which win), plus the host-independent magic (`groups`, ...).
        let mut vars = self.scope.magic.clone();
        for layer in [
            &self.scope.play_vars,
            &self.scope.vars_files,
            &self.scope.extra,
        ] {
            vars.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let ctx = Templar::context(&vars);
        let name = task.display_name();
        self.shared.templar.render_str(&name, &ctx).unwrap_or(name)
    }

    /// Per-task magic (`role_path`, `role_name`, `ansible_search_path`, and the play's
    /// host lists without the hosts that are out of it).
    pub(super) fn task_magic(&self, task: &Task) -> Vars {
        let mut m = Vars::new();
        if let Some(r) = &task.scope.role {
            // Absolute, as in Ansible: roles build paths from it (`{{ role_path }}/files`)
            // that must not depend on the directory the command runs in.
            m.insert(
                "role_path".into(),
                Value::String(abs(&r.path).display().to_string()),
            );
            m.insert("role_name".into(), Value::String(r.name.clone()));
        }
        // Where lookups look for relative file names, as Ansible's task search path: the
        // role, then the directory of the task's file.
        let mut search: Vec<Value> = Vec::new();
        let dirs = task.scope.role.iter().map(|r| abs(&r.path));
        for d in dirs.chain(task.loc.file().parent().map(abs)) {
            let d = Value::String(d.display().to_string());
            if !search.contains(&d) {
                search.push(d);
            }
        }
        m.insert("ansible_search_path".into(), Value::Array(search));
        // `add_host` changed the groups since the play started: tasks see them at once,
        // as in Ansible.
        if self.shared.inventory_changes.load(Ordering::Relaxed) > 0 {
            m.insert("groups".into(), self.shared.inventory().groups_value());
        }
        // As in Ansible, hosts that failed, were unreachable or ended leave the play's
        // host lists as the play goes on: a task that addresses "the hosts still in the
        // play" (the fetch role's fan-out) must not wait on one that is out.
        let out: HashSet<&str> = (0..self.hosts.len())
            .filter(|&h| {
                let s = self.lock(h);
                s.failed || s.unreachable || s.ended
            })
            .map(|h| self.hosts[h].name.as_str())
            .collect();
        if !out.is_empty() {
            for key in ["ansible_play_hosts", "ansible_play_batch", "play_hosts"] {
                if let Some(Value::Array(all)) = self.scope.magic.get(key) {
                    let left = all
                        .iter()
                        .filter(|v| !v.as_str().is_some_and(|n| out.contains(n)))
                        .cloned()
                        .collect();
                    m.insert(key.into(), Value::Array(left));
                }
            }
        }
        m
    }

    /// All variables of `host` for `task`.
    pub(super) fn task_vars(&self, task: &Task, host: &Host, extra_magic: Vars) -> Vars {
        let role = task.scope.role.as_deref();
        self.scope.task_vars(
            host,
            &TaskLayers {
                role_defaults: role.map(|r| &*r.defaults),
                role_vars: role.map(|r| &*r.vars),
                role_params: role.map(|r| &*r.params),
                scoped: &task.scope.vars,
                task_vars: &task.vars,
                extra_magic,
            },
        )
    }

    /// Where the module's connection goes: the host, its delegate, or the controller.
    pub(super) fn connection_spec(
        &self,
        host: &str,
        delegate: Option<&str>,
        vars: &Vars,
        task: &Task,
        ctx: &JValue,
        controller: bool,
    ) -> Result<ConnectionSpec, String> {
        if controller {
            let mut local = Vars::new();
            local.insert("ansible_connection".into(), json!("local"));
            return self.spec_for("__controller__", &local, None);
        }
        let remote_user = match &task.scope.kw.remote_user {
            Some(v) => Some(
                self.shared
                    .templar
                    .render_str(&py_str(v), ctx)
                    .map_err(|e| e.msg)?,
            ),
            None => None,
        };
        match delegate {
            Some(d) if d != host => {
                let dvars = match self.scope.hosts.get(d) {
                    Some(dh) => self.scope.host_vars(dh),
                    None if matches!(d, "localhost" | "127.0.0.1") => {
                        let mut m = Vars::new();
                        m.insert("ansible_connection".into(), json!("local"));
                        m
                    }
                    None => Vars::new(),
                };
                self.spec_for(d, &dvars, remote_user)
            }
            _ => self.spec_for(host, vars, remote_user),
        }
    }

    /// A host's connection from its variables (the inventory layer's rules), with the
    /// `remote_user` keyword and `-u`/`-c`/`--private-key` as defaults under them.
    fn spec_for(
        &self,
        name: &str,
        vars: &Vars,
        remote_user: Option<String>,
    ) -> Result<ConnectionSpec, String> {
        let opts = &self.shared.opts;
        // Only the connection variables, so facts are not copied per task.
        let mut conn_vars: Vars = CONNECTION_VARS
            .iter()
            .filter_map(|k| vars.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        if !conn_vars.contains_key("ansible_connection") {
            let implicit_local = crate::inventory::LOCALHOST_NAMES.contains(&name)
                && !conn_vars.contains_key("ansible_host");
            if let Some(c) = opts
                .connection
                .clone()
                .or_else(|| implicit_local.then(|| "local".to_string()))
            {
                conn_vars.insert("ansible_connection".into(), Value::String(c));
            }
        }
        let defaults = crate::inventory::ConnDefaults {
            user: remote_user.or_else(|| opts.user.clone()),
            private_key: opts.private_key.clone(),
            host_key_policy: opts.host_key_policy,
            known_hosts_files: opts.known_hosts_files.clone(),
            timeout: opts.connect_timeout,
            retries: 3,
        };
        let inventory = self.shared.inventory();
        let source = inventory.source.as_deref();
        let resolve = |jump: &str| match source {
            Some(inv) if inv.hosts.contains_key(jump) => {
                inv.connection_spec(jump, &defaults).map(Some)
            }
            _ => Ok(None),
        };
        crate::inventory::conn::connection_spec_with(name, &conn_vars, &defaults, &resolve)
            .map_err(|e| e.to_string())
    }

    /// Controller-side file search: the role, the task file's directory, the playbook's.
    pub(super) fn search_paths(&self, task: &Task) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(r) = &task.scope.role {
            out.push(abs(&r.path));
        }
        if let Some(d) = task.loc.file().parent() {
            out.push(abs(d));
        }
        out.push(self.book_dir.clone());
        out.dedup();
        out
    }
}

/// The variables [`crate::inventory::conn`] reads to build a connection.
const CONNECTION_VARS: &[&str] = &[
    "ansible_connection",
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
    "ansible_host_key_checking",
    "ansible_ssh_host_key_checking",
    "ansible_timeout",
    "ansible_ssh_timeout",
    "ansible_ssh_retries",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "spark_openstack_host_key_policy",
    "spark_openstack_jump_host",
];
