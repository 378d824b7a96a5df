//! JSON and labels exactly as Python prints them, because Ansible's console output is
//! `json.dumps(result, sort_keys=True, ensure_ascii=False)` and loop labels are `str(item)`.
//! Users diff our output against Ansible's, so separators and key order matter.

use serde_json::Value;

/// `json.dumps(v, indent=indent, sort_keys=True, ensure_ascii=False)`.
pub fn dumps(v: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    write(&mut out, v, indent, 0);
    out
}

fn write(out: &mut String, v: &Value, indent: Option<usize>, level: usize) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                sep(out, i, indent, level + 1);
                write(out, item, indent, level + 1);
            }
            close(out, indent, level);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                sep(out, i, indent, level + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write(out, &map[k], indent, level + 1);
            }
            close(out, indent, level);
            out.push('}');
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
        other => out.push_str(&other.to_string()),
    }
}

fn sep(out: &mut String, i: usize, indent: Option<usize>, level: usize) {
    match indent {
        Some(n) => {
            if i > 0 {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
        None => {
            if i > 0 {
                out.push_str(", ");
            }
        }
    }
}

fn close(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(n) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(n * level));
    }
}

/// Python's `str()` of a value: strings bare at top level, `repr` inside containers.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_and_indented_like_python() {
        let v = json!({"msg": "x", "changed": false, "l": [1, 2]});
        assert_eq!(
            dumps(&v, None),
            r#"{"changed": false, "l": [1, 2], "msg": "x"}"#
        );
        assert_eq!(
            dumps(&json!({"msg": "hi"}), Some(4)),
            "{\n    \"msg\": \"hi\"\n}"
        );
    }

    #[test]
    fn labels_like_python_str() {
        assert_eq!(py_str(&json!("a")), "a");
        assert_eq!(py_str(&json!({"k": "v", "n": 1})), "{'k': 'v', 'n': 1}");
        assert_eq!(py_str(&json!([true, null])), "[True, None]");
    }
}
