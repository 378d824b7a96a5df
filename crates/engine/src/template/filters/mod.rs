//! Ansible's filters that minijinja lacks, and overrides where minijinja's built-in
//! differs from Ansible (`bool`, `int`). Grouped by what they work on:
//! [`strings`] (regex, paths, encodings, hashing, quoting), [`data`] (dicts and lists),
//! [`serial`] (JSON and YAML in and out).
//!
//! Built-ins kept as they are because they match Jinja2/Ansible: `default`/`d`
//! (works on `foo.bar` when `foo` is undefined, thanks to chainable undefined),
//! `length`, `join`, `unique`, `sort`, `map`, `select`, `selectattr`, `reject`,
//! `first`, `last`, `min`, `max`, `sum`, `zip`, `list`, `string`, `lower`, `upper`,
//! `replace`, `trim`, `split`, `indent`, `format`, `dictsort`, `batch`, `slice`.
//! `password_hash` supports `sha512` only ([`crypt`]). Not implemented: the `ipaddr` family.

mod crypt;
pub mod data;
pub mod serial;
pub mod strings;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", bool_filter);
    env.add_filter("int", int_filter);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
    env.add_filter("password_hash", crypt::password_hash);
    strings::register(env);
    data::register(env);
    serial::register(env);
}

/// An error for a filter that was given something it cannot work with.
pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Converts a template value to the engine's JSON value.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    super::to_json(v)
}

/// Converts the engine's JSON value to a template value.
pub fn from_json(v: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// Python truthiness of a template value (`if value:`).
pub(crate) fn truthy(v: &Value) -> bool {
    !v.is_undefined() && v.is_true()
}

/// Ansible's boolean spellings (`module_utils.parsing.convert_bool`): `y/yes/on/1/true/t`
/// are true and `n/no/off/0/false/f` false, in any case and ignoring surrounding blanks;
/// anything else is neither. The one home of the rule: the `bool` filter, module
/// arguments and playbook keywords all read booleans through it.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
        _ => None,
    }
}

/// Ansible's `bool`: the true spellings of [`parse_bool`] and `True` are true; everything
/// else false. Unlike Jinja's truthiness, `"no" | bool` is false.
pub fn ansible_bool(v: &Value) -> bool {
    if let Some(b) = v.as_str() {
        return parse_bool(b) == Some(true);
    }
    if v.is_undefined() || v.is_none() {
        return false;
    }
    if let Some(i) = v.as_i64() {
        return i == 1;
    }
    v.is_true()
}

/// [`ansible_bool`] of a JSON value (a variable as the inventory or `-e` gives it).
pub fn json_bool(v: &serde_json::Value) -> bool {
    ansible_bool(&from_json(v))
}

/// An error for an undefined input that still names the variable: minijinja attaches
/// the undefined value's origin to a failed conversion, and the engine turns that into
/// "(`x` is undefined)" (read back by `template::undefined`).
pub(crate) fn undefined_error(v: &Value) -> Error {
    i64::try_from(v.clone())
        .err()
        .unwrap_or_else(|| Error::from(ErrorKind::UndefinedError))
}

/// `bool` as a filter: an undefined input is an error, as in Ansible, rather than false.
fn bool_filter(v: Value) -> Result<bool, Error> {
    if v.is_undefined() {
        return Err(undefined_error(&v));
    }
    Ok(ansible_bool(&v))
}

/// Jinja2's `int` (which Ansible uses): strings are parsed as integers, then as floats
/// (truncated), and anything unparsable gives the default (0) instead of an error.
/// `base` applies to strings; with a base other than 10, `0x`/`0o`/`0b` prefixes are accepted.
fn int_filter(v: Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base: u32 = kwargs.get::<Option<u32>>("base")?.unwrap_or(10);
    kwargs.assert_all_used()?;
    if !(2..=36).contains(&base) {
        return Err(invalid(format!(
            "int: base {base} must be between 2 and 36"
        )));
    }
    Ok(match v.kind() {
        ValueKind::Bool => Value::from(v.is_true() as i64),
        ValueKind::Number => match v.as_i64() {
            Some(i) => Value::from(i),
            None => f64::try_from(v.clone())
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| Value::from(f.trunc() as i64))
                .unwrap_or(default),
        },
        ValueKind::String => parse_python_int(v.as_str().unwrap_or_default(), base)
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

/// Python's `int(s, base)` with the `int(float(s))` fallback Jinja2 adds.
fn parse_python_int(s: &str, base: u32) -> Option<i64> {
    let t = s.trim().replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let digits = if base == 10 {
        digits
    } else {
        let lower = digits.to_ascii_lowercase();
        let prefix = match base {
            16 => "0x",
            8 => "0o",
            2 => "0b",
            _ => "",
        };
        if !prefix.is_empty() && lower.starts_with(prefix) {
            &digits[2..]
        } else {
            digits
        }
    };
    if let Ok(i) = i64::from_str_radix(digits, base) {
        return Some(if neg { -i } else { i });
    }
    if base == 10 {
        return t
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.trunc() as i64);
    }
    None
}

/// `cond | ternary(a, b[, none_value])`.
fn ternary(v: Value, yes: Value, no: Value, none_value: Option<Value>) -> Value {
    match none_value {
        Some(n) if v.is_none() => n,
        _ if truthy(&v) => yes,
        _ => no,
    }
}

/// `x | mandatory` fails when `x` is undefined; `mandatory('msg')` sets the message.
fn mandatory(v: Value, msg: Option<String>) -> Result<Value, Error> {
    match (v.is_undefined(), msg) {
        (false, _) => Ok(v),
        (true, Some(msg)) => Err(invalid(msg)),
        (true, None) => Err(undefined_error(&v)),
    }
}

#[cfg(test)]
mod tests;
