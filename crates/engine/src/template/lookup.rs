//! `lookup()` / `query()` (`q()`) and the `omit` placeholder.
//!
//! Lookups run on the controller, as in Ansible. Implemented plugins: `env`, `file`,
//! `pipe`, `vars` (the `ansible.builtin.` prefix is accepted). Relative `file` paths are
//! searched like Ansible's: `{role_path}/files`, `{role_path}`, `{playbook_dir}/files`,
//! `{playbook_dir}`, then the working directory (`role_path` / `playbook_dir` come from
//! the template variables when the executor sets them).

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, State, Value};

use super::filters::invalid;

/// The value of `omit`. A module argument equal to it is dropped before the module runs
/// (see [`strip_omit`]). Ansible's token is random per run; a fixed, unlikely string keeps
/// rendering deterministic and lets the executor compare without access to the Templar.
pub const OMIT: &str = "__omit_place_holder__8c4a1e2f6b9d3057a1c8e4f2b6d9037e5a1c";

pub fn register(env: &mut Environment<'static>) {
    env.add_global("omit", Value::from(OMIT));
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
}

/// Removes every mapping entry and list item equal to [`OMIT`], recursively.
pub fn strip_omit(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    let is_omit = |x: &J| x.as_str() == Some(OMIT);
    match v {
        J::Object(map) => J::Object(
            map.into_iter()
                .filter(|(_, v)| !is_omit(v))
                .map(|(k, v)| (k, strip_omit(v)))
                .collect(),
        ),
        J::Array(items) => J::Array(
            items
                .into_iter()
                .filter(|v| !is_omit(v))
                .map(strip_omit)
                .collect(),
        ),
        other => other,
    }
}

/// `lookup('env', 'A', 'B')`: one value for one term, else the values joined with commas
/// (Ansible's `wantlist=False`); `wantlist=True` returns the list.
fn lookup(
    state: &State,
    plugin: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let results = run(state, &plugin, &terms, &kwargs)?;
    kwargs.assert_all_used()?;
    if wantlist {
        return Ok(Value::from(results));
    }
    if results.len() == 1 {
        return Ok(results.into_iter().next().unwrap_or_default());
    }
    let texts: Vec<String> = results.iter().map(|v| v.to_string()).collect();
    Ok(Value::from(texts.join(",")))
}

/// `query('file', 'a', 'b')` always returns a list.
fn query(
    state: &State,
    plugin: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let results = run(state, &plugin, &terms, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
}

fn run(state: &State, plugin: &str, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let plugin = plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin);
    let errors = kwargs
        .get::<Option<String>>("errors")?
        .unwrap_or_else(|| "strict".into());
    let terms: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
    let mut out = Vec::with_capacity(terms.len());
    for term in &terms {
        let result = match plugin {
            "env" => {
                let default = kwargs.get::<Option<String>>("default")?;
                Ok(Value::from(
                    std::env::var(term)
                        .ok()
                        .or(default.clone())
                        .unwrap_or_default(),
                ))
            }
            "file" => {
                let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
                read_file(state, term, rstrip)
            }
            "pipe" => pipe(term),
            "vars" => {
                let default = kwargs.get::<Option<Value>>("default")?;
                let v = state.lookup(term).filter(|v| !v.is_undefined());
                match (v, default) {
                    (Some(v), _) => Ok(v),
                    (None, Some(d)) => Ok(d),
                    (None, None) => Err(invalid(format!(
                        "lookup('vars'): No variable found with this name: {term}"
                    ))),
                }
            }
            other => {
                return Err(invalid(format!(
                    "lookup plugin '{other}' is not available (have: env, file, pipe, vars)"
                )));
            }
        };
        match (result, errors.as_str()) {
            (Ok(v), _) => out.push(v),
            (Err(_), "ignore") => {}
            (Err(e), "warn") => tracing::warn!("lookup('{plugin}', '{term}'): {e}"),
            (Err(e), _) => return Err(e),
        }
    }
    Ok(out)
}

fn var_path(state: &State, name: &str) -> Option<PathBuf> {
    state
        .lookup(name)
        .and_then(|v| v.as_str().map(PathBuf::from))
}

fn read_file(state: &State, term: &str, rstrip: bool) -> Result<Value, Error> {
    let path = Path::new(term);
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        let mut c = Vec::new();
        if let Some(role) = var_path(state, "role_path") {
            c.push(role.join("files").join(path));
            c.push(role.join(path));
        }
        if let Some(pb) = var_path(state, "playbook_dir") {
            c.push(pb.join("files").join(path));
            c.push(pb.join(path));
        }
        c.push(path.to_path_buf());
        c
    };
    let Some(found) = candidates.iter().find(|p| p.is_file()) else {
        return Err(invalid(format!("could not locate file in lookup: {term}")));
    };
    let text = std::fs::read_to_string(found).map_err(|e| {
        invalid(format!(
            "lookup('file'): cannot read {}: {e}",
            found.display()
        ))
    })?;
    Ok(Value::from(if rstrip {
        text.trim_end().to_string()
    } else {
        text
    }))
}

/// `lookup('pipe', cmd)`: the command's stdout (trailing whitespace removed); a non-zero
/// exit status is an error.
fn pipe(cmd: &str) -> Result<Value, Error> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| invalid(format!("lookup('pipe'): cannot run /bin/sh: {e}")))?;
    if !out.status.success() {
        return Err(invalid(format!(
            "lookup('pipe'): command {cmd:?} exited with {}",
            out.status.code().unwrap_or(-1)
        )));
    }
    Ok(Value::from(
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
    ))
}
