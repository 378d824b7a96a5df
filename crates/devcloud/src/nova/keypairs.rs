//! Keypairs (import only: devcloud never generates private keys).

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{Value, json};

use super::{Microversion, SVC, bad_request, not_found, paginate};
use crate::error::{ApiError, ApiResult};
use crate::server::{AppState, Ctx, parse_body};
use crate::state::Keypair;

/// Nova's fingerprint: MD5 of the key blob, as colon-separated hex.
fn fingerprint(public_key: &str) -> Option<String> {
    let blob = public_key.split_whitespace().nth(1)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .ok()?;
    let digest = Md5::digest(&raw);
    Some(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

fn doc(k: &Keypair, mv: Microversion, full: bool) -> Value {
    let mut v = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if mv.at_least(2) {
        v["type"] = json!(k.kind);
    }
    if full {
        v["user_id"] = json!(k.user_id);
        v["deleted"] = json!(false);
        v["created_at"] = json!(k.created_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
        v["updated_at"] = Value::Null;
        v["deleted_at"] = Value::Null;
        v["id"] = json!(1);
    }
    v
}

pub async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let mine: Vec<Keypair> = app.store.read(|s| {
        s.keypairs
            .iter()
            .filter(|k| k.user_id == ctx.user_id)
            .cloned()
            .collect()
    });
    let base = app.base_url.clone();
    let (page, next) = paginate(
        mine,
        |k| k.name.clone(),
        &q,
        |m, l| format!("{base}/compute/v2.1/os-keypairs?limit={l}&marker={m}"),
    )?;
    let list: Vec<Value> = page
        .iter()
        .map(|k| json!({"keypair": doc(k, mv, false)}))
        .collect();
    let mut body = json!({"keypairs": list});
    if let (Some(n), true) = (next, mv.at_least(35)) {
        body["keypairs_links"] = n;
    }
    Ok(axum::Json(body).into_response())
}

pub async fn create(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(SVC, &body)?;
    let req = body.get("keypair").ok_or_else(|| bad_request("Invalid input for field/attribute keypair. Value: None. 'keypair' is a required property"))?;
    let name = req
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() || name.len() > 255 {
        return Err(bad_request(
            "Invalid input for field/attribute name. Value: ''. '' is too short",
        ));
    }
    let public_key = req.get("public_key").and_then(Value::as_str).ok_or_else(|| {
        bad_request("devcloud does not generate keypairs: pass public_key (as required from microversion 2.92).")
    })?;
    let fp = fingerprint(public_key)
        .ok_or_else(|| bad_request("Keypair data is invalid: failed to generate fingerprint"))?;
    let kind = req
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ssh")
        .to_string();
    let kp = app.store.mutate(|s| {
        let mine = s.keypairs.iter().filter(|k| k.user_id == ctx.user_id);
        if mine.clone().any(|k| k.name == name) {
            return Err(ApiError::conflict(
                SVC,
                format!("Key pair '{name}' already exists."),
            ));
        }
        let quota = app.cfg.quotas.key_pairs;
        if quota >= 0 && mine.count() as i64 >= quota {
            return Err(ApiError::new(
                SVC,
                StatusCode::FORBIDDEN,
                "Quota exceeded, too many key pairs.",
            ));
        }
        let kp = Keypair {
            name: name.clone(),
            user_id: ctx.user_id.clone(),
            public_key: public_key.to_string(),
            fingerprint: fp,
            kind,
            created_at: chrono::Utc::now(),
        };
        s.keypairs.push(kp.clone());
        Ok(kp)
    })?;
    let mut v = doc(&kp, mv, false);
    v["user_id"] = json!(kp.user_id);
    let status = if mv.at_least(2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!({"keypair": v}))).into_response())
}

fn missing(name: &str) -> ApiError {
    not_found(format!("Keypair {name} not found for user"))
}

pub async fn show(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(name): Path<String>,
) -> ApiResult {
    let kp = app
        .store
        .read(|s| {
            s.keypairs
                .iter()
                .find(|k| k.user_id == ctx.user_id && k.name == name)
                .cloned()
        })
        .ok_or_else(|| missing(&name))?;
    Ok(axum::Json(json!({"keypair": doc(&kp, mv, true)})).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Extension(mv): Extension<Microversion>,
    Path(name): Path<String>,
) -> ApiResult {
    app.store.mutate(|s| {
        let pos = s
            .keypairs
            .iter()
            .position(|k| k.user_id == ctx.user_id && k.name == name);
        pos.map(|p| s.keypairs.remove(p))
            .ok_or_else(|| missing(&name))
    })?;
    let status = if mv.at_least(2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    };
    Ok(status.into_response())
}
