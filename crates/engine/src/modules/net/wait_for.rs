//! `wait_for`: waits until a port is open or closed, or a file exists, is gone or
//! contains a pattern.
//!
//! The polling loop runs ON THE HOST inside one shell invocation, so waiting five minutes
//! costs one round trip instead of one per poll. Ports are probed with bash's
//! `/dev/tcp` (or `nc -z` when bash is missing), from the host itself, as Ansible does.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::{ExecRequest, sh_quote};
use crate::modules::args::Args;
use crate::modules::remote::qpath;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct WaitFor;

const KNOWN: &[&str] = &[
    "host",
    "port",
    "path",
    "state",
    "search_regex",
    "timeout",
    "delay",
    "sleep",
    "connect_timeout",
    "msg",
    "exclude_hosts",
    "active_connection_states",
];

/// A shell condition that is true when `host:port` accepts a TCP connection.
fn port_open(host: &str, port: u16, connect_timeout: i64) -> String {
    let target = sh_quote(&format!("exec 3<>/dev/tcp/{host}/{port}"));
    format!(
        "(if command -v bash >/dev/null 2>&1; then timeout {connect_timeout} bash -c {target} 2>/dev/null; \
         else nc -z -w {connect_timeout} {} {port} 2>/dev/null; fi)",
        sh_quote(host)
    )
}

/// Builds the on-host loop: exits 0 when `cond` holds, 2 on timeout.
pub fn wait_script(cond: &str, timeout: i64, delay: i64, sleep: i64) -> String {
    format!(
        "start=$(date +%s); end=$((start + {timeout})); sleep {delay}; \
         while :; do if {cond}; then echo \"elapsed=$(( $(date +%s) - start ))\"; exit 0; fi; \
         [ \"$(date +%s)\" -ge \"$end\" ] && {{ echo \"elapsed=$(( $(date +%s) - start ))\"; exit 2; }}; sleep {sleep}; done"
    )
}

#[async_trait]
impl Module for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("wait_for", args, KNOWN)?;
        let host = a.str_or("host", "127.0.0.1")?;
        let port = match a.opt_int("port")? {
            Some(p) => {
                Some(u16::try_from(p).map_err(|_| a.err("port", "must be between 1 and 65535"))?)
            }
            None => None,
        };
        let path = a.opt_str("path")?;
        let state = a.choice(
            "state",
            &["started", "stopped", "present", "absent", "drained"],
            "started",
        )?;
        let regex = a.opt_str("search_regex")?;
        let timeout = a.int_or("timeout", 300)?;
        let delay = a.int_or("delay", 0)?;
        let sleep = a.int_or("sleep", 1)?.max(1);
        let connect_timeout = a.int_or("connect_timeout", 5)?.max(1);
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
        {
            return Err(a.err(
                "host",
                format!("must be a host name or IP address, got '{host}'"),
            ));
        }
        if port.is_some() && path.is_some() {
            return Err(a.fail("'port' and 'path' are mutually exclusive"));
        }
        if state == "drained" {
            return Err(a.err(
                "state",
                "'drained' is not supported; wait for 'stopped' instead",
            ));
        }
        let (cond, what) = match (&path, port) {
            (Some(p), _) => {
                let q = qpath(p);
                let cond = match (state, &regex) {
                    ("absent" | "stopped", _) => format!("[ ! -e {q} ]"),
                    (_, Some(re)) => format!("grep -Eq -- {} {q} 2>/dev/null", sh_quote(re)),
                    _ => format!("[ -e {q} ]"),
                };
                (cond, format!("file {p}"))
            }
            (None, Some(port)) => {
                let open = port_open(&host, port, connect_timeout);
                let cond = match (state, &regex) {
                    ("stopped" | "absent", _) => format!("! {open}"),
                    (_, Some(re)) => format!(
                        "timeout {connect_timeout} bash -c {} 2>/dev/null | grep -Eq -- {}",
                        sh_quote(&format!("exec 3<>/dev/tcp/{host}/{port}; cat <&3")),
                        sh_quote(re)
                    ),
                    _ => open,
                };
                (cond, format!("{host}:{port}"))
            }
            (None, None) => (String::from("true"), String::new()),
        };
        let mut base = ModuleResult::ok().with("state", state);
        if let Some(p) = &path {
            base = base.with("path", p.clone());
        }
        if let Some(p) = port {
            base = base
                .with("port", p)
                .with("search_regex", regex.clone().unwrap_or_default());
        }
        if ctx.check_mode && what.is_empty() {
            return Ok(base.with("elapsed", 0));
        }
        let req = ExecRequest {
            cmd: wait_script(&cond, timeout, delay, sleep),
            env: ctx.env.clone(),
            become_: ctx.become_.clone(),
            // The loop ends by itself; the slack only guards against a hung host.
            timeout: Some(Duration::from_secs(
                (timeout + delay + connect_timeout + 30).max(1) as u64,
            )),
            ..Default::default()
        };
        let out = ctx.conn.exec(req).await?;
        let elapsed: i64 = out
            .stdout_str()
            .lines()
            .find_map(|l| l.strip_prefix("elapsed="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let r = base.with("elapsed", elapsed);
        if out.rc == 0 {
            return Ok(r);
        }
        let msg = a.opt_str("msg")?.unwrap_or_else(|| {
            if regex.is_some() && !matches!(state, "absent" | "stopped") {
                format!(
                    "Timeout when waiting for search string {} in {what}",
                    regex.clone().unwrap_or_default()
                )
            } else {
                format!("Timeout when waiting for {what}")
            }
        });
        Ok(ModuleResult {
            failed: true,
            msg: Some(msg),
            ..r
        })
    }
}
