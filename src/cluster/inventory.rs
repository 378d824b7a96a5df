//! The cluster as an inventory, read from Nova: groups `master`, `slaves` and `all`, and
//! for each host its addresses, flavor, zone, image and how to connect.
//!
//! The JSON is Ansible's dynamic-inventory format (`inventory --list`), so the same output
//! feeds `ansible-playbook -i` and our own engine. Connection variables follow the
//! network mode recorded on the servers: in `floating` mode the master is reached on its
//! floating IP and slaves through the master as a jump host (`ansible_ssh_common_args`
//! ProxyJump for OpenSSH/Ansible, `spark_openstack_jump_host` for our engine, which
//! reuses the master's SSH connection); in `static` mode every host on its fixed address.
//! Host keys go to a per-cluster known_hosts file, because clouds recycle addresses and a
//! recycled address in `~/.ssh/known_hosts` would look like an attack.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::api::{ClusterApi, Flavor, Image, Server};
use super::launch::{META_NET_MODE, META_SSH_USER};
use super::model::{Cluster, Role, role_of};
use super::recorded;
use super::spec::NetMode;

/// The default login user when neither the option nor the cluster's metadata says.
pub const DEFAULT_SSH_USER: &str = "ubuntu";

/// Local connection choices (never stored in the cloud).
#[derive(Clone, Debug, Default)]
pub struct ConnOptions {
    /// `--ssh-user`; else what launch recorded; else [`DEFAULT_SSH_USER`].
    pub ssh_user: Option<String>,
    /// `--identity-file`.
    pub identity_file: Option<PathBuf>,
    /// The cluster's known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Overrides the mode recorded on the servers.
    pub net_mode: Option<NetMode>,
}

/// The tool's own state (`~/.local/state/spark-openstack`, XDG): host keys, secrets'
/// copies, command logs.
pub fn state_dir() -> Option<PathBuf> {
    Some(
        dirs::state_dir()
            .or_else(dirs::data_local_dir)?
            .join("spark-openstack"),
    )
}

/// What the controller keeps of one cluster, by kind:
/// `~/.local/state/spark-openstack/<kind>/<cloud>-<cluster>`. Clusters of the same name on
/// two clouds are two clusters, hence the cloud in the name.
pub fn cluster_state_path(kind: &str, cloud: Option<&str>, cluster: &str) -> Option<PathBuf> {
    Some(
        state_dir()?
            .join(kind)
            .join(format!("{}-{cluster}", cloud.unwrap_or("default"))),
    )
}

/// The known_hosts file of one cluster: `~/.local/state/spark-openstack/known_hosts/<cloud>-<cluster>`.
pub fn known_hosts_path(cloud: Option<&str>, cluster: &str) -> Option<PathBuf> {
    cluster_state_path("known_hosts", cloud, cluster)
}

/// How one cluster is reached, resolved once for all its hosts.
#[derive(Clone, Debug)]
pub struct Access {
    pub user: String,
    pub mode: NetMode,
    /// Address the controller uses for the master.
    pub master_address: Option<String>,
}

pub fn access(cluster: &Cluster, opts: &ConnOptions) -> Access {
    let recorded = |key: &str| cluster.servers().find_map(|s| s.metadata.get(key).cloned());
    let mode = opts
        .net_mode
        .or_else(|| recorded(META_NET_MODE).and_then(|m| NetMode::parse(&m).ok()))
        .unwrap_or(NetMode::Floating);
    let user = opts
        .ssh_user
        .clone()
        .or_else(|| recorded(META_SSH_USER))
        .unwrap_or_else(|| DEFAULT_SSH_USER.to_string());
    let master_address = cluster.master().and_then(|m| match mode {
        NetMode::Floating => m.floating_ip().map(String::from),
        NetMode::Static => m.fixed_ip().map(String::from),
    });
    Access {
        user,
        mode,
        master_address,
    }
}

/// Builds the dynamic-inventory document for `cluster`.
pub fn build(cluster: &Cluster, flavors: &[Flavor], images: &[Image], opts: &ConnOptions) -> Value {
    let acc = access(cluster, opts);
    let mut hostvars = Map::new();
    let mut masters = Vec::new();
    let mut slaves = Vec::new();
    let master_name = cluster.master().map(|m| m.name.clone());
    for s in cluster.servers() {
        let role = role_of(&cluster.name, s).unwrap_or(Role::Slave);
        let Some(mut vars) =
            host_vars(s, role, &acc, master_name.as_deref(), flavors, images, opts)
        else {
            continue; // no address yet: nothing can connect to it
        };
        vars.insert("volumes".into(), attached_volumes(cluster, s));
        hostvars.insert(s.name.clone(), Value::Object(vars));
        match role {
            Role::Master => masters.push(s.name.clone()),
            Role::Slave => slaves.push(s.name.clone()),
        }
    }
    // The role variables recorded at launch, under the inventory's own variables.
    let mut all_vars = cluster
        .master()
        .map(recorded::of_master)
        .unwrap_or_default();
    all_vars.extend(
        json!({
            "cluster_name": cluster.name,
            "spark_openstack_network": acc.mode.as_str(),
            "master_address": acc.master_address,
            "master_fixed_ip": cluster.master().and_then(|m| m.fixed_ip()),
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    json!({
        "all": {
            "children": ["master", "slaves", "ungrouped"],
            "vars": all_vars,
        },
        "master": {"hosts": masters},
        "slaves": {"hosts": slaves},
        "ungrouped": {"hosts": []},
        "_meta": {"hostvars": hostvars},
    })
}

/// The cluster volumes attached to `s`, by kind (`data`, `persistent`), so roles can find
/// their disk: a Cinder volume shows up in the guest as `/dev/disk/by-id/virtio-<id[..20]>`.
fn attached_volumes(cluster: &Cluster, s: &Server) -> Value {
    let mut by_kind = Map::new();
    for v in &cluster.volumes {
        let kind = v
            .name
            .strip_prefix(s.name.as_str())
            .and_then(|k| k.strip_prefix('-'));
        if let Some(kind) = kind
            && v.attached_to.contains(&s.id)
        {
            by_kind.insert(
                kind.to_string(),
                json!({"id": v.id, "name": v.name, "size_gb": v.size_gb}),
            );
        }
    }
    Value::Object(by_kind)
}

fn host_vars(
    s: &Server,
    role: Role,
    acc: &Access,
    master_name: Option<&str>,
    flavors: &[Flavor],
    images: &[Image],
    opts: &ConnOptions,
) -> Option<Map<String, Value>> {
    let fixed = s.fixed_ip()?;
    let floating = s.floating_ip();
    let behind_master = acc.mode == NetMode::Floating && role == Role::Slave;
    let address = match (acc.mode, role) {
        (NetMode::Floating, Role::Master) => floating.unwrap_or(fixed),
        _ => fixed,
    };
    let mut ssh_args = Vec::new();
    if let Some(kh) = &opts.known_hosts {
        ssh_args.push(format!("-o UserKnownHostsFile={}", kh.display()));
    }
    let mut v = Map::new();
    v.insert("ansible_host".into(), json!(address));
    v.insert("ansible_user".into(), json!(acc.user));
    if let Some(key) = &opts.identity_file {
        v.insert(
            "ansible_ssh_private_key_file".into(),
            json!(key.display().to_string()),
        );
    }
    if behind_master && let (Some(jump), Some(addr)) = (master_name, &acc.master_address) {
        v.insert("spark_openstack_jump_host".into(), json!(jump));
        ssh_args.push(format!("-o ProxyJump={}@{addr}", acc.user));
    }
    if let Some(kh) = &opts.known_hosts {
        v.insert(
            "spark_openstack_known_hosts".into(),
            json!(kh.display().to_string()),
        );
    }
    if !ssh_args.is_empty() {
        v.insert("ansible_ssh_common_args".into(), json!(ssh_args.join(" ")));
    }
    // Nova ≥ 2.47 embeds the flavor by name (`original_name`) instead of its id.
    let flavor = flavors
        .iter()
        .find(|f| f.id == s.flavor_id)
        .or_else(|| flavors.iter().find(|f| f.name == s.flavor_id));
    let image = images.iter().find(|i| i.id == s.image_id);
    v.insert("role".into(), json!(role.as_str()));
    v.insert("fixed_ip".into(), json!(fixed));
    v.insert("floating_ip".into(), json!(floating));
    v.insert("availability_zone".into(), json!(s.availability_zone));
    v.insert(
        "flavor".into(),
        json!({
            "id": s.flavor_id,
            "name": flavor.map(|f| f.name.as_str()),
            "vcpus": flavor.map(|f| f.vcpus),
            "ram_mb": flavor.map(|f| f.ram_mb),
            "disk_gb": flavor.map(|f| f.disk_gb),
            "ephemeral_gb": flavor.map(|f| f.ephemeral_gb),
        }),
    );
    v.insert(
        "image".into(),
        json!({"id": s.image_id, "name": image.map(|i| i.name.as_str())}),
    );
    v.insert(
        "openstack".into(),
        json!({
            "id": s.id, "name": s.name, "status": s.status, "metadata": s.metadata,
            "addresses": s.addresses, "key_name": s.key_name,
        }),
    );
    Some(v)
}

/// The cluster read from Nova as an [`playbook_engine::inventory::InventorySource`], for the engine
/// and `inventory` commands that take inventory sources. Loading is synchronous in that
/// trait, so the cloud calls run on a runtime of their own in a scoped thread (safe to
/// call from inside another runtime).
pub struct NovaInventory {
    pub os_cloud: Option<String>,
    pub cluster: String,
    pub conn: ConnOptions,
}

impl NovaInventory {
    /// The inventory of `cluster` for `play -e cluster=NAME` and `inventory NAME`: login user
    /// and key as given (else what launch recorded), the cluster's own known_hosts file.
    pub fn for_cluster(
        os_cloud: Option<String>,
        cluster: &str,
        ssh_user: Option<String>,
        identity_file: Option<PathBuf>,
    ) -> Result<Self, String> {
        super::model::validate_name(cluster)?;
        let conn = ConnOptions {
            ssh_user,
            identity_file,
            known_hosts: known_hosts_path(os_cloud.as_deref(), cluster),
            net_mode: None,
        };
        Ok(NovaInventory {
            os_cloud,
            cluster: cluster.to_string(),
            conn,
        })
    }

    /// The dynamic-inventory document, read from the cloud now. The cloud calls run on a
    /// runtime of their own in a scoped thread, so this works from sync code and from
    /// inside another runtime (e.g. a `spawn_blocking` task).
    pub fn read(&self) -> Result<Value, String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime: {e}"))?;
                rt.block_on(async {
                    let api = super::openstack::connect(self.os_cloud.clone()).await?;
                    read(&api, &self.cluster, &self.conn).await
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the inventory thread panicked".into()))
        })
        .map_err(|e| format!("OpenStack cluster '{}': {e}", self.cluster))
    }
}

impl playbook_engine::inventory::InventorySource for NovaInventory {
    fn load(
        &self,
    ) -> Result<playbook_engine::inventory::Inventory, playbook_engine::inventory::InventoryError>
    {
        let doc = self
            .read()
            .map_err(playbook_engine::inventory::InventoryError::Invalid)?;
        Ok(to_model(&doc))
    }
}

/// The dynamic-inventory document of `cluster`, read from the cloud now.
pub async fn read(
    api: &dyn ClusterApi,
    cluster: &str,
    conn: &ConnOptions,
) -> Result<Value, String> {
    let (servers, fips, vols) =
        futures::try_join!(api.servers(), api.floating_ips(), api.volumes()).map_err(|e| e.msg)?;
    let (flavors, images) = futures::try_join!(api.flavors(), api.images()).map_err(|e| e.msg)?;
    let c = Cluster::collect(cluster, &servers, &fips, &vols);
    Ok(build(&c, &flavors, &images, conn))
}

/// A dynamic-inventory document as the inventory model (groups, host vars, `all` vars).
pub fn to_model(doc: &Value) -> playbook_engine::inventory::Inventory {
    let mut inv = playbook_engine::inventory::Inventory::new();
    for group in ["master", "slaves"] {
        inv.add_group(group);
        inv.add_child("all", group);
        let hosts = doc[group]["hosts"].as_array().cloned().unwrap_or_default();
        for h in hosts.iter().filter_map(Value::as_str) {
            inv.add_host(h, group);
            if let Some(vars) = doc["_meta"]["hostvars"][h].as_object() {
                for (k, v) in vars {
                    inv.set_host_var(h, k, v.clone());
                }
            }
        }
    }
    if let Some(vars) = doc["all"]["vars"].as_object() {
        for (k, v) in vars {
            let _ = inv.set_group_var("all", k, v.clone());
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::api::Address;
    use crate::cluster::model::server_metadata;

    fn server(name: &str, role: Role, fixed: &str, floating: Option<&str>) -> Server {
        let mut addresses = vec![Address {
            network: "private".into(),
            addr: fixed.into(),
            floating: false,
        }];
        if let Some(f) = floating {
            addresses.push(Address {
                network: "private".into(),
                addr: f.into(),
                floating: true,
            });
        }
        Server {
            id: format!("id-{name}"),
            name: name.into(),
            status: "ACTIVE".into(),
            metadata: server_metadata("demo", role),
            flavor_id: "f1".into(),
            addresses,
            ..Default::default()
        }
    }

    fn cluster() -> Cluster {
        let servers = vec![
            server("demo-master", Role::Master, "10.0.0.5", Some("172.24.4.9")),
            server("demo-slave-1", Role::Slave, "10.0.0.6", None),
        ];
        Cluster::collect("demo", &servers, &[], &[])
    }

    #[test]
    fn floating_mode_jumps_through_the_master() {
        let flavors = vec![Flavor {
            id: "f1".into(),
            name: "m1".into(),
            vcpus: 2,
            ram_mb: 4096,
            disk_gb: 20,
            ephemeral_gb: 10,
        }];
        let inv = build(&cluster(), &flavors, &[], &ConnOptions::default());
        let hv = &inv["_meta"]["hostvars"];
        assert_eq!(hv["demo-master"]["ansible_host"], "172.24.4.9");
        assert_eq!(hv["demo-slave-1"]["ansible_host"], "10.0.0.6");
        assert_eq!(
            hv["demo-slave-1"]["spark_openstack_jump_host"],
            "demo-master"
        );
        assert_eq!(
            hv["demo-slave-1"]["ansible_ssh_common_args"],
            "-o ProxyJump=ubuntu@172.24.4.9"
        );
        assert_eq!(hv["demo-slave-1"]["flavor"]["ephemeral_gb"], 10);
        assert_eq!(inv["master"]["hosts"], json!(["demo-master"]));
        assert_eq!(inv["slaves"]["hosts"], json!(["demo-slave-1"]));
    }

    #[test]
    fn the_model_has_groups_and_host_vars() {
        let inv = to_model(&build(&cluster(), &[], &[], &ConnOptions::default()));
        assert_eq!(inv.groups["master"].hosts, ["demo-master"]);
        assert_eq!(inv.groups["slaves"].hosts, ["demo-slave-1"]);
        assert_eq!(inv.hosts["demo-slave-1"].vars["fixed_ip"], "10.0.0.6");
        assert_eq!(inv.groups["all"].vars["cluster_name"], "demo");
    }

    #[test]
    fn static_mode_uses_fixed_addresses() {
        let opts = ConnOptions {
            net_mode: Some(NetMode::Static),
            ssh_user: Some("centos".into()),
            ..Default::default()
        };
        let inv = build(&cluster(), &[], &[], &opts);
        let hv = &inv["_meta"]["hostvars"];
        assert_eq!(hv["demo-master"]["ansible_host"], "10.0.0.5");
        assert_eq!(hv["demo-master"]["ansible_user"], "centos");
        assert!(
            hv["demo-slave-1"]
                .get("spark_openstack_jump_host")
                .is_none()
        );
    }
}
