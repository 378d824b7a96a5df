//! devcloud: an OpenStack-compatible API server (Keystone v3, Nova v2.1, Neutron v2.0,
//! Glance v2, Cinder v3) for tests and first use, run by `spark-openstack devcloud`.
//!
//! The state lives in a directory (`state.json`) so separate commands and restarts see one
//! cloud. Servers are records whose lifecycle is timed by devcloud and made real (or not)
//! by a [`backend::ServerBackend`]. Latency, boot time, boot failures, injected HTTP errors
//! and quotas are knobs ([`config::Config`]).
//!
//! # Backends
//! - `records` (default): a server is its record; nothing happens on the host.
//! - `netns` (`devcloud up --backend netns`, root only): a server is a machine made by
//!   [`netns::NetnsMachines`] (own network namespace at its fixed IP, hostname, /root and an
//!   sshd that accepts the keypair's key for root); a floating IP is a second interface on
//!   the external bridge, which the host reaches. See [`netns_backend`].
//!
//! The first choice is recorded in `DIR/backend.json` with the netns layout, and reused by
//! later `up`/`serve` without flags; `devcloud down` removes every machine, namespace,
//! bridge and route (also when the server died), but keeps the cloud's records: the next
//! `up` rebuilds the machines of ACTIVE servers. Both backends seed `private` and `public`
//! from the same ranges ([`config::NetnsSettings`], default 10.213.0.0/20 and
//! 10.213.255.0/24), so a state dir looks the same under either; with records devcloud never
//! sends anything to them.

pub mod apt_proxy;
pub mod backend;
pub mod cinder;
pub mod config;
pub mod daemon;
pub mod error;
pub mod firewall;
pub mod glance;
pub mod keystone;
pub mod lifecycle;
pub mod netns;
pub mod netns_backend;
pub mod neutron;
pub mod nova;
pub mod seed;
pub mod server;
pub mod state;
pub mod swift;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend::{BackendChoice, BackendKind, RecordsBackend, ServerBackend};
use config::{Config, MachineFs};
use server::App;
use state::Store;

/// The default listen address: a fixed port so clouds.yaml stays valid across restarts.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8790";

/// Binds the listener, opens (or seeds) the state, writes `endpoint` into the state dir and
/// serves until the future is dropped or the process ends.
pub async fn serve(cfg: Config, state_dir: &Path, listen: SocketAddr) -> anyhow::Result<()> {
    serve_with(cfg, state_dir, listen, Arc::new(RecordsBackend), |_| {}).await
}

/// [`serve`] with a chosen backend; `ready` gets the bound address once the server accepts
/// connections.
pub async fn serve_with(
    cfg: Config,
    state_dir: &Path,
    listen: SocketAddr,
    backend: Arc<dyn ServerBackend>,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let layout = cfg
        .netns
        .layout(state_dir)
        .map_err(|e| anyhow::anyhow!("invalid devcloud config: {e}"))?;
    let store = Store::open(state_dir, || seed::seed(&layout))?;
    let base_url = format!("http://{addr}");
    // Lives as long as this future: dropping it (the server stops) stops Swift.
    let swift = if cfg.object_storage.enabled {
        let spec = swift::SwiftSpec {
            proxy_ip: object_storage_ip(state_dir)?,
            keystone_url: format!("{base_url}/identity"),
            service_user: seed::ensure_swift_user(&store),
        };
        Some(swift::Swift::start(state_dir, &spec).await?)
    } else {
        None
    };
    // Image-booted machines get packages through the relay on the controller's address.
    let apt_relay = match (cfg.netns.machine_fs, machines_ip(state_dir)?) {
        (MachineFs::Image, Some(ip)) => {
            Some(apt_proxy::Relay::start(SocketAddr::from((ip, apt_proxy::RELAY_PORT))).await?)
        }
        _ => None,
    };
    let app = Arc::new(App {
        cfg,
        base_url,
        store,
        backend,
        object_store_url: swift.as_ref().map(|s| s.url.clone()),
    });
    lifecycle::resume_all(&app);
    lifecycle::restore_active(&app);
    {
        // Machines that survived a restart get the current rules (the backend forgot what
        // it applied).
        let app = app.clone();
        tokio::spawn(async move { firewall::sync(&app).await });
    }
    std::fs::write(endpoint_file(state_dir), format!("{}\n", app.base_url))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", endpoint_file(state_dir).display()))?;
    ready(addr);
    axum::serve(listener, server::router(app)).await?;
    drop(swift);
    drop(apt_relay);
    Ok(())
}

/// Where Swift's proxy listens: with the netns backend the controller's address on the
/// external bridge, which machines with a floating IP reach (as a cloud's public object
/// storage endpoint); otherwise loopback.
fn object_storage_ip(state_dir: &Path) -> anyhow::Result<std::net::Ipv4Addr> {
    Ok(machines_ip(state_dir)?.unwrap_or(std::net::Ipv4Addr::LOCALHOST))
}

/// The controller's address on the external bridge, where netns machines reach the host's
/// services; `None` without the netns backend.
fn machines_ip(state_dir: &Path) -> anyhow::Result<Option<std::net::Ipv4Addr>> {
    Ok(BackendChoice::load(state_dir)?
        .filter(|c| c.backend == BackendKind::Netns)
        .and_then(|c| c.netns)
        .map(|l| l.controller_ip))
}

/// Opens the backend `kind` for `state_dir` and records the choice there. For netns this
/// installs the reject route and the bridges, so missing root or tools fail here, before
/// the server answers.
pub fn open_backend(
    cfg: &Config,
    state_dir: &Path,
    kind: BackendKind,
) -> anyhow::Result<Arc<dyn ServerBackend>> {
    let backend: Arc<dyn ServerBackend> = match kind {
        BackendKind::Records => {
            BackendChoice {
                backend: kind,
                netns: None,
            }
            .save(state_dir)?;
            Arc::new(RecordsBackend)
        }
        BackendKind::Netns => {
            let layout = netns_layout(cfg, state_dir)?;
            if !layout.sshd.exists() {
                anyhow::bail!(
                    "--backend netns: {} not found (install openssh-server, or set netns.sshd)",
                    layout.sshd.display()
                );
            }
            // Record where the machines go before making any, so `down` can find them.
            BackendChoice {
                backend: kind,
                netns: Some(layout.clone()),
            }
            .save(state_dir)?;
            let (min, max) = cfg
                .netns
                .ssh_delay()
                .map_err(|e| anyhow::anyhow!("invalid devcloud config: {e}"))?;
            let images = match cfg.netns.machine_fs {
                MachineFs::Host => None,
                MachineFs::Image => {
                    prepare_images(cfg)?;
                    Some(netns_backend::Images {
                        dir: cfg.netns.images_dir(),
                        build_proxy: apt_proxy::cache_url(),
                        machine_proxy: apt_proxy::machine_url(layout.controller_ip),
                    })
                }
            };
            Arc::new(netns_backend::NetnsBackend::open(
                layout,
                min,
                max,
                images,
                cfg.netns.link,
            )?)
        }
    };
    Ok(backend)
}

/// For `netns.machine_fs: image`: starts the apt cache if nothing answers on its port, and
/// builds the `debian-12` image unless it is there (about half a minute with a warm cache).
/// Idempotent and cheap once done, so `devcloud up` runs it in the foreground (where its
/// progress and errors show) and the server again.
/// Returns what it did, one line each (for the user).
pub fn prepare_images(cfg: &Config) -> anyhow::Result<Vec<String>> {
    if cfg.netns.machine_fs != MachineFs::Image {
        return Ok(Vec::new());
    }
    let cache = apt_proxy::default_cache_dir();
    let started = apt_proxy::ensure_cache(&cache)?;
    let rootfs = netns::image::ensure(
        &cfg.netns.images_dir(),
        "debian-12",
        &apt_proxy::cache_url(),
    )?;
    Ok(vec![
        match started {
            Some(pid) => format!(
                "apt cache: {} (apt-cacher-ng started, pid {pid}, cache in {})",
                apt_proxy::cache_url(),
                cache.display()
            ),
            None => format!("apt cache: {} (already running)", apt_proxy::cache_url()),
        },
        format!("image debian-12: {}", rootfs.display()),
    ])
}

/// The netns layout of `state_dir`: the recorded one (a restart needs no config file), else
/// the config's. A config that asks for another layout than the recorded one is refused:
/// the machines and the seeded subnets use the recorded ranges.
fn netns_layout(cfg: &Config, state_dir: &Path) -> anyhow::Result<netns::NetnsConfig> {
    let wanted = cfg
        .netns
        .layout(state_dir)
        .map_err(|e| anyhow::anyhow!("invalid devcloud config: {e}"))?;
    let recorded = BackendChoice::load(state_dir)?.and_then(|c| c.netns);
    match recorded {
        Some(rec) if cfg.netns.has_layout_settings() && rec != wanted => {
            anyhow::bail!(
                "the config's netns settings (prefix `{}`, range {}) differ from those state \
                 dir {} was set up with (prefix `{}`, range {}); drop them, or start over \
                 with another state dir",
                wanted.prefix,
                wanted.supernet,
                state_dir.display(),
                rec.prefix,
                rec.supernet
            )
        }
        Some(rec) => Ok(rec),
        None => Ok(wanted),
    }
}

/// Removes every machine, bridge, route and process the netns backend of `state_dir` made
/// (for `devcloud down`, with the server already stopped). Returns how many machines there
/// were, or `None` when the state dir has no netns setup.
pub fn teardown_machines(state_dir: &Path) -> anyhow::Result<Option<usize>> {
    let Some(layout) = BackendChoice::load(state_dir)?.and_then(|c| c.netns) else {
        return Ok(None);
    };
    let Some(machines) = netns::NetnsMachines::open_existing(&layout.state_dir)? else {
        return Ok(None);
    };
    let count = machines.list().map(|l| l.len()).unwrap_or(0);
    machines.teardown_all()?;
    Ok(Some(count))
}

/// Where the running server's base URL is recorded.
pub fn endpoint_file(state_dir: &Path) -> PathBuf {
    state_dir.join("endpoint")
}

pub fn pid_file(state_dir: &Path) -> PathBuf {
    state_dir.join("devcloud.pid")
}

pub fn log_file(state_dir: &Path) -> PathBuf {
    state_dir.join("devcloud.log")
}
