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
use crate::cluster::error::ClusterError;
use crate::cluster::inventory::ConnOptions;
use crate::cluster::model::Cluster;
use crate::cluster::report::ServerFailure;
use crate::cluster::spec::{LAUNCH_ARGS, LaunchSpec, without_empty};
use crate::cluster::{describe, destroy, launch, power, recorded};
use playbook_engine::modules::args::Args;
use playbook_engine::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

/// The module's own arguments, besides the launch options of [`LAUNCH_ARGS`].
const MODULE_ARGS: &[&str] = &[
    "state",
    "cloud",
    "poll_interval",
    "keep_volumes",
    "remove_slaves",
    "add_slaves",
    "role_vars",
];

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
    let args = &without_empty(args);
    let known: Vec<&str> = MODULE_ARGS.iter().chain(LAUNCH_ARGS).copied().collect();
    let a = Args::new("spark_openstack.cluster", args, &known)?;
    let state = a.choice(
        "state",
        &["present", "absent", "stopped", "started"],
        "present",
    )?;
    let cluster = a.str("cluster")?;
    crate::cluster::model::validate_name(&cluster).map_err(|e| a.err("cluster", e))?;
    let secs = match a.opt_str("poll_interval")? {
        None => 1.0,
        Some(s) => s
            .parse::<f64>()
            .map_err(|_| a.err("poll_interval", format!("must be seconds, got '{s}'")))?,
    };
    let poll = Duration::from_secs_f64(secs.clamp(0.01, 60.0));
    let calls_before = api.calls();
    let keep = a.bool_or("keep_volumes", false)?;
    let mut result = match state {
        "present" => {
            let remove = a.opt_int("remove_slaves")?;
            if let Some(n) = remove.filter(|n| *n > 0) {
                let out = destroy::remove_slaves(api, &cluster, n as usize, keep, poll)
                    .await
                    .map_err(failed)?;
                destroyed(out)
            } else {
                present(api, &a, poll).await?
            }
        }
        "absent" => {
            let out = destroy::destroy(api, &cluster, keep, poll)
                .await
                .map_err(failed)?;
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
                    .map_err(failed)?;
            let mut r = failed_or_ok(
                !acted.is_empty(),
                &failures,
                "could not change power state of",
            );
            r.data.insert("servers".into(), json!(acted));
            r
        }
        _ => unreachable!("Args::choice returns one of the choices"),
    };
    let servers = api
        .servers()
        .await
        .map_err(|e| ModuleError::Failed(e.msg))?;
    let (fips, vols) = futures::try_join!(api.floating_ips(), api.volumes())
        .map_err(|e| ModuleError::Failed(e.msg))?;
    let c = Cluster::collect(&cluster, &servers, &fips, &vols);
    if let (Some(given), Some(master)) = (role_vars(&a)?, c.master())
        && matches!(state, "present" | "started")
    {
        result.changed |= recorded::record(api, master, &given)
            .await
            .map_err(failed)?;
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
    a: &Args<'_>,
    poll: Duration,
) -> Result<ModuleResult, ModuleError> {
    let spec = LaunchSpec::from_args(a)?;
    let out = match a.opt_int("add_slaves")? {
        Some(n) if n < 0 => {
            return Err(a.err("add_slaves", format!("must be 0 or more, got {n}")));
        }
        Some(n) => launch::add_slaves(api, &spec, n as u32, poll).await,
        None => launch::converge(api, &spec, poll).await,
    }
    .map_err(failed)?;
    let mut r = failed_or_ok(out.changed, &out.failures, "could not bring up");
    r.data.insert("created".into(), json!(out.created));
    r.data.insert("replaced".into(), json!(out.replaced));
    r.data.insert("failures".into(), json!(out.failures));
    r.data.insert("phases".into(), out.phases.to_json());
    r.data
        .insert("network".into(), json!(out.net_mode.map(|m| m.as_str())));
    Ok(r)
}

fn failed(e: ClusterError) -> ModuleError {
    ModuleError::Failed(e.to_string())
}

/// `role_vars`: the role variables given to this run (`-e`, the config file's `vars:`), to
/// be recorded on the master so later runs configure the nodes the same way.
fn role_vars(a: &Args<'_>) -> Result<Option<Map<String, Value>>, ModuleError> {
    match a.value("role_vars") {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(a.err(
            "role_vars",
            format!("must be a mapping of variable names to values, got {other}"),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::memory_cloud::MemoryCloud;

    /// A server that stays in ERROR after its one replacement is a failed task naming the
    /// server and Nova's fault, as a playbook user sees it.
    #[tokio::test]
    async fn a_server_that_will_not_boot_fails_the_task_with_its_fault() {
        let cloud = MemoryCloud::new();
        cloud.boot_fails("demo-slave-1", "No valid host was found.");
        cloud.boot_fails("demo-slave-1", "Exceeded maximum number of retries.");
        let args = json!({
            "cluster": "demo", "slaves": 1, "image": "ubuntu-24.04",
            "instance_type": "m1.small", "poll_interval": 0
        });
        let run = run_state(&cloud, args.as_object().expect("args"));
        let r = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("finishes")
            .expect("module result");
        assert!(r.failed);
        let msg = r.msg.unwrap_or_default();
        assert!(
            msg.contains("demo-slave-1: ERROR: Exceeded maximum number of retries."),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_misspelt_argument_is_refused_before_any_call() {
        let cloud = MemoryCloud::new();
        let args = json!({"cluster": "demo", "slavse": 2});
        let e = run_state(&cloud, args.as_object().expect("args"))
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("did you mean 'slaves'"), "{e}");
        assert!(cloud.writes().is_empty());
    }
}
