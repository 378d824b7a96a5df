//! Security groups (with the `default` group Neutron creates per project) and their rules.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::crud::{self, Kind, Q};
use super::{SVC, apply_updates, bad_request, check_quota, filter_list, project_fields, std_attrs};
use crate::error::ApiError;
use crate::server::{AppState, Ctx, parse_body};
use crate::state::{Doc, State as Cloud, s as field};

pub static GROUPS: Kind = Kind {
    singular: "security_group",
    plural: "security_groups",
    not_found_type: "SecurityGroupNotFound",
    not_found_msg: |id| format!("Security group {id} does not exist"),
    docs: |st| &st.security_groups,
    docs_mut: |st| &mut st.security_groups,
};

pub static RULES: Kind = Kind {
    singular: "security_group_rule",
    plural: "security_group_rules",
    not_found_type: "SecurityGroupRuleNotFound",
    not_found_msg: |id| format!("Security group rule {id} does not exist"),
    docs: |st| &st.security_group_rules,
    docs_mut: |st| &mut st.security_group_rules,
};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/security-groups", get(list).post(create))
        .route(
            "/security-groups/{id}",
            get(show).put(update).delete(delete),
        )
        .route(
            "/security-group-rules",
            get(|s, c, q| crud::list(&RULES, s, c, q)).post(create_rules),
        )
        .route(
            "/security-group-rules/{id}",
            get(|s, c, i, q| crud::show(&RULES, s, c, i, q)).delete(delete_rule),
        )
}

/// The group document with its rules embedded, as Neutron shows it.
fn view(st: &Cloud, sg: &Doc) -> Doc {
    let id = field(sg, "id");
    let rules: Vec<Value> = st
        .security_group_rules
        .iter()
        .filter(|r| field(r, "security_group_id") == id)
        .cloned()
        .map(Value::Object)
        .collect();
    let mut d = sg.clone();
    d.insert("security_group_rules".into(), json!(rules));
    d
}

fn rule(project: &str, sg_id: &str, default_sg: bool, attrs: &[(&str, Value)]) -> Doc {
    let mut d = std_attrs(project);
    for (k, v) in [
        ("security_group_id", json!(sg_id)),
        ("direction", json!("ingress")),
        ("ethertype", json!("IPv4")),
        ("protocol", Value::Null),
        ("port_range_min", Value::Null),
        ("port_range_max", Value::Null),
        ("remote_ip_prefix", Value::Null),
        ("remote_group_id", Value::Null),
        ("remote_address_group_id", Value::Null),
        ("normalized_cidr", Value::Null),
        ("belongs_to_default_sg", json!(default_sg)),
    ] {
        d.insert(k.into(), v);
    }
    for (k, v) in attrs {
        d.insert((*k).into(), v.clone());
    }
    d
}

/// Creates a group with the rules Neutron gives every new group: egress to anywhere
/// (IPv4 and IPv6), plus, for `default`, ingress from members of the group itself.
fn new_group(st: &mut Cloud, project: &str, name: &str, description: &str) -> Doc {
    let mut sg = std_attrs(project);
    sg.insert("name".into(), json!(name));
    sg.insert("description".into(), json!(description));
    sg.insert("stateful".into(), json!(true));
    sg.insert("shared".into(), json!(false));
    let id = field(&sg, "id").to_string();
    let is_default = name == "default";
    for eth in ["IPv4", "IPv6"] {
        st.security_group_rules.push(rule(
            project,
            &id,
            is_default,
            &[("direction", json!("egress")), ("ethertype", json!(eth))],
        ));
        if is_default {
            st.security_group_rules.push(rule(
                project,
                &id,
                true,
                &[("ethertype", json!(eth)), ("remote_group_id", json!(id))],
            ));
        }
    }
    st.security_groups.push(sg.clone());
    sg
}

/// Neutron creates a project's `default` group the first time the project touches groups.
pub fn ensure_default_sg(st: &mut Cloud, project: &str) -> String {
    if let Some(sg) = st
        .security_groups
        .iter()
        .find(|g| field(g, "project_id") == project && field(g, "name") == "default")
    {
        return field(sg, "id").to_string();
    }
    let sg = new_group(st, project, "default", "Default security group");
    field(&sg, "id").to_string()
}

/// A project's group by id, or by name (Nova accepts either in `security_groups`).
pub fn find_security_group<'a>(st: &'a Cloud, project: &str, name_or_id: &str) -> Option<&'a Doc> {
    let mine = || {
        st.security_groups
            .iter()
            .filter(|g| field(g, "project_id") == project)
    };
    mine()
        .find(|g| field(g, "id") == name_or_id)
        .or_else(|| mine().find(|g| field(g, "name") == name_or_id))
}

async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Q,
) -> Response {
    let docs = app.store.mutate(|st| {
        ensure_default_sg(st, &ctx.project_id);
        Ok::<_, ApiError>(
            st.security_groups
                .iter()
                .filter(|g| field(g, "project_id") == ctx.project_id)
                .map(|g| view(st, g))
                .collect::<Vec<_>>(),
        )
    });
    axum::Json(json!({"security_groups": filter_list(docs.unwrap_or_default(), &q)}))
        .into_response()
}

async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let d = app
        .store
        .read(|st| GROUPS.find(st, &ctx, &id).map(|g| view(st, &g)))?;
    let fields: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .collect();
    Ok(axum::Json(json!({"security_group": project_fields(d, &fields)})).into_response())
}

async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = super::body_object(&body, "security_group")?;
    let name = req
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let desc = req
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    app.store.mutate(|st| {
        ensure_default_sg(st, &ctx.project_id);
        if name.eq_ignore_ascii_case("default") {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        check_quota(
            &st.security_groups,
            &ctx.project_id,
            app.cfg.quotas.security_groups,
            "security_group",
        )?;
        let mut sg = new_group(st, &ctx.project_id, &name, &desc);
        if let Some(stateful) = req.get("stateful") {
            sg.insert("stateful".into(), stateful.clone());
            if let Some(g) = st
                .security_groups
                .iter_mut()
                .find(|g| field(g, "id") == field(&sg, "id"))
            {
                g.insert("stateful".into(), stateful.clone());
            }
        }
        Ok(GROUPS.created(view(st, &sg)))
    })
}

async fn update(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = super::body_object(&body, "security_group")?;
    app.store.mutate(|st| {
        let d = GROUPS.find_mut(st, &ctx, &id)?;
        apply_updates(d, &req, &["name", "description", "stateful", "tags"])?;
        let d = d.clone();
        Ok(GROUPS.one(view(st, &d)))
    })
}

async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let out = crud::delete(&GROUPS, &app, &ctx, &id, |st, sg| {
        if field(sg, "name") == "default" {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        let in_use = st.ports.iter().any(|p| {
            p.get("security_groups")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|g| g.as_str() == Some(id.as_str())))
        });
        if in_use {
            return Err(ApiError::neutron(
                StatusCode::CONFLICT,
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        st.security_group_rules
            .retain(|r| field(r, "security_group_id") != id && field(r, "remote_group_id") != id);
        Ok(())
    });
    crate::firewall::synced(&app, out).await
}

/// Validates one rule request and builds its document.
fn build_rule(st: &Cloud, ctx: &Ctx, req: &Value) -> Result<Doc, ApiError> {
    let get = |k: &str| req.get(k).filter(|v| !v.is_null());
    let sg_id = get("security_group_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("Invalid input for security_group_id."))?;
    let sg = GROUPS.find(st, ctx, sg_id)?;
    let direction = get("direction").and_then(Value::as_str).unwrap_or("");
    if !["ingress", "egress"].contains(&direction) {
        return Err(bad_request(format!(
            "Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress']."
        )));
    }
    let ethertype = get("ethertype").and_then(Value::as_str).unwrap_or("IPv4");
    let protocol = get("protocol").map(|p| match p {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    });
    let port = |k: &str| -> Result<Option<u64>, ApiError> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|p| *p <= 65535)
                .map(Some)
                .ok_or_else(|| bad_request(format!("Invalid value for port {v}."))),
        }
    };
    let (pmin, pmax) = (port("port_range_min")?, port("port_range_max")?);
    if (pmin.is_some() || pmax.is_some()) && protocol.is_none() {
        return Err(ApiError::neutron(
            StatusCode::BAD_REQUEST,
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ));
    }
    if let (Some(a), Some(b), Some("tcp" | "udp" | "6" | "17")) = (pmin, pmax, protocol.as_deref())
        && a > b
    {
        return Err(ApiError::neutron(
            StatusCode::BAD_REQUEST,
            "SecurityGroupInvalidPortRange",
            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
        ));
    }
    let prefix = get("remote_ip_prefix").and_then(Value::as_str);
    let remote_group = get("remote_group_id").and_then(Value::as_str);
    if prefix.is_some() && remote_group.is_some() {
        return Err(ApiError::neutron(
            StatusCode::BAD_REQUEST,
            "SecurityGroupMultipleRemoteEntites",
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
        ));
    }
    let normalized = match prefix {
        Some(p) => Some(p.parse::<ipnet::IpNet>().map_err(|_| bad_request(format!("Invalid input for remote_ip_prefix. Reason: '{p}' is not a valid IP subnet.")))?.trunc().to_string()),
        None => None,
    };
    let d = rule(
        &ctx.project_id,
        sg_id,
        field(&sg, "name") == "default",
        &[
            ("direction", json!(direction)),
            ("ethertype", json!(ethertype)),
            ("protocol", json!(protocol)),
            ("port_range_min", json!(pmin)),
            ("port_range_max", json!(pmax)),
            ("remote_ip_prefix", json!(prefix)),
            ("remote_group_id", json!(remote_group)),
            ("normalized_cidr", json!(normalized)),
            (
                "description",
                json!(get("description").and_then(Value::as_str).unwrap_or("")),
            ),
        ],
    );
    const SAME: [&str; 8] = [
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "normalized_cidr",
        "remote_group_id",
    ];
    if let Some(dup) = st
        .security_group_rules
        .iter()
        .find(|r| SAME.iter().all(|k| r.get(*k) == d.get(*k)))
    {
        return Err(ApiError::neutron(
            StatusCode::CONFLICT,
            "SecurityGroupRuleExists",
            format!(
                "Security group rule already exists. Rule id is {}.",
                field(dup, "id")
            ),
        ));
    }
    Ok(d)
}

async fn create_rules(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_body(SVC, &body)?;
    let (bulk, reqs): (bool, Vec<Value>) = match (
        body.get("security_group_rule"),
        body.get("security_group_rules"),
    ) {
        (Some(r), _) => (false, vec![r.clone()]),
        (None, Some(Value::Array(rs))) => (true, rs.clone()),
        _ => {
            return Err(bad_request(
                "Resource body required: 'security_group_rule' is missing.",
            ));
        }
    };
    let out = app.store.mutate(|st| {
        let mut made = Vec::new();
        for req in &reqs {
            check_quota(
                &st.security_group_rules,
                &ctx.project_id,
                app.cfg.quotas.security_group_rules,
                "security_group_rule",
            )?;
            let d = build_rule(st, &ctx, req)?;
            st.security_group_rules.push(d.clone());
            made.push(Value::Object(d));
        }
        Ok(if bulk {
            (
                StatusCode::CREATED,
                axum::Json(json!({"security_group_rules": made})),
            )
                .into_response()
        } else {
            (
                StatusCode::CREATED,
                axum::Json(json!({"security_group_rule": made.pop()})),
            )
                .into_response()
        })
    });
    crate::firewall::synced(&app, out).await
}

async fn delete_rule(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let out = crud::delete(&RULES, &app, &ctx, &id, |_, _| Ok(()));
    crate::firewall::synced(&app, out).await
}
