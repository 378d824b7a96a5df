//! Floating IPs: allocated from an external network, associated with a port via `port_id`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::crud::{self, Kind, list_handler, show_handler};
use super::networks::NETWORKS;
use super::ports::allocate_ip;
use super::{bad_request, body_object, check_quota, std_attrs, touch};
use crate::devcloud::error::ApiError;
use crate::devcloud::server::{AppState, Ctx};
use crate::devcloud::state::{Doc, State as Cloud, s as field};

pub static FIPS: Kind = Kind {
    singular: "floatingip",
    plural: "floatingips",
    not_found_type: "FloatingIPNotFound",
    not_found_msg: |id| format!("Floating IP {id} could not be found"),
    docs: |st| &st.floatingips,
    docs_mut: |st| &mut st.floatingips,
};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/floatingips", get(list_handler(&FIPS)).post(create))
        .route(
            "/floatingips/{id}",
            get(show_handler(&FIPS)).put(update).delete(delete),
        )
}

/// Clears an association (the server was deleted, or `port_id: null`).
pub fn disassociate(fip: &mut Doc) {
    for k in ["port_id", "fixed_ip_address", "router_id", "port_details"] {
        fip.insert(k.into(), Value::Null);
    }
    fip.insert("status".into(), json!("DOWN"));
    touch(fip);
}

/// Points a floating IP at a port (its first fixed IP unless `fixed_ip` is given).
fn associate(
    st: &mut Cloud,
    project: &str,
    fip_id: &str,
    port_id: &str,
    fixed_ip: Option<&str>,
) -> Result<(), ApiError> {
    let port = st
        .ports
        .iter()
        .find(|p| field(p, "id") == port_id && field(p, "project_id") == project)
        .cloned()
        .ok_or_else(|| {
            super::not_found(
                "PortNotFound",
                format!("Port {port_id} could not be found."),
            )
        })?;
    let ip = match fixed_ip {
        Some(ip) => ip.to_string(),
        None => port
            .get("fixed_ips")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|f| f.get("ip_address"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    if let Some(other) = st.floatingips.iter().find(|f| {
        field(f, "port_id") == port_id
            && field(f, "fixed_ip_address") == ip
            && field(f, "id") != fip_id
    }) {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "FloatingIPPortAlreadyAssociated",
            format!(
                "Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {ip}, as that fixed IP already has a floating IP on external network {}.",
                field(other, "floating_ip_address"),
                fip_id,
                field(other, "floating_network_id")
            ),
        ));
    }
    let fip = st
        .floatingips
        .iter_mut()
        .find(|f| field(f, "id") == fip_id)
        .ok_or_else(|| FIPS.missing(fip_id))?;
    fip.insert("port_id".into(), json!(port_id));
    fip.insert("fixed_ip_address".into(), json!(ip));
    fip.insert("status".into(), json!("ACTIVE"));
    fip.insert(
        "port_details".into(),
        json!({
        "name": field(&port, "name"), "network_id": field(&port, "network_id"),
        "mac_address": field(&port, "mac_address"), "admin_state_up": true,
        "status": field(&port, "status"), "device_id": field(&port, "device_id"),
        "device_owner": field(&port, "device_owner")}),
    );
    touch(fip);
    Ok(())
}

/// For Nova's `addFloatingIp`/`removeFloatingIp` proxies: by address, `None` disassociates.
pub fn associate_floating_ip(
    st: &mut Cloud,
    project: &str,
    address: &str,
    port_id: Option<&str>,
) -> Result<(), ApiError> {
    let fip_id = st
        .floatingips
        .iter()
        .find(|f| field(f, "floating_ip_address") == address && field(f, "project_id") == project)
        .map(|f| field(f, "id").to_string())
        .ok_or_else(|| {
            super::not_found(
                "FloatingIPNotFound",
                format!("floating IP not found for address {address}"),
            )
        })?;
    match port_id {
        Some(p) => associate(st, project, &fip_id, p, None),
        None => {
            if let Some(f) = st.floatingips.iter_mut().find(|f| field(f, "id") == fip_id) {
                disassociate(f);
            }
            Ok(())
        }
    }
}

async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "floatingip")?;
    let net_id = req
        .get("floating_network_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad_request(
                "Invalid input for floating_network_id. Reason: 'None' is not a valid UUID.",
            )
        })?
        .to_string();
    let str_of = |k: &str| req.get(k).and_then(Value::as_str).map(String::from);
    app.store.mutate(|st| {
        let net = NETWORKS.find(st, &ctx, &net_id)?;
        if net.get("router:external") != Some(&json!(true)) {
            return Err(bad_request(format!(
                "Bad floatingip request: Network {net_id} is not a valid external network."
            )));
        }
        check_quota(
            &st.floatingips,
            &ctx.project_id,
            app.cfg.quotas.floating_ips,
            "floatingip",
        )?;
        let (subnet_id, ip) = allocate_ip(st, &net_id, str_of("floating_ip_address").as_deref())
            .map_err(|e| {
                if e.status == StatusCode::CONFLICT
                    && e.neutron_type == "IpAddressGenerationFailure"
                {
                    ApiError::neutron(
                        StatusCode::BAD_REQUEST,
                        "ExternalIpAddressExhausted",
                        format!("Unable to find any IP address on external network {net_id}."),
                    )
                } else {
                    e
                }
            })?;
        let mut d = std_attrs(&ctx.project_id);
        for (k, v) in [
            ("floating_ip_address", json!(ip)),
            ("floating_network_id", json!(net_id)),
            ("subnet_id", json!(subnet_id)),
            ("router_id", Value::Null),
            ("port_id", Value::Null),
            ("fixed_ip_address", Value::Null),
            ("status", json!("DOWN")),
            ("port_details", Value::Null),
            ("port_forwardings", json!([])),
            ("qos_policy_id", Value::Null),
            ("dns_domain", json!("")),
            ("dns_name", json!("")),
            (
                "description",
                json!(str_of("description").unwrap_or_default()),
            ),
        ] {
            d.insert(k.into(), v);
        }
        let id = field(&d, "id").to_string();
        st.floatingips.push(d);
        if let Some(port) = str_of("port_id") {
            associate(
                st,
                &ctx.project_id,
                &id,
                &port,
                str_of("fixed_ip_address").as_deref(),
            )?;
        }
        Ok(FIPS.created(FIPS.find(st, &ctx, &id)?))
    })
}

async fn update(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "floatingip")?;
    app.store.mutate(|st| {
        FIPS.find_mut(st, &ctx, &id)?;
        match req.get("port_id") {
            Some(Value::String(port)) => {
                let fixed = req.get("fixed_ip_address").and_then(Value::as_str);
                associate(st, &ctx.project_id, &id, port, fixed)?;
            }
            Some(Value::Null) => disassociate(FIPS.find_mut(st, &ctx, &id)?),
            _ => {}
        }
        let d = FIPS.find_mut(st, &ctx, &id)?;
        if let Some(desc) = req.get("description") {
            d.insert("description".into(), desc.clone());
            touch(d);
        }
        Ok(FIPS.one(d.clone()))
    })
}

async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crud::delete(&FIPS, &app, &ctx, &id, |_, _| Ok(()))
}
