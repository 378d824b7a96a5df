//! An in-memory OpenStack behind [`ClusterApi`], for unit tests of the cluster state
//! machines (launch, resume, add/remove slaves, stop/start, destroy).
//!
//! Devcloud runs the real HTTP stack and takes seconds per scenario; this takes
//! milliseconds, so the state machines can be tested case by case. It is deliberately
//! small, and models only what the cluster code depends on, the way Nova, Neutron and
//! Cinder do it:
//!
//! - Servers are BUILD for [`MemoryCloud::set_build_polls`] listings, then ACTIVE, or
//!   ERROR with a fault when [`MemoryCloud::boot_fails`] said so. Deleted servers stay
//!   listed for [`MemoryCloud::set_delete_polls`] listings (Nova deletes asynchronously);
//!   when they go, their ports go too, which detaches volumes and floating IPs.
//! - Nova checks what a create refers to (groups by name, flavor, image, network, key
//!   pair) with 400, and its instance/core/RAM quota with 403; power actions on a server
//!   in the wrong state are 409.
//! - Neutron allows several groups with one name (so a launch that creates groups twice
//!   shows), answers 409 to a duplicate rule and to deleting a group a server still uses.
//! - Cinder volumes are `creating` until the next listing, attach only when `available`
//!   and refuse deletion while `in-use` (400).
//!
//! Failures are injected per call, explicitly ([`MemoryCloud::on`]): "the next create of
//! server X fails with 500", "the 3rd call hangs after the cloud acted". A hanging call
//! never returns and wakes [`MemoryCloud::interrupted`], so a test can drop the future
//! under test there, which is exactly what Ctrl-C does to a run (see [`interrupt`]).
//! Every call is recorded, so tests can count what was asked of the cloud.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::api::{
    Address, ApiError, ApiResult, ClusterApi, Flavor, FloatingIp, Image, Network, Port,
    PowerAction, Rule, SecurityGroup, Server, ServerCreate, Volume,
};

/// The API calls, for failure injection and counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ListServers,
    CreateServer,
    DeleteServer,
    Power,
    MergeMetadata,
    DeleteMetadata,
    Flavors,
    Limits,
    Images,
    Networks,
    Keypairs,
    ImportKeypair,
    ListGroups,
    CreateGroup,
    CreateRule,
    DeleteGroup,
    ListFloatingIps,
    CreateFloatingIp,
    AssociateFloatingIp,
    DeleteFloatingIp,
    ServerPorts,
    ListVolumes,
    VolumeZones,
    ComputeZones,
    CreateVolume,
    AttachVolume,
    DeleteVolume,
}

/// What an injected fault does to the call it hits.
#[derive(Clone, Debug)]
enum Effect {
    /// The service answers with this error; nothing changes.
    Fail(ApiError),
    /// The run is interrupted while the request is in flight: before the cloud acted
    /// (`acted == false`) or after it acted but before the answer arrived.
    Hang { acted: bool },
}

/// One injected fault: hits the `skip + 1`-th call matching `op` and `target`.
#[derive(Clone, Debug)]
struct Fault {
    op: Option<Op>,
    target: Option<String>,
    skip: usize,
    effect: Effect,
}

/// Builds a fault; ends with [`FaultBuilder::fail`] or one of the interrupts.
pub struct FaultBuilder<'a> {
    cloud: &'a MemoryCloud,
    fault: Fault,
}

impl FaultBuilder<'_> {
    /// Only calls about this resource: a server, group or volume name, a floating address.
    pub fn target(mut self, name: &str) -> Self {
        self.fault.target = Some(name.to_string());
        self
    }
    /// The `n`-th matching call (1-based) instead of the next one.
    pub fn nth(mut self, n: usize) -> Self {
        self.fault.skip = n.saturating_sub(1);
        self
    }
    /// The call fails with this HTTP status, as the service would answer.
    pub fn fail(self, status: u16) {
        let msg = format!("injected: service answered {status}");
        self.fail_with(status, &msg);
    }
    pub fn fail_with(mut self, status: u16, msg: &str) {
        self.fault.effect = Effect::Fail(ApiError {
            msg: msg.to_string(),
            status: Some(status),
        });
        self.cloud.lock().faults.push(self.fault);
    }
    /// Ctrl-C before the request reached the cloud.
    pub fn interrupt_before(mut self) {
        self.fault.effect = Effect::Hang { acted: false };
        self.cloud.lock().faults.push(self.fault);
    }
    /// Ctrl-C after the cloud acted on the request, before the answer came back.
    pub fn interrupt_after(mut self) {
        self.fault.effect = Effect::Hang { acted: true };
        self.cloud.lock().faults.push(self.fault);
    }
}

/// Runs `fut` until it finishes or the cloud hangs one of its calls, and then drops it, as
/// Ctrl-C would. `None` means it was interrupted.
pub async fn interrupt<F: Future>(cloud: &MemoryCloud, fut: F) -> Option<F::Output> {
    tokio::select! {
        out = fut => Some(out),
        () = cloud.interrupted.notified() => None,
    }
}

/// A state change that shows after some listings (`after` counts down per listing).
#[derive(Clone, Debug)]
struct Pending {
    to: String,
    after: u32,
}

#[derive(Clone, Debug)]
struct ServerRec {
    server: Server,
    next: Option<Pending>,
}

#[derive(Clone, Debug)]
struct VolumeRec {
    volume: Volume,
    next: Option<Pending>,
}

#[derive(Default)]
struct State {
    counter: u32,
    servers: BTreeMap<String, ServerRec>,
    groups: BTreeMap<String, SecurityGroup>,
    fips: BTreeMap<String, FloatingIp>,
    volumes: BTreeMap<String, VolumeRec>,
    flavors: Vec<Flavor>,
    images: Vec<Image>,
    networks: Vec<Network>,
    keypairs: Vec<String>,
    /// Public keys of the key pairs, by name.
    keypair_keys: BTreeMap<String, String>,
    volume_zones: Vec<String>,
    compute_zones: Vec<String>,
    /// `maxTotalInstances`, `maxTotalCores`, `maxTotalRAMSize`; -1 is unlimited.
    quota: (i64, i64, i64),
    limits_hidden: bool,
    build_polls: u32,
    delete_polls: u32,
    /// Server name → Nova faults for its next boots, in order.
    boot_faults: BTreeMap<String, Vec<String>>,
    /// Server names that stay BUILD forever.
    stuck: Vec<String>,
    faults: Vec<Fault>,
    log: Vec<(Op, String)>,
}

/// The in-memory cloud. `MemoryCloud::new()` has one project with flavors `m1.small` and
/// `m1.large`, image `ubuntu-24.04`, networks `private` and `public` (external), key
/// pair `demo-key`, Nova zones `nova`, `az1` and `az2`, Cinder zone `nova` and no quota.
pub struct MemoryCloud {
    state: Mutex<State>,
    /// Woken when an injected interrupt hits (see [`interrupt`]).
    pub interrupted: Notify,
}

fn err(status: u16, msg: impl Into<String>) -> ApiError {
    ApiError {
        msg: msg.into(),
        status: Some(status),
    }
}

impl Default for MemoryCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCloud {
    pub fn new() -> Self {
        let flavor = |id: &str, vcpus, ram_mb, ephemeral_gb| Flavor {
            id: id.into(),
            name: id.replace("flavor-", "m1."),
            vcpus,
            ram_mb,
            disk_gb: 20,
            ephemeral_gb,
        };
        let net = |id: &str, external| Network {
            id: format!("net-{id}"),
            name: id.into(),
            external,
        };
        let state = State {
            flavors: vec![
                flavor("flavor-small", 2, 4096, 0),
                flavor("flavor-large", 8, 16384, 40),
            ],
            images: vec![Image {
                id: "image-ubuntu".into(),
                name: "ubuntu-24.04".into(),
                os_admin_user: None,
                os_distro: Some("ubuntu".into()),
            }],
            networks: vec![net("private", false), net("public", true)],
            keypairs: vec!["demo-key".into()],
            keypair_keys: BTreeMap::from([(
                "demo-key".to_string(),
                "ssh-ed25519 AAAAdemo demo@laptop".to_string(),
            )]),
            volume_zones: vec!["nova".into()],
            compute_zones: vec!["nova".into(), "az1".into(), "az2".into()],
            quota: (-1, -1, -1),
            build_polls: 1,
            delete_polls: 1,
            ..Default::default()
        };
        MemoryCloud {
            state: Mutex::new(state),
            interrupted: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- setting the scene ------------------------------------------------------------

    /// Injects a fault into calls of `op` (see [`FaultBuilder`]).
    pub fn on(&self, op: Op) -> FaultBuilder<'_> {
        self.builder(Some(op))
    }
    /// Injects a fault into whatever call comes (`.nth(3)`: the 3rd call from now).
    pub fn on_any_call(&self) -> FaultBuilder<'_> {
        self.builder(None)
    }
    fn builder(&self, op: Option<Op>) -> FaultBuilder<'_> {
        FaultBuilder {
            cloud: self,
            fault: Fault {
                op,
                target: None,
                skip: 0,
                effect: Effect::Hang { acted: false },
            },
        }
    }
    /// The next boot of server `name` ends in ERROR with `fault` (call again for the boot
    /// after that).
    pub fn boot_fails(&self, name: &str, fault: &str) {
        self.lock()
            .boot_faults
            .entry(name.into())
            .or_default()
            .push(fault.into());
    }
    /// Server `name` stays BUILD forever (a hypervisor that never answers).
    pub fn stays_building(&self, name: &str) {
        self.lock().stuck.push(name.into());
    }
    /// Listings a new server is BUILD in before it is ACTIVE (default 1).
    pub fn set_build_polls(&self, n: u32) {
        self.lock().build_polls = n;
    }
    /// Listings a deleted server still shows in (default 1).
    pub fn set_delete_polls(&self, n: u32) {
        self.lock().delete_polls = n;
    }
    /// Nova's quota: instances, cores, RAM in MB (-1 is unlimited).
    pub fn set_quota(&self, instances: i64, cores: i64, ram_mb: i64) {
        self.lock().quota = (instances, cores, ram_mb);
    }
    /// The project may not read its limits (403), as on some clouds.
    pub fn hide_limits(&self) {
        self.lock().limits_hidden = true;
    }
    /// Sets a server's status now, as if Nova changed it (e.g. a host failure: ERROR).
    pub fn set_status(&self, name: &str, status: &str, fault: Option<&str>) {
        let mut st = self.lock();
        for r in st.servers.values_mut().filter(|r| r.server.name == name) {
            r.server.status = status.into();
            r.server.fault = fault.map(String::from);
            r.next = None;
        }
    }
    /// Deletes a server behind the cluster code's back (someone with the dashboard).
    pub fn remove_server(&self, name: &str) {
        let mut st = self.lock();
        let ids: Vec<String> = st
            .servers
            .values()
            .filter(|r| r.server.name == name)
            .map(|r| r.server.id.clone())
            .collect();
        for id in ids {
            st.drop_server(&id);
        }
    }

    /// Lets enough time pass for every pending change (boots, power actions, deletions,
    /// volume creation) to happen.
    pub fn settle(&self) {
        let mut st = self.lock();
        while st.servers.values().any(|r| r.next.is_some())
            || st.volumes.values().any(|r| r.next.is_some())
        {
            st.tick_servers();
            st.tick_volumes();
        }
    }

    // ---- looking at the result -----------------------------------------------------------

    /// The names of the servers Nova lists, sorted (duplicates show twice).
    pub fn server_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lock()
            .servers
            .values()
            .map(|r| r.server.name.clone())
            .collect();
        v.sort();
        v
    }
    pub fn servers_now(&self) -> Vec<Server> {
        let st = self.lock();
        st.servers.values().map(|r| st.render(&r.server)).collect()
    }
    /// The one server called `name`; panics when there are none or several.
    pub fn server(&self, name: &str) -> Server {
        let found: Vec<Server> = self
            .servers_now()
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        assert_eq!(found.len(), 1, "servers named {name}: {found:?}");
        found.into_iter().next().unwrap_or_default()
    }
    pub fn groups_now(&self) -> Vec<SecurityGroup> {
        self.lock().groups.values().cloned().collect()
    }
    pub fn floating_ips_now(&self) -> Vec<FloatingIp> {
        self.lock().fips.values().cloned().collect()
    }
    pub fn volumes_now(&self) -> Vec<Volume> {
        self.lock()
            .volumes
            .values()
            .map(|r| r.volume.clone())
            .collect()
    }
    /// Calls of `op` so far (failed and interrupted ones included).
    pub fn count(&self, op: Op) -> usize {
        self.lock().log.iter().filter(|(o, _)| *o == op).count()
    }
    /// Calls of `op` about `target` so far.
    pub fn count_for(&self, op: Op, target: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|(o, t)| *o == op && t == target)
            .count()
    }
    /// Calls that change something (create, delete, power, attach, ...) so far.
    pub fn writes(&self) -> Vec<(Op, String)> {
        use Op::*;
        self.lock()
            .log
            .iter()
            .filter(|(o, _)| {
                !matches!(
                    o,
                    ListServers
                        | Flavors
                        | Limits
                        | Images
                        | Networks
                        | Keypairs
                        | ListGroups
                        | ListFloatingIps
                        | ServerPorts
                        | ListVolumes
                        | VolumeZones
                        | ComputeZones
                )
            })
            .cloned()
            .collect()
    }

    // ---- the gate every call goes through -------------------------------------------------

    /// Records the call and applies the first fault it matches. `Ok(true)`: hang after
    /// acting. A hang before acting never returns.
    async fn enter(&self, op: Op, target: &str) -> ApiResult<bool> {
        // Let other requests of the same run proceed, as concurrent HTTP requests do.
        tokio::task::yield_now().await;
        let effect = {
            let mut st = self.lock();
            st.log.push((op, target.to_string()));
            let hit = st.faults.iter().position(|f| {
                f.op.is_none_or(|o| o == op) && f.target.as_deref().is_none_or(|t| t == target)
            });
            match hit {
                Some(i) if st.faults[i].skip > 0 => {
                    st.faults[i].skip -= 1;
                    None
                }
                Some(i) => Some(st.faults.remove(i).effect),
                None => None,
            }
        };
        match effect {
            None => Ok(false),
            Some(Effect::Fail(e)) => Err(e),
            Some(Effect::Hang { acted: false }) => self.hang().await,
            Some(Effect::Hang { acted: true }) => Ok(true),
        }
    }

    /// Ends a call: hangs if the fault said so, else hands back the answer.
    async fn leave<T>(&self, hang_after: bool, answer: ApiResult<T>) -> ApiResult<T> {
        if hang_after {
            self.hang().await
        } else {
            answer
        }
    }

    async fn hang<T>(&self) -> T {
        self.interrupted.notify_one();
        std::future::pending().await
    }

    fn name_of_server(&self, id: &str) -> String {
        let st = self.lock();
        st.servers
            .get(id)
            .map(|r| r.server.name.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

impl State {
    fn next_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        format!("{kind}-{:04}", self.counter)
    }

    /// What Nova shows of a server: its fixed address plus the floating IPs on its port.
    fn render(&self, s: &Server) -> Server {
        let mut s = s.clone();
        let port = port_of(&s.id);
        for f in self.fips.values() {
            if f.port_id.as_deref() == Some(port.as_str()) {
                s.addresses.push(Address {
                    network: "private".into(),
                    addr: f.address.clone(),
                    floating: true,
                });
            }
        }
        s
    }

    /// One server listing's worth of time passes for pending server changes.
    fn tick_servers(&mut self) {
        let mut gone = Vec::new();
        for r in self.servers.values_mut() {
            if let Some(p) = &mut r.next {
                if p.after > 0 {
                    p.after -= 1;
                    continue;
                }
                if p.to == "DELETED" {
                    gone.push(r.server.id.clone());
                } else if let Some(fault) = p.to.strip_prefix("ERROR:") {
                    r.server.status = "ERROR".into();
                    r.server.fault = Some(fault.into());
                } else {
                    r.server.status = p.to.clone();
                }
                r.next = None;
            }
        }
        for id in gone {
            self.drop_server(&id);
        }
    }

    /// One volume listing's worth of time passes for pending volume changes.
    fn tick_volumes(&mut self) {
        for r in self.volumes.values_mut() {
            if let Some(p) = &mut r.next {
                if p.after > 0 {
                    p.after -= 1;
                } else {
                    r.volume.status = p.to.clone();
                    r.next = None;
                }
            }
        }
    }

    /// The server is gone: its port goes, which detaches its volumes and floating IPs.
    fn drop_server(&mut self, id: &str) {
        self.servers.remove(id);
        let port = port_of(id);
        for f in self.fips.values_mut() {
            if f.port_id.as_deref() == Some(port.as_str()) {
                f.port_id = None;
                f.fixed_ip_address = None;
            }
        }
        for r in self.volumes.values_mut() {
            if r.volume.attached_to.iter().any(|s| s == id) {
                r.volume.attached_to.retain(|s| s != id);
                r.volume.status = "available".into();
            }
        }
    }

    fn instances_used(&self) -> (i64, i64, i64) {
        let mut used = (0, 0, 0);
        for r in self.servers.values() {
            used.0 += 1;
            if let Some(f) = self.flavors.iter().find(|f| f.id == r.server.flavor_id) {
                used.1 += i64::from(f.vcpus);
                used.2 += f.ram_mb as i64;
            }
        }
        used
    }

    fn create_server(&mut self, req: &ServerCreate) -> ApiResult<Server> {
        let Some(flavor) = self.flavors.iter().find(|f| f.id == req.flavor_id).cloned() else {
            return Err(err(
                400,
                format!("Flavor {} could not be found.", req.flavor_id),
            ));
        };
        if !self.images.iter().any(|i| i.id == req.image_id) {
            return Err(err(
                400,
                format!("Image {} could not be found.", req.image_id),
            ));
        }
        if let Some(az) = &req.availability_zone
            && !self.compute_zones.contains(az)
        {
            return Err(err(400, "The requested availability zone is not available"));
        }
        for g in &req.security_groups {
            if !self.groups.values().any(|x| &x.name == g) {
                return Err(err(400, format!("Security group {g} not found.")));
            }
        }
        for n in &req.network_ids {
            if !self.networks.iter().any(|x| &x.id == n) {
                return Err(err(400, format!("Network {n} could not be found.")));
            }
        }
        if let Some(k) = &req.key_name
            && !self.keypairs.contains(k)
        {
            return Err(err(400, format!("Invalid key_name provided: {k}")));
        }
        let (used, (qi, qc, qr)) = (self.instances_used(), self.quota);
        let over = |max: i64, used: i64, more: i64| max >= 0 && used + more > max;
        if over(qi, used.0, 1)
            || over(qc, used.1, i64::from(flavor.vcpus))
            || over(qr, used.2, flavor.ram_mb as i64)
        {
            return Err(err(403, "Quota exceeded for instances, cores or ram"));
        }
        let id = self.next_id("server");
        let n = self.counter;
        let fault = self
            .boot_faults
            .get_mut(&req.name)
            .filter(|f| !f.is_empty())
            .map(|f| f.remove(0));
        let next = if self.stuck.contains(&req.name) {
            None
        } else {
            Some(Pending {
                to: match fault {
                    Some(f) => format!("ERROR:{f}"),
                    None => "ACTIVE".into(),
                },
                after: self.build_polls,
            })
        };
        let server = Server {
            id: id.clone(),
            name: req.name.clone(),
            status: "BUILD".into(),
            metadata: req.metadata.clone(),
            flavor_id: req.flavor_id.clone(),
            image_id: req.image_id.clone(),
            availability_zone: req.availability_zone.clone(),
            key_name: req.key_name.clone(),
            addresses: vec![Address {
                network: "private".into(),
                addr: format!("10.0.{}.{}", n / 250, n % 250 + 2),
                floating: false,
            }],
            security_groups: req.security_groups.clone(),
            fault: None,
        };
        self.servers.insert(
            id,
            ServerRec {
                server: server.clone(),
                next,
            },
        );
        Ok(server)
    }

    fn server_mut(&mut self, id: &str) -> ApiResult<&mut ServerRec> {
        self.servers
            .get_mut(id)
            .ok_or_else(|| err(404, format!("Instance {id} could not be found.")))
    }

    fn group_name(&self, id: &str) -> String {
        self.groups
            .get(id)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    fn volume_name(&self, id: &str) -> String {
        self.volumes
            .get(id)
            .map(|v| v.volume.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    fn fip_address(&self, id: &str) -> String {
        self.fips
            .get(id)
            .map(|f| f.address.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

fn port_of(server_id: &str) -> String {
    format!("port-of-{server_id}")
}

#[async_trait]
impl ClusterApi for MemoryCloud {
    async fn servers(&self) -> ApiResult<Vec<Server>> {
        let h = self.enter(Op::ListServers, "").await?;
        let answer = {
            let mut st = self.lock();
            st.tick_servers();
            Ok(st.servers.values().map(|r| st.render(&r.server)).collect())
        };
        self.leave(h, answer).await
    }

    async fn create_server(&self, req: &ServerCreate) -> ApiResult<Server> {
        let h = self.enter(Op::CreateServer, &req.name).await?;
        let answer = self.lock().create_server(req);
        self.leave(h, answer).await
    }

    async fn delete_server(&self, id: &str) -> ApiResult<()> {
        let h = self
            .enter(Op::DeleteServer, &self.name_of_server(id))
            .await?;
        let answer = {
            let mut st = self.lock();
            let after = st.delete_polls;
            st.server_mut(id).map(|r| {
                r.next = Some(Pending {
                    to: "DELETED".into(),
                    after,
                });
            })
        };
        self.leave(h, answer).await
    }

    async fn power(&self, id: &str, action: PowerAction) -> ApiResult<()> {
        let h = self.enter(Op::Power, &self.name_of_server(id)).await?;
        let answer = {
            let mut st = self.lock();
            let after = st.build_polls;
            st.server_mut(id).and_then(|r| {
                let (from, to, verb) = match action {
                    PowerAction::Stop => ("ACTIVE", "SHUTOFF", "stop"),
                    PowerAction::Start => ("SHUTOFF", "ACTIVE", "start"),
                };
                if r.server.status != from || r.next.is_some() {
                    return Err(err(
                        409,
                        format!(
                            "Cannot '{verb}' instance {} while it is in vm_state {}",
                            r.server.id,
                            r.server.status.to_lowercase()
                        ),
                    ));
                }
                r.next = Some(Pending {
                    to: to.into(),
                    after,
                });
                Ok(())
            })
        };
        self.leave(h, answer).await
    }

    async fn merge_server_metadata(
        &self,
        id: &str,
        items: &BTreeMap<String, String>,
    ) -> ApiResult<()> {
        let h = self
            .enter(Op::MergeMetadata, &self.name_of_server(id))
            .await?;
        let answer = self
            .lock()
            .server_mut(id)
            .map(|r| r.server.metadata.extend(items.clone()));
        self.leave(h, answer).await
    }

    async fn delete_server_metadata_item(&self, id: &str, key: &str) -> ApiResult<()> {
        let h = self
            .enter(Op::DeleteMetadata, &self.name_of_server(id))
            .await?;
        let answer = self.lock().server_mut(id).and_then(|r| {
            r.server
                .metadata
                .remove(key)
                .map(|_| ())
                .ok_or_else(|| err(404, format!("Metadata item {key} was not found")))
        });
        self.leave(h, answer).await
    }

    async fn flavors(&self) -> ApiResult<Vec<Flavor>> {
        let h = self.enter(Op::Flavors, "").await?;
        let answer = Ok(self.lock().flavors.clone());
        self.leave(h, answer).await
    }

    async fn compute_zones(&self) -> ApiResult<Vec<String>> {
        let h = self.enter(Op::ComputeZones, "").await?;
        let answer = Ok(self.lock().compute_zones.clone());
        self.leave(h, answer).await
    }

    async fn compute_limits(&self) -> ApiResult<BTreeMap<String, i64>> {
        let h = self.enter(Op::Limits, "").await?;
        let answer = {
            let st = self.lock();
            if st.limits_hidden {
                Err(err(403, "Policy doesn't allow os_compute_api:limits"))
            } else {
                let (used, max) = (st.instances_used(), st.quota);
                Ok(BTreeMap::from([
                    ("maxTotalInstances".to_string(), max.0),
                    ("totalInstancesUsed".to_string(), used.0),
                    ("maxTotalCores".to_string(), max.1),
                    ("totalCoresUsed".to_string(), used.1),
                    ("maxTotalRAMSize".to_string(), max.2),
                    ("totalRAMUsed".to_string(), used.2),
                ]))
            }
        };
        self.leave(h, answer).await
    }

    async fn images(&self) -> ApiResult<Vec<Image>> {
        let h = self.enter(Op::Images, "").await?;
        let answer = Ok(self.lock().images.clone());
        self.leave(h, answer).await
    }

    async fn networks(&self) -> ApiResult<Vec<Network>> {
        let h = self.enter(Op::Networks, "").await?;
        let answer = Ok(self.lock().networks.clone());
        self.leave(h, answer).await
    }

    async fn keypair_names(&self) -> ApiResult<Vec<String>> {
        let h = self.enter(Op::Keypairs, "").await?;
        let answer = Ok(self.lock().keypairs.clone());
        self.leave(h, answer).await
    }

    async fn keypair_public_key(&self, name: &str) -> ApiResult<Option<String>> {
        let h = self.enter(Op::Keypairs, name).await?;
        let answer = Ok(self.lock().keypair_keys.get(name).cloned());
        self.leave(h, answer).await
    }

    async fn import_keypair(&self, name: &str, public_key: &str) -> ApiResult<()> {
        let h = self.enter(Op::ImportKeypair, name).await?;
        let answer = {
            let mut st = self.lock();
            if st.keypairs.iter().any(|k| k == name) {
                Err(err(409, format!("Key pair '{name}' already exists.")))
            } else {
                st.keypairs.push(name.into());
                st.keypair_keys.insert(name.into(), public_key.into());
                Ok(())
            }
        };
        self.leave(h, answer).await
    }

    async fn security_groups(&self) -> ApiResult<Vec<SecurityGroup>> {
        let h = self.enter(Op::ListGroups, "").await?;
        let answer = Ok(self.groups_now());
        self.leave(h, answer).await
    }

    async fn create_security_group(
        &self,
        name: &str,
        _description: &str,
    ) -> ApiResult<SecurityGroup> {
        let h = self.enter(Op::CreateGroup, name).await?;
        let answer = {
            let mut st = self.lock();
            let id = st.next_id("sg");
            let g = SecurityGroup {
                id: id.clone(),
                name: name.into(),
                rules: Vec::new(),
            };
            st.groups.insert(id, g.clone());
            Ok(g)
        };
        self.leave(h, answer).await
    }

    async fn create_rule(&self, group_id: &str, rule: &Rule) -> ApiResult<()> {
        let name = self.lock().group_name(group_id);
        let h = self.enter(Op::CreateRule, &name).await?;
        let answer = match self.lock().groups.get_mut(group_id) {
            None => Err(err(
                404,
                format!("Security group {group_id} does not exist"),
            )),
            Some(g) if g.rules.contains(rule) => {
                Err(err(409, "Security group rule already exists."))
            }
            Some(g) => {
                g.rules.push(rule.clone());
                Ok(())
            }
        };
        self.leave(h, answer).await
    }

    async fn delete_security_group(&self, id: &str) -> ApiResult<()> {
        let name = self.lock().group_name(id);
        let h = self.enter(Op::DeleteGroup, &name).await?;
        let answer = {
            let mut st = self.lock();
            let in_use = st
                .servers
                .values()
                .any(|r| r.server.security_groups.contains(&name));
            if !st.groups.contains_key(id) {
                Err(err(404, format!("Security group {id} does not exist")))
            } else if in_use {
                Err(err(409, format!("Security Group {id} in use.")))
            } else {
                st.groups.remove(id);
                Ok(())
            }
        };
        self.leave(h, answer).await
    }

    async fn floating_ips(&self) -> ApiResult<Vec<FloatingIp>> {
        let h = self.enter(Op::ListFloatingIps, "").await?;
        let answer = Ok(self.floating_ips_now());
        self.leave(h, answer).await
    }

    async fn create_floating_ip(
        &self,
        network_id: &str,
        description: &str,
    ) -> ApiResult<FloatingIp> {
        let h = self.enter(Op::CreateFloatingIp, description).await?;
        let answer = {
            let mut st = self.lock();
            match st.networks.iter().find(|n| n.id == network_id) {
                None => Err(err(
                    404,
                    format!("Network {network_id} could not be found."),
                )),
                Some(n) if !n.external => Err(err(
                    400,
                    format!("Network {network_id} is not a valid external network"),
                )),
                Some(_) => {
                    let id = st.next_id("fip");
                    let f = FloatingIp {
                        address: format!("172.24.4.{}", st.counter % 250 + 2),
                        id: id.clone(),
                        network_id: network_id.into(),
                        port_id: None,
                        fixed_ip_address: None,
                        description: description.into(),
                    };
                    st.fips.insert(id, f.clone());
                    Ok(f)
                }
            }
        };
        self.leave(h, answer).await
    }

    async fn associate_floating_ip(&self, fip_id: &str, port_id: &str) -> ApiResult<()> {
        let address = self.lock().fip_address(fip_id);
        let h = self.enter(Op::AssociateFloatingIp, &address).await?;
        let answer = {
            let mut st = self.lock();
            let fixed = st
                .servers
                .values()
                .find(|r| port_of(&r.server.id) == port_id)
                .and_then(|r| r.server.fixed_ip().map(String::from));
            match (fixed, st.fips.get_mut(fip_id)) {
                (_, None) => Err(err(404, format!("Floating IP {fip_id} could not be found"))),
                (None, _) => Err(err(404, format!("Port {port_id} could not be found."))),
                (Some(ip), Some(f)) => {
                    f.port_id = Some(port_id.into());
                    f.fixed_ip_address = Some(ip);
                    Ok(())
                }
            }
        };
        self.leave(h, answer).await
    }

    async fn delete_floating_ip(&self, id: &str) -> ApiResult<()> {
        let address = self.lock().fip_address(id);
        let h = self.enter(Op::DeleteFloatingIp, &address).await?;
        let answer = match self.lock().fips.remove(id) {
            Some(_) => Ok(()),
            None => Err(err(404, format!("Floating IP {id} could not be found"))),
        };
        self.leave(h, answer).await
    }

    async fn server_ports(&self, server_id: &str) -> ApiResult<Vec<Port>> {
        let h = self
            .enter(Op::ServerPorts, &self.name_of_server(server_id))
            .await?;
        let answer = {
            let st = self.lock();
            Ok(st
                .servers
                .get(server_id)
                .map(|r| Port {
                    id: port_of(&r.server.id),
                    device_id: r.server.id.clone(),
                })
                .into_iter()
                .collect())
        };
        self.leave(h, answer).await
    }

    async fn volumes(&self) -> ApiResult<Vec<Volume>> {
        let h = self.enter(Op::ListVolumes, "").await?;
        let answer = {
            let mut st = self.lock();
            st.tick_volumes();
            Ok(st.volumes.values().map(|r| r.volume.clone()).collect())
        };
        self.leave(h, answer).await
    }

    async fn volume_zones(&self) -> ApiResult<Vec<String>> {
        let h = self.enter(Op::VolumeZones, "").await?;
        let answer = Ok(self.lock().volume_zones.clone());
        self.leave(h, answer).await
    }

    async fn create_volume(
        &self,
        name: &str,
        size_gb: u64,
        availability_zone: Option<&str>,
        metadata: &BTreeMap<String, String>,
    ) -> ApiResult<Volume> {
        let h = self.enter(Op::CreateVolume, name).await?;
        let answer = {
            let mut st = self.lock();
            match availability_zone {
                Some(z) if !st.volume_zones.iter().any(|x| x == z) => {
                    Err(err(400, format!("Availability zone '{z}' is invalid.")))
                }
                _ => {
                    let id = st.next_id("volume");
                    let volume = Volume {
                        id: id.clone(),
                        name: name.into(),
                        size_gb,
                        status: "creating".into(),
                        attached_to: Vec::new(),
                        metadata: metadata.clone(),
                    };
                    st.volumes.insert(
                        id,
                        VolumeRec {
                            volume: volume.clone(),
                            next: Some(Pending {
                                to: "available".into(),
                                after: 0,
                            }),
                        },
                    );
                    Ok(volume)
                }
            }
        };
        self.leave(h, answer).await
    }

    async fn attach_volume(&self, server_id: &str, volume_id: &str) -> ApiResult<()> {
        let name = self.lock().volume_name(volume_id);
        let h = self.enter(Op::AttachVolume, &name).await?;
        let answer = {
            let mut st = self.lock();
            let server_ok = st.servers.contains_key(server_id);
            match st.volumes.get_mut(volume_id) {
                None => Err(err(404, format!("Volume {volume_id} could not be found."))),
                _ if !server_ok => Err(err(404, format!("Instance {server_id} not found"))),
                Some(v) if v.volume.status != "available" => Err(err(
                    400,
                    format!(
                        "Invalid volume: volume {volume_id} status must be available, but is {}",
                        v.volume.status
                    ),
                )),
                Some(v) => {
                    v.volume.status = "in-use".into();
                    v.volume.attached_to = vec![server_id.into()];
                    Ok(())
                }
            }
        };
        self.leave(h, answer).await
    }

    async fn delete_volume(&self, id: &str) -> ApiResult<()> {
        let name = self.lock().volume_name(id);
        let h = self.enter(Op::DeleteVolume, &name).await?;
        let answer = {
            let mut st = self.lock();
            match st.volumes.get(id) {
                None => Err(err(404, format!("Volume {id} could not be found."))),
                Some(v) if v.volume.status == "in-use" => Err(err(
                    400,
                    "Invalid volume: Volume status must be available or error",
                )),
                Some(_) => {
                    st.volumes.remove(id);
                    Ok(())
                }
            }
        };
        self.leave(h, answer).await
    }

    fn calls(&self) -> u64 {
        self.lock().log.len() as u64
    }
}
