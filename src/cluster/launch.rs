//! Converging a cluster to its [`LaunchSpec`]: the cloud side of `launch`, `launch
//! --resume` and `add-slaves`.
//!
//! Every step first looks at what exists and creates only what is missing, so rerunning
//! after any failure (Ctrl-C included) picks up where the last run stopped. Servers are
//! created concurrently and tagged at creation (security groups + metadata), so even a run
//! killed right after a `POST /servers` leaves a server the next run finds. Waiting polls
//! one `GET /servers/detail` for the whole cluster, so API calls grow linearly with the
//! number of servers. A server that lands in ERROR is deleted and booted once more; a
//! second ERROR is reported with Nova's fault message.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::api::{ApiError, ClusterApi, Flavor, PowerAction, Server, ServerCreate};
use super::error::ClusterError;
use super::model::{self, Cluster, Role};
use super::report::{Phases, ServerFailure};
use super::resolve;
use super::secgroups::{self, RulePlan};
use super::spec::{LaunchSpec, NetMode};
use super::watch::ServerWatch;

/// Metadata keys recording launch choices, so later commands need no options.
pub const META_SSH_USER: &str = "spark_openstack_ssh_user";
pub const META_NET_MODE: &str = "spark_openstack_network";
pub const META_SLAVE_VOLUME: &str = "spark_openstack_slave_volume_gb";
pub const META_PERSISTENT_VOLUME: &str = "spark_openstack_persistent_volume_gb";
/// `--authorized-address`: the UI ports are open to it (describe shows their URLs).
pub const META_AUTHORIZED: &str = "spark_openstack_authorized_address";

/// Concurrent API requests while creating or deleting servers.
const CONCURRENCY: usize = 20;

/// What a launch did.
#[derive(Debug, Default)]
pub struct LaunchOutcome {
    pub cluster: Cluster,
    pub created: Vec<String>,
    pub replaced: Vec<String>,
    pub failures: Vec<ServerFailure>,
    pub phases: Phases,
    pub net_mode: Option<NetMode>,
    pub changed: bool,
}

/// Settings taken from the existing cluster when the spec leaves them out.
struct Resolved {
    image_id: String,
    slave_flavor: String,
    master_flavor: String,
    key_name: Option<String>,
    network_id: Option<String>,
    net_mode: NetMode,
    ssh_user: Option<String>,
    flavors: Vec<Flavor>,
}

pub async fn converge(
    api: &dyn ClusterApi,
    spec: &LaunchSpec,
    poll: Duration,
) -> Result<LaunchOutcome, ClusterError> {
    let mut out = LaunchOutcome::default();
    let mut phases = Phases::start();
    let servers = api.servers().await?;
    let existing = Cluster::collect(&spec.cluster, &servers, &[], &[]);
    if spec.resume && existing.is_empty() {
        return Err(ClusterError::Invalid(format!(
            "cluster '{}' has no servers to resume; run launch without --resume",
            spec.cluster
        )));
    }
    let spec = &with_recorded_volumes(spec, &existing);
    let res = resolve_settings(api, spec, &existing).await?;
    if let Some(name) = spec.key_pair.as_deref() {
        ensure_keypair(api, name, spec.key_pair_public_key.as_deref()).await?;
    }
    out.net_mode = Some(res.net_mode);
    phases.mark("resolve");

    ensure_security_groups(api, spec, res.net_mode, &mut out).await?;
    phases.mark("security groups");

    let wanted_slaves = spec
        .slaves
        .unwrap_or(existing.slaves.len() as u32)
        .max(existing.slaves.len() as u32);
    let to_create = plan_servers(spec, &res, &existing, wanted_slaves);
    if !to_create.is_empty() {
        match api.compute_limits().await {
            Ok(limits) => check_quota(&limits, &res.flavors, &to_create)?,
            // Some clouds hide limits from projects; Nova still refuses what is over.
            Err(e) => tracing::debug!("cannot read Nova's limits: {}", e.msg),
        }
    }
    let to_start: Vec<&Server> = existing
        .servers()
        .filter(|s| s.status == "SHUTOFF")
        .collect();
    for s in &to_start {
        api.power(&s.id, PowerAction::Start).await?;
    }
    // Servers already in ERROR get the same one replacement a new one would.
    let broken: Vec<&Server> = existing.servers().filter(|s| s.status == "ERROR").collect();
    let mut boot = Boot::default();
    for s in &broken {
        let req = recreate_request(spec, &res, s);
        boot.replace(api, s, req, &mut out).await?;
    }
    boot.create_all(api, to_create, &mut out).await;
    out.changed |= !to_start.is_empty() || !out.created.is_empty();
    boot.wait(api, spec, poll, &mut out).await?;
    phases.mark("servers");

    // Servers replaced above may still be listed while Nova deletes them; they are not
    // the cluster (an old master in ERROR first in the list would get no floating IP).
    let mut servers = api.servers().await?;
    servers.retain(|s| !boot.gone.contains(&s.id));
    let cluster = Cluster::collect(&spec.cluster, &servers, &[], &[]);
    out.cluster = cluster.clone();
    if res.net_mode == NetMode::Floating {
        super::floating::ensure_master_ip(api, spec, &cluster, &mut out.changed).await?;
        phases.mark("floating IP");
    }
    if spec.slave_volume_size.is_some() || spec.persistent_volume_size.is_some() {
        super::volumes::ensure(api, spec, &cluster, &mut out.changed).await?;
        phases.mark("volumes");
    }
    out.phases = phases;
    Ok(out)
}

/// `add-slaves N`: converges to N slaves more than the cluster has now, everything else as
/// `spec` says or as the cluster was launched.
pub async fn add_slaves(
    api: &dyn ClusterApi,
    spec: &LaunchSpec,
    n: u32,
    poll: Duration,
) -> Result<LaunchOutcome, ClusterError> {
    let servers = api.servers().await?;
    let have = Cluster::collect(&spec.cluster, &servers, &[], &[])
        .slaves
        .len() as u32;
    let spec = LaunchSpec {
        slaves: Some(have + n),
        ..spec.clone()
    };
    converge(api, &spec, poll).await
}

/// Checks what a launch would use (image, flavors, network, floating IP pool, zones)
/// against the cloud without changing anything, so the CLI can refuse a bad option before
/// any playbook runs. The same lookups as [`converge`]'s, so the two cannot disagree.
pub async fn preflight(api: &dyn ClusterApi, spec: &LaunchSpec) -> Result<(), ClusterError> {
    let servers = api.servers().await?;
    let existing = Cluster::collect(&spec.cluster, &servers, &[], &[]);
    if spec.resume && existing.is_empty() {
        return Err(ClusterError::Invalid(format!(
            "cluster '{}' has no servers to resume; run launch without --resume",
            spec.cluster
        )));
    }
    resolve_settings(api, &with_recorded_volumes(spec, &existing), &existing).await?;
    Ok(())
}

/// `--zone` must name Nova's zones: Nova refuses a create in any other, and by then the
/// master may already exist. A cloud that hides its zone list is trusted.
async fn check_zones(api: &dyn ClusterApi, zones: &[String]) -> Result<(), ClusterError> {
    if zones.is_empty() {
        return Ok(());
    }
    let known = match api.compute_zones().await {
        Ok(known) => known,
        Err(e) => {
            tracing::debug!("cannot list Nova's zones: {}", e.msg);
            return Ok(());
        }
    };
    match zones.iter().find(|z| !known.contains(z)) {
        None => Ok(()),
        Some(bad) => Err(ClusterError::Invalid(format!(
            "--zone '{bad}': Nova has no such availability zone (available: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))),
    }
}

/// Volume sizes chosen at launch apply to nodes added later (`add-slaves`, `--resume`).
fn with_recorded_volumes(spec: &LaunchSpec, existing: &Cluster) -> LaunchSpec {
    let recorded = |key: &str| {
        existing
            .servers()
            .find_map(|s| s.metadata.get(key)?.parse::<u64>().ok())
    };
    let mut spec = spec.clone();
    spec.slave_volume_size = spec
        .slave_volume_size
        .or_else(|| recorded(META_SLAVE_VOLUME));
    spec.persistent_volume_size = spec
        .persistent_volume_size
        .or_else(|| recorded(META_PERSISTENT_VOLUME));
    spec
}

async fn resolve_settings(
    api: &dyn ClusterApi,
    spec: &LaunchSpec,
    existing: &Cluster,
) -> Result<Resolved, ClusterError> {
    let (images, flavors, networks) =
        futures::try_join!(api.images(), api.flavors(), api.networks())?;
    let sample_slave = existing.slaves.first();
    let sample = sample_slave.or(existing.master());
    let image_id = match (&spec.image, sample) {
        (Some(i), _) => resolve::by_name_or_id(&images, i, "image", "--image")?
            .id
            .clone(),
        (None, Some(s)) => s.image_id.clone(),
        (None, None) => {
            return Err(ClusterError::Invalid(
                "launching a new cluster needs --image (name or id)".into(),
            ));
        }
    };
    let image_user = images
        .iter()
        .find(|i| i.id == image_id)
        .and_then(|i| i.login_user());
    let flavor = |wanted: &Option<String>,
                  from: Option<&Server>,
                  opt: &str|
     -> Result<String, ClusterError> {
        match (wanted, from) {
            (Some(f), _) => Ok(resolve::by_name_or_id(&flavors, f, "flavor", opt)?
                .id
                .clone()),
            (None, Some(s)) => Ok(
                resolve::by_name_or_id(&flavors, &s.flavor_id, "flavor", opt)?
                    .id
                    .clone(),
            ),
            (None, None) => Err(ClusterError::Failed(format!(
                "launching a new cluster needs {opt} (flavor name or id)"
            ))),
        }
    };
    let slave_flavor = flavor(&spec.instance_type, sample, "--instance-type")?;
    let master_flavor = match (&spec.master_instance_type, existing.master()) {
        (Some(_), _) | (None, Some(_)) => flavor(
            &spec.master_instance_type,
            existing.master(),
            "--master-instance-type",
        )?,
        (None, None) => slave_flavor.clone(),
    };
    check_flavor(&flavors, &slave_flavor)?;
    let key_name = spec
        .key_pair
        .clone()
        .or_else(|| sample.and_then(|s| s.key_name.clone()));
    // A server keeps the key it booted with: new nodes with another key pair would need
    // another identity file than the cluster's, and no command could reach both.
    if let (Some(wanted), Some(had)) = (&spec.key_pair, sample.and_then(|s| s.key_name.as_ref()))
        && wanted != had
    {
        return Err(ClusterError::Invalid(format!(
            "--key-pair '{wanted}': cluster '{}' was launched with key pair '{had}', which its \
             servers keep; pass -k {had} (or leave -k out) with that key pair's private key",
            spec.cluster
        )));
    }
    check_zones(api, &spec.zones).await?;
    if let (Some(name), Some(local)) = (&spec.key_pair, &spec.key_pair_public_key) {
        check_keypair(api, name, local).await?;
    }
    let network_id =
        resolve::cluster_network(&networks, spec.network.as_deref())?.map(|n| n.id.clone());
    let recorded = |key: &str| sample.and_then(|s| s.metadata.get(key).cloned());
    let net_mode = match (spec.net_mode, recorded(META_NET_MODE)) {
        (Some(m), _) => m,
        (None, Some(m)) => NetMode::parse(&m)?,
        (None, None) => NetMode::Floating,
    };
    if net_mode == NetMode::Floating {
        resolve::floating_pool(&networks, spec.floating_ip_pool.as_deref())?;
    }
    Ok(Resolved {
        image_id,
        slave_flavor,
        master_flavor,
        key_name,
        network_id,
        net_mode,
        // Recorded on the servers, so later commands log in as the launch did.
        ssh_user: spec
            .ssh_user
            .clone()
            .or_else(|| recorded(META_SSH_USER))
            .or(image_user),
        flavors,
    })
}

/// Refuses, before anything is created, a launch that the project's Nova quota cannot hold:
/// otherwise Nova accepts servers until the quota runs out and the launch stops halfway,
/// leaving servers the user pays for. Checks instances, cores and RAM (-1 is unlimited).
fn check_quota(
    limits: &BTreeMap<String, i64>,
    flavors: &[Flavor],
    to_create: &[ServerCreate],
) -> Result<(), ClusterError> {
    let flavor = |id: &str| flavors.iter().find(|f| f.id == id);
    let need_cores: u64 = to_create
        .iter()
        .filter_map(|r| flavor(&r.flavor_id))
        .map(|f| u64::from(f.vcpus))
        .sum();
    let need_ram: u64 = to_create
        .iter()
        .filter_map(|r| flavor(&r.flavor_id))
        .map(|f| f.ram_mb)
        .sum();
    let mut short = Vec::new();
    for (what, max, used, need) in [
        (
            "instances",
            "maxTotalInstances",
            "totalInstancesUsed",
            to_create.len() as u64,
        ),
        ("cores", "maxTotalCores", "totalCoresUsed", need_cores),
        ("RAM (MB)", "maxTotalRAMSize", "totalRAMUsed", need_ram),
    ] {
        let (Some(&max), Some(&used)) = (limits.get(max), limits.get(used)) else {
            continue;
        };
        if max < 0 {
            continue;
        }
        let left = (max - used).max(0) as u64;
        if need > left {
            short.push(format!(
                "{what}: needs {need}, {left} left (quota {max}, {used} in use)"
            ));
        }
    }
    if short.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Failed(format!(
            "the project's Nova quota cannot hold {} new server(s), so nothing was created: {}; \
             launch fewer or smaller servers, free some, or ask the cloud's admins to raise the quota",
            to_create.len(),
            short.join("; ")
        )))
    }
}

/// A `--key-pair` that Nova does not know is imported from the identity file's public
/// key when there is one; otherwise the launch stops before creating anything.
async fn ensure_keypair(
    api: &dyn ClusterApi,
    name: &str,
    public_key: Option<&str>,
) -> Result<(), ClusterError> {
    let names = api.keypair_names().await?;
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    match public_key {
        Some(key) => {
            api.import_keypair(name, key)
                .await
                .map_err(|e| e.context(format!("cannot import key pair '{name}'")))?;
            tracing::warn!("imported key pair '{name}' into Nova from the identity file's .pub");
            Ok(())
        }
        None => Err(ClusterError::Invalid(format!(
            "--key-pair: Nova has no key pair '{name}'; create it (openstack keypair create \
             --public-key KEY.pub {name}) or pass -i with a key whose .pub file sits next to it"
        ))),
    }
}

/// A `--key-pair` that Nova holds with another public key than the identity file's would
/// boot nodes that refuse this identity: the launch would wait for SSH until its timeout
/// and fail with "authentication failed". Said up front instead, naming both keys.
async fn check_keypair(api: &dyn ClusterApi, name: &str, local: &str) -> Result<(), ClusterError> {
    // Type and base64 blob; the comment is free text.
    let blob = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    match api.keypair_public_key(name).await? {
        Some(remote) if blob(&remote) != blob(local) => Err(ClusterError::Invalid(format!(
            "--key-pair '{name}': Nova holds another public key under this name than the \
             identity file's .pub ({} vs {}), so the nodes would refuse this identity; pass \
             the key pair's own private key with -i, or import this key under a new name with -k",
            short_key(&remote),
            short_key(local)
        ))),
        _ => Ok(()),
    }
}

/// `ssh-ed25519 …XXXXXXXX`: enough of a public key to tell two apart in a message.
fn short_key(k: &str) -> String {
    let mut parts = k.split_whitespace();
    let kind = parts.next().unwrap_or("?");
    let blob = parts.next().unwrap_or("");
    let tail: String = blob
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{kind} …{tail}")
}

/// Ephemeral disks come from the flavor; nothing to configure, but a flavor without one is
/// worth a note because HDFS then lives on the root disk.
fn check_flavor(flavors: &[Flavor], id: &str) -> Result<(), ClusterError> {
    if let Some(f) = flavors.iter().find(|f| f.id == id)
        && f.ephemeral_gb == 0
    {
        tracing::info!(flavor = %f.name, "flavor has no ephemeral disk; HDFS data goes to the root disk");
    }
    Ok(())
}

/// Creates the two groups if missing and adds the rules they lack.
async fn ensure_security_groups(
    api: &dyn ClusterApi,
    spec: &LaunchSpec,
    mode: NetMode,
    out: &mut LaunchOutcome,
) -> Result<(), ClusterError> {
    let groups = api.security_groups().await?;
    let mut ids = Vec::new();
    let mut rules_of = BTreeMap::new();
    for name in [
        model::master_group(&spec.cluster),
        model::slaves_group(&spec.cluster),
    ] {
        let g = match groups.iter().find(|g| g.name == name) {
            Some(g) => g.clone(),
            None => {
                out.changed = true;
                let desc = format!("{}{} ({})", model::DESCRIPTION_PREFIX, spec.cluster, name);
                api.create_security_group(&name, &desc).await?
            }
        };
        rules_of.insert(g.id.clone(), g.rules.clone());
        ids.push(g.id);
    }
    let (master_id, slaves_id) = (ids[0].clone(), ids[1].clone());
    let plan = RulePlan {
        master_group_id: &master_id,
        slaves_group_id: &slaves_id,
        authorized: spec.authorized_address.as_deref(),
        slaves_need_ssh: mode == NetMode::Static,
    };
    let (master_rules, slave_rules) = plan.rules();
    let mut todo = Vec::new();
    for (gid, wanted) in [(&master_id, &master_rules), (&slaves_id, &slave_rules)] {
        let have = rules_of.get(gid).cloned().unwrap_or_default();
        for r in secgroups::missing(wanted, &have) {
            todo.push((gid.clone(), r.clone()));
        }
    }
    out.changed |= !todo.is_empty();
    let results: Vec<Result<(), ApiError>> = stream::iter(todo)
        .map(|(gid, r)| async move { api.create_rule(&gid, &r).await })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        // 409: the rule appeared meanwhile (another run, or a retried request).
        if let Err(e) = r
            && !e.is_conflict()
        {
            return Err(e.into());
        }
    }
    Ok(())
}

fn base_request(spec: &LaunchSpec, res: &Resolved, role: Role, sg: &str) -> ServerCreate {
    let mut metadata = model::server_metadata(&spec.cluster, role);
    metadata.insert(META_NET_MODE.into(), res.net_mode.as_str().into());
    if let Some(u) = &res.ssh_user {
        metadata.insert(META_SSH_USER.into(), u.clone());
    }
    if let Some(cidr) = &spec.authorized_address {
        metadata.insert(META_AUTHORIZED.into(), cidr.clone());
    }
    for (key, size) in [
        (META_SLAVE_VOLUME, spec.slave_volume_size),
        (META_PERSISTENT_VOLUME, spec.persistent_volume_size),
    ] {
        if let Some(gb) = size {
            metadata.insert(key.into(), gb.to_string());
        }
    }
    ServerCreate {
        image_id: res.image_id.clone(),
        flavor_id: match role {
            Role::Master => res.master_flavor.clone(),
            Role::Slave => res.slave_flavor.clone(),
        },
        key_name: res.key_name.clone(),
        network_ids: res.network_id.iter().cloned().collect(),
        security_groups: vec![sg.to_string()],
        metadata,
        ..Default::default()
    }
}

/// The zone of slave `index` (1-based): round-robin over `--zone`.
fn zone_for(zones: &[String], index: u32) -> Option<String> {
    if zones.is_empty() {
        return None;
    }
    zones.get((index as usize - 1) % zones.len()).cloned()
}

fn plan_servers(
    spec: &LaunchSpec,
    res: &Resolved,
    existing: &Cluster,
    wanted_slaves: u32,
) -> Vec<ServerCreate> {
    let mut v = Vec::new();
    if existing.masters.is_empty() {
        let mut req = base_request(spec, res, Role::Master, &model::master_group(&spec.cluster));
        req.name = model::master_name(&spec.cluster);
        req.availability_zone = spec.zones.first().cloned();
        v.push(req);
    }
    let have: BTreeSet<u32> = existing
        .slaves
        .iter()
        .filter_map(|s| model::slave_index(&spec.cluster, &s.name))
        .collect();
    // Fill gaps first, so names stay 1..N; unnamed strays count towards N.
    let missing = wanted_slaves.saturating_sub(existing.slaves.len() as u32);
    let free = (1..).filter(|i| !have.contains(i)).take(missing as usize);
    for i in free {
        let mut req = base_request(spec, res, Role::Slave, &model::slaves_group(&spec.cluster));
        req.name = model::slave_name(&spec.cluster, i);
        req.availability_zone = zone_for(&spec.zones, i);
        v.push(req);
    }
    v
}

fn recreate_request(spec: &LaunchSpec, res: &Resolved, broken: &Server) -> ServerCreate {
    let role = model::role_of(&spec.cluster, broken).unwrap_or(Role::Slave);
    let group = match role {
        Role::Master => model::master_group(&spec.cluster),
        Role::Slave => model::slaves_group(&spec.cluster),
    };
    let mut req = base_request(spec, res, role, &group);
    req.name = broken.name.clone();
    req.availability_zone = broken.availability_zone.clone();
    req
}

/// The servers being booted by this run, and their replacement budget.
#[derive(Default)]
struct Boot {
    /// id → (request, already replaced once)
    pending: BTreeMap<String, (ServerCreate, bool)>,
    /// Ids we deleted; they may linger in listings for a while.
    gone: BTreeSet<String>,
}

impl Boot {
    async fn create_all(
        &mut self,
        api: &dyn ClusterApi,
        reqs: Vec<ServerCreate>,
        out: &mut LaunchOutcome,
    ) {
        let results: Vec<(ServerCreate, Result<Server, ApiError>)> = stream::iter(reqs)
            .map(|r| async move {
                let res = api.create_server(&r).await;
                (r, res)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (req, res) in results {
            match res {
                Ok(s) => {
                    out.created.push(req.name.clone());
                    self.pending.insert(s.id, (req, false));
                }
                Err(e) => out.failures.push(ServerFailure {
                    name: req.name.clone(),
                    reason: format!("create failed: {}", e.msg),
                }),
            }
        }
    }

    async fn replace(
        &mut self,
        api: &dyn ClusterApi,
        broken: &Server,
        req: ServerCreate,
        out: &mut LaunchOutcome,
    ) -> Result<(), ClusterError> {
        tracing::warn!(server = %broken.name, fault = ?broken.fault, "server in ERROR; replacing it once");
        match api.delete_server(&broken.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        self.gone.insert(broken.id.clone());
        out.replaced.push(broken.name.clone());
        out.changed = true;
        match api.create_server(&req).await {
            Ok(s) => {
                self.pending.insert(s.id, (req, true));
            }
            Err(e) => out.failures.push(ServerFailure {
                name: req.name.clone(),
                reason: format!("create failed: {}", e.msg),
            }),
        }
        Ok(())
    }

    /// Polls until every pending server is ACTIVE, replaced-and-failed, or out of time.
    async fn wait(
        &mut self,
        api: &dyn ClusterApi,
        spec: &LaunchSpec,
        poll: Duration,
        out: &mut LaunchOutcome,
    ) -> Result<(), ClusterError> {
        let total = self.pending.len() as u64;
        let timeout = Duration::from_secs(spec.boot_timeout);
        let mut watch = ServerWatch::new("servers ACTIVE", total, timeout, poll);
        loop {
            let servers = watch.servers(api).await?;
            let bar = &watch.bar;
            // Existing servers still BUILDing (from an interrupted run) are waited for too.
            for s in Cluster::collect(&spec.cluster, &servers, &[], &[]).servers() {
                if s.status == "BUILD"
                    && !self.pending.contains_key(&s.id)
                    && !self.gone.contains(&s.id)
                {
                    self.pending.insert(
                        s.id.clone(),
                        (
                            ServerCreate {
                                name: s.name.clone(),
                                ..Default::default()
                            },
                            true,
                        ),
                    );
                    bar.inc_length(1);
                }
            }
            let ids: Vec<String> = self.pending.keys().cloned().collect();
            for id in ids {
                let Some(s) = servers.iter().find(|s| s.id == id) else {
                    let (req, _) = self.pending.remove(&id).unwrap_or_default();
                    out.failures.push(ServerFailure {
                        name: req.name,
                        reason: "disappeared while booting (deleted by someone else?)".into(),
                    });
                    continue;
                };
                match s.status.as_str() {
                    "ACTIVE" => {
                        self.pending.remove(&id);
                        bar.inc(1);
                    }
                    "ERROR" => {
                        let (req, replaced) = self.pending.remove(&id).unwrap_or_default();
                        if replaced || req.image_id.is_empty() {
                            out.failures.push(ServerFailure {
                                name: s.name.clone(),
                                reason: format!(
                                    "ERROR: {}",
                                    s.fault.as_deref().unwrap_or("Nova gave no fault message")
                                ),
                            });
                            bar.inc(1);
                        } else {
                            bar.inc_length(0);
                            self.replace(api, s, req, out).await?;
                        }
                    }
                    _ => {}
                }
            }
            if self.pending.is_empty() {
                return Ok(());
            }
            if watch.expired() {
                for (id, (req, _)) in std::mem::take(&mut self.pending) {
                    let status = servers
                        .iter()
                        .find(|s| s.id == id)
                        .map(|s| s.status.clone())
                        .unwrap_or_default();
                    out.failures.push(ServerFailure {
                        name: req.name,
                        reason: format!(
                            "still {status} after {} s (boot_timeout)",
                            spec.boot_timeout
                        ),
                    });
                }
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaves_are_spread_over_zones() {
        let zones = vec!["a".to_string(), "b".to_string()];
        let got: Vec<_> = (1..=4).map(|i| zone_for(&zones, i).unwrap()).collect();
        assert_eq!(got, ["a", "b", "a", "b"]);
        assert_eq!(zone_for(&[], 1), None);
    }
}

#[cfg(test)]
mod quota_tests {
    use super::*;

    fn flavor(id: &str, vcpus: u32, ram_mb: u64) -> Flavor {
        Flavor {
            id: id.into(),
            name: id.into(),
            vcpus,
            ram_mb,
            ..Default::default()
        }
    }

    fn servers(flavor_id: &str, n: usize) -> Vec<ServerCreate> {
        (0..n)
            .map(|_| ServerCreate {
                flavor_id: flavor_id.into(),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_launch_over_the_quota_is_refused_naming_what_is_short() {
        let flavors = [flavor("m1.large", 4, 8192)];
        let limits = BTreeMap::from([
            ("maxTotalInstances".to_string(), 2),
            ("totalInstancesUsed".to_string(), 0),
            ("maxTotalCores".to_string(), 20),
            ("totalCoresUsed".to_string(), 10),
            ("maxTotalRAMSize".to_string(), -1),
            ("totalRAMUsed".to_string(), 50_000),
        ]);
        let e = check_quota(&limits, &flavors, &servers("m1.large", 3))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("instances: needs 3, 2 left (quota 2, 0 in use)"),
            "{e}"
        );
        assert!(e.contains("cores: needs 12, 10 left"), "{e}");
        assert!(!e.contains("RAM"), "unlimited RAM is never short: {e}");
        assert!(check_quota(&limits, &flavors, &servers("m1.large", 2)).is_ok());
        // Limits a cloud does not report are not checked.
        assert!(check_quota(&BTreeMap::new(), &flavors, &servers("m1.large", 9)).is_ok());
    }
}
