//! Variables: which layers exist, their precedence, and the template context.
//!
//! Implemented subset of Ansible's 22 levels, lowest first (later wins):
//! 1. role defaults: of every role the play loads, then of the task's own role (Ansible's
//!    default `private_role_vars = False`, so a role can use another role's defaults)
//! 2. inventory variables, already merged `all` < parent group < child group < host
//!    (including `group_vars/`/`host_vars/` files) by the inventory layer
//! 3. host facts (gathered or `setup`), also under `ansible_facts`
//! 4. play `vars`
//! 5. play `vars_files`
//! 6. role `vars/`: of every role the play loads, then of the task's own role
//! 7. block vars (outer block first), then include params
//! 8. task `vars`
//! 9. `include_vars`
//! 10. `set_fact` and registered variables
//! 11. role params (`roles: - {role: x, param: 1}`, `include_role` vars)
//! 12. extra vars (`-e`), which always win
//!
//! plus the magic variables (`inventory_hostname`, `groups`, `hostvars`, ...), which no
//! layer can override except extra vars.
//!
//! `hostvars` is lazy: a minijinja object that builds another host's variables only when
//! a template reads them, so 256 hosts do not each carry copies of all the others.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use minijinja::Value as JValue;
use minijinja::value::{Enumerator, Object};
use serde_json::{Map, Value};

use super::hosts::Host;
use crate::template::Templar;

pub type Vars = Map<String, Value>;

/// What a host learned during the run: facts, set_fact/register, include_vars.
#[derive(Clone, Debug, Default)]
pub struct HostDyn {
    pub facts: Arc<Vars>,
    pub set_facts: Arc<Vars>,
    pub include_vars: Arc<Vars>,
}

/// Run-wide store of every host's learned variables; readers take a short lock.
#[derive(Default)]
pub struct HostStore {
    map: RwLock<HashMap<String, HostDyn>>,
}

impl HostStore {
    pub fn get(&self, host: &str) -> HostDyn {
        self.map
            .read()
            .map(|m| m.get(host).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn update(&self, host: &str, f: impl FnOnce(&mut HostDyn)) {
        if let Ok(mut m) = self.map.write() {
            f(m.entry(host.to_string()).or_default());
        }
    }

    pub fn set_fact(&self, host: &str, key: &str, value: Value) {
        self.update(host, |d| {
            Arc::make_mut(&mut d.set_facts).insert(key.to_string(), value);
        });
    }

    pub fn has_facts(&self, host: &str) -> bool {
        !self.get(host).facts.is_empty()
    }
}

/// Play-wide values shared by every host's context.
pub struct PlayScope {
    pub templar: Arc<Templar>,
    /// `defaults/` of every role the play loads, merged in load order.
    pub roles_defaults: Arc<Vars>,
    /// `vars/` of every role the play loads, merged in load order.
    pub roles_vars: Arc<Vars>,
    pub play_vars: Arc<Vars>,
    pub vars_files: Arc<Vars>,
    pub extra: Arc<Vars>,
    /// Magic values that do not depend on the host (`groups`, `play_hosts`, ...).
    pub magic: Vars,
    pub hosts: HashMap<String, Arc<Host>>,
    pub store: Arc<HostStore>,
}

/// The layers for one task on one host, from the task's scope.
pub struct TaskLayers<'a> {
    pub role_defaults: Option<&'a Vars>,
    pub role_vars: Option<&'a Vars>,
    pub role_params: Option<&'a Vars>,
    pub scoped: &'a [Arc<Vars>],
    pub task_vars: &'a Vars,
    /// `role_path`, `role_name`, loop variables and other per-task magic.
    pub extra_magic: Vars,
}

impl PlayScope {
    /// Variables of `host` outside any task (what `hostvars[host]` shows).
    pub fn host_vars(&self, host: &Host) -> Vars {
        let empty = Vars::new();
        self.task_vars(
            host,
            &TaskLayers {
                role_defaults: None,
                role_vars: None,
                role_params: None,
                scoped: &[],
                task_vars: &empty,
                extra_magic: Vars::new(),
            },
        )
    }

    /// Every layer merged for one host and task, magic variables included.
    pub fn task_vars(&self, host: &Host, t: &TaskLayers) -> Vars {
        let d = self.store.get(&host.name);
        let mut v = Vars::new();
        let mut put = |m: &Vars| {
            for (k, val) in m {
                v.insert(k.clone(), val.clone());
            }
        };
        put(&self.roles_defaults);
        if let Some(m) = t.role_defaults {
            put(m);
        }
        put(&host.vars);
        put(&d.facts);
        put(&self.play_vars);
        put(&self.vars_files);
        put(&self.roles_vars);
        if let Some(m) = t.role_vars {
            put(m);
        }
        for m in t.scoped {
            put(m);
        }
        put(t.task_vars);
        put(&d.include_vars);
        put(&d.set_facts);
        if let Some(m) = t.role_params {
            put(m);
        }
        put(&self.magic);
        put(&t.extra_magic);
        put(&self.extra);
        if !d.facts.is_empty() {
            // Ansible's namespace_facts: `ansible_facts.hostname` is `ansible_hostname`.
            let facts = d
                .facts
                .iter()
                .map(|(k, val)| {
                    let short = k.strip_prefix("ansible_").filter(|_| k != "ansible_local");
                    (short.unwrap_or(k).to_string(), val.clone())
                })
                .collect();
            v.insert("ansible_facts".into(), Value::Object(facts));
        }
        let short = host
            .name
            .split('.')
            .next()
            .unwrap_or(&host.name)
            .to_string();
        v.insert(
            "inventory_hostname".into(),
            Value::String(host.name.clone()),
        );
        v.insert("inventory_hostname_short".into(), Value::String(short));
        v.insert(
            "group_names".into(),
            Value::Array(
                host.groups
                    .iter()
                    .filter(|g| *g != "ungrouped")
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        v
    }
}

/// The template context: a host's variables plus the lazy `hostvars` and `vars`.
///
/// Variables whose values are templates (`out: "{{ dir }}/x"`) are rendered when a
/// template reads them, against this same context, as Ansible's lazy templating does.
/// A depth limit stops self-referencing definitions.
struct Ctx {
    vars: Arc<Vars>,
    scope: Arc<PlayScope>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("vars")
    }
}

thread_local! {
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True when a value holds template syntax anywhere inside.
pub fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => Templar::is_template(s),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

impl Ctx {
    fn resolve(self: &Arc<Self>, v: &Value) -> JValue {
        if !has_template(v) {
            return JValue::from(minijinja::value::Serde(v));
        }
        let depth = DEPTH.with(|d| d.get());
        if depth > 20 {
            return JValue::from(minijinja::value::Serde(v));
        }
        DEPTH.with(|d| d.set(depth + 1));
        let me = JValue::from_dyn_object(self.clone());
        let out = self.scope.templar.render_value(v, &me);
        DEPTH.with(|d| d.set(depth));
        match out {
            Ok(r) => JValue::from(minijinja::value::Serde(&r)),
            // An undefined inside the definition makes the variable undefined where used.
            Err(_) => JValue::UNDEFINED,
        }
    }
}

impl Object for Ctx {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let k = key.as_str()?;
        match k {
            "hostvars" => Some(JValue::from_object(HostVars {
                scope: self.scope.clone(),
            })),
            "vars" => Some(JValue::from_dyn_object(self.clone())),
            _ => self
                .vars
                .get(k)
                .map(|v| self.resolve(v))
                .filter(|v| !v.is_undefined()),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.vars.keys().map(|k| JValue::from(k.as_str())).collect())
    }
}

/// `hostvars`: looks another host up only when asked.
struct HostVars {
    scope: Arc<PlayScope>,
}

impl std::fmt::Debug for HostVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hostvars")
    }
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let host = self.scope.hosts.get(key.as_str()?)?;
        Some(JValue::from_object(Ctx {
            vars: Arc::new(self.scope.host_vars(host)),
            scope: self.scope.clone(),
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names: Vec<JValue> = self
            .scope
            .hosts
            .keys()
            .map(|k| JValue::from(k.as_str()))
            .collect();
        names.sort();
        Enumerator::Values(names)
    }
}

/// Builds the template context for `vars`.
pub fn context(vars: Arc<Vars>, scope: &Arc<PlayScope>) -> JValue {
    JValue::from_object(Ctx {
        vars,
        scope: scope.clone(),
    })
}

/// Finds which identifier of `src` is undefined in `vars`, so errors can name it
/// (minijinja's undefined error does not).
pub fn undefined_name(src: &str, vars: &Vars) -> Option<String> {
    const WORDS: &[&str] = &[
        "and",
        "or",
        "not",
        "in",
        "is",
        "if",
        "else",
        "elif",
        "endif",
        "for",
        "endfor",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
        "defined",
        "undefined",
        "set",
        "endset",
        "loop",
        "hostvars",
        "vars",
        "range",
        "lookup",
        "query",
        "omit",
        "dict",
        "namespace",
    ];
    let re = regex::Regex::new(r#"'[^']*'|"[^"]*"|([.|]\s*)?\b([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?"#)
        .ok()?;
    for cap in re.captures_iter(src) {
        let Some(name) = cap.get(2) else { continue };
        if cap.get(1).is_some() || cap.get(3).is_some() {
            continue;
        }
        let name = name.as_str();
        if !WORDS.contains(&name) && !vars.contains_key(name) {
            return Some(name.to_string());
        }
    }
    None
}

/// Parses every `-e` argument in order (later ones win); an error names the argument.
pub fn parse_all_extra_vars(args: &[String]) -> Result<Vars, String> {
    let mut all = Vars::new();
    for a in args {
        all.extend(parse_extra_vars(a).map_err(|msg| format!("-e {a}: {msg}"))?);
    }
    Ok(all)
}

/// Parses one `-e` argument: `@file` (YAML/JSON), inline JSON/YAML mapping, or `k=v ...`.
pub fn parse_extra_vars(arg: &str) -> Result<Vars, String> {
    if let Some(file) = arg.strip_prefix('@') {
        let node = crate::yaml::load_file(Path::new(file)).map_err(|e| e.to_string())?;
        return match node.to_json() {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Vars::new()),
            _ => Err(format!("{file}: extra vars must be a mapping")),
        };
    }
    let t = arg.trim();
    if t.starts_with('{') {
        let node =
            crate::yaml::load_str(t, Path::new("<extra vars>")).map_err(|e| e.to_string())?;
        return match node.to_json() {
            Value::Object(m) => Ok(m),
            _ => Err(format!("extra vars '{arg}' must be a mapping")),
        };
    }
    let mut out = Vars::new();
    let words = shell_words::split(t).map_err(|e| format!("extra vars '{arg}': {e}"))?;
    for w in words {
        let (k, v) = w.split_once('=').ok_or_else(|| {
            format!("extra vars '{arg}': expected key=value, JSON, YAML or @file")
        })?;
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_vars_forms() {
        assert_eq!(
            parse_extra_vars("a=1 b='x y'").unwrap(),
            json!({"a": "1", "b": "x y"}).as_object().unwrap().clone()
        );
        assert_eq!(parse_extra_vars(r#"{"n": 2}"#).unwrap()["n"], json!(2));
        assert!(parse_extra_vars("novalue").is_err());
    }

    #[test]
    fn names_the_undefined_variable() {
        let vars = json!({"a": 1}).as_object().unwrap().clone();
        assert_eq!(
            undefined_name("{{ a + missing }}", &vars).as_deref(),
            Some("missing")
        );
        assert_eq!(undefined_name("{{ a.b | default('x') }}", &vars), None);
        assert_eq!(undefined_name("'lit' in a", &vars), None);
    }

    fn host(name: &str, vars: Value) -> Host {
        Host {
            name: name.into(),
            vars: Arc::new(vars.as_object().unwrap().clone()),
            groups: vec![],
        }
    }

    #[test]
    fn precedence_order() {
        let store = Arc::new(HostStore::default());
        let h = host("h1", json!({"x": "inventory", "y": "inventory"}));
        store.set_fact("h1", "x", json!("set_fact"));
        let scope = PlayScope {
            templar: Arc::new(Templar::new()),
            roles_defaults: Arc::new(
                json!({"other": "other role", "d": "other role"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            roles_vars: Arc::new(Vars::new()),
            play_vars: Arc::new(
                json!({"x": "play", "y": "play", "z": "play"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            vars_files: Arc::new(Vars::new()),
            extra: Arc::new(json!({"z": "extra"}).as_object().unwrap().clone()),
            magic: Vars::new(),
            hosts: HashMap::new(),
            store,
        };
        let defaults = json!({"d": "default", "y": "default"})
            .as_object()
            .unwrap()
            .clone();
        let task = json!({"y": "task"}).as_object().unwrap().clone();
        let v = scope.task_vars(
            &h,
            &TaskLayers {
                role_defaults: Some(&defaults),
                role_vars: None,
                role_params: None,
                scoped: &[],
                task_vars: &task,
                extra_magic: Vars::new(),
            },
        );
        assert_eq!(v["x"], json!("set_fact"));
        assert_eq!(v["y"], json!("task"));
        assert_eq!(v["z"], json!("extra"));
        assert_eq!(v["d"], json!("default"));
        assert_eq!(v["other"], json!("other role"));
    }
}
