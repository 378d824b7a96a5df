//! Wait helpers. Polling is built for clusters: [`Cloud::wait_for_servers`] watches any
//! number of servers with ONE `GET /servers/detail` per round, not one GET per server,
//! at a fixed interval (as openstacksdk and osc-lib poll) with an overall timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Cloud;
use super::compute::{Server, ServerFilter};
use super::error::{CloudError, Result};

/// Timeout and poll interval of the wait helpers.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Default for Wait {
    fn default() -> Self {
        Wait {
            timeout: Duration::from_secs(600),
            interval: Duration::from_secs(3),
        }
    }
}

impl Cloud {
    /// Waits until every server in `ids` has `status` (e.g. "ACTIVE", "SHUTOFF"), polling
    /// with ONE list call (narrowed by `filter`) per round. A server in ERROR fails the
    /// wait with Nova's fault message; one that vanishes fails it too.
    pub async fn wait_for_servers(
        &self,
        ids: &[String],
        status: &str,
        filter: &ServerFilter,
        wait: Wait,
    ) -> Result<Vec<Server>> {
        let start = Instant::now();
        loop {
            let all: HashMap<String, Server> = self
                .list_servers(filter)
                .await?
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect();
            let mut pending = Vec::new();
            for id in ids {
                match all.get(id) {
                    None => {
                        return Err(CloudError::Failed(format!(
                            "server {id} disappeared while waiting for {status}"
                        )));
                    }
                    Some(s)
                        if s.status.eq_ignore_ascii_case("ERROR")
                            && !status.eq_ignore_ascii_case("ERROR") =>
                    {
                        let why = s
                            .fault
                            .as_ref()
                            .map(|f| f.message.as_str())
                            .filter(|m| !m.is_empty());
                        return Err(CloudError::Failed(format!(
                            "server {} ({}) went to ERROR: {}",
                            s.name,
                            s.id,
                            why.unwrap_or("no fault message from Nova")
                        )));
                    }
                    Some(s) if !s.status.eq_ignore_ascii_case(status) => {
                        pending.push(format!("{} ({})", s.name, s.status))
                    }
                    Some(_) => {}
                }
            }
            if pending.is_empty() {
                return Ok(ids.iter().filter_map(|id| all.get(id).cloned()).collect());
            }
            if start.elapsed() >= wait.timeout {
                return Err(CloudError::Timeout(format!(
                    "timed out after {}s waiting for servers to be {status}; still waiting for {}",
                    wait.timeout.as_secs(),
                    pending.join(", ")
                )));
            }
            tokio::time::sleep(wait.interval).await;
        }
    }

    /// Waits until none of `ids` is listed any more (one list call per round).
    pub async fn wait_for_servers_deleted(
        &self,
        ids: &[String],
        filter: &ServerFilter,
        wait: Wait,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            let left: Vec<String> = self
                .list_servers(filter)
                .await?
                .into_iter()
                .filter(|s| ids.contains(&s.id) && !s.status.eq_ignore_ascii_case("DELETED"))
                .map(|s| format!("{} ({})", s.name, s.status))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= wait.timeout {
                return Err(CloudError::Timeout(format!(
                    "timed out after {}s waiting for servers to be deleted: {}",
                    wait.timeout.as_secs(),
                    left.join(", ")
                )));
            }
            tokio::time::sleep(wait.interval).await;
        }
    }
}
