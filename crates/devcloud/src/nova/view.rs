//! How a server looks at a given microversion.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha224};

use super::{Microversion, links};
use crate::state::{Server, State, s as field};

/// The `addresses` map: one entry per network, fixed IPs then the floating IPs bound to
/// the server's ports (Nova's network info cache). Empty while the server is building. A
/// floating IP shows only once its `nova_floating_visible_at` time has passed (the cache
/// learns of an association a few seconds after Neutron made it).
pub fn addresses(st: &State, srv: &Server) -> Value {
    let mut out: Map<String, Value> = Map::new();
    if srv.vm_state == "building" {
        return Value::Object(out);
    }
    for port_id in &srv.port_ids {
        let Some(port) = st.ports.iter().find(|p| field(p, "id") == port_id) else {
            continue;
        };
        let net_id = field(port, "network_id");
        let net_name = st
            .networks
            .iter()
            .find(|n| field(n, "id") == net_id)
            .map(|n| field(n, "name").to_string())
            .unwrap_or_else(|| net_id.to_string());
        let mac = field(port, "mac_address").to_string();
        let entry = out.entry(net_name).or_insert_with(|| json!([]));
        let Some(list) = entry.as_array_mut() else {
            continue;
        };
        let fixed = port
            .get("fixed_ips")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for ip in fixed {
            let addr = ip.get("ip_address").and_then(Value::as_str).unwrap_or("");
            list.push(
                json!({"version": if addr.contains(':') { 6 } else { 4 }, "addr": addr,
                             "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}),
            );
        }
        let now = chrono::Utc::now();
        for fip in st.floatingips.iter().filter(|f| {
            field(f, "port_id") == port_id
                && st
                    .nova_floating_visible_at
                    .get(field(f, "id"))
                    .is_none_or(|t| *t <= now)
        }) {
            list.push(
                json!({"version": 4, "addr": field(fip, "floating_ip_address"),
                             "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac}),
            );
        }
    }
    Value::Object(out)
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The full server document (`GET /servers/{id}`, `/servers/detail`).
pub fn server_doc(base: &str, st: &State, srv: &Server, mv: Microversion) -> Value {
    let flavor = st.flavors.iter().find(|f| f.id == srv.flavor_id);
    let flavor_v = match (mv.at_least(47), flavor) {
        (true, Some(f)) => {
            let mut v = json!({"vcpus": f.vcpus, "ram": f.ram, "disk": f.disk,
                "ephemeral": f.ephemeral, "swap": f.swap, "original_name": f.name,
                "extra_specs": f.extra_specs});
            if !mv.at_least(75) && f.swap == 0 {
                v["swap"] = json!("");
            }
            v
        }
        _ => json!({"id": srv.flavor_id,
                    "links": [{"rel": "bookmark", "href": format!("{base}/compute/{}/flavors/{}", srv.project_id, srv.flavor_id)}]}),
    };
    let image = if srv.image_id.is_empty() {
        json!("")
    } else {
        json!({"id": srv.image_id, "links": [{"rel": "bookmark",
            "href": format!("{base}/compute/{}/images/{}", srv.project_id, srv.image_id)}]})
    };
    let host_id = if srv.vm_state == "building" {
        String::new()
    } else {
        hex::encode(Sha224::digest(
            format!("devcloud{}", srv.project_id).as_bytes(),
        ))
    };
    let mut v = json!({
        "id": srv.id, "name": srv.name, "status": srv.status(),
        "tenant_id": srv.project_id, "user_id": srv.user_id,
        "metadata": srv.metadata, "hostId": host_id,
        "image": image, "flavor": flavor_v,
        "created": time(srv.created), "updated": time(srv.updated),
        "addresses": addresses(st, srv),
        "accessIPv4": "", "accessIPv6": "",
        "links": links(base, &srv.project_id, "servers", &srv.id),
        "OS-DCF:diskConfig": "MANUAL",
        "progress": if srv.vm_state == "building" { 0 } else { 100 },
        "OS-EXT-AZ:availability_zone": srv.availability_zone,
        "config_drive": if srv.config_drive { "True" } else { "" },
        "key_name": srv.key_name,
        "OS-SRV-USG:launched_at": srv.launched_at.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        "OS-SRV-USG:terminated_at": null,
        "OS-EXT-STS:task_state": srv.task_state,
        "OS-EXT-STS:vm_state": srv.vm_state,
        "OS-EXT-STS:power_state": srv.power_state,
        "os-extended-volumes:volumes_attached": srv.volumes.iter().map(|a| {
            if mv.at_least(3) { json!({"id": a.volume_id, "delete_on_termination": a.delete_on_termination}) }
            else { json!({"id": a.volume_id}) }
        }).collect::<Vec<_>>(),
    });
    if !srv.security_groups.is_empty() && srv.vm_state != "building" {
        v["security_groups"] = json!(
            srv.security_groups
                .iter()
                .map(|n| json!({"name": n}))
                .collect::<Vec<_>>()
        );
    }
    if let Some(f) = &srv.fault {
        v["fault"] = json!({"code": f.code, "message": f.message, "created": time(f.created)});
    }
    add_versioned(&mut v, srv, mv);
    v
}

/// Fields that appear at later microversions.
fn add_versioned(v: &mut Value, srv: &Server, mv: Microversion) {
    let steps: [(u16, &str, Value); 8] = [
        (9, "locked", json!(false)),
        (19, "description", json!(srv.description)),
        (26, "tags", json!(srv.tags)),
        (63, "trusted_image_certificates", Value::Null),
        (71, "server_groups", json!([])),
        (73, "locked_reason", Value::Null),
        (90, "OS-EXT-SRV-ATTR:hostname", json!(hostname(&srv.name))),
        (96, "pinned_availability_zone", Value::Null),
    ];
    for (min, key, val) in steps {
        if mv.at_least(min) {
            v[key] = val;
        }
    }
}

/// Nova's hostname sanitization, simplified: lowercase, alphanumerics and dashes.
pub fn hostname(name: &str) -> String {
    let h: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    h.trim_matches('-').chars().take(63).collect()
}

/// The short form (`GET /servers`).
pub fn server_brief(base: &str, srv: &Server) -> Value {
    json!({"id": srv.id, "name": srv.name, "links": links(base, &srv.project_id, "servers", &srv.id)})
}
