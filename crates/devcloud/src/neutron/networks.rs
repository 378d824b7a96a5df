//! Networks and subnets.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::crud::{self, Kind};
use super::{apply_updates, bad_request, body_object, check_quota, std_attrs, touch};
use crate::error::ApiError;
use crate::server::{AppState, Ctx};
use crate::state::{Doc, s as field};

pub static NETWORKS: Kind = Kind {
    singular: "network",
    plural: "networks",
    not_found_type: "NetworkNotFound",
    not_found_msg: |id| format!("Network {id} could not be found."),
    docs: |st| &st.networks,
    docs_mut: |st| &mut st.networks,
};

pub static SUBNETS: Kind = Kind {
    singular: "subnet",
    plural: "subnets",
    not_found_type: "SubnetNotFound",
    not_found_msg: |id| format!("Subnet {id} could not be found."),
    docs: |st| &st.subnets,
    docs_mut: |st| &mut st.subnets,
};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(
        "/networks",
        get(|s, c, q| crud::list(&NETWORKS, s, c, q)).post(create_network),
    )
    .route(
        "/networks/{id}",
        get(|s, c, i, q| crud::show(&NETWORKS, s, c, i, q))
            .put(update_network)
            .delete(delete_network),
    )
    .route(
        "/subnets",
        get(|s, c, q| crud::list(&SUBNETS, s, c, q)).post(create_subnet),
    )
    .route(
        "/subnets/{id}",
        get(|s, c, i, q| crud::show(&SUBNETS, s, c, i, q)).delete(delete_subnet),
    )
}

/// A network document as Neutron (ML2/OVN) shows it.
pub fn new_network(project_id: &str, name: &str, external: bool, shared: bool) -> Doc {
    let mut d = std_attrs(project_id);
    for (k, v) in [
        ("name", json!(name)),
        ("status", json!("ACTIVE")),
        ("admin_state_up", json!(true)),
        ("subnets", json!([])),
        ("shared", json!(shared)),
        ("router:external", json!(external)),
        ("is_default", json!(external)),
        ("mtu", json!(1442)),
        ("port_security_enabled", json!(true)),
        ("availability_zones", json!(["nova"])),
        ("availability_zone_hints", json!([])),
        ("ipv4_address_scope", Value::Null),
        ("ipv6_address_scope", Value::Null),
        ("l2_adjacency", json!(true)),
        ("qos_policy_id", Value::Null),
        ("dns_domain", json!("")),
    ] {
        d.insert(k.into(), v);
    }
    d
}

/// A subnet document; the allocation pool is the CIDR minus the network, gateway (first
/// host) and broadcast addresses.
pub fn new_subnet(project_id: &str, network_id: &str, name: &str, cidr: &ipnet::Ipv4Net) -> Doc {
    let mut hosts = cidr.hosts();
    let gateway = hosts.next();
    let last = cidr.hosts().last();
    let start = hosts.next();
    let mut d = std_attrs(project_id);
    for (k, v) in [
        ("name", json!(name)),
        ("network_id", json!(network_id)),
        ("cidr", json!(cidr.to_string())),
        ("ip_version", json!(4)),
        ("gateway_ip", json!(gateway.map(|g| g.to_string()))),
        (
            "allocation_pools",
            json!([{"start": start.map(|s| s.to_string()), "end": last.map(|s| s.to_string())}]),
        ),
        ("enable_dhcp", json!(true)),
        ("dns_nameservers", json!([])),
        ("host_routes", json!([])),
        ("ipv6_ra_mode", Value::Null),
        ("ipv6_address_mode", Value::Null),
        ("subnetpool_id", Value::Null),
        ("service_types", json!([])),
        ("dns_publish_fixed_ip", json!(false)),
    ] {
        d.insert(k.into(), v);
    }
    d
}

async fn create_network(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "network")?;
    let name = req.get("name").and_then(Value::as_str).unwrap_or("");
    let mut net = new_network(&ctx.project_id, name, false, false);
    apply_updates(
        &mut net,
        &req,
        &[
            "name",
            "description",
            "admin_state_up",
            "mtu",
            "port_security_enabled",
            "shared",
            "tags",
            "dns_domain",
        ],
    )?;
    net.insert("revision_number".into(), json!(1));
    app.store.mutate(|st| {
        check_quota(
            &st.networks,
            &ctx.project_id,
            app.cfg.quotas.networks,
            "network",
        )?;
        st.networks.push(net.clone());
        Ok(NETWORKS.created(net))
    })
}

async fn update_network(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "network")?;
    app.store.mutate(|st| {
        let d = NETWORKS.find_mut(st, &ctx, &id)?;
        apply_updates(
            d,
            &req,
            &[
                "name",
                "description",
                "admin_state_up",
                "mtu",
                "port_security_enabled",
                "tags",
            ],
        )?;
        Ok(NETWORKS.one(d.clone()))
    })
}

async fn delete_network(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crud::delete(&NETWORKS, &app, &ctx, &id, |st, _| {
        if st.ports.iter().any(|p| {
            field(p, "network_id") == id && field(p, "device_owner").starts_with("compute:")
        }) {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "NetworkInUse",
                format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
                ),
            ));
        }
        st.subnets.retain(|s| field(s, "network_id") != id);
        st.ports.retain(|p| field(p, "network_id") != id);
        Ok(())
    })
}

async fn create_subnet(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "subnet")?;
    let net_id = req
        .get("network_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad_request("Invalid input for network_id. Reason: 'None' is not a valid UUID.")
        })?
        .to_string();
    let cidr: ipnet::Ipv4Net = req
        .get("cidr")
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad_request("Invalid input for cidr. Reason: not a valid IPv4 network."))?;
    let name = req.get("name").and_then(Value::as_str).unwrap_or("");
    let mut sub = new_subnet(&ctx.project_id, &net_id, name, &cidr.trunc());
    apply_updates(
        &mut sub,
        &req,
        &[
            "name",
            "description",
            "network_id",
            "cidr",
            "ip_version",
            "gateway_ip",
            "enable_dhcp",
            "dns_nameservers",
            "allocation_pools",
            "host_routes",
            "tags",
        ],
    )?;
    app.store.mutate(|st| {
        let net = NETWORKS.find_mut(st, &ctx, &net_id)?;
        if let Some(Value::Array(subs)) = net.get_mut("subnets") {
            subs.push(json!(field(&sub, "id")));
        }
        touch(net);
        st.subnets.push(sub.clone());
        Ok(SUBNETS.created(sub))
    })
}

async fn delete_subnet(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crud::delete(&SUBNETS, &app, &ctx, &id, |st, sub| {
        let in_use = st.ports.iter().any(|p| {
            p.get("fixed_ips")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|f| f.get("subnet_id").and_then(Value::as_str) == Some(id.as_str()))
        });
        if in_use {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "SubnetInUse",
                format!(
                    "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                ),
            ));
        }
        let net_id = field(sub, "network_id").to_string();
        if let Some(net) = st.networks.iter_mut().find(|n| field(n, "id") == net_id) {
            if let Some(Value::Array(subs)) = net.get_mut("subnets") {
                subs.retain(|s| s.as_str() != Some(id.as_str()));
            }
            touch(net);
        }
        Ok(())
    })
}
