//! devcloud: an OpenStack-compatible API server (Keystone v3, Nova v2.1, Neutron v2.0,
//! Glance v2, Cinder v3) for tests and first use, run by `spark-openstack devcloud`.
//!
//! The state lives in a directory (`state.json`) so separate commands and restarts see one
//! cloud. Servers are records whose lifecycle is timed by devcloud and made real (or not)
//! by a [`backend::ServerBackend`]. Latency, boot time, boot failures, injected HTTP errors
//! and quotas are knobs ([`config::Config`]).

pub mod backend;
pub mod cinder;
pub mod config;
pub mod error;
pub mod glance;
pub mod keystone;
pub mod lifecycle;
pub mod neutron;
pub mod nova;
pub mod seed;
pub mod server;
pub mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend::{RecordsBackend, ServerBackend};
use config::Config;
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
    let store = Store::open(state_dir, seed::seed)?;
    let app = Arc::new(App {
        cfg,
        base_url: format!("http://{addr}"),
        store,
        backend,
    });
    lifecycle::resume_all(&app);
    std::fs::write(endpoint_file(state_dir), format!("{}\n", app.base_url))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", endpoint_file(state_dir).display()))?;
    ready(addr);
    axum::serve(listener, server::router(app)).await?;
    Ok(())
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
