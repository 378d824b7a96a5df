//! `POST /servers`: validation, quota, ports, and the start of the boot transition.

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{Duration, Utc};
use indexmap::IndexMap;
use rand::Rng;
use serde_json::{Value, json};

use super::{Microversion, SVC, bad_request, links};
use crate::error::{ApiError, ApiResult};
use crate::lifecycle::spawn_transition;
use crate::neutron;
use crate::server::{AppState, Ctx, parse_body};
use crate::state::{Server, State as Cloud, new_id, s as field};

/// The id at the end of an id-or-URL reference (`flavorRef`, `imageRef`).
fn ref_id(v: &str) -> &str {
    v.rsplit('/').next().unwrap_or(v)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// One requested NIC: a network (optionally with a fixed IP) or an existing port.
enum NicReq {
    Net {
        id: String,
        fixed_ip: Option<String>,
    },
    Port(String),
}

fn requested_nics(st: &Cloud, ctx: &Ctx, req: &Value, mv: Microversion) -> ApiResult<Vec<NicReq>> {
    let auto = || -> ApiResult<Vec<NicReq>> {
        let nets: Vec<String> = st
            .networks
            .iter()
            .filter(|n| {
                neutron::visible(n, &ctx.project_id)
                    && n.get("router:external") != Some(&json!(true))
            })
            .map(|n| field(n, "id").to_string())
            .collect();
        match nets.as_slice() {
            [one] => Ok(vec![NicReq::Net {
                id: one.clone(),
                fixed_ip: None,
            }]),
            [] => Ok(vec![]),
            _ => Err(ApiError::conflict(
                SVC,
                "Multiple possible networks found, use a Network ID to be more specific.",
            )),
        }
    };
    match req.get("networks") {
        None if mv.at_least(37) => Err(bad_request(
            "Invalid input for field/attribute networks. Value: None. 'networks' is a required property",
        )),
        None => auto(),
        Some(Value::String(s)) if s == "auto" => auto(),
        Some(Value::String(s)) if s == "none" => Ok(vec![]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|n| {
                if let Some(port) = str_of(n, "port") {
                    return Ok(NicReq::Port(port.to_string()));
                }
                let id = str_of(n, "uuid").ok_or_else(|| {
                    bad_request("Bad networks format: network uuid is not in proper format")
                })?;
                if !st
                    .networks
                    .iter()
                    .any(|x| field(x, "id") == id && neutron::visible(x, &ctx.project_id))
                {
                    return Err(bad_request(format!("Network {id} could not be found.")));
                }
                Ok(NicReq::Net {
                    id: id.to_string(),
                    fixed_ip: str_of(n, "fixed_ip").map(String::from),
                })
            })
            .collect(),
        Some(other) => Err(bad_request(format!(
            "Invalid input for field/attribute networks. Value: {other}."
        ))),
    }
}

/// The image to boot: `imageRef`, or the image of a boot-index-0 image BDM.
fn requested_image(req: &Value) -> Option<String> {
    if let Some(i) = str_of(req, "imageRef").filter(|s| !s.is_empty()) {
        return Some(ref_id(i).to_string());
    }
    let bdms = req.get("block_device_mapping_v2")?.as_array()?;
    bdms.iter()
        .find(|b| b.get("source_type") == Some(&json!("image")))
        .and_then(|b| str_of(b, "uuid"))
        .map(String::from)
}

fn count_of(req: &Value, key: &str) -> ApiResult<u64> {
    match req.get(key) {
        None => Ok(1),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_request(format!("Invalid input for field/attribute {key}."))),
        Some(Value::String(s)) => s.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
            bad_request(format!(
                "Invalid input for field/attribute {key}. Value: {s}."
            ))
        }),
        Some(v) => Err(bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {v}."
        ))),
    }
}

/// How many servers the project may still create, given Nova's instances/cores/ram quotas.
fn check_quota(
    app: &AppState,
    st: &Cloud,
    project: &str,
    vcpus: u32,
    ram: u64,
    min: u64,
    max: u64,
) -> ApiResult<u64> {
    let q = &app.cfg.quotas;
    let mine: Vec<&Server> = st
        .servers
        .iter()
        .filter(|s| s.project_id == project)
        .collect();
    let used_cores: u64 = mine
        .iter()
        .filter_map(|s| st.flavors.iter().find(|f| f.id == s.flavor_id))
        .map(|f| f.vcpus as u64)
        .sum();
    let used_ram: u64 = mine
        .iter()
        .filter_map(|s| st.flavors.iter().find(|f| f.id == s.flavor_id))
        .map(|f| f.ram)
        .sum();
    let checks = [
        ("instances", q.instances, mine.len() as u64, 1u64),
        ("cores", q.cores, used_cores, vcpus as u64),
        ("ram", q.ram_mb, used_ram, ram),
    ];
    let mut allowed = max;
    for (name, limit, used, each) in checks {
        if limit < 0 || each == 0 {
            continue;
        }
        let room = (limit as u64).saturating_sub(used) / each;
        if room < min {
            return Err(ApiError::new(
                SVC,
                StatusCode::FORBIDDEN,
                format!(
                    "Quota exceeded for {name}: Requested {}, but already used {used} of {limit} {name}",
                    min * each
                ),
            ));
        }
        allowed = allowed.min(room);
    }
    Ok(allowed)
}

pub async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let req = body.get("server").ok_or_else(|| bad_request("Invalid input for field/attribute server. Value: None. 'server' is a required property"))?;
    let name = str_of(req, "name")
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            bad_request("Invalid input for field/attribute name. 'name' is a required property")
        })?
        .to_string();
    let flavor_ref = str_of(req, "flavorRef")
        .map(ref_id)
        .ok_or_else(|| {
            bad_request(
                "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property",
            )
        })?
        .to_string();
    let min = count_of(req, "min_count")?;
    let max = count_of(req, "max_count")?.max(min);
    let metadata: IndexMap<String, String> = match req.get("metadata") {
        None => IndexMap::new(),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|_| bad_request("Invalid input for field/attribute metadata."))?,
    };
    let tags: Vec<String> = match req.get("tags") {
        Some(t) if mv.at_least(52) => serde_json::from_value(t.clone())
            .map_err(|_| bad_request("Invalid input for field/attribute tags."))?,
        _ => vec![],
    };
    let sg_names: Vec<String> = match req.get("security_groups").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(|g| str_of(g, "name").map(String::from))
            .collect(),
        None => vec!["default".to_string()],
    };
    // nova.availability_zones: a zone no compute host is in is refused up front.
    if let Some(az) = str_of(req, "availability_zone")
        && !app.cfg.compute_zones.iter().any(|z| z == az)
    {
        return Err(bad_request(
            "The requested availability zone is not available",
        ));
    }
    let image = requested_image(req);
    let reservation_id = format!("r-{}", &new_id()[..8]);
    let admin_pass: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();

    let created: Vec<Server> = app.store.mutate(|st| {
        let flavor = st.flavors.iter().find(|f| f.id == flavor_ref).cloned()
            .ok_or_else(|| bad_request(format!("Flavor {flavor_ref} could not be found.")))?;
        let image_id = match &image {
            Some(i) if st.images.iter().any(|x| field(x, "id") == i) => i.clone(),
            Some(_) => return Err(bad_request("Can not find requested image")),
            None => return Err(bad_request("Block Device Mapping is Invalid: You specified more local devices than the limit allows")),
        };
        let key_name = str_of(req, "key_name").map(String::from);
        if let Some(k) = &key_name
            && !st.keypairs.iter().any(|kp| &kp.name == k && kp.user_id == ctx.user_id)
        {
            return Err(bad_request("Invalid key_name provided."));
        }
        neutron::ensure_default_sg(st, &ctx.project_id);
        let mut sgs = Vec::new();
        for n in &sg_names {
            let sg = neutron::find_security_group(st, &ctx.project_id, n)
                .ok_or_else(|| bad_request(format!("Security group {n} not found for project {}.", ctx.project_id)))?;
            sgs.push((field(sg, "id").to_string(), field(sg, "name").to_string()));
        }
        let nics = requested_nics(st, &ctx, req, mv)?;
        let count = check_quota(&app, st, &ctx.project_id, flavor.vcpus, flavor.ram, min, max)?;
        let sg_ids: Vec<String> = sgs.iter().map(|(id, _)| id.clone()).collect();
        let mut out = Vec::new();
        for i in 0..count {
            let id = new_id();
            let now = Utc::now();
            let mut port_ids = Vec::new();
            for nic in &nics {
                let port_id = match nic {
                    NicReq::Net { id: net, fixed_ip } => neutron::create_server_port(st, &ctx.project_id, net, fixed_ip.as_deref(), &id, &sg_ids),
                    NicReq::Port(p) => neutron::bind_port(st, &ctx.project_id, p, &id),
                }
                .map_err(|e| ApiError { service: SVC, ..e })?;
                port_ids.push(port_id);
            }
            let bt = &app.cfg.boot_time;
            let boot_ms = rand::rng().random_range(bt.min_ms..=bt.max_ms);
            let srv = Server {
                id: id.clone(),
                name: if count > 1 { format!("{name}-{}", i + 1) } else { name.clone() },
                project_id: ctx.project_id.clone(),
                user_id: ctx.user_id.clone(),
                image_id: image_id.clone(),
                flavor_id: flavor.id.clone(),
                key_name: key_name.clone(),
                security_groups: sgs.iter().map(|(_, n)| n.clone()).collect(),
                metadata: metadata.clone(),
                tags: tags.clone(),
                description: str_of(req, "description").map(String::from),
                availability_zone: str_of(req, "availability_zone").unwrap_or("nova").to_string(),
                user_data: str_of(req, "user_data").map(String::from),
                config_drive: req.get("config_drive").is_some_and(|v| v == &json!(true) || v == &json!("true")),
                vm_state: "building".into(),
                task_state: Some("scheduling".into()),
                power_state: 0,
                created: now,
                updated: now,
                launched_at: None,
                fault: None,
                port_ids,
                volumes: vec![],
                pending_until: Some(now + Duration::milliseconds(boot_ms as i64)),
                boot_fails: app.cfg.boot_error_rate > 0.0 && rand::rng().random_bool(app.cfg.boot_error_rate),
                reservation_id: reservation_id.clone(),
            };
            st.servers.push(srv.clone());
            out.push(srv);
        }
        Ok(out)
    })?;
    // The new ports are members of their groups now (remote-group rules of other servers).
    crate::firewall::sync(&app).await;
    for srv in &created {
        spawn_transition(app.clone(), srv.id.clone());
    }
    if req.get("return_reservation_id") == Some(&json!(true)) {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"reservation_id": reservation_id})),
        )
            .into_response());
    }
    let first = &created[0];
    let body = json!({"server": {
        "id": first.id,
        "links": links(&app.base_url, &first.project_id, "servers", &first.id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": first.security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "adminPass": admin_pass,
    }});
    let mut resp = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}/compute/v2.1/servers/{}",
        app.base_url, first.id
    )) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}
