//! Jinja templating configured like Ansible's.
//!
//! One [`Templar`] (one `minijinja::Environment`) serves the whole run: compiled
//! templates are cached there, and it is `Send + Sync`. Ansible differs from plain
//! Jinja in ways playbooks rely on, and each is handled here rather than in callers:
//! - `trim_blocks` is on, and trailing newlines follow Ansible's `preserve_trailing_newlines`:
//!   Jinja drops the source's last newline, then the result is padded to as many
//!   trailing newlines as the source has (so `"{{ x }}\n"` with `x = "a\n"` is `"a\n"`);
//! - printing an undefined value is an error, but `foo.bar | default(x)` works when
//!   `foo` is undefined (chainable undefined plus an erroring formatter);
//! - `"no" | bool` is false (Ansible's `bool`, not Jinja truthiness);
//! - a string that is exactly one `{{ expression }}` keeps its native type, so
//!   `"{{ [1, 2] }}"` is a list and `"{{ 3 }}"` is a number.

pub mod filters;
mod jinja_tests;
pub mod lookup;
mod percent;
pub mod pyjson;
mod source;
mod undefined;

pub use lookup::{OMIT, strip_omit};

/// True for variable names whose values must never be printed (by `debug: var=`, the
/// executor's logs or errors); here, below the executor and the modules that both ask.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "private_key",
        "_pass",
    ]
    .iter()
    .any(|w| n.contains(w))
}

use std::collections::HashSet;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value as JValue};
use serde_json::Value;

/// The variables visible to a template: a JSON object.
pub type Vars = serde_json::Map<String, Value>;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{msg}")]
pub struct TemplateError {
    pub msg: String,
    /// The undefined variable, when that is the cause.
    pub undefined: Option<String>,
}

impl TemplateError {
    fn from_jinja(e: &minijinja::Error) -> Self {
        if let Some(name) = e.detail().and_then(undefined::from_error_detail) {
            return TemplateError::undefined(name);
        }
        let msg = match e.detail() {
            Some(d) => format!("{}: {d}", kind_text(e)),
            None => kind_text(e),
        };
        TemplateError {
            msg,
            undefined: None,
        }
    }

    /// "'foo' is undefined", Ansible's wording.
    pub fn undefined(name: String) -> Self {
        TemplateError {
            msg: format!("'{name}' is undefined"),
            undefined: Some(name),
        }
    }
}

fn kind_text(e: &minijinja::Error) -> String {
    match e.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined value".to_string(),
        minijinja::ErrorKind::SyntaxError => "template syntax error".to_string(),
        k => format!("{k}"),
    }
}

/// Names the engine provides itself, never looked up in the variables.
const ENGINE_NAMES: &[&str] = &["loop", "self", "super", "caller", "varargs", "kwargs"];

pub struct Templar {
    env: Environment<'static>,
}

/// The source as Jinja sees it with `keep_trailing_newline` off (Ansible's default).
fn without_last_newline(src: &str) -> &str {
    src.strip_suffix('\n').unwrap_or(src)
}

/// Ansible's `preserve_trailing_newlines`: the result ends with at least as many newlines
/// as the source did.
fn pad_newlines(src: &str, mut out: String) -> String {
    let count = |t: &str| t.len() - t.trim_end_matches('\n').len();
    let missing = count(src).saturating_sub(count(&out));
    out.extend(std::iter::repeat_n('\n', missing));
    out
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

impl Templar {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Debug mode makes minijinja remember where each undefined value came from, so
        // errors can say "`foo.bar` is undefined" instead of "undefined value".
        env.set_debug(true);
        env.set_formatter(|out, state, value| {
            if value.is_undefined() {
                // Calling the undefined value fails with an error that carries its origin,
                // which the engine turns into the expression text (see `undefined.rs`).
                return value.call(state, &[]).map(|_| ());
            }
            // Ansible's finalizer prints None (YAML null) as nothing, not `None`.
            if value.is_none() {
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        // Ansible never escapes: a Hadoop `*-site.xml` rendered from a `.j2` keeps its
        // `hdfs://` and the markup a variable holds (minijinja escapes `.xml`/`.html`
        // names by default).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // What `a % b` becomes (see `source.rs`): Python's string formatting or remainder.
        env.add_function(source::PERCENT_FN, percent::percent);
        filters::register(&mut env);
        jinja_tests::register(&mut env);
        lookup::register(&mut env);
        Templar { env }
    }

    /// Converts variables into a template context once, for several renders.
    pub fn context(vars: &Vars) -> JValue {
        JValue::from(minijinja::value::Serde(vars))
    }

    /// True when `s` contains template syntax and needs rendering at all.
    pub fn is_template(s: &str) -> bool {
        s.contains("{{") || s.contains("{%") || s.contains("{#")
    }

    /// Renders a template string to text.
    pub fn render_str(&self, src: &str, ctx: &JValue) -> Result<String, TemplateError> {
        if !Self::is_template(src) {
            return Ok(src.to_string());
        }
        let rewritten = source::rewrite_template(without_last_newline(src), true);
        let tmpl = self
            .env
            .template_from_str(&rewritten)
            .map_err(|e| TemplateError::from_jinja(&e))?;
        let (tracked, seen) = Seen::wrap(ctx);
        let roots = || seen.read(tmpl.undeclared_variables(false));
        let out = tmpl
            .render(&tracked)
            .map_err(|e| self.explain(&e, src, roots(), ctx))?;
        self.check_missing(src, roots(), ctx)?;
        Ok(pad_newlines(src, out))
    }

    /// The error of a failed render. An undefined value minijinja cannot name (one given
    /// to a function, such as `'%s' % nope`) is named from the variables the render read.
    fn explain(
        &self,
        e: &minijinja::Error,
        src: &str,
        roots: HashSet<String>,
        ctx: &JValue,
    ) -> TemplateError {
        let err = TemplateError::from_jinja(e);
        if err.undefined.is_none()
            && e.kind() == minijinja::ErrorKind::UndefinedError
            && let Err(named) = self.check_missing(src, roots, ctx)
        {
            return named;
        }
        err
    }

    /// Fails like Ansible when the template read a variable that does not exist, even if
    /// a filter or loop swallowed it (see `undefined.rs`). `roots` are only the names the
    /// render actually looked up: a name in a branch that did not run is not used.
    fn check_missing(
        &self,
        src: &str,
        roots: HashSet<String>,
        ctx: &JValue,
    ) -> Result<(), TemplateError> {
        check_missing(&self.env, src, roots, ctx)
    }

    /// Renders every string inside `v`, recursively. A string that is exactly one
    /// `{{ expr }}` evaluates to the expression's native value; so does one followed by a
    /// single newline (a folded or literal block scalar), since Jinja drops that newline:
    /// Ansible gives it back only to a string result (`"{{ n }}\n"` is the number,
    /// `"{{ s }}\n"` the string with its newline). Other whitespace around the braces is
    /// text, as in Ansible.
    pub fn render_value(&self, v: &Value, ctx: &JValue) -> Result<Value, TemplateError> {
        match v {
            Value::String(s) => {
                let body = without_last_newline(s);
                if let Some(expr) = single_expression(body).filter(|_| body.trim() == body) {
                    let value = self.eval_expr(expr, ctx)?;
                    if value.is_undefined() {
                        return Err(TemplateError::undefined(expr.trim().to_string()));
                    }
                    return Ok(match to_json(&value) {
                        Value::String(t) => Value::String(pad_newlines(s, t)),
                        other => other,
                    });
                }
                Ok(Value::String(self.render_str(s, ctx)?))
            }
            Value::Array(items) => items
                .iter()
                .map(|i| self.render_value(i, ctx))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, val) in map {
                    out.insert(self.render_str(k, ctx)?, self.render_value(val, ctx)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Evaluates a bare expression (no braces), as in `when:` or `{{ }}`. A variable the
    /// expression reads without a guard (`is defined`, `default`) must exist.
    pub fn eval_expr(&self, expr: &str, ctx: &JValue) -> Result<JValue, TemplateError> {
        self.eval(expr, ctx, true)
    }

    /// `escape_backslashes` as Ansible: on for `{{ }}`, off for conditionals.
    fn eval(
        &self,
        expr: &str,
        ctx: &JValue,
        escape_backslashes: bool,
    ) -> Result<JValue, TemplateError> {
        let rewritten = source::rewrite_expression(expr, escape_backslashes);
        let compiled = self
            .env
            .compile_expression(&rewritten)
            .map_err(|e| TemplateError::from_jinja(&e))?;
        let (tracked, seen) = Seen::wrap(ctx);
        let roots = || seen.read(compiled.undeclared_variables(false));
        let value = compiled
            .eval(&tracked)
            .map_err(|e| self.explain(&e, expr, roots(), ctx))?;
        self.check_missing(expr, roots(), ctx)?;
        Ok(value)
    }

    /// Evaluates a `when:`-style condition. An undefined result is an error, as in Ansible.
    pub fn eval_condition(&self, expr: &str, ctx: &JValue) -> Result<bool, TemplateError> {
        let expr = single_expression(expr).unwrap_or(expr);
        let value = self.eval(expr, ctx, false)?;
        if value.is_undefined() {
            return Err(TemplateError {
                msg: format!("the conditional '{}' is undefined", expr.trim()),
                undefined: None,
            });
        }
        Ok(filters::ansible_bool(&value))
    }

    /// Renders a template file (the `template` module). Errors start with `path:line`.
    pub fn render_file(&self, path: &Path, ctx: &JValue) -> Result<String, TemplateError> {
        render_file(&self.env, path, ctx)
    }
}

/// [`Templar::check_missing`] for any environment (a lookup has only its render's).
fn check_missing(
    env: &Environment<'_>,
    src: &str,
    roots: HashSet<String>,
    ctx: &JValue,
) -> Result<(), TemplateError> {
    let is_global =
        |name: &str| ENGINE_NAMES.contains(&name) || env.globals().any(|(g, _)| g == name);
    match undefined::find_unguarded_missing(src, roots, ctx, is_global) {
        Some(name) => Err(TemplateError::undefined(name)),
        None => Ok(()),
    }
}

/// [`Templar::render_file`] in `env`: the `template` lookup renders a file from inside a
/// render, where only the environment of that render is at hand.
fn render_file(env: &Environment<'_>, path: &Path, ctx: &JValue) -> Result<String, TemplateError> {
    let src = std::fs::read_to_string(path).map_err(|e| TemplateError {
        msg: format!("cannot read template {}: {e}", path.display()),
        undefined: None,
    })?;
    let name = path.display().to_string();
    let located = |e: minijinja::Error| {
        let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
        let inner = TemplateError::from_jinja(&e);
        TemplateError {
            msg: format!("{name}{line}: {}", inner.msg),
            undefined: inner.undefined,
        }
    };
    let rewritten = source::rewrite_template(without_last_newline(&src), false);
    let tmpl = env
        .template_from_named_str(&name, &rewritten)
        .map_err(located)?;
    let (tracked, seen) = Seen::wrap(ctx);
    let out = pad_newlines(&src, tmpl.render(&tracked).map_err(located)?);
    check_missing(env, &src, seen.read(tmpl.undeclared_variables(false)), ctx).map_err(|e| {
        let line = e
            .undefined
            .as_deref()
            .and_then(|n| line_of(&src, n))
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        TemplateError {
            msg: format!("{name}{line}: {}", e.msg),
            undefined: e.undefined,
        }
    })?;
    Ok(out)
}

/// `base` with `added` on top, for a template file: a key of `added` wins, every other
/// lookup goes to `base` unchanged (so its lazy `hostvars` and variables keep working),
/// and `vars` is the combination, as Ansible's `vars` is all the template's variables (a
/// `template` lookup inside the file starts from them).
pub fn context_with(base: &JValue, added: &Vars) -> JValue {
    let combined =
        minijinja::value::merge_maps([base.clone(), JValue::from(minijinja::value::Serde(added))]);
    // The last map holding a key wins.
    minijinja::value::merge_maps([combined.clone(), minijinja::context! { vars => combined }])
}

/// The variables Ansible adds to a template file's context (its
/// `generate_ansible_template_vars`), for the `template` module and the `template`
/// lookup alike: `template_path` is the name as the task gave it, `template_fullpath`
/// where it was found, `template_host` the controller's host name (not the target's),
/// times in the controller's local time as Python prints a `datetime`. `ansible_managed`
/// ("Ansible managed") only when `managed`: a variable of that name set by the user wins.
pub fn file_vars(given: &str, full: &Path, dest: Option<&str>, managed: bool) -> Vars {
    use std::os::unix::fs::MetadataExt;
    let py_datetime = |t: chrono::DateTime<chrono::Local>| {
        let micros = t.timestamp_subsec_micros();
        let secs = t.format("%Y-%m-%d %H:%M:%S").to_string();
        if micros == 0 {
            secs
        } else {
            format!("{secs}.{micros:06}")
        }
    };
    let meta = std::fs::metadata(full).ok();
    let mut v = Vars::new();
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    v.insert("template_host".into(), host.into());
    v.insert("template_path".into(), given.into());
    if let Some(m) = &meta {
        // Python's `datetime.fromtimestamp(st_mtime)`: the float `st_mtime`, its fraction
        // rounded half-even to microseconds (truncating would be a microsecond off).
        let st_mtime = m.mtime() as f64 + m.mtime_nsec() as f64 * 1e-9;
        let (secs, mut micros) = (st_mtime.trunc(), (st_mtime.fract() * 1e6).round_ties_even());
        let mut secs = secs as i64;
        if micros >= 1e6 {
            secs += 1;
            micros -= 1e6;
        }
        if let Some(t) = chrono::DateTime::from_timestamp(secs, micros as u32 * 1000) {
            v.insert(
                "template_mtime".into(),
                py_datetime(t.with_timezone(&chrono::Local)).into(),
            );
        }
        let uid = m.uid();
        let owner = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| Value::from(u.name))
            .unwrap_or_else(|| Value::from(uid));
        v.insert("template_uid".into(), owner);
    }
    v.insert(
        "template_run_date".into(),
        py_datetime(chrono::Local::now()).into(),
    );
    v.insert(
        "template_destpath".into(),
        dest.map_or(Value::Null, Value::from),
    );
    v.insert(
        "template_fullpath".into(),
        full.display().to_string().into(),
    );
    if managed {
        v.insert("ansible_managed".into(), "Ansible managed".into());
    }
    v
}

/// The 1-based line where `name` first appears as a word, to locate a static finding.
fn line_of(src: &str, name: &str) -> Option<usize> {
    let re = regex::Regex::new(&format!(r"\b{}\b", regex::escape(name))).ok()?;
    let pos = re.find(src)?.start();
    Some(src[..pos].matches('\n').count() + 1)
}

/// The template context, recording which top-level names a render looks up, so only
/// variables that were actually read can be reported as undefined: the untaken branch of
/// `if`/`else`, of `and`/`or`, or the body of a loop over an empty list reads nothing.
#[derive(Debug)]
struct Seen {
    ctx: JValue,
    names: std::sync::Mutex<HashSet<String>>,
}

impl Seen {
    fn wrap(ctx: &JValue) -> (JValue, std::sync::Arc<Seen>) {
        let seen = std::sync::Arc::new(Seen {
            ctx: ctx.clone(),
            names: Default::default(),
        });
        (JValue::from_dyn_object(seen.clone()), seen)
    }

    /// The names of `roots` that the render looked up.
    fn read(&self, mut roots: HashSet<String>) -> HashSet<String> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        roots.retain(|r| names.contains(r));
        roots
    }
}

impl minijinja::value::Object for Seen {
    fn get_value(self: &std::sync::Arc<Self>, key: &JValue) -> Option<JValue> {
        if let Some(k) = key.as_str() {
            self.names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(k.to_string());
        }
        self.ctx.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        match self.ctx.try_iter() {
            Ok(keys) => minijinja::value::Enumerator::Values(keys.collect()),
            Err(_) => minijinja::value::Enumerator::Empty,
        }
    }
}

/// `"{{ x }}"` → `Some("x")`; anything with text around the braces → `None`.
fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    Some(inner)
}

/// Converts a template value back into the engine's variable type.
pub fn to_json(v: &JValue) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> JValue {
        Templar::context(v.as_object().unwrap())
    }

    #[test]
    fn native_types_for_single_expressions() {
        let t = Templar::new();
        let c = ctx(json!({"n": 3, "l": [1, 2]}));
        assert_eq!(t.render_value(&json!("{{ n }}"), &c).unwrap(), json!(3));
        assert_eq!(
            t.render_value(&json!("{{ l }}"), &c).unwrap(),
            json!([1, 2])
        );
        assert_eq!(
            t.render_value(&json!("n={{ n }}"), &c).unwrap(),
            json!("n=3")
        );
        assert_eq!(
            t.render_value(&json!("{{ l | join(',') }}\n"), &c).unwrap(),
            json!("1,2\n")
        );
        // A block scalar's one trailing newline: Jinja drops it, so the value stays
        // native; only a string gets it back. Two newlines make it text, as in Ansible.
        assert_eq!(
            t.render_value(&json!("{{ l + [3] }}\n"), &c).unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            t.render_value(&json!("{{ n > 1 }}\n"), &c).unwrap(),
            json!(true)
        );
        assert_eq!(
            t.render_value(&json!("{{ n }}\n\n"), &c).unwrap(),
            json!("3\n\n")
        );
    }

    #[test]
    fn undefined_is_an_error_but_default_works() {
        let t = Templar::new();
        let c = ctx(json!({}));
        assert!(t.render_str("{{ missing }}", &c).is_err());
        assert_eq!(
            t.render_str("{{ missing.attr | default('x') }}", &c)
                .unwrap(),
            "x"
        );
    }

    #[test]
    fn ansible_bool() {
        let t = Templar::new();
        let c = ctx(json!({"v": "no", "w": "yes"}));
        assert!(!t.eval_condition("v | bool", &c).unwrap());
        assert!(t.eval_condition("w | bool", &c).unwrap());
    }

    fn err(src: &str, vars: Value) -> TemplateError {
        Templar::new().render_str(src, &ctx(vars)).expect_err(src)
    }

    #[test]
    fn undefined_errors_name_the_variable() {
        let e = err("x={{ foo }}", json!({}));
        assert_eq!(e.msg, "'foo' is undefined");
        assert_eq!(e.undefined.as_deref(), Some("foo"));
        assert_eq!(
            err("{{ a.c }}", json!({"a": {"b": 1}})).msg,
            "'a.c' is undefined"
        );
        assert_eq!(err("{{ x.y.z }}", json!({})).msg, "'x' is undefined");
        assert_eq!(err("{{ n + 1 }}", json!({})).msg, "'n' is undefined");
        // Swallowed by a filter or a loop in minijinja, an error in Ansible.
        assert_eq!(err("{{ w | upper }}", json!({})).msg, "'w' is undefined");
        assert_eq!(
            err("{% for i in xs %}{{ i }}{% endfor %}", json!({})).msg,
            "'xs' is undefined"
        );
        assert_eq!(
            err("{{ a | default(1) }}{{ b | upper }}", json!({})).msg,
            "'b' is undefined"
        );
        // Guards and locals are not missing variables.
        let t = Templar::new();
        let c = ctx(json!({"l": [1]}));
        for ok in [
            "{% if x is defined %}{{ x }}{% endif %}",
            "{% set y = 1 %}{{ y }}",
            "{% for i in l %}{{ i }}{{ loop.index }}{% endfor %}",
            "{{ range(2) | list }}{{ omit | length > 0 }}",
        ] {
            t.render_str(ok, &c).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn undefined_in_code_that_does_not_run_is_not_an_error() {
        let t = Templar::new();
        let c = ctx(json!({"empty": [], "ip": "10.0.0.1"}));
        for (src, want) in [
            ("{% if x is defined %}{{ x }}{% else %}d{% endif %}", "d"),
            ("{{ 'a' if true else never_defined }}", "a"),
            ("{{ never_defined if false else 'b' }}", "b"),
            ("{{ n1 | default(n2 | default('d')) }}", "d"),
            ("{% for i in empty %}{{ in_body }}{% endfor %}end", "end"),
            ("{{ false and untaken }}", "False"),
            ("{{ true or untaken }}", "True"),
            (
                "{% if ip == '1' %}{{ other }}{% elif true %}ok{% endif %}",
                "ok",
            ),
        ] {
            assert_eq!(
                t.render_str(src, &c)
                    .unwrap_or_else(|e| panic!("{src}: {e}")),
                want,
                "{src}"
            );
        }
        // What does run still fails, naming the variable.
        assert_eq!(
            err("{{ 'a' if false else used }}", json!({})).msg,
            "'used' is undefined"
        );
        assert_eq!(
            err("{{ true and used2 }}", json!({})).msg,
            "'used2' is undefined"
        );
        assert_eq!(
            err("{{ '%s' % nope }}", json!({})).msg,
            "'nope' is undefined"
        );
        assert_eq!(
            err(
                "{% for i in [1] %}{{ body | upper }}{% endfor %}",
                json!({})
            )
            .msg,
            "'body' is undefined"
        );
        assert!(!t.eval_condition("false and nope", &c).unwrap());
        assert_eq!(
            t.eval_condition("true and nope == 1", &c).unwrap_err().msg,
            "'nope' is undefined"
        );
    }

    #[test]
    fn conditions_on_undefined_fail_like_ansible() {
        let t = Templar::new();
        let c = ctx(json!({"a": 1}));
        assert_eq!(
            t.eval_condition("b == 1", &c).unwrap_err().msg,
            "'b' is undefined"
        );
        assert!(!t.eval_condition("b is defined and b == 1", &c).unwrap());
        assert!(t.eval_condition("{{ a == 1 }}", &c).unwrap());
        assert!(t.eval_condition("a | string == '1'", &c).unwrap());
    }

    #[test]
    fn render_value_keeps_native_types_and_names_undefined() {
        let t = Templar::new();
        let c = ctx(json!({"m": {"k": true}, "s": "x"}));
        assert_eq!(
            t.render_value(&json!({"a": "{{ m }}", "b": ["{{ s }}-y", 3]}), &c)
                .unwrap(),
            json!({"a": {"k": true}, "b": ["x-y", 3]})
        );
        assert_eq!(t.render_value(&json!("{{ 1 + 1 }}"), &c).unwrap(), json!(2));
        assert_eq!(
            t.render_value(&json!("{{ nope }}"), &c).unwrap_err().msg,
            "'nope' is undefined"
        );
    }

    #[test]
    fn template_files_report_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.j2");
        std::fs::write(
            &path,
            "line1\n{% if true %}\nv={{ missing }}\n{% endif %}\n",
        )
        .unwrap();
        let e = Templar::new()
            .render_file(&path, &ctx(json!({})))
            .unwrap_err();
        assert_eq!(
            e.msg,
            format!("{}:3: 'missing' is undefined", path.display())
        );
        std::fs::write(&path, "a\n{{ x | upper }}\n").unwrap();
        let e = Templar::new()
            .render_file(&path, &ctx(json!({})))
            .unwrap_err();
        assert_eq!(e.msg, format!("{}:2: 'x' is undefined", path.display()));
        std::fs::write(&path, "{% for %}\n").unwrap();
        let e = Templar::new()
            .render_file(&path, &ctx(json!({})))
            .unwrap_err();
        assert!(
            e.msg
                .starts_with(&format!("{}:1: template syntax error", path.display())),
            "{}",
            e.msg
        );
        // trim_blocks and the trailing newline, as Ansible's template module.
        std::fs::write(&path, "{% if true %}\nyes\n{% endif %}\n").unwrap();
        assert_eq!(
            Templar::new().render_file(&path, &ctx(json!({}))).unwrap(),
            "yes\n"
        );
    }

    #[test]
    fn template_lookup_renders_a_file_with_the_callers_variables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(
            dir.path().join("templates/t.j2"),
            "{{ v }}-{{ w | default('none') }} {{ template_path }}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("templates/bad.j2"), "a\n{{ nope }}\n").unwrap();
        let t = Templar::new();
        let c = ctx(json!({"playbook_dir": dir.path().to_str().unwrap(), "v": 5}));
        let render = |src: &str| t.render_str(src, &c);
        assert_eq!(
            render("{{ lookup('template', 't.j2') }}").unwrap(),
            "5-none t.j2\n"
        );
        assert_eq!(
            render("{{ lookup('template', 't.j2', template_vars={'w': 1}) }}").unwrap(),
            "5-1 t.j2\n"
        );
        let err = |src: &str| render(src).unwrap_err().msg;
        assert!(
            err("{{ lookup('template', 'gone.j2') }}")
                .contains("the template file gone.j2 could not be found for the lookup")
        );
        assert!(
            err("{{ lookup('template', 't.j2', variable_start_string='[%') }}")
                .contains("variable_start_string='[%' is not supported")
        );
        // An undefined variable in the file is located in it.
        let e = err("{{ lookup('template', 'bad.j2') }}");
        assert!(
            e.contains("bad.j2:2") && e.contains("'nope' is undefined"),
            "{e}"
        );
    }

    #[test]
    fn lookups_and_omit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/k.txt"), "key-data\n\n").unwrap();
        let t = Templar::new();
        let c = ctx(json!({"playbook_dir": dir.path().to_str().unwrap(), "v": 5}));
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            t.render_str("{{ lookup('env', 'HOME') }}", &c).unwrap(),
            home
        );
        assert_eq!(
            t.render_str(
                "{{ lookup('env', 'SPARK_OPENSTACK_NOPE_X', default='d') }}",
                &c
            )
            .unwrap(),
            "d"
        );
        assert_eq!(
            t.render_str("{{ lookup('file', 'k.txt') }}", &c).unwrap(),
            "key-data"
        );
        assert_eq!(
            t.render_str("{{ lookup('pipe', 'echo a; echo b') }}", &c)
                .unwrap(),
            "a\nb"
        );
        assert_eq!(
            t.render_str("{{ lookup('ansible.builtin.vars', 'v') }}", &c)
                .unwrap(),
            "5"
        );
        assert_eq!(
            t.render_value(&json!("{{ query('pipe', 'echo 1', 'echo 2') }}"), &c)
                .unwrap(),
            json!(["1", "2"])
        );
        assert!(
            t.render_str("{{ lookup('file', 'none.txt') }}", &c)
                .unwrap_err()
                .msg
                .contains("The lookup plugin 'file' failed: Unable to access the file 'none.txt'.")
        );
        assert!(
            t.render_str("{{ lookup('pipe', 'exit 3') }}", &c)
                .unwrap_err()
                .msg
                .contains("exited with 3")
        );
        assert!(
            t.render_str("{{ lookup('nope', 'x') }}", &c)
                .unwrap_err()
                .msg
                .contains("lookup plugin 'nope' is not available")
        );
        let args = t
            .render_value(
                &json!({"a": "{{ u | default(omit) }}", "b": 1, "l": ["{{ omit }}", 2]}),
                &c,
            )
            .unwrap();
        assert_eq!(strip_omit(args), json!({"b": 1, "l": [2]}));
    }

    #[test]
    fn templar_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Templar>();
    }

    #[test]
    fn a_template_files_vars_hold_what_was_added() {
        let base = minijinja::context! { greeting => "hello", other => 1 };
        let mut added = Vars::new();
        added.insert("greeting".into(), "over".into());
        let c = context_with(&base, &added);
        let env = minijinja::Environment::new();
        let out = env
            .render_str("{{ greeting }} {{ vars.greeting }} {{ vars.other }}", &c)
            .unwrap();
        assert_eq!(out, "over over 1");
    }
}
