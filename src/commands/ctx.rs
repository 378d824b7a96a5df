//! The cluster commands behind the CLI: each turns options into playbook variables and
//! runs a bundled playbook, or reads the cluster from the cloud (describe, get-master,
//! inventory). Exit codes follow `ansible-playbook` (see `cli::Exit`).

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::Failure;
use super::bundle;
use super::config::Settings;
use super::options::{OPTIONS, Target};
use super::playbook::{self, PlaybookCall};
use super::progress;
use crate::cluster::api::ClusterApi;
use crate::cluster::describe;
use crate::cluster::error::ClusterError;
use crate::cluster::inventory::{self, ConnOptions};
use crate::cluster::launch;
use crate::cluster::model::{self, Cluster};
use crate::cluster::openstack::OpenStack;
use crate::cluster::spec::{LAUNCH_ARGS, LaunchSpec, NetMode, without_empty};
use playbook_engine::connection::expand_home;
use playbook_engine::executor::Outcome;
use playbook_engine::modules::args::Args;

/// What every cluster command starts from.
pub struct Ctx {
    pub cluster: String,
    pub os_cloud: Option<String>,
    pub verbose: u8,
    pub settings: Settings,
    /// `-e` variables: over the config file's `vars` and every option.
    pub extra_vars: Map<String, Value>,
}

/// Variables the bundled playbooks take as command arguments, not role variables.
const COMMAND_VARS: &[&str] = &[
    "cluster",
    "resume",
    "count",
    "keep_volumes",
    "key_pair_public_key",
    "os_cloud",
    "spark_openstack_role_vars",
];

/// A command's result: on failure, why (the CLI maps it to the exit code) and one message.
pub type CmdResult = Result<(), (Failure, String)>;

fn bad(msg: impl Into<String>) -> (Failure, String) {
    (Failure::BadOptions, msg.into())
}
fn error(msg: impl Into<String>) -> (Failure, String) {
    (Failure::Error, msg.into())
}

impl Ctx {
    pub fn conn_options(&self) -> Result<ConnOptions, (Failure, String)> {
        let s = &self.settings;
        let identity_file = s
            .str("identity-file")
            .map_err(bad)?
            .map(|p| expand_home(&p));
        if let Some(p) = &identity_file
            && !p.is_file()
        {
            let origin = s
                .get("identity-file")
                .map(|o| o.origin.clone())
                .unwrap_or_default();
            return Err(bad(format!(
                "{origin}: identity file {} does not exist",
                p.display()
            )));
        }
        let net_mode = s
            .str("openstack-network-communication-method")
            .map_err(bad)?
            .map(|m| NetMode::parse(&m))
            .transpose()
            .map_err(bad)?;
        Ok(ConnOptions {
            ssh_user: s.str("ssh-user").map_err(bad)?,
            identity_file,
            known_hosts: inventory::known_hosts_path(self.os_cloud.as_deref(), &self.cluster),
            net_mode,
        })
    }

    /// Playbook variables: the config file's `vars`, every option under its `_` name, the
    /// cluster and cloud, then `-e` over all of them.
    pub fn vars(&self) -> Map<String, Value> {
        let mut v = Map::new();
        if let Some(Value::Object(vars)) = self.settings.get("vars").map(|s| &s.value) {
            v.extend(vars.clone());
        }
        for (key, setting) in &self.settings.values {
            if matches!(key.as_str(), "identity-file" | "os-cloud" | "vars") {
                continue; // local paths and the cloud name are not playbook options
            }
            v.insert(key.replace('-', "_"), setting.value.clone());
        }
        v.insert("cluster".into(), json!(self.cluster));
        // For importing a missing --key-pair (the public half only; never the private key).
        if let Ok(Some(id)) = self.settings.str("identity-file")
            && let Ok(public) =
                std::fs::read_to_string(format!("{}.pub", expand_home(&id).display()))
        {
            v.insert("key_pair_public_key".into(), json!(public.trim()));
        }
        if let Some(c) = &self.os_cloud {
            v.insert("os_cloud".into(), json!(c));
        }
        v.extend(self.extra_vars.clone());
        let role_vars = self.role_vars();
        if !role_vars.is_empty() {
            v.insert("spark_openstack_role_vars".into(), Value::Object(role_vars));
        }
        v
    }

    /// The variables that decide what software the cluster runs: the config file's `vars`,
    /// `spark-version`, and every `-e` that is not one of the commands' own options. The
    /// playbooks record them on the master (see [`crate::cluster::recorded`]) so `start`,
    /// `add-slaves` and `--resume` set the nodes up as `launch` did.
    pub fn role_vars(&self) -> Map<String, Value> {
        let mut v = Map::new();
        if let Some(Value::Object(vars)) = self.settings.get("vars").map(|s| &s.value) {
            v.extend(vars.clone());
        }
        let role_options = || OPTIONS.iter().filter(|o| o.target == Target::Roles);
        for o in role_options() {
            if let Some(s) = self.settings.get(o.name) {
                v.insert(o.var(), s.value.clone());
            }
        }
        let command_option = |k: &str| {
            super::config::keys().any(|o| o.replace('-', "_") == k)
                && !role_options().any(|o| o.var() == k)
                || COMMAND_VARS.contains(&k)
        };
        v.extend(
            self.extra_vars
                .iter()
                .filter(|(k, _)| !command_option(k))
                .map(|(k, val)| (k.clone(), val.clone())),
        );
        v
    }

    pub async fn api(&self) -> Result<OpenStack, (Failure, String)> {
        crate::cluster::openstack::connect(self.os_cloud.clone())
            .await
            .map_err(error)
    }

    pub async fn cluster(&self, api: &dyn ClusterApi) -> Result<Cluster, (Failure, String)> {
        let (servers, fips, vols) =
            futures::try_join!(api.servers(), api.floating_ips(), api.volumes())
                .map_err(|e| error(e.msg))?;
        Ok(Cluster::collect(&self.cluster, &servers, &fips, &vols))
    }
}

/// The command that continues `command` on `cluster` after a failure or Ctrl-C: the one
/// place that says how to resume. The playbooks converge, so rerunning is the way, except
/// that `add-slaves` would add more slaves again (`launch --resume` configures the ones it
/// added) and `remove-slaves` would remove more.
pub fn resume_hint(ctx: &Ctx, command: &str) -> Option<String> {
    let cloud = ctx
        .os_cloud
        .as_deref()
        .filter(|c| std::env::var("OS_CLOUD").ok().as_deref() != Some(*c))
        .map(|c| format!(" --os-cloud {c}"))
        .unwrap_or_default();
    let name = &ctx.cluster;
    match command {
        "launch" | "add-slaves" => Some(format!("spark-openstack{cloud} launch {name} --resume")),
        "start" | "stop" | "destroy" => Some(format!("spark-openstack{cloud} {command} {name}")),
        _ => None,
    }
}

/// A failed run as the command's error: why (the exit code), where the full log is and
/// how to continue.
fn outcome_exit(o: Outcome, resume: Option<&str>, log: Option<&std::path::Path>) -> CmdResult {
    let Some(failure) = Failure::of(&o) else {
        return Ok(());
    };
    let mut msg = match o {
        Outcome::ParseError(m) | Outcome::Error(m) => m,
        Outcome::HostsFailed => "one or more hosts failed (see above)".into(),
        Outcome::Unreachable => "one or more hosts were unreachable (see above)".into(),
        Outcome::Interrupted => "interrupted".into(),
        Outcome::Ok => unreachable!("Failure::of(Ok) is None"),
    };
    if let Some(log) = log {
        msg.push_str(&format!("\nfull log: {}", log.display()));
    }
    if let Some(hint) = resume
        && failure != Failure::ParseError
    {
        msg.push_str(&format!("\nto continue where it stopped: {hint}"));
    }
    Err((failure, msg))
}

/// Asks before destroying anything; `--yes` answers for the user, and without a terminal
/// and without `--yes` the command refuses instead of guessing.
pub fn confirm(what: &str, yes: bool) -> Result<(), (Failure, String)> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(bad(format!(
            "{what}\nrefusing to continue without confirmation: no terminal to ask on; add --yes"
        )));
    }
    eprint!("{what}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err((Failure::Error, "not confirmed; nothing was changed".into()))
    }
}

/// Checks the launch options against the cloud before any playbook runs, reading them as
/// the cluster module will (the same names, reader and lookups), so a bad image, flavor,
/// network, floating IP pool or zone is a bad option (exit 5) named with where it was set,
/// not a failed task after the playbook started.
pub async fn preflight_launch(ctx: &Ctx, resume: bool) -> CmdResult {
    let mut vars = ctx.vars();
    vars.insert("resume".into(), json!(resume));
    let args: Map<String, Value> = without_empty(&vars)
        .into_iter()
        .filter(|(k, _)| LAUNCH_ARGS.contains(&k.as_str()))
        .collect();
    let a = Args::new("launch", &args, LAUNCH_ARGS).map_err(|e| bad(e.to_string()))?;
    let spec = LaunchSpec::from_args(&a).map_err(|e| bad(e.to_string()))?;
    let api = ctx.api().await?;
    launch::preflight(&api, &spec).await.map_err(|e| match e {
        ClusterError::Invalid(msg) => bad(with_origin(&ctx.settings, msg)),
        // The cloud failing to answer is not the user's option's fault.
        other => error(other.to_string()),
    })?;
    // A cluster with no servers is a new one: host keys recorded for an earlier cluster of
    // that name (deleted outside `destroy`) belong to other machines, and the recycled
    // floating IP would look like an attack.
    if ctx.cluster(&api).await?.is_empty()
        && let Ok(ConnOptions {
            known_hosts: Some(kh),
            ..
        }) = ctx.conn_options()
        && std::fs::remove_file(&kh).is_ok()
    {
        tracing::warn!(
            "cluster '{}' has no servers: forgot the host keys of its earlier machines ({})",
            ctx.cluster,
            kh.display()
        );
    }
    Ok(())
}

/// Prefixes a message about `--option ...` with where the option was set, when that was
/// the config file (`spark-openstack.yaml:4:10: --image 'x': ...`).
fn with_origin(settings: &Settings, msg: String) -> String {
    let origin = settings.values.iter().find_map(|(key, s)| {
        let flag = format!("--{key} ");
        (msg.starts_with(&flag) && s.origin != flag.trim_end()).then(|| s.origin.clone())
    });
    match origin {
        Some(o) => format!("{o}: {msg}"),
        None => msg,
    }
}

/// What a cluster command shows of its playbook run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// The engine's console, as `play` shows it (copy-dir: its output is the point).
    Console,
    /// One line per phase, failures, the log file's path (see [`super::progress`]).
    Progress,
    /// The same, then where the cluster is and the time per phase.
    ProgressAndSummary,
}

/// Runs a bundled playbook with `vars` on the cluster read from Nova. Its `meta:
/// refresh_inventory` reads Nova again, so a playbook that creates or starts servers
/// configures them in the same run, unless `cloud_only` (then no node is ever in the
/// inventory, and node plays are skipped).
pub async fn run_playbooks(
    ctx: &Ctx,
    name: &str,
    extra: Map<String, Value>,
    show: Show,
    cloud_only: bool,
) -> CmdResult {
    let api = ctx.api().await?;
    let conn = ctx.conn_options()?;
    let bundle = bundle::prepare(ctx.settings.config_dir.as_deref()).map_err(error)?;
    let mut vars = ctx.vars();
    vars.extend(extra);
    let started = Instant::now();
    let (inv, refresh) = if cloud_only {
        // The groups exist (empty), so node plays are skipped without pattern warnings.
        (playbook::to_engine(&json!({})).map_err(error)?, None)
    } else {
        let inv = playbook::nova_inventory(&api, &ctx.cluster, &conn)
            .await
            .map_err(error)?
            .0;
        let source = inventory::NovaInventory {
            os_cloud: ctx.os_cloud.clone(),
            cluster: ctx.cluster.clone(),
            conn: conn.clone(),
        };
        (inv, Some(playbook::refresher(source)))
    };
    let out = match show {
        Show::Console => None,
        Show::Progress | Show::ProgressAndSummary => {
            let out = progress::output(&ctx.cluster, name, ctx.verbose);
            if let Some(log) = &out.log {
                println!("log: {}", log.display());
            }
            Some(out)
        }
    };
    let sink = match &out {
        Some(o) => o.sink.clone(),
        None => Arc::new(playbook_engine::output::Console::new(ctx.verbose)),
    };
    let o = playbook::run(PlaybookCall {
        bundle: &bundle,
        name,
        vars,
        inventory: inv,
        conn: &conn,
        verbose: ctx.verbose,
        output: sink,
        refresh,
    })
    .await;
    let Some(out) = out else {
        return outcome_exit(o, resume_hint(ctx, name).as_deref(), None);
    };
    for line in out.progress.failure_report() {
        println!("{line}");
    }
    let mut phases = out.progress.phases();
    if phases.is_empty() {
        phases.push((format!("{name}.yml"), started.elapsed()));
    }
    outcome_exit(o, resume_hint(ctx, name).as_deref(), out.log.as_deref())?;
    if show == Show::ProgressAndSummary {
        summary(ctx, &api, &conn, &phases).await?;
    }
    Ok(())
}

async fn summary(
    ctx: &Ctx,
    api: &dyn ClusterApi,
    conn: &ConnOptions,
    phases: &[(String, std::time::Duration)],
) -> Result<(), (Failure, String)> {
    let c = ctx.cluster(api).await?;
    let acc = inventory::access(&c, conn);
    println!();
    println!(
        "Cluster {}: {} ({} node(s))",
        c.name,
        c.state(),
        c.servers().count()
    );
    if let Some(addr) = &acc.master_address {
        println!("  master:   {addr}");
        // A URL only where the security groups let this address in (--authorized-address).
        let uis = describe::web_uis(&c, addr);
        let uis = uis.as_object().cloned().unwrap_or_default();
        for (name, ui) in &uis {
            if let Some(url) = ui["url"].as_str() {
                println!("  {name:<18} {url}");
            }
        }
        let names: Vec<&str> = uis.keys().map(String::as_str).collect();
        println!(
            "  web UIs:  spark-openstack tunnel {}   ({})",
            c.name,
            names.join(", ")
        );
        println!(
            "  connect:  spark-openstack connect-url {0}   (Spark Connect, through \
             `tunnel {0} --port spark_connect=15002`)",
            c.name
        );
        println!("  log in:   spark-openstack login {}", c.name);
    }
    for (name, d) in phases {
        println!("  {name:<18} {:.1} s", d.as_secs_f64());
    }
    Ok(())
}

pub async fn describe_cmd(ctx: &Ctx, all: bool, json_out: bool) -> CmdResult {
    let api = ctx.api().await?;
    let conn = ctx.conn_options()?;
    let doc = if all {
        let (servers, fips, vols) =
            futures::try_join!(api.servers(), api.floating_ips(), api.volumes())
                .map_err(|e| error(e.msg))?;
        let clusters: Vec<Value> = model::cluster_names(&servers)
            .iter()
            .map(|n| describe::describe(&Cluster::collect(n, &servers, &fips, &vols), &conn))
            .collect();
        json!({ "clusters": clusters })
    } else {
        let c = ctx.cluster(&api).await?;
        if c.is_empty() {
            return Err(error(format!(
                "cluster '{}' not found (no servers in {} or {})",
                ctx.cluster,
                model::master_group(&ctx.cluster),
                model::slaves_group(&ctx.cluster)
            )));
        }
        describe::describe(&c, &conn)
    };
    if json_out {
        println!("{doc:#}");
    } else {
        print!("{}", describe::to_yaml(&doc));
    }
    Ok(())
}

pub async fn get_master(ctx: &Ctx) -> CmdResult {
    let api = ctx.api().await?;
    let c = ctx.cluster(&api).await?;
    let acc = inventory::access(&c, &ctx.conn_options()?);
    match acc.master_address {
        Some(a) => {
            println!("{a}");
            Ok(())
        }
        None if c.master().is_none() => {
            Err(error(format!("cluster '{}' has no master", ctx.cluster)))
        }
        None => Err(error(format!(
            "the master of '{}' has no address yet",
            ctx.cluster
        ))),
    }
}

pub async fn inventory_list(ctx: &Ctx) -> CmdResult {
    let api = ctx.api().await?;
    let (_, doc) = playbook::nova_inventory(&api, &ctx.cluster, &ctx.conn_options()?)
        .await
        .map_err(error)?;
    println!("{doc:#}");
    Ok(())
}

/// Says exactly what a destructive command will remove, then asks.
pub async fn confirm_loss(
    ctx: &Ctx,
    what: &str,
    victims: Option<usize>,
    keep_volumes: bool,
    yes: bool,
) -> Result<(), (Failure, String)> {
    let api = ctx.api().await?;
    let c = ctx.cluster(&api).await?;
    if c.is_empty() && victims.is_none() && what != "destroy" {
        return Err(error(format!("cluster '{}' has no servers", ctx.cluster)));
    }
    let mut lines = Vec::new();
    let servers: Vec<String> = match victims {
        Some(n) => c
            .slaves
            .iter()
            .rev()
            .take(n)
            .map(|s| s.name.clone())
            .collect(),
        None => c.servers().map(|s| s.name.clone()).collect(),
    };
    match what {
        "stop" => lines.push(format!(
            "Stopping {} server(s) of '{}': {}.\nALL DATA ON EPHEMERAL DISKS WILL BE LOST; root disks and volumes are kept.",
            servers.len(), ctx.cluster, servers.join(", "))),
        _ => {
            lines.push(format!("This deletes {} server(s) of '{}' and ALL DATA ON THEM: {}.", servers.len(), ctx.cluster, servers.join(", ")));
            let vols: Vec<String> = c.volumes.iter()
                .filter(|v| victims.is_none() || servers.iter().any(|s| v.metadata.get(crate::cluster::volumes::META_SERVER) == Some(s)))
                .map(|v| format!("{} ({} GB)", v.name, v.size_gb)).collect();
            if !vols.is_empty() {
                lines.push(if keep_volumes { format!("Volumes kept: {}.", vols.join(", ")) } else { format!("Volumes deleted: {}.", vols.join(", ")) });
            }
            if victims.is_none() {
                let fips: Vec<&str> = c.floating_ips.iter().map(|f| f.address.as_str()).collect();
                if !fips.is_empty() {
                    lines.push(format!("Floating IPs released: {}.", fips.join(", ")));
                }
                lines.push(format!("Security groups deleted: {}, {}.", model::master_group(&ctx.cluster), model::slaves_group(&ctx.cluster)));
            }
        }
    }
    confirm(&lines.join("\n"), yes)
}

/// `init [DIR]`.
pub fn init(dir: &std::path::Path, force: bool) -> CmdResult {
    let written = bundle::init(dir, force).map_err(error)?;
    println!(
        "wrote {} file(s) under {}; a playbooks/ or roles/ directory next to spark-openstack.yaml replaces the bundled one",
        written.len(),
        dir.display()
    );
    Ok(())
}
