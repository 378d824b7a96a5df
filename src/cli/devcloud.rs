//! `spark-openstack devcloud`: the local OpenStack-compatible cloud.
//!
//! `up` starts `devcloud serve` as a detached child (its own session, output to
//! `DIR/devcloud.log`, pid in `DIR/devcloud.pid`), waits until it answers, and adds a
//! `devcloud` entry to clouds.yaml; `down` stops it; `status` reports it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Exit, fail};
use crate::devcloud::config::Config;
use crate::devcloud::{
    self, DEFAULT_LISTEN, endpoint_file, log_file, pid_file, seed, state::Store,
};

#[derive(Args, Debug)]
pub struct DevcloudArgs {
    #[command(subcommand)]
    pub command: DevcloudCommand,
}

#[derive(Subcommand, Debug)]
pub enum DevcloudCommand {
    /// Start devcloud in the background and add it to clouds.yaml as cloud `devcloud`.
    Up {
        #[command(flatten)]
        server: ServerOpts,
        /// The clouds.yaml to add the `devcloud` entry to (other clouds are kept).
        #[arg(long, value_name = "PATH")]
        clouds_yaml: Option<PathBuf>,
    },
    /// Stop the background devcloud.
    Down {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Tell whether devcloud is running, and where.
    Status {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Run devcloud in the foreground.
    Serve {
        #[command(flatten)]
        server: ServerOpts,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServerOpts {
    /// Where the cloud's state, log, pid and endpoint live
    /// [default: ~/.local/share/spark-openstack/devcloud].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port, written to DIR/endpoint).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// YAML file with devcloud's knobs (latency, boot time, faults, quotas).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(args: DevcloudArgs) -> Exit {
    let result = match args.command {
        DevcloudCommand::Up {
            server,
            clouds_yaml,
        } => up(&server, clouds_yaml),
        DevcloudCommand::Down { state_dir } => down(&state_dir_or_default(state_dir)),
        DevcloudCommand::Status { state_dir } => status(&state_dir_or_default(state_dir)),
        DevcloudCommand::Serve { server } => serve(&server),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => fail(Exit::Error, format!("{e:#}")),
    }
}

fn state_dir_or_default(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| {
        dirs::data_local_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("spark-openstack")
            .join("devcloud")
    })
}

fn load_config(opts: &ServerOpts) -> anyhow::Result<Config> {
    match &opts.config {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn serve(opts: &ServerOpts) -> anyhow::Result<Exit> {
    let cfg = load_config(opts)?;
    let dir = state_dir_or_default(opts.state_dir.clone());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(devcloud::serve_with(
        cfg,
        &dir,
        opts.listen,
        std::sync::Arc::new(devcloud::backend::RecordsBackend),
        |addr| {
            eprintln!(
                "devcloud listening on http://{addr} (state in {})",
                dir.display()
            )
        },
    ))?;
    Ok(Exit::Ok)
}

/// The pid in the pid file, if that process is still alive.
fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    Some(pid)
}

/// The base URL recorded by the running server, if it answers on it.
fn answering_endpoint(dir: &Path) -> Option<String> {
    let url = std::fs::read_to_string(endpoint_file(dir))
        .ok()?
        .trim()
        .to_string();
    let addr: SocketAddr = url.strip_prefix("http://")?.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /identity/v3 HTTP/1.0\r\nHost: devcloud\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    (&head[9..12] == b"200").then_some(url)
}

fn up(opts: &ServerOpts, clouds_yaml: Option<PathBuf>) -> anyhow::Result<Exit> {
    load_config(opts)?; // fail here, not in the background, on a bad config
    let dir = state_dir_or_default(opts.state_dir.clone());
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create state dir {}: {e}", dir.display()))?;
    let url = match (running_pid(&dir), answering_endpoint(&dir)) {
        (Some(pid), Some(url)) => {
            eprintln!("devcloud is already running at {url} (pid {pid})");
            url
        }
        _ => start_background(opts, &dir)?,
    };
    let path = clouds_yaml.unwrap_or_else(default_clouds_yaml);
    let entry = cloud_entry(&dir, &url)?;
    write_clouds_yaml(&path, &entry)?;
    let mut shown = entry;
    shown["auth"]["password"] = json!(format!("<in {}>", path.display()));
    println!(
        "devcloud is up at {url}; cloud `devcloud` written to {}:",
        path.display()
    );
    print!(
        "{}",
        serde_saphyr::to_string(&json!({"clouds": {"devcloud": shown}}))?
    );
    println!("Use it with: export OS_CLOUD=devcloud");
    Ok(Exit::Ok)
}

/// Re-executes this binary as `devcloud serve`, detached, and waits until it answers.
fn start_background(opts: &ServerOpts, dir: &Path) -> anyhow::Result<String> {
    use std::os::unix::process::CommandExt;
    let _ = std::fs::remove_file(endpoint_file(dir));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(dir))
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", log_file(dir).display()))?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("devcloud")
        .arg("serve")
        .arg("--state-dir")
        .arg(dir)
        .arg("--listen")
        .arg(opts.listen.to_string());
    if let Some(c) = &opts.config {
        cmd.arg("--config").arg(std::path::absolute(c)?);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal session
    // so it survives this command and ignores the terminal's Ctrl-C.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start devcloud serve: {e}"))?;
    std::fs::write(pid_file(dir), format!("{}\n", child.id()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(url) = answering_endpoint(dir) {
            return Ok(url);
        }
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(pid_file(dir));
            anyhow::bail!(
                "devcloud serve exited ({status}); see {}:\n{}",
                log_file(dir).display(),
                log_tail(dir)
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "devcloud did not answer within 30s; see {}",
                log_file(dir).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(log_file(dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn default_clouds_yaml() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".config/openstack/clouds.yaml")
}

/// The clouds.yaml entry for the seeded `demo` user and project.
fn cloud_entry(dir: &Path, url: &str) -> anyhow::Result<Value> {
    let st = Store::peek(dir)?;
    let user = st
        .users
        .iter()
        .find(|u| u.name == seed::DEMO_USER)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "state in {} has no `{}` user",
                dir.display(),
                seed::DEMO_USER
            )
        })?;
    Ok(json!({
        "auth": {
            "auth_url": format!("{url}/identity"),
            "username": user.name,
            "password": user.password,
            "project_name": seed::DEMO_PROJECT,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "interface": "public",
        "identity_api_version": 3,
    }))
}

/// Adds or replaces `clouds.devcloud`, keeping every other cloud in the file.
fn write_clouds_yaml(path: &Path, entry: &Value) -> anyhow::Result<()> {
    let mut doc: Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("cannot parse {}: {e}", path.display()))?,
        Ok(_) => json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let Some(root) = doc.as_object_mut() else {
        anyhow::bail!("{}: the top level is not a mapping", path.display());
    };
    let clouds = root.entry("clouds").or_insert_with(|| json!({}));
    let Some(clouds) = clouds.as_object_mut() else {
        anyhow::bail!("{}: `clouds` is not a mapping", path.display());
    };
    clouds.insert("devcloud".into(), entry.clone());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, serde_saphyr::to_string(&doc)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    set_private(&tmp);
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    Ok(())
}

/// clouds.yaml holds a password: readable by its owner only.
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

fn down(dir: &Path) -> anyhow::Result<Exit> {
    let Some(pid) = running_pid(dir) else {
        eprintln!("devcloud is not running (state dir {})", dir.display());
        let _ = std::fs::remove_file(pid_file(dir));
        return Ok(Exit::Ok);
    };
    use nix::sys::signal::{Signal, kill};
    let target = nix::unistd::Pid::from_raw(pid);
    kill(target, Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while kill(target, None).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if kill(target, None).is_ok() {
        let _ = kill(target, Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(pid_file(dir));
    let _ = std::fs::remove_file(endpoint_file(dir));
    println!("devcloud stopped (pid {pid})");
    Ok(Exit::Ok)
}

fn status(dir: &Path) -> anyhow::Result<Exit> {
    match (running_pid(dir), answering_endpoint(dir)) {
        (Some(pid), Some(url)) => {
            println!(
                "devcloud is running at {url} (pid {pid}, state in {})",
                dir.display()
            );
            Ok(Exit::Ok)
        }
        (Some(pid), None) => {
            println!(
                "devcloud process {pid} is running but not answering (see {})",
                log_file(dir).display()
            );
            Ok(Exit::Error)
        }
        _ => {
            println!("devcloud is not running (state dir {})", dir.display());
            Ok(Exit::Error)
        }
    }
}
