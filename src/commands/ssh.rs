//! Commands that talk to the nodes directly: `login` and `submit` hand over to OpenSSH (an
//! interactive terminal and Ctrl-C reaching the remote command are what it does best),
//! `run-command` uses the engine's SSH connections to run one command on every node at
//! once (and `tunnel`, in its own module, to forward the master's services).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use futures::future::join_all;

use super::Failure;
use super::ctx::{CmdResult, Ctx};
use crate::cluster::inventory::{self, Access, ConnOptions};
use crate::cluster::model::Cluster;
use crate::cluster::spec::NetMode;
use playbook_engine::connection::manager::ConnectionManager;
use playbook_engine::connection::{
    ConnectionKind, ConnectionSpec, ExecRequest, HostKeyPolicy, sh_quote,
};

/// OpenSSH options shared by `login` and `submit`: the user's key, the cluster's own
/// known_hosts file (trust on first use; a changed key is refused), keep-alives.
fn ssh_base(conn: &ConnOptions, acc: &Access) -> Vec<String> {
    let mut a = vec![
        "-o".into(),
        "StrictHostKeyChecking=accept-new".into(),
        "-o".into(),
        "ServerAliveInterval=30".into(),
    ];
    if let Some(kh) = &conn.known_hosts {
        a.extend(["-o".into(), format!("UserKnownHostsFile={}", kh.display())]);
    }
    if let Some(key) = &conn.identity_file {
        a.extend([
            "-i".into(),
            key.display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]);
    }
    let _ = acc;
    a
}

/// The cluster read from Nova and how to reach its master, for every command that connects
/// to it; an error naming the cluster when it has no reachable master. The cluster's
/// known_hosts directory exists afterwards, so the first connection can record the key.
pub(super) async fn master_access(
    ctx: &Ctx,
) -> Result<(ConnOptions, Access, Cluster), (Failure, String)> {
    let api = ctx.api().await?;
    let conn = ctx.conn_options()?;
    if let Some(dir) = conn.known_hosts.as_ref().and_then(|k| k.parent()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let c = ctx.cluster(&api).await?;
    let acc = inventory::access(&c, &conn);
    if acc.master_address.is_none() {
        return Err((
            Failure::Error,
            format!(
                "cluster '{}' has no reachable master (is it launched and running? see describe)",
                ctx.cluster
            ),
        ));
    }
    Ok((conn, acc, c))
}

/// `login`: replaces this process with `ssh` to the master. `command` runs instead of a shell.
pub async fn login(
    ctx: &Ctx,
    local: &[String],
    dynamic: Option<&str>,
    command: &[String],
) -> CmdResult {
    let (conn, acc, _) = master_access(ctx).await?;
    let mut args = ssh_base(&conn, &acc);
    for l in local {
        args.extend(["-L".into(), l.clone()]);
    }
    if let Some(d) = dynamic {
        args.extend(["-D".into(), d.to_string()]);
    }
    args.push(format!(
        "{}@{}",
        acc.user,
        acc.master_address.unwrap_or_default()
    ));
    if command.is_empty() {
        args.insert(0, "-t".into());
    } else {
        args.push("--".into());
        args.extend(command.iter().cloned());
    }
    let err = Command::new("ssh").args(&args).exec();
    Err((
        Failure::Error,
        format!("cannot run ssh (is OpenSSH installed?): {err}"),
    ))
}

/// What `submit` runs.
pub struct SparkJob<'a> {
    pub app: &'a std::path::Path,
    pub args: &'a [String],
    pub class: Option<&'a str>,
    pub conf: &'a [String],
    /// Relative to the login home on the master.
    pub spark_home: &'a str,
}

impl SparkJob<'_> {
    /// The spark-submit command line on the master, for the uploaded copy at `remote_app`.
    fn command(&self, remote_app: &str) -> String {
        let mut words = vec![format!("{}/bin/spark-submit", self.spark_home)];
        if let Some(c) = self.class {
            words.extend(["--class".into(), c.to_string()]);
        }
        for c in self.conf {
            words.extend(["--conf".into(), c.clone()]);
        }
        words.push(remote_app.to_string());
        words.extend(self.args.iter().cloned());
        words
            .iter()
            .map(|w| sh_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `submit`: copies the application to the master and runs spark-submit there in client
/// mode (spark-defaults.conf names the master), with its output streamed as it comes.
/// OpenSSH carries both steps, like `login`, so Ctrl-C reaches spark-submit.
pub async fn submit(ctx: &Ctx, job: &SparkJob<'_>) -> CmdResult {
    let bad = |m: String| (Failure::BadOptions, m);
    let name = job
        .app
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| job.app.is_file())
        .ok_or_else(|| bad(format!("{}: not a file", job.app.display())))?;
    let file = std::fs::File::open(job.app)
        .map_err(|e| bad(format!("cannot read {}: {e}", job.app.display())))?;
    let (conn, acc, _) = master_access(ctx).await?;
    let target = format!(
        "{}@{}",
        acc.user,
        acc.master_address.clone().unwrap_or_default()
    );
    let remote_app = format!("spark-openstack/apps/{name}");
    let upload = format!(
        "mkdir -p spark-openstack/apps && cat > {}",
        sh_quote(&remote_app)
    );
    let ssh = |cmd: String| {
        let mut c = tokio::process::Command::new("ssh");
        c.args(ssh_base(&conn, &acc))
            .arg(&target)
            .arg("--")
            .arg(cmd);
        c
    };
    let status = |r: std::io::Result<std::process::ExitStatus>| {
        r.map_err(|e| {
            (
                Failure::Error,
                format!("cannot run ssh (is OpenSSH installed?): {e}"),
            )
        })
    };
    let up = status(ssh(upload).stdin(file).status().await)?;
    if !up.success() {
        return Err((
            Failure::Error,
            format!(
                "could not copy {} to the master ({target})",
                job.app.display()
            ),
        ));
    }
    let run = status(ssh(job.command(&remote_app)).status().await)?;
    match run.code() {
        Some(0) => Ok(()),
        Some(255) => Err((
            Failure::Unreachable,
            format!("lost the SSH connection to the master ({target})"),
        )),
        code => Err((
            Failure::Error,
            format!(
                "spark-submit {name} failed on the master (exit {})",
                code.map_or("by a signal".to_string(), |c| c.to_string())
            ),
        )),
    }
}

fn spec(
    name: &str,
    address: &str,
    conn: &ConnOptions,
    acc: &Access,
    jump: Option<ConnectionSpec>,
) -> ConnectionSpec {
    ConnectionSpec {
        name: name.to_string(),
        kind: ConnectionKind::Ssh,
        address: address.to_string(),
        port: 22,
        user: acc.user.clone(),
        identity_files: conn.identity_file.iter().cloned().collect(),
        jump: jump.map(Box::new),
        host_key_policy: HostKeyPolicy::AcceptNew,
        known_hosts_files: conn.known_hosts.iter().cloned().collect(),
        connect_timeout: Duration::from_secs(10),
        connect_retries: 3,
    }
}

/// How to reach every node (master first), slaves through the master in floating mode.
pub fn node_specs(
    c: &Cluster,
    conn: &ConnOptions,
    acc: &Access,
    master_only: bool,
) -> Vec<ConnectionSpec> {
    let mut v = Vec::new();
    let Some(master) = c.master() else { return v };
    let m = spec(
        &master.name,
        acc.master_address.as_deref().unwrap_or_default(),
        conn,
        acc,
        None,
    );
    if !master_only {
        for s in &c.slaves {
            let Some(fixed) = s.fixed_ip() else { continue };
            let jump = (acc.mode == NetMode::Floating).then(|| m.clone());
            v.push(spec(&s.name, fixed, conn, acc, jump));
        }
    }
    v.insert(0, m);
    v
}

/// `run-command`: the command on every node at once; every host's output is shown, and
/// the exit code is non-zero when any host failed or could not be reached.
pub async fn run_command(ctx: &Ctx, command: &str, master_only: bool) -> CmdResult {
    let (conn, acc, c) = master_access(ctx).await?;
    let specs = node_specs(&c, &conn, &acc, master_only);
    let mgr = ConnectionManager::new();
    let runs = specs.iter().map(|s| {
        let mgr = &mgr;
        async move {
            let out = match mgr.get(s).await {
                Ok(conn) => conn.exec(ExecRequest::new(command)).await,
                Err(e) => Err(e),
            };
            (s.name.clone(), out)
        }
    });
    let results = join_all(runs).await;
    mgr.close_all().await;
    let mut failed = 0;
    let mut unreachable = 0;
    for (name, r) in results {
        match r {
            Ok(out) => {
                let mark = if out.rc == 0 {
                    "ok"
                } else {
                    failed += 1;
                    "FAILED"
                };
                println!("{name} | {mark} | rc={} >>", out.rc);
                print!("{}", out.stdout_str());
                if !out.stderr.is_empty() {
                    print!("{}", out.stderr_str());
                }
            }
            Err(e) => {
                unreachable += 1;
                println!("{name} | UNREACHABLE! => {e}");
            }
        }
    }
    match (failed, unreachable) {
        (0, 0) => Ok(()),
        (_, 0) => Err((
            Failure::HostsFailed,
            format!("the command failed on {failed} host(s)"),
        )),
        _ => Err((
            Failure::Unreachable,
            format!("{unreachable} host(s) unreachable, {failed} failed"),
        )),
    }
}
