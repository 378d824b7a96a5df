//! `describe` and `get-master`: a cluster's state, nodes, addresses and web UIs, as YAML for
//! people or JSON for scripts (the same document either way).

use serde_json::{Map, Value, json};

use super::inventory::{Access, ConnOptions, access};
use super::launch::META_AUTHORIZED;
use super::model::Cluster;
use super::recorded;
use playbook_engine::template::filters::json_bool;

/// Spark and Hadoop web UIs on the master: (label, port, path).
pub const WEB_UIS: &[(&str, u16, &str)] = &[
    ("spark_master", 8080, "/"),
    ("spark_application", 4040, "/"),
    ("spark_history", 18080, "/"),
    ("hdfs_namenode", 9870, "/"),
    ("hdfs_persistent_namenode", 9880, "/"),
    ("ganglia", 5080, "/ganglia"),
];

/// The UIs of the services a cluster runs, decided by its role variables (those recorded
/// at launch, see [`super::recorded`]) with the roles' defaults where unset: HDFS on,
/// persistent HDFS formatted but not started, the history server on, Ganglia off.
pub fn running_uis(vars: &Map<String, Value>) -> Vec<(&'static str, u16, &'static str)> {
    let flag = |k: &str, default: bool| vars.get(k).map_or(default, json_bool);
    let hdfs = flag("hdfs_enabled", true);
    WEB_UIS
        .iter()
        .filter(|(name, _, _)| match *name {
            "hdfs_namenode" => hdfs,
            "hdfs_persistent_namenode" => hdfs && flag("hdfs_persistent_start", false),
            "ganglia" => flag("ganglia_enabled", false) && flag("ganglia_web_enabled", true),
            "spark_history" => flag("spark_history_enabled", true),
            _ => true,
        })
        .copied()
        .collect()
}

/// The cluster's UIs and how each is reached. The security groups open the UI ports only
/// to `--authorized-address` (recorded on the servers at launch), so a URL on the master's
/// address is shown only then: anything else would be a link that the cloud blocks.
/// `spark-openstack tunnel` reaches every UI over SSH in any case.
pub fn web_uis(cluster: &Cluster, address: &str) -> Value {
    let Some(master) = cluster.master() else {
        return json!({});
    };
    let opened = master.metadata.contains_key(META_AUTHORIZED);
    let uis = running_uis(&recorded::of_master(master));
    Value::Object(
        uis.into_iter()
            .map(|(name, port, path)| {
                let mut ui = json!({"port": port, "path": path});
                if opened {
                    ui["url"] = json!(format!("http://{address}:{port}{path}"));
                }
                (name.to_string(), ui)
            })
            .collect(),
    )
}

/// The describe document of one cluster.
pub fn describe(cluster: &Cluster, opts: &ConnOptions) -> Value {
    let acc: Access = access(cluster, opts);
    let node = |s: &super::api::Server| {
        json!({
            "name": s.name,
            "status": s.status,
            "fixed_ip": s.fixed_ip(),
            "floating_ip": s.floating_ip(),
            "availability_zone": s.availability_zone,
        })
    };
    let mut doc = json!({
        "name": cluster.name,
        "state": cluster.state(),
        "network": acc.mode.as_str(),
        "node_count": cluster.servers().count(),
        "master": cluster.master().map(node),
        "master_address": acc.master_address,
        "slaves": cluster.slaves.iter().map(node).collect::<Vec<_>>(),
    });
    if let Some(addr) = &acc.master_address {
        doc["web_ui"] = web_uis(cluster, addr);
        doc["tunnel"] = json!(format!("spark-openstack tunnel {}", cluster.name));
        doc["login"] = json!(format!("spark-openstack login {}", cluster.name));
    }
    if cluster.masters.len() > 1 {
        doc["warning"] = json!(format!(
            "{} servers claim to be the master: {}",
            cluster.masters.len(),
            cluster
                .masters
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !cluster.volumes.is_empty() {
        doc["volumes"] = json!(
            cluster
                .volumes
                .iter()
                .map(|v| json!({
                    "name": v.name, "size_gb": v.size_gb, "status": v.status
                }))
                .collect::<Vec<_>>()
        );
    }
    doc
}

/// Renders a document as YAML (falls back to JSON if the YAML writer refuses it).
pub fn to_yaml(doc: &Value) -> String {
    serde_saphyr::to_string(doc).unwrap_or_else(|_| format!("{doc:#}\n"))
}
