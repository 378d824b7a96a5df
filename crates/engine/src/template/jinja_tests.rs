//! Ansible's Jinja tests (`x is match(...)`, `result is failed`, ...). `defined`,
//! `undefined`, `none`, `string`, `number`, `sequence`, `mapping` and the comparison tests
//! are minijinja built-ins and behave as in Jinja2.

use std::cmp::Ordering;
use std::path::Path;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, Value};

use super::filters::{ansible_bool, invalid, strings::compile, to_json, truthy};

pub fn register(env: &mut Environment<'static>) {
    env.add_test("match", |v: String, p: String, k: Kwargs| {
        regex_test(&v, &p, k, true)
    });
    env.add_test("search", |v: String, p: String, k: Kwargs| {
        regex_test(&v, &p, k, false)
    });
    env.add_test("regex", |v: String, p: String, k: Kwargs| {
        let anchored = k.get::<Option<String>>("match_type")?.as_deref() == Some("match");
        regex_test(&v, &p, k, anchored)
    });
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    for name in ["succeeded", "success"] {
        env.add_test(name, |v: Value| Ok::<_, Error>(!result_flag(&v, "failed")?));
    }
    for name in ["failed", "failure"] {
        env.add_test(name, |v: Value| result_flag(&v, "failed"));
    }
    for name in ["changed", "change"] {
        env.add_test(name, |v: Value| result_flag(&v, "changed"));
    }
    for name in ["skipped", "skip"] {
        env.add_test(name, |v: Value| result_flag(&v, "skipped"));
    }
    env.add_test("file", |p: String| Path::new(&p).is_file());
    env.add_test("directory", |p: String| Path::new(&p).is_dir());
    env.add_test("exists", |p: String| Path::new(&p).exists());
    env.add_test("link", |p: String| Path::new(&p).is_symlink());
    env.add_test("abs", |p: String| Path::new(&p).is_absolute());
    env.add_test("subset", |a: Value, b: Value| contains_all(&b, &a));
    env.add_test("superset", |a: Value, b: Value| contains_all(&a, &b));
    env.add_test("contains", |a: Value, x: Value| {
        contains_all(&a, &Value::from(vec![x]))
    });
    env.add_test("truthy", |v: Value, k: Kwargs| truthiness(&v, k));
    env.add_test("falsy", |v: Value, k: Kwargs| truthiness(&v, k).map(|t| !t));
}

fn regex_test(value: &str, pattern: &str, kwargs: Kwargs, anchored: bool) -> Result<bool, Error> {
    let ic = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let ml = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    // `match` is Python's re.match: anchored at the start only.
    let pattern = if anchored {
        format!(r"\A(?:{pattern})")
    } else {
        pattern.to_string()
    };
    Ok(compile(&pattern, ic, ml)?.is_match(value))
}

/// A registered result's flag (`failed`, `changed`, `skipped`). Ansible insists on a dict.
fn result_flag(v: &Value, flag: &str) -> Result<bool, Error> {
    if v.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "the '{flag}' test expects a registered result (a dictionary), got {}",
            v.kind()
        )));
    }
    let value = v.get_attr(flag).unwrap_or_default();
    Ok(ansible_bool(&value))
}

fn contains_all(haystack: &Value, needles: &Value) -> Result<bool, Error> {
    let (serde_json::Value::Array(h), serde_json::Value::Array(n)) =
        (to_json(haystack), to_json(needles))
    else {
        return Err(invalid("subset/superset/contains expect lists"));
    };
    Ok(n.iter().all(|x| h.contains(x)))
}

/// `truthy(convert_bool=False)`: Python truthiness, or Ansible `bool` on strings first.
fn truthiness(v: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    let convert = kwargs.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    if convert && (v.as_str().is_some() || v.kind() == ValueKind::Number) {
        return Ok(ansible_bool(v));
    }
    Ok(truthy(v))
}

/// `v is version('2.0', '>=')`: loose version comparison like `LooseVersion` (numbers
/// compare numerically, words as text). `strict=`/`version_type=` are accepted and ignored.
fn version_test(
    value: Value,
    other: Value,
    op: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let op = match op {
        Some(op) => Some(op),
        None => kwargs.get::<Option<String>>("operator")?,
    }
    .unwrap_or_else(|| "eq".into());
    let _ = kwargs.get::<Option<Value>>("strict")?;
    let _ = kwargs.get::<Option<Value>>("version_type")?;
    kwargs.assert_all_used()?;
    let ord = compare_versions(&value.to_string(), &other.to_string());
    Ok(match op.as_str() {
        "==" | "=" | "eq" => ord == Ordering::Equal,
        "!=" | "<>" | "ne" => ord != Ordering::Equal,
        "<" | "lt" => ord == Ordering::Less,
        "<=" | "le" => ord != Ordering::Greater,
        ">" | "gt" => ord == Ordering::Greater,
        ">=" | "ge" => ord != Ordering::Less,
        other => return Err(invalid(format!("version: invalid operator {other:?}"))),
    })
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    // Numbers sort before words at the same position, as LooseVersion's int < str would fail;
    // this is the usual total order used instead.
    Num(u64),
    Word(String),
}

fn version_parts(v: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut chars = v.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            parts.push(Part::Num(n.parse().unwrap_or(u64::MAX)));
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_alphabetic()) {
                w.push(d);
                chars.next();
            }
            parts.push(Part::Word(w));
        } else {
            chars.next();
        }
    }
    parts
}

pub fn compare_versions(a: &str, b: &str) -> Ordering {
    version_parts(a).cmp(&version_parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_versions() {
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("2.0", "2.0"), Ordering::Equal);
        assert_eq!(compare_versions("3.3.1", "3.3"), Ordering::Greater);
        assert_eq!(compare_versions("1.0a", "1.0"), Ordering::Greater);
    }
}
