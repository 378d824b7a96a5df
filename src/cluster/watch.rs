//! The one way the cluster layer waits on Nova's servers: one listing per poll for all of
//! them (never one request per server), a progress bar, and a deadline. Launch (BUILD →
//! ACTIVE, with ERROR replacement), stop/start and destroy each decide what "done" means
//! for them; the polling, its pace and its end are here.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use super::api::{ClusterApi, Server};
use super::error::ClusterError;

pub struct ServerWatch {
    deadline: Instant,
    poll: Duration,
    first: bool,
    /// The progress shown while waiting; its length and position are the caller's.
    pub bar: ProgressBar,
}

impl ServerWatch {
    /// Starts waiting on `total` servers for at most `timeout`, listing them every `poll`.
    pub fn new(what: &str, total: u64, timeout: Duration, poll: Duration) -> ServerWatch {
        ServerWatch {
            deadline: Instant::now() + timeout,
            poll,
            first: true,
            bar: super::report::progress(total, what),
        }
    }

    /// Every server as Nova lists it now: at once the first time, then one poll interval
    /// after the previous listing.
    pub async fn servers(&mut self, api: &dyn ClusterApi) -> Result<Vec<Server>, ClusterError> {
        if !std::mem::take(&mut self.first) {
            tokio::time::sleep(self.poll).await;
        }
        Ok(api.servers().await?)
    }

    /// Whether the deadline has passed: the caller reports what is not done and stops.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl Drop for ServerWatch {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
