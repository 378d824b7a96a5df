//! Ports, IP allocation, and the port operations Nova performs for servers.

use std::net::Ipv4Addr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use rand::Rng;
use serde_json::{Value, json};

use super::crud::{self, Kind};
use super::networks::NETWORKS;
use super::{apply_updates, bad_request, body_object, check_quota, std_attrs, touch, visible};
use crate::error::ApiError;
use crate::server::{AppState, Ctx};
use crate::state::{Doc, State as Cloud, s as field};

pub static PORTS: Kind = Kind {
    singular: "port",
    plural: "ports",
    not_found_type: "PortNotFound",
    not_found_msg: |id| format!("Port {id} could not be found."),
    docs: |st| &st.ports,
    docs_mut: |st| &mut st.ports,
};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(
        "/ports",
        get(|s, c, q| crud::list(&PORTS, s, c, q)).post(create),
    )
    .route(
        "/ports/{id}",
        get(|s, c, i, q| crud::show(&PORTS, s, c, i, q))
            .put(update)
            .delete(delete),
    )
}

fn pool_range(sub: &Doc) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let pool = sub.get("allocation_pools")?.as_array()?.first()?;
    let start = pool.get("start")?.as_str()?.parse().ok()?;
    let end = pool.get("end")?.as_str()?.parse().ok()?;
    Some((start, end))
}

/// Every IPv4 address taken on a network: port fixed IPs and floating IPs.
fn used_ips(st: &Cloud, network_id: &str) -> Vec<String> {
    let mut used: Vec<String> = st
        .ports
        .iter()
        .filter(|p| field(p, "network_id") == network_id)
        .flat_map(|p| {
            p.get("fixed_ips")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| {
            f.get("ip_address")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect();
    used.extend(
        st.floatingips
            .iter()
            .filter(|f| field(f, "floating_network_id") == network_id)
            .map(|f| field(f, "floating_ip_address").to_string()),
    );
    used
}

/// The first free address of a network's first subnet, or the requested one if free.
pub fn allocate_ip(
    st: &Cloud,
    network_id: &str,
    wanted: Option<&str>,
) -> Result<(String, String), ApiError> {
    let sub = st
        .subnets
        .iter()
        .find(|s| field(s, "network_id") == network_id)
        .ok_or_else(|| {
            bad_request(format!(
                "Network {network_id} has no subnet to allocate an IP address from."
            ))
        })?;
    let used = used_ips(st, network_id);
    let sub_id = field(sub, "id").to_string();
    if let Some(ip) = wanted {
        if used.iter().any(|u| u == ip) {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "IpAddressAlreadyAllocated",
                format!("IP address {ip} already allocated in subnet {sub_id}"),
            ));
        }
        return Ok((sub_id, ip.to_string()));
    }
    let (start, end) =
        pool_range(sub).ok_or_else(|| bad_request("Subnet has no allocation pool"))?;
    (u32::from(start)..=u32::from(end))
        .map(|n| Ipv4Addr::from(n).to_string())
        .find(|ip| !used.contains(ip))
        .map(|ip| (sub_id, ip))
        .ok_or_else(|| {
            ApiError::neutron(
                StatusCode::CONFLICT,
                "IpAddressGenerationFailure",
                format!("No more IP addresses available on network {network_id}."),
            )
        })
}

/// A random MAC in OpenStack's `fa:16:3e` prefix.
pub fn random_mac() -> String {
    let mut rng = rand::rng();
    format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        rng.random::<u8>(),
        rng.random::<u8>(),
        rng.random::<u8>()
    )
}

fn new_port(
    st: &Cloud,
    project: &str,
    net_id: &str,
    fixed_ip: Option<&str>,
) -> Result<Doc, ApiError> {
    let (subnet_id, ip) = allocate_ip(st, net_id, fixed_ip)?;
    let mut d = std_attrs(project);
    for (k, v) in [
        ("name", json!("")),
        ("network_id", json!(net_id)),
        ("mac_address", json!(random_mac())),
        (
            "fixed_ips",
            json!([{"subnet_id": subnet_id, "ip_address": ip}]),
        ),
        ("device_id", json!("")),
        ("device_owner", json!("")),
        ("status", json!("DOWN")),
        ("admin_state_up", json!(true)),
        ("security_groups", json!([])),
        ("allowed_address_pairs", json!([])),
        ("extra_dhcp_opts", json!([])),
        ("binding:vnic_type", json!("normal")),
        ("port_security_enabled", json!(true)),
        ("ip_allocation", json!("immediate")),
        ("dns_name", json!("")),
        ("qos_policy_id", Value::Null),
        ("qos_network_policy_id", Value::Null),
        ("propagate_uplink_status", json!(false)),
    ] {
        d.insert(k.into(), v);
    }
    Ok(d)
}

/// Creates the port Nova makes for one NIC of a server.
pub fn create_server_port(
    st: &mut Cloud,
    project: &str,
    net_id: &str,
    fixed_ip: Option<&str>,
    server_id: &str,
    sg_ids: &[String],
) -> Result<String, ApiError> {
    let mut d = new_port(st, project, net_id, fixed_ip)?;
    d.insert("device_id".into(), json!(server_id));
    d.insert("device_owner".into(), json!("compute:nova"));
    d.insert("status".into(), json!("ACTIVE"));
    d.insert("security_groups".into(), json!(sg_ids));
    let id = field(&d, "id").to_string();
    st.ports.push(d);
    Ok(id)
}

/// Binds an existing port (`networks: [{"port": ...}]`) to a server.
pub fn bind_port(
    st: &mut Cloud,
    project: &str,
    port_id: &str,
    server_id: &str,
) -> Result<String, ApiError> {
    let p = st
        .ports
        .iter_mut()
        .find(|p| field(p, "id") == port_id && field(p, "project_id") == project)
        .ok_or_else(|| PORTS.missing(port_id))?;
    if !field(p, "device_id").is_empty() {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "PortInUse",
            format!("Port {port_id} is still in use."),
        ));
    }
    p.insert("device_id".into(), json!(server_id));
    p.insert("device_owner".into(), json!("compute:nova"));
    p.insert("status".into(), json!("ACTIVE"));
    touch(p);
    Ok(port_id.to_string())
}

/// Deletes a server's ports and disassociates the floating IPs that pointed at them.
pub fn release_server_ports(st: &mut Cloud, server_id: &str) {
    let ids: Vec<String> = st
        .ports
        .iter()
        .filter(|p| field(p, "device_id") == server_id)
        .map(|p| field(p, "id").to_string())
        .collect();
    for fip in st
        .floatingips
        .iter_mut()
        .filter(|f| ids.iter().any(|i| i == field(f, "port_id")))
    {
        super::floatingips::disassociate(fip);
    }
    st.ports.retain(|p| field(p, "device_id") != server_id);
}

async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "port")?;
    let net_id = req
        .get("network_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("Invalid input for network_id."))?
        .to_string();
    let fixed = req
        .get("fixed_ips")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|f| f.get("ip_address"))
        .and_then(Value::as_str)
        .map(String::from);
    let out = app.store.mutate(|st| {
        let net = NETWORKS.find(st, &ctx, &net_id)?;
        if !visible(&net, &ctx.project_id) {
            return Err(NETWORKS.missing(&net_id));
        }
        check_quota(&st.ports, &ctx.project_id, app.cfg.quotas.ports, "port")?;
        let mut d = new_port(st, &ctx.project_id, &net_id, fixed.as_deref())?;
        let mut req = req.clone();
        req.remove("fixed_ips");
        req.remove("network_id");
        apply_updates(
            &mut d,
            &req,
            &[
                "name",
                "description",
                "security_groups",
                "admin_state_up",
                "device_id",
                "device_owner",
                "port_security_enabled",
                "allowed_address_pairs",
                "tags",
                "binding:vnic_type",
                "mac_address",
            ],
        )?;
        st.ports.push(d.clone());
        Ok(PORTS.created(d))
    });
    crate::firewall::synced(&app, out).await
}

async fn update(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "port")?;
    let out = app.store.mutate(|st| {
        let d = PORTS.find_mut(st, &ctx, &id)?;
        apply_updates(
            d,
            &req,
            &[
                "name",
                "description",
                "security_groups",
                "admin_state_up",
                "port_security_enabled",
                "allowed_address_pairs",
                "tags",
            ],
        )?;
        Ok(PORTS.one(d.clone()))
    });
    crate::firewall::synced(&app, out).await
}

async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::syncing_floating(&app, || {
        crud::delete(&PORTS, &app, &ctx, &id, |st, _| {
            for fip in st
                .floatingips
                .iter_mut()
                .filter(|f| field(f, "port_id") == id)
            {
                super::floatingips::disassociate(fip);
            }
            for srv in st.servers.iter_mut() {
                srv.port_ids.retain(|p| *p != id);
            }
            Ok(())
        })
    })
    .await
}
