//! `spark-openstack play`: run playbooks, like `ansible-playbook`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::Exit;
use crate::commands::Failure;
use playbook_engine::connection::HostKeyPolicy;
use playbook_engine::executor::events::EventSink;
use playbook_engine::executor::hosts::Inventory;
use playbook_engine::executor::{self, Outcome, PlaybookRun, RunOptions};
use playbook_engine::playbook::Loader;

#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Playbook files to run, in order.
    #[arg(required = true)]
    pub playbooks: Vec<PathBuf>,
    /// Inventory: a file, or a comma-separated host list (`a,b,`). Repeatable.
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    /// Extra variables: `k=v k2=v2`, JSON/YAML, or `@file`. Repeatable; later wins.
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Further limit the hosts to a pattern.
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Hosts worked on in parallel.
    #[arg(short = 'f', long, default_value_t = 256)]
    pub forks: usize,
    /// Report what would change without changing anything.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show differences for files that change.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// List the hosts each play would run on, then exit.
    #[arg(long)]
    pub list_hosts: bool,
    /// List the tasks each play would run, then exit.
    #[arg(long)]
    pub list_tasks: bool,
    /// Check the playbooks' syntax, then exit.
    #[arg(long)]
    pub syntax_check: bool,
    /// Connect as this user (unless `ansible_user` says otherwise).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Private key file for SSH.
    #[arg(long = "private-key", alias = "key-file")]
    pub private_key: Option<PathBuf>,
    /// Connection type for hosts without `ansible_connection` (`ssh` or `local`).
    #[arg(short = 'c', long)]
    pub connection: Option<String>,
    /// Run tasks with privilege escalation (sudo).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// The user to become (default root).
    #[arg(long)]
    pub become_user: Option<String>,
    /// What to do with unknown host keys.
    #[arg(long, value_parser = ["strict", "accept-new", "off"], default_value = "accept-new")]
    pub host_key_checking: String,
    /// Run handlers even on hosts that failed.
    #[arg(long)]
    pub force_handlers: bool,
    /// Extra directories to search for roles.
    #[arg(long, env = "SPARK_OPENSTACK_ROLES_PATH", value_delimiter = ':')]
    pub roles_path: Vec<PathBuf>,
    /// Start the run at the task with this name.
    #[arg(long)]
    pub start_at_task: Option<String>,
    /// Print one JSON event per line instead of Ansible's console output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut args: PlayArgs, os_cloud: Option<String>, verbose: u8) -> Exit {
    let _bundle = match use_bundled(&mut args) {
        Ok(b) => b,
        Err(msg) => return super::fail(Exit::Error, msg),
    };
    // A missing playbook is a plain error (1), not a parse error, as in ansible-playbook.
    if let Some(p) = args.playbooks.iter().find(|p| !p.is_file()) {
        return super::fail(
            Exit::Error,
            format!("the playbook: {} could not be found", p.display()),
        );
    }
    let extra = match executor::vars::parse_all_extra_vars(&args.extra_vars) {
        Ok(m) => m,
        Err(msg) => return super::fail(Exit::BadOptions, msg),
    };
    if let Some(c) = &args.connection
        && !matches!(c.as_str(), "ssh" | "local" | "smart" | "paramiko")
    {
        return super::fail(
            Exit::BadOptions,
            format!("unknown connection type '{c}' (expected ssh or local)"),
        );
    }
    let cluster = extra.get("cluster").and_then(|c| c.as_str());
    let source = Arc::new(InventorySpec {
        sources: args.inventory.clone(),
        cluster: cluster
            .filter(|_| args.inventory.is_empty())
            .map(String::from),
        os_cloud,
        user: args.user.clone(),
        private_key: args.private_key.clone(),
        playbook: args.playbooks.first().cloned(),
    });
    let inventory = match source.load() {
        Ok(i) => Arc::new(i),
        Err(msg) => return super::fail(Exit::Error, msg),
    };
    let options = RunOptions {
        forks: args.forks.max(1),
        check: args.check,
        diff: args.diff,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        limit: args.limit.clone(),
        user: args.user.clone(),
        private_key: args.private_key.clone(),
        become_: args.become_,
        become_user: args.become_user.clone(),
        host_key_policy: match args.host_key_checking.as_str() {
            "strict" => HostKeyPolicy::Strict,
            "off" => HostKeyPolicy::Off,
            _ => HostKeyPolicy::AcceptNew,
        },
        force_handlers: args.force_handlers,
        connection: args.connection.clone().filter(|c| c != "smart"),
        roles_path: args.roles_path.clone(),
        verbosity: verbose,
        start_at_task: args.start_at_task.clone(),
        ..Default::default()
    };
    let registry = Arc::new(crate::modules::registry());
    if args.syntax_check || args.list_hosts || args.list_tasks {
        let loader = Loader {
            registry: registry.clone(),
            roles_path: options.roles_path.clone(),
        };
        let books = match executor::load_all(&args.playbooks, &loader) {
            Ok(b) => b,
            Err(msg) => return super::fail(Exit::PARSE_ERROR, msg),
        };
        if args.list_hosts || args.list_tasks {
            print!(
                "{}",
                executor::list(
                    &books,
                    &inventory,
                    &options,
                    args.list_hosts,
                    args.list_tasks
                )
            );
        } else {
            for b in &books {
                println!("\nplaybook: {}", b.path.display());
            }
        }
        return Exit::Ok;
    }
    let output: Arc<dyn EventSink> = if args.json {
        Arc::new(playbook_engine::output::JsonLines::default())
    } else {
        Arc::new(playbook_engine::output::Console::new(verbose))
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return super::fail(Exit::Error, format!("cannot start the async runtime: {e}")),
    };
    let result = rt.block_on(executor::run_playbook(PlaybookRun {
        playbooks: args.playbooks.clone(),
        inventory,
        refresh: Some(Arc::new(move || source.load())),
        extra_vars: extra,
        options,
        output,
        registry,
    }));
    let Some(failure) = Failure::of(&result.outcome) else {
        return Exit::Ok;
    };
    match result.outcome {
        Outcome::ParseError(msg) | Outcome::Error(msg) => super::fail(failure.into(), msg),
        Outcome::Interrupted => {
            eprintln!("ERROR! User interrupted execution");
            failure.into()
        }
        _ => failure.into(),
    }
}

/// `play playbooks/restart-spark.yml` works from any directory, as the cluster commands do:
/// a playbook path that does not exist but names a bundled playbook (`playbooks/NAME.yml`
/// or `NAME.yml`) runs the bundled one, and the bundled roles join the roles path. The
/// returned bundle keeps the materialised files alive for the run.
fn use_bundled(args: &mut PlayArgs) -> Result<Option<crate::commands::bundle::Bundle>, String> {
    use crate::commands::bundle;
    let names = bundle::playbook_names();
    let bundled = |p: &std::path::Path| -> Option<String> {
        let parent = p.parent().and_then(|d| d.to_str()).unwrap_or("");
        let stem = p.file_stem()?.to_str()?;
        let is_yml = p.extension().is_some_and(|e| e == "yml");
        (!p.exists()
            && is_yml
            && matches!(parent, "" | "playbooks")
            && names.iter().any(|n| n == stem))
        .then(|| stem.to_string())
    };
    if !args.playbooks.iter().any(|p| bundled(p).is_some()) {
        return Ok(None);
    }
    let b = bundle::prepare(None)?;
    for p in args.playbooks.iter_mut() {
        if let Some(name) = bundled(p) {
            *p = b.playbook(&name);
        }
    }
    args.roles_path.push(b.roles.clone());
    Ok(Some(b))
}

/// Where the inventory comes from: `-i` sources (files, directories, `a,b,` lists) through
/// the inventory layer, or, without `-i` but with `-e cluster=NAME`, Nova: the cluster's
/// servers as the cluster commands see them (so `play playbooks/restart-spark.yml -e
/// cluster=demo` works like a cluster command). `group_vars/`/`host_vars/` next to the
/// first playbook apply too. Loaded at the start and again for `meta: refresh_inventory`.
struct InventorySpec {
    sources: Vec<String>,
    cluster: Option<String>,
    os_cloud: Option<String>,
    user: Option<String>,
    private_key: Option<PathBuf>,
    playbook: Option<PathBuf>,
}

impl InventorySpec {
    fn load(&self) -> Result<Inventory, String> {
        use playbook_engine::inventory::InventorySource;
        let mut inv = match &self.cluster {
            Some(name) => crate::cluster::inventory::NovaInventory::for_cluster(
                self.os_cloud.clone(),
                name,
                self.user.clone(),
                self.private_key.clone(),
            )
            .map_err(|e| format!("-e cluster: {e}"))?
            .load(),
            None => playbook_engine::inventory::load_sources(&self.sources),
        }
        .map_err(|e| e.to_string())?;
        inv.vars_dirs.playbook = self.playbook.as_deref().and_then(|p| p.parent()).map(|d| {
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d.to_path_buf()
            }
        });
        Inventory::from_inventory(inv)
    }
}
