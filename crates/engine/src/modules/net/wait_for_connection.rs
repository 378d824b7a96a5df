//! `wait_for_connection`: waits until the host answers a trivial command again (after a
//! reboot, or while a new VM boots). The executor gives this module a lazy connection
//! ([`Module::waits_for_connection`]), so each attempt connects afresh until sshd answers:
//! a cloud reports a VM ACTIVE 20-90 s before its sshd listens.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::{ConnError, ExecRequest, Unreachable};
use crate::modules::args::Args;
use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

pub struct WaitForConnection;

#[async_trait]
impl Module for WaitForConnection {
    fn name(&self) -> &'static str {
        "wait_for_connection"
    }

    fn waits_for_connection(&self) -> bool {
        true
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new(
            "wait_for_connection",
            args,
            &["delay", "sleep", "timeout", "connect_timeout"],
        )?;
        let delay = a.int_or("delay", 0)?.max(0) as u64;
        let sleep = a.int_or("sleep", 1)?.max(1) as u64;
        let timeout = a.int_or("timeout", 600)?.max(0) as u64;
        let connect_timeout = a.int_or("connect_timeout", 5)?.max(1) as u64;
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(delay)).await;
        let deadline = start + Duration::from_secs(timeout);
        loop {
            let req = ExecRequest {
                cmd: "true".into(),
                timeout: Some(Duration::from_secs(connect_timeout)),
                ..Default::default()
            };
            let last_error = match ctx.conn.exec(req).await {
                Ok(out) if out.rc == 0 => {
                    return Ok(ModuleResult::ok().with("elapsed", start.elapsed().as_secs()));
                }
                Ok(out) => format!("'true' exited with {}", out.rc),
                // A changed host key does not fix itself: waiting out the timeout (as
                // Ansible does) only delays the one message that says what to do.
                Err(
                    e @ ConnError::Unreachable {
                        reason: Unreachable::HostKeyMismatch { .. },
                        ..
                    },
                ) => {
                    return Ok(ModuleResult::failed(format!(
                        "cannot connect to {}: {e}",
                        ctx.host
                    ))
                    .with("elapsed", start.elapsed().as_secs()));
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() + Duration::from_secs(sleep) > deadline {
                return Ok(ModuleResult::failed(format!(
                    "timed out waiting for connection to {} after {timeout} seconds: {last_error}",
                    ctx.host
                ))
                .with("elapsed", start.elapsed().as_secs()));
            }
            tokio::time::sleep(Duration::from_secs(sleep)).await;
        }
    }
}
