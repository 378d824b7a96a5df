//! `lookup()` / `query()` (`q()`) and the `omit` placeholder.
//!
//! Lookups run on the controller, as in Ansible; the plugins themselves are in
//! [`plugins`] (the `ansible.builtin.` prefix is accepted). Relative file names are
//! searched along the task's `ansible_search_path` as Ansible does.

pub mod plugins;

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, State, Value};
use serde_json::Value as J;

use super::filters::{from_json, invalid, json_bool, to_json};

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

/// `lookup('env', 'A', 'B')`: as Ansible's `_invoke_lookup` with `wantlist=False`: one
/// result is the value itself, several strings are joined with commas, anything else
/// (no result, non-strings) is the list; `wantlist=True` always returns the list.
fn lookup(
    state: &State,
    plugin: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    call(state, &plugin, &terms, &kwargs, false)
}

/// `query('file', 'a', 'b')` (`q()`): `lookup` with `wantlist=True`, as in Ansible.
fn query(
    state: &State,
    plugin: String,
    terms: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    call(state, &plugin, &terms, &kwargs, true)
}

fn call(
    state: &State,
    plugin: &str,
    terms: &[Value],
    kwargs: &Kwargs,
    query: bool,
) -> Result<Value, Error> {
    let (mut opts, errors) = options(kwargs)?;
    let wantlist = opts.remove("wantlist").is_some_and(|v| json_bool(&v)) || query;
    let Some(results) = invoke(state, plugin, terms, &opts, &errors)? else {
        return Ok(if wantlist {
            Value::from(Vec::<Value>::new())
        } else {
            Value::from(())
        });
    };
    if wantlist || results.is_empty() {
        return Ok(from_json(&J::Array(results)));
    }
    if results.len() == 1 {
        return Ok(from_json(&results[0]));
    }
    match results
        .iter()
        .map(|r| r.as_str())
        .collect::<Option<Vec<_>>>()
    {
        Some(texts) => Ok(Value::from(texts.join(","))),
        None => Ok(from_json(&J::Array(results))),
    }
}

/// The keyword arguments as options, and `errors` (`strict`, `warn` or `ignore`).
fn options(kwargs: &Kwargs) -> Result<(serde_json::Map<String, J>, String), Error> {
    let mut opts = serde_json::Map::new();
    for k in kwargs.args() {
        opts.insert(k.to_string(), to_json(&kwargs.get::<Value>(k)?));
    }
    let errors = match opts.remove("errors") {
        Some(J::String(s)) => s,
        _ => "strict".into(),
    };
    Ok((opts, errors))
}

/// Runs a lookup from a template. A failing lookup is an error naming the plugin, unless
/// `errors` is `warn` or `ignore`: then there is no result (`Ok(None)`), as in Ansible.
fn invoke(
    state: &State,
    plugin: &str,
    terms: &[Value],
    opts: &serde_json::Map<String, J>,
    errors: &str,
) -> Result<Option<Vec<J>>, Error> {
    let name = plugin.strip_prefix("ansible.builtin.").unwrap_or(plugin);
    let var = |n: &str| {
        state
            .lookup(n)
            .filter(|v| !v.is_undefined())
            .map(|v| to_json(&v))
    };
    let env = plugins::LookupEnv {
        var: &var,
        with_action: None,
    };
    let terms: Vec<J> = terms.iter().map(to_json).collect();
    let result = if name == "template" {
        template(state, &env, &terms, opts)
    } else {
        match plugins::run(name, terms, opts, &env) {
            Some(r) => r,
            None => {
                return Err(invalid(format!(
                    "lookup plugin '{name}' is not available (have: {}, template)",
                    plugins::PLUGINS.join(", ")
                )));
            }
        }
    };
    match (result, errors) {
        (Ok(v), _) => Ok(Some(v)),
        (Err(e), "warn") => {
            tracing::warn!("An error occurred while running the lookup plugin '{name}': {e}");
            Ok(None)
        }
        (Err(_), "ignore") => Ok(None),
        (Err(e), _) => Err(invalid(format!("The lookup plugin '{name}' failed: {e}"))),
    }
}

/// `template`: each file, found in `templates/` along the search path, rendered as the
/// `template` module renders (same undefined-variable checks, `path:line` in errors) with
/// the task's variables, the template variables (`template_path`, ...) and the
/// `template_vars` option on top. It renders inside the calling render, so it lives here
/// with the environment rather than among the context-free [`plugins`].
fn template(
    state: &State,
    env: &plugins::LookupEnv,
    terms: &[J],
    opts: &serde_json::Map<String, J>,
) -> Result<Vec<J>, String> {
    let mut extra = serde_json::Map::new();
    for (k, v) in opts {
        let default = match k.as_str() {
            "template_vars" => {
                match v {
                    J::Object(m) => extra.extend(m.clone()),
                    J::Null => {}
                    other => {
                        return Err(format!(
                            "template_vars must be a mapping, got {}",
                            super::pyjson::py_str(other)
                        ));
                    }
                }
                continue;
            }
            // Data conversion and native types concern Ansible's own templating; here
            // the result is the rendered text either way.
            "convert_data" | "jinja2_native" => continue,
            "variable_start_string" => "{{",
            "variable_end_string" => "}}",
            "comment_start_string" => "{#",
            "comment_end_string" => "#}",
            "trim_blocks" => {
                if json_bool(v) {
                    continue;
                }
                return Err("trim_blocks=false is not supported (templates render with Ansible's default, true)".into());
            }
            other => {
                return Err(format!(
                    "unknown option '{other}' (have: template_vars, convert_data, jinja2_native, variable_start_string, variable_end_string, comment_start_string, comment_end_string, trim_blocks)"
                ));
            }
        };
        if v.as_str() != Some(default) {
            return Err(format!(
                "{k}={} is not supported: templates use Jinja's default delimiters ('{default}')",
                super::pyjson::py_repr(v)
            ));
        }
    }
    // The task's variables as the caller's render sees them: its lazy `vars` (which holds
    // `hostvars` and renders variables on demand), else each variable the render knows.
    let base = state
        .lookup("vars")
        .filter(|v| !v.is_undefined())
        .unwrap_or_else(|| {
            let known: std::collections::BTreeMap<String, Value> = state
                .known_variables()
                .into_iter()
                .filter_map(|n| state.lookup(&n).map(|v| (n.into_owned(), v)))
                .collect();
            Value::from(known)
        });
    let managed = state
        .lookup("ansible_managed")
        .is_none_or(|v| v.is_undefined());
    terms
        .iter()
        .map(|t| {
            let term = super::pyjson::py_str(t);
            let path = env.find_file(Some("templates"), &term).ok_or_else(|| {
                format!("the template file {term} could not be found for the lookup")
            })?;
            let mut added = super::file_vars(&term, &path, None, managed);
            added.extend(extra.clone());
            let ctx = super::context_with(&base, &added);
            super::render_file(state.env(), &path, &ctx)
                .map(J::String)
                .map_err(|e| e.msg)
        })
        .collect()
}
