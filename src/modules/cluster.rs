//! `spark_openstack.cluster`: bring a whole cluster's cloud resources to a state.
//!
//! ```yaml
//! - spark_openstack.cluster:
//!     cluster: demo
//!     state: present        # present | absent | stopped | started
//!     slaves: 2             # present: at least this many slaves
//!     add_slaves: 1         # present: this many more than now
//!     remove_slaves: 1      # present: delete the highest-numbered slaves
//!     image: ubuntu-22.04   # and the other launch options (see crate::cluster::spec)
//!     keep_volumes: false   # absent / remove_slaves
//!     role_vars: {...}      # present / started: merged into the variables recorded on
//!                           # the master (crate::cluster::recorded)
//! ```
//! Returns `cluster` (the describe document), `created`, `replaced`, `removed`,
//! `leftovers`, `phases` (seconds per phase) and `api_calls`. Fails, after doing
//! everything it could, when a server could not be brought up or something could not be
//! deleted, naming each with the reason.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::Clouds;
use crate::cluster::api::{ClusterApi, PowerAction};
use crate::cluster::inventory::ConnOptions;
use crate::cluster::model::Cluster;
use crate::cluster::report::ServerFailure;
use crate::cluster::spec::{Args, LaunchSpec};
use crate::cluster::{describe, destroy, launch, power, recorded};
use playbook_engine::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

#[derive(Default)]
pub struct ClusterModule {
    clouds: Arc<Clouds>,
}

impl ClusterModule {
    pub fn new(clouds: Arc<Clouds>) -> Self {
        ClusterModule { clouds }
    }
}

#[async_trait]
impl Module for ClusterModule {
    fn name(&self) -> &'static str {
        "spark_openstack.cluster"
    }
    fn supports_check_mode(&self) -> bool {
        false
    }
    fn runs_on_controller(&self) -> bool {
        true
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let api = self
            .clouds
            .get(super::cloud_name(args, ctx.vars))
            .await
            .map_err(ModuleError::Failed)?;
        run_state(api.as_ref(), args).await
    }
}

/// The module's work on any [`ClusterApi`], so it is the same code under test and in use.
pub async fn run_state(
    api: &dyn ClusterApi,
    args: &Map<String, Value>,
) -> Result<ModuleResult, ModuleError> {
    let a = Args(args);
    let state = a.str("state").map_err(ModuleError::Args)?;
    let cluster = a.req("cluster").map_err(ModuleError::Args)?;
    crate::cluster::model::validate_name(&cluster).map_err(ModuleError::Args)?;
    let secs = a
        .str("poll_interval")
        .map_err(ModuleError::Args)?
        .map(|s| {
            s.parse::<f64>().map_err(|_| {
                ModuleError::Args(format!(
                    "argument 'poll_interval' must be seconds, got '{s}'"
                ))
            })
        })
        .transpose()?
        .unwrap_or(1.0);
    let poll = Duration::from_secs_f64(secs.clamp(0.01, 60.0));
    let calls_before = api.calls();
    let keep = a.bool("keep_volumes").map_err(ModuleError::Args)?;
    let mut result = match state.as_deref().unwrap_or("present") {
        "present" => {
            let remove = a.uint("remove_slaves").map_err(ModuleError::Args)?;
            if let Some(n) = remove.filter(|n| *n > 0) {
                let out = destroy::remove_slaves(api, &cluster, n as usize, keep, poll)
                    .await
                    .map_err(ModuleError::Failed)?;
                destroyed(out)
            } else {
                present(api, args, poll).await?
            }
        }
        "absent" => {
            let out = destroy::destroy(api, &cluster, keep, poll)
                .await
                .map_err(ModuleError::Failed)?;
            destroyed(out)
        }
        s @ ("stopped" | "started") => {
            let action = if s == "stopped" {
                PowerAction::Stop
            } else {
                PowerAction::Start
            };
            let (acted, failures) =
                power::set_power(api, &cluster, action, Duration::from_secs(600), poll)
                    .await
                    .map_err(ModuleError::Failed)?;
            let mut r = failed_or_ok(
                !acted.is_empty(),
                &failures,
                "could not change power state of",
            );
            r.data.insert("servers".into(), json!(acted));
            r
        }
        other => {
            return Err(ModuleError::Args(format!(
                "argument 'state': '{other}' is not one of present, absent, stopped, started"
            )));
        }
    };
    let servers = api
        .servers()
        .await
        .map_err(|e| ModuleError::Failed(e.msg))?;
    let (fips, vols) = futures::try_join!(api.floating_ips(), api.volumes())
        .map_err(|e| ModuleError::Failed(e.msg))?;
    let c = Cluster::collect(&cluster, &servers, &fips, &vols);
    if let (Some(given), Some(master)) = (role_vars(args)?, c.master())
        && matches!(state.as_deref(), None | Some("present" | "started"))
    {
        result.changed |= recorded::record(api, master, &given)
            .await
            .map_err(ModuleError::Failed)?;
    }
    result.data.insert(
        "cluster".into(),
        describe::describe(&c, &ConnOptions::default()),
    );
    result.data.insert(
        "api_calls".into(),
        json!(api.calls().saturating_sub(calls_before)),
    );
    Ok(result)
}

async fn present(
    api: &dyn ClusterApi,
    args: &Map<String, Value>,
    poll: Duration,
) -> Result<ModuleResult, ModuleError> {
    let mut spec = LaunchSpec::from_args(args).map_err(ModuleError::Args)?;
    if let Some(n) = Args(args).uint("add_slaves").map_err(ModuleError::Args)? {
        let servers = api
            .servers()
            .await
            .map_err(|e| ModuleError::Failed(e.msg))?;
        let have = Cluster::collect(&spec.cluster, &servers, &[], &[])
            .slaves
            .len() as u32;
        spec.slaves = Some(have + n as u32);
    }
    let out = launch::converge(api, &spec, poll)
        .await
        .map_err(ModuleError::Failed)?;
    let mut r = failed_or_ok(out.changed, &out.failures, "could not bring up");
    r.data.insert("created".into(), json!(out.created));
    r.data.insert("replaced".into(), json!(out.replaced));
    r.data.insert("failures".into(), json!(out.failures));
    r.data.insert("phases".into(), out.phases.to_json());
    r.data
        .insert("network".into(), json!(out.net_mode.map(|m| m.as_str())));
    Ok(r)
}

/// `role_vars`: the role variables given to this run (`-e`, the config file's `vars:`), to
/// be recorded on the master so later runs configure the nodes the same way.
fn role_vars(args: &Map<String, Value>) -> Result<Option<Map<String, Value>>, ModuleError> {
    match args.get("role_vars") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(ModuleError::Args(format!(
            "argument 'role_vars' must be a mapping of variable names to values, got {other}"
        ))),
    }
}

fn failed_or_ok(changed: bool, failures: &[ServerFailure], what: &str) -> ModuleResult {
    let mut r = if failures.is_empty() {
        ModuleResult::ok()
    } else {
        let lines: Vec<String> = failures
            .iter()
            .map(|f| format!("{}: {}", f.name, f.reason))
            .collect();
        ModuleResult::failed(format!(
            "{what} {} server(s): {}",
            failures.len(),
            lines.join("; ")
        ))
    };
    r.changed = changed;
    r
}

fn destroyed(out: destroy::DestroyOutcome) -> ModuleResult {
    let mut r = if out.leftovers.is_empty() {
        ModuleResult::ok()
    } else {
        ModuleResult::failed(format!("could not remove: {}", out.leftovers.join("; ")))
    };
    r.changed = out.changed();
    r.data.insert("removed".into(), json!(out.removed));
    r.data.insert("leftovers".into(), json!(out.leftovers));
    r.data.insert("kept".into(), json!(out.kept));
    r
}
