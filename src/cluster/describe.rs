//! `describe` and `get-master`: a cluster's state, nodes, addresses and web UIs, as YAML for
//! people or JSON for scripts (the same document either way).

use serde_json::{Value, json};

use super::inventory::{Access, ConnOptions, access};
use super::model::Cluster;

/// Spark and Hadoop web UIs on the master: (label, port, path).
pub const WEB_UIS: &[(&str, u16, &str)] = &[
    ("spark_master", 8080, "/"),
    ("spark_application", 4040, "/"),
    ("hdfs_namenode", 9870, "/"),
    ("ganglia", 5080, "/ganglia"),
];

pub fn ui_urls(address: &str) -> Value {
    Value::Object(
        WEB_UIS
            .iter()
            .map(|(k, port, path)| {
                (
                    k.to_string(),
                    json!(format!("http://{address}:{port}{path}")),
                )
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
        doc["web_ui"] = ui_urls(addr);
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
