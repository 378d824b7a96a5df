//! One connection per host for the whole run, shared by every task.
//!
//! The manager opens connections on first use, caches them by inventory name, and
//! opens a jump host's connection first when a host sits behind one, so that the
//! jump connection is shared by every host behind it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use super::local::LocalConnection;
use super::{ConnError, Connection, ConnectionKind, ConnectionSpec};

/// A connection being opened or open; concurrent callers share one connect.
type Slot = Arc<OnceCell<Arc<dyn Connection>>>;

#[derive(Default)]
pub struct ConnectionManager {
    cells: Mutex<HashMap<String, Slot>>,
    /// Hosts used as jump hosts: closed last, as other connections tunnel through them.
    jumps: Mutex<HashSet<String>>,
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
