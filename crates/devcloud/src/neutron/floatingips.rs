//! Floating IPs: allocated from an external network, associated with a port via `port_id`.
//!
//! Every request that can move a floating IP runs through [`syncing_floating`], which tells
//! the server backend which servers gained or lost one (the netns backend moves the address
//! onto the machine).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::crud::{self, Kind};
use super::networks::NETWORKS;
use super::ports::allocate_ip;
use super::{bad_request, body_object, check_quota, std_attrs, touch};
use crate::error::ApiError;
use crate::lifecycle::floating_of;
use crate::server::{AppState, Ctx};
use crate::state::{Doc, State as Cloud, s as field};

pub static FIPS: Kind = Kind {
    singular: "floatingip",
    plural: "floatingips",
    not_found_type: "FloatingIPNotFound",
    not_found_msg: |id| format!("Floating IP {id} could not be found"),
    docs: |st| &st.floatingips,
    docs_mut: |st| &mut st.floatingips,
};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(
        "/floatingips",
        get(|s, c, q| crud::list(&FIPS, s, c, q)).post(create),
    )
    .route(
        "/floatingips/{id}",
        get(|s, c, i, q| crud::show(&FIPS, s, c, i, q))
            .put(update)
            .delete(delete),
    )
}

/// The floating address of every existing server (`None` for servers without one).
fn server_floating(st: &Cloud) -> FloatingMap {
    st.servers
        .iter()
        .map(|s| (s.id.clone(), floating_of(st, s)))
        .collect()
}

/// Runs `op` (which changes the state) and then reports to the backend every server whose
/// floating IP it changed, removals first so an address can move between servers. The
/// backend's hook is idempotent, so a concurrent request seen in both snapshots is harmless.
/// A backend failure is logged: the API change stands, as Neutron's does when an agent lags.
///
/// Floating IPs that `op` pointed at a (new) port become visible in Nova's `addresses` only
/// after the configured `floating_ip_delay_ms`.
pub async fn syncing_floating<R>(
    app: &AppState,
    op: impl FnOnce() -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let before = app.store.read(server_floating);
    let ports_before = app.store.read(fip_ports);
    let out = op()?;
    let [min, max] = app.cfg.floating_ip_delay_ms;
    let _ = app.store.mutate(|st| {
        let now = chrono::Utc::now();
        let moved: Vec<String> = fip_ports(st)
            .into_iter()
            .filter(|(id, port)| !port.is_empty() && ports_before.get(id) != Some(port))
            .map(|(id, _)| id)
            .collect();
        for id in moved {
            let lag = rand::Rng::random_range(&mut rand::rng(), min..=max);
            st.nova_floating_visible_at
                .insert(id, now + chrono::Duration::milliseconds(lag as i64));
        }
        let live: Vec<String> = st
            .floatingips
            .iter()
            .map(|f| field(f, "id").to_string())
            .collect();
        st.nova_floating_visible_at
            .retain(|id, t| *t > now && live.contains(id));
        Ok::<(), ()>(())
    });
    let after = app.store.read(server_floating);
    let changes = floating_changes(&before, after);
    for (id, addr) in changes {
        if let Err(f) = app.backend.floating_ip_changed(&id, addr.as_deref()).await {
            tracing::warn!(
                "server {id}: floating IP {addr:?} not applied: {}",
                f.message
            );
        }
    }
    // Floating IPs are sources of remote-group rules.
    crate::firewall::sync(app).await;
    Ok(out)
}

type FloatingMap = BTreeMap<String, Option<String>>;

/// The port of every floating IP, by id (empty when not associated).
fn fip_ports(st: &Cloud) -> BTreeMap<String, String> {
    st.floatingips
        .iter()
        .map(|f| (field(f, "id").to_string(), field(f, "port_id").to_string()))
        .collect()
}

/// The servers whose floating address differs between two snapshots, removals first (so an
/// address moving from one server to another is free before it is attached again). A server
/// new since `before` counts only if it has an address.
fn floating_changes(before: &FloatingMap, after: FloatingMap) -> Vec<(String, Option<String>)> {
    let mut changes: Vec<(String, Option<String>)> = after
        .into_iter()
        .filter(|(id, addr)| match before.get(id) {
            Some(was) => was != addr,
            None => addr.is_some(),
        })
        .collect();
    changes.sort_by_key(|(_, addr)| addr.is_some());
    changes
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
    syncing_floating(&app, || {
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
            let (subnet_id, ip) = allocate_ip(
                st,
                &net_id,
                str_of("floating_ip_address").as_deref(),
            )
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
    })
    .await
}

async fn update(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = body_object(&body, "floatingip")?;
    syncing_floating(&app, || {
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
    })
    .await
}

async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    syncing_floating(&app, || crud::delete(&FIPS, &app, &ctx, &id, |_, _| Ok(()))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_address_is_released_before_it_is_attached() {
        let ip = Some("10.213.255.7".to_string());
        let before = FloatingMap::from([("b".into(), None), ("a".into(), ip.clone())]);
        let after = FloatingMap::from([
            ("a".into(), None),
            ("b".into(), ip.clone()),
            ("new-bare".into(), None),
        ]);
        assert_eq!(
            floating_changes(&before, after),
            vec![("a".into(), None), ("b".into(), ip.clone())]
        );
        let same = FloatingMap::from([("a".into(), ip)]);
        assert!(floating_changes(&same, same.clone()).is_empty());
    }
}
