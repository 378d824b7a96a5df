//! One connection per host for the whole run, shared by every task.
//!
//! The manager opens connections on first use, caches them by inventory name, and
//! opens a jump host's connection first when a host sits behind one, so that the
//! jump connection is shared by every host behind it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell};

use super::local::LocalConnection;
use super::{
    Become, ConnError, Connection, ConnectionKind, ConnectionSpec, ExecOutput, ExecRequest, Tunnel,
};

/// A connection being opened or open; concurrent callers share one connect.
type Slot = Arc<OnceCell<Arc<dyn Connection>>>;

/// Cloning is cheap and shares the cache (a [`LazyConnection`] holds a clone).
#[derive(Default, Clone)]
pub struct ConnectionManager {
    cells: Arc<Mutex<HashMap<String, Slot>>>,
    /// Hosts used as jump hosts: closed last, as other connections tunnel through them.
    jumps: Arc<Mutex<HashSet<String>>>,
}

impl ConnectionManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the open connection for `spec.name`, opening it if needed. Concurrent callers
    /// for the same host wait for the same connect instead of racing.
    pub async fn get(&self, spec: &ConnectionSpec) -> Result<Arc<dyn Connection>, ConnError> {
        let cell = {
            let mut cells = self.cells.lock().await;
            cells.entry(spec.name.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| self.open(spec)).await.cloned()
    }

    /// A handle that opens the connection on its first use instead of now, and tries again on
    /// every later call while the host is unreachable: for modules that wait for a host to
    /// come up (`wait_for_connection`), where a connect failure is an answer, not an error.
    pub fn lazy(&self, spec: &ConnectionSpec) -> Arc<dyn Connection> {
        Arc::new(LazyConnection {
            manager: self.clone(),
            spec: spec.clone(),
        })
    }

    async fn open(&self, spec: &ConnectionSpec) -> Result<Arc<dyn Connection>, ConnError> {
        match spec.kind {
            ConnectionKind::Local => Ok(Arc::new(LocalConnection::new(spec.name.clone()))),
            ConnectionKind::Ssh => {
                let jump = match &spec.jump {
                    Some(j) => {
                        self.jumps.lock().await.insert(j.name.clone());
                        Some(Box::pin(self.get(j)).await?)
                    }
                    None => None,
                };
                super::ssh::connect(spec, jump).await
            }
        }
    }

    /// Closes every connection (channels first), in parallel, jump hosts after the hosts
    /// behind them. Called once at the end of a run.
    pub async fn close_all(&self) {
        let jumps = std::mem::take(&mut *self.jumps.lock().await);
        let (last, first): (Vec<_>, Vec<_>) = self
            .cells
            .lock()
            .await
            .drain()
            .filter_map(|(name, cell)| cell.get().cloned().map(|c| (name, c)))
            .partition(|(name, _)| jumps.contains(name));
        for group in [first, last] {
            futures::future::join_all(group.iter().map(|(_, c)| c.close())).await;
        }
    }
}

/// See [`ConnectionManager::lazy`]. A failed connect leaves the manager's slot empty, so the
/// next call connects afresh; once connected, the shared connection is used like any other.
struct LazyConnection {
    manager: ConnectionManager,
    spec: ConnectionSpec,
}

#[async_trait]
impl Connection for LazyConnection {
    fn name(&self) -> &str {
        &self.spec.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnError> {
        self.manager.get(&self.spec).await?.exec(req).await
    }

    async fn get(&self, src: &str, become_: Option<&Become>) -> Result<Vec<u8>, ConnError> {
        self.manager.get(&self.spec).await?.get(src, become_).await
    }

    /// The shared connection is closed by [`ConnectionManager::close_all`], not by a handle.
    async fn close(&self) {}

    async fn open_tunnel(&self, host: &str, port: u16) -> Result<Box<dyn Tunnel>, ConnError> {
        let conn = self.manager.get(&self.spec).await?;
        conn.open_tunnel(host, port).await
    }
}
