//! The role variables a cluster was launched with, recorded on its master server.
//!
//! What software a cluster runs is decided by role variables (`-e spark_source=...`,
//! `hdfs_enabled: false` in the config file's `vars:`). `start`, `add-slaves` and `launch
//! --resume` reconfigure the nodes, so they must use the same variables, or a cluster
//! launched without HDFS would come back trying to install it. There is no local state file
//! (a cluster is what the cloud says it is), so the variables live in the master's Nova
//! metadata, as JSON cut into items `spark_openstack_vars_0`, `_1`, ... because Nova limits
//! each value to 255 characters (and a server to 128 items, which leaves room for about
//! 30 KB). The Nova inventory hands them to every host as `all` group variables: above role
//! defaults, below anything given with `-e` now. A later `-e` is merged in and recorded.
//!
//! Nova metadata is readable by everyone in the project and from inside the servers, so
//! secrets do not belong in role variables.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::api::{ApiResult, ClusterApi, Server};
use super::error::ClusterError;

/// Prefix of the metadata items holding the recorded variables.
pub const META_VARS_PREFIX: &str = "spark_openstack_vars_";
/// Nova's limit on one metadata value (`metadata_items` values are `String(255)`).
pub const META_VALUE_MAX: usize = 255;
/// Items left for the recorded variables, of Nova's default 128 per server.
const MAX_ITEMS: usize = 100;

/// Cuts the JSON of `vars` into metadata items of at most [`META_VALUE_MAX`] characters.
pub fn encode(vars: &Map<String, Value>) -> Result<BTreeMap<String, String>, ClusterError> {
    let text = Value::Object(vars.clone()).to_string();
    let chars: Vec<char> = text.chars().collect();
    let chunks: Vec<String> = chars
        .chunks(META_VALUE_MAX)
        .map(|c| c.iter().collect())
        .collect();
    if chunks.len() > MAX_ITEMS {
        return Err(ClusterError::Failed(format!(
            "the role variables are {} characters as JSON; Nova metadata holds at most {} \
             (put large values in files that the roles read instead)",
            chars.len(),
            MAX_ITEMS * META_VALUE_MAX
        )));
    }
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| (format!("{META_VARS_PREFIX}{i}"), c))
        .collect())
}

/// The variables recorded in `metadata`; empty when none are. Items are read in index
/// order up to the first missing one.
pub fn decode(metadata: &BTreeMap<String, String>) -> Result<Map<String, Value>, ClusterError> {
    let mut text = String::new();
    for i in 0.. {
        match metadata.get(&format!("{META_VARS_PREFIX}{i}")) {
            Some(chunk) => text.push_str(chunk),
            None => break,
        }
    }
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ClusterError::Invalid(format!(
            "the role variables recorded in the master's metadata ({META_VARS_PREFIX}*) are \
             not a JSON object; fix or delete them with `openstack server unset --property`"
        ))),
    }
}

/// The variables recorded on `master`, for the inventory. A damaged record is reported and
/// treated as none, so the cluster can still be described, reached and destroyed.
pub fn of_master(master: &Server) -> Map<String, Value> {
    decode(&master.metadata).unwrap_or_else(|e| {
        tracing::warn!("{}: {e}", master.name);
        Map::new()
    })
}

/// Merges `given` over what `master` has recorded and writes the result back when it
/// differs. Returns whether anything was written.
pub async fn record(
    api: &dyn ClusterApi,
    master: &Server,
    given: &Map<String, Value>,
) -> Result<bool, ClusterError> {
    let recorded = decode(&master.metadata)?;
    let mut merged = recorded.clone();
    merged.extend(given.clone());
    if merged == recorded {
        return Ok(false);
    }
    let items = encode(&merged)?;
    write(api, master, &items).await?;
    Ok(true)
}

async fn write(
    api: &dyn ClusterApi,
    master: &Server,
    items: &BTreeMap<String, String>,
) -> ApiResult<()> {
    api.merge_server_metadata(&master.id, items).await?;
    // Items of a longer earlier record would be read as part of this one.
    for key in master.metadata.keys() {
        if key.starts_with(META_VARS_PREFIX) && !items.contains_key(key) {
            api.delete_server_metadata_item(&master.id, key).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_values_round_trip_through_255_character_items() {
        let vars = json!({
            "spark_source": format!("/var/cache/{}/pyspark-4.3.0.tar.gz", "d".repeat(300)),
            "hdfs_enabled": false,
            "note": "ünïcödé ".repeat(40),
        });
        let vars = vars.as_object().unwrap().clone();
        let items = encode(&vars).unwrap();
        assert!(items.len() > 2, "{items:?}");
        assert!(items.values().all(|v| v.chars().count() <= META_VALUE_MAX));
        assert_eq!(decode(&items).unwrap(), vars);
    }

    #[test]
    fn nothing_recorded_is_empty_and_garbage_is_named() {
        assert!(decode(&BTreeMap::new()).unwrap().is_empty());
        let bad = BTreeMap::from([(format!("{META_VARS_PREFIX}0"), "[1,".to_string())]);
        let e = decode(&bad).unwrap_err().to_string();
        assert!(e.contains("spark_openstack_vars_*"), "{e}");
    }

    #[test]
    fn too_many_variables_are_refused_with_the_limit() {
        let mut vars = Map::new();
        vars.insert("big".into(), json!("x".repeat(MAX_ITEMS * META_VALUE_MAX)));
        let e = encode(&vars).unwrap_err().to_string();
        assert!(e.contains("Nova metadata holds at most 25500"), "{e}");
    }
}
