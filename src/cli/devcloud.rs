//! `spark-openstack devcloud`: the local OpenStack-compatible cloud.
//!
//! `up` starts `devcloud serve` as a detached child (its own session, output to
//! `DIR/devcloud.log`, pid in `DIR/devcloud.pid`), waits until it answers, and adds a
//! `devcloud` entry to clouds.yaml; `down` stops it and removes the machines of the netns
//! backend; `status` reports it.
//!
//! The backend is `records` unless `--backend netns` is given (as root): the first choice
//! is recorded in the state dir and reused by later commands, and `up` says which one
//! serves and why.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Exit, fail};
use devcloud::backend::{BackendChoice, BackendKind};
use devcloud::config::Config;
use devcloud::config::MachineFs;
use devcloud::{self, DEFAULT_LISTEN, daemon, log_file};

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
    /// Build the machine image (`debian-12`) and start the apt cache machines install
    /// packages from, as `up` does for `netns.machine_fs: image`; prints where they are.
    PrepareImages {
        /// The devcloud config (for `netns.image_dir`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The machine images in the images directory (`list`), or remove those no machine
    /// boots from and new machines would not use (`prune`).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Run devcloud in the foreground.
    Serve {
        #[command(flatten)]
        server: ServerOpts,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Each image: whether new machines boot from it, its size, the machines using it.
    List {
        /// The devcloud config (for `netns.image_dir`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Remove images built from an older script or never finished, unless a machine
    /// (running or stopped) still boots from them.
    Prune {
        /// The devcloud config (for `netns.image_dir`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
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
    /// YAML file with devcloud's knobs (latency, boot time, faults, quotas, netns ranges).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What a server is: `records` (API records only) or `netns` (a network-namespace
    /// machine with its own hostname, /root and sshd; needs root). [default: the state
    /// dir's recorded backend, else records]
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<BackendKind>,
    /// Run object storage: a real OpenStack Swift (Debian's swift packages) with S3
    /// (s3api, Keystone EC2 credentials), in the catalog as `object-store` and `s3`
    /// (same as `object_storage: {enabled: true}` in the config).
    #[arg(long)]
    pub object_storage: bool,
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
        DevcloudCommand::PrepareImages { config } => prepare_images(config),
        DevcloudCommand::Image { command } => image(command),
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
    let mut cfg = match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.object_storage.enabled |= opts.object_storage;
    if cfg.object_storage.enabled {
        // Fail here, in the foreground, rather than in the background server's log.
        devcloud::swift::check_installed()?;
    }
    Ok(cfg)
}

fn prepare_images(config: Option<PathBuf>) -> anyhow::Result<Exit> {
    let mut cfg = match &config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.netns.machine_fs = MachineFs::Image;
    for line in devcloud::prepare_images(&cfg)? {
        println!("{line}");
    }
    Ok(Exit::Ok)
}

fn image(command: ImageCommand) -> anyhow::Result<Exit> {
    let (ImageCommand::List { config } | ImageCommand::Prune { config }) = &command;
    let cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let dir = cfg.netns.images_dir();
    let mb = |b: u64| b.div_ceil(1 << 20);
    match command {
        ImageCommand::List { .. } => {
            let images = devcloud::netns::image::list(&dir)?;
            if images.is_empty() {
                println!("no images in {}", dir.display());
            }
            for i in images {
                let state = match (i.current, i.complete) {
                    (_, false) => "unfinished",
                    (true, true) => "current",
                    (false, true) => "old",
                };
                println!(
                    "{}  {state}  {} MB  {} machine(s)",
                    i.name,
                    mb(i.bytes),
                    i.machines.len()
                );
            }
        }
        ImageCommand::Prune { .. } => {
            let removed = devcloud::netns::image::prune(&dir)?;
            let freed: u64 = removed.iter().map(|i| i.bytes).sum();
            for i in &removed {
                println!("removed {} ({} MB)", i.name, mb(i.bytes));
            }
            println!(
                "{} image(s) removed from {}, {} MB freed",
                removed.len(),
                dir.display(),
                mb(freed)
            );
        }
    }
    Ok(Exit::Ok)
}

fn serve(opts: &ServerOpts) -> anyhow::Result<Exit> {
    let cfg = load_config(opts)?;
    let dir = state_dir_or_default(opts.state_dir.clone());
    let kind = BackendChoice::resolve(&dir, opts.backend)?;
    let backend = devcloud::open_backend(&cfg, &dir, kind)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let serving = devcloud::serve_with(cfg, &dir, opts.listen, backend, |addr| {
            eprintln!(
                "devcloud listening on http://{addr} (backend {kind}, state in {})",
                dir.display()
            )
        });
        // `devcloud down` sends SIGTERM: stopping here (rather than dying of it) drops the
        // server, whose drop stops the Swift servers it started.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = serving => r,
            _ = term.recv() => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(Exit::Ok)
}

fn up(opts: &ServerOpts, clouds_yaml: Option<PathBuf>) -> anyhow::Result<Exit> {
    let cfg = load_config(opts)?; // fail here, not in the background, on a bad config
    let dir = state_dir_or_default(opts.state_dir.clone());
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create state dir {}: {e}", dir.display()))?;
    let kind = BackendChoice::resolve(&dir, opts.backend)?;
    eprintln!("{}", backend_note(kind, opts.backend.is_some()));
    if kind == BackendKind::Netns && cfg.netns.machine_fs == MachineFs::Image {
        // In the foreground: the first build takes a while and its errors belong here.
        eprintln!("devcloud: machines boot from images; preparing the apt cache and debian-12");
        for line in devcloud::prepare_images(&cfg)? {
            eprintln!("{line}");
        }
    }
    let url = match (daemon::running_pid(&dir), daemon::answering_endpoint(&dir)) {
        (Some(pid), Some(url)) => {
            eprintln!("devcloud is already running at {url} (pid {pid})");
            url
        }
        _ => start_background(opts, &dir, kind)?,
    };
    let path = clouds_yaml.unwrap_or_else(default_clouds_yaml);
    let entry = daemon::cloud_entry(&dir, &url)?;
    daemon::write_clouds_yaml(&path, &entry)?;
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

/// Which backend serves, and why: records-only is said out loud, with how to get machines.
fn backend_note(kind: BackendKind, asked: bool) -> String {
    let root = nix::unistd::geteuid().is_root();
    match (kind, asked, root) {
        (BackendKind::Netns, _, _) => "devcloud backend: netns (each server is a network-\
             namespace machine with sshd; `devcloud down` removes them all)"
            .into(),
        (BackendKind::Records, true, _) => {
            "devcloud backend: records (servers are records only)".into()
        }
        (BackendKind::Records, false, true) => "devcloud backend: records (servers are records \
             only; use --backend netns for real machines)"
            .into(),
        (BackendKind::Records, false, false) => "devcloud backend: records (servers are records \
             only: not running as root, which --backend netns needs for real machines)"
            .into(),
    }
}

/// Re-executes this binary as `devcloud serve`, detached, and waits until it answers.
fn start_background(opts: &ServerOpts, dir: &Path, kind: BackendKind) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("devcloud")
        .arg("serve")
        .arg("--state-dir")
        .arg(dir)
        .arg("--listen")
        .arg(opts.listen.to_string())
        .arg("--backend")
        .arg(kind.to_string());
    if let Some(c) = &opts.config {
        cmd.arg("--config").arg(std::path::absolute(c)?);
    }
    if opts.object_storage {
        cmd.arg("--object-storage");
    }
    daemon::start_detached(cmd, dir)
}

fn default_clouds_yaml() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".config/openstack/clouds.yaml")
}

/// Stops the server, then removes every machine, bridge, route and process of the netns
/// backend (also when the server had already died).
fn down(dir: &Path) -> anyhow::Result<Exit> {
    stop_server(dir)?;
    // A devcloud that died without stopping its Swift servers left them running.
    let left = devcloud::swift::stop_recorded(dir);
    if left > 0 {
        println!("devcloud's object storage stopped ({left} Swift servers left running)");
    }
    if let Some(n) = devcloud::teardown_machines(dir)? {
        println!("devcloud machines removed ({n} machines, their namespaces, bridges and routes)");
    }
    Ok(Exit::Ok)
}

fn stop_server(dir: &Path) -> anyhow::Result<()> {
    match daemon::stop(dir)? {
        Some(pid) => println!("devcloud stopped (pid {pid})"),
        None => eprintln!("devcloud is not running (state dir {})", dir.display()),
    }
    Ok(())
}

fn status(dir: &Path) -> anyhow::Result<Exit> {
    match (daemon::running_pid(dir), daemon::answering_endpoint(dir)) {
        (Some(pid), Some(url)) => {
            let backend = BackendChoice::load(dir)?
                .map(|c| c.backend)
                .unwrap_or(BackendKind::Records);
            println!(
                "devcloud is running at {url} (pid {pid}, backend {backend}, state in {})",
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
