//! JSON and YAML in and out, formatted the way Python's `json.dumps` / PyYAML format
//! them in Ansible, so rendered config files do not change when a playbook moves over.
//!
//! - `to_json`: `json.dumps` defaults: `", "` and `": "` separators, non-ASCII escaped.
//! - `to_nice_json`: `indent=4, sort_keys=True` (Ansible's defaults; both overridable).
//! - `to_yaml` / `to_nice_yaml`: block style with sorted keys (PyYAML sorts by default);
//!   `to_nice_yaml` indents by 4. PyYAML's flow style for leaf collections in `to_yaml`
//!   is not reproduced: everything is block style.

use std::io;

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, Value};
use serde::Serialize;
use serde_json::Value as J;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

use super::{from_json, invalid, to_json};

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("to_json", to_json_filter);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json_filter);
    env.add_filter("to_yaml", |v: Value, kwargs: Kwargs| to_yaml(v, kwargs, 2));
    env.add_filter("to_nice_yaml", |v: Value, kwargs: Kwargs| {
        to_yaml(v, kwargs, 4)
    });
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("from_yaml_all", from_yaml);
}

/// Python's json.dumps separators and ASCII escaping on top of serde_json's formatters.
struct PyFormatter<F> {
    inner: F,
    compact: bool,
}

impl<F: Formatter> Formatter for PyFormatter<F> {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if self.compact {
            return if first { Ok(()) } else { w.write_all(b", ") };
        }
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if self.compact {
            return if first { Ok(()) } else { w.write_all(b", ") };
        }
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.compact {
            return w.write_all(b": ");
        }
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_value(w)
    }
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        s: &str,
    ) -> io::Result<()> {
        // ensure_ascii=True: non-ASCII as \uXXXX (UTF-16 surrogate pairs above the BMP).
        for c in s.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        e: CharEscape,
    ) -> io::Result<()> {
        self.inner.write_char_escape(w, e)
    }
}

fn dumps<F: Formatter>(v: &J, formatter: PyFormatter<F>) -> Result<String, Error> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    v.serialize(&mut ser)
        .map_err(|e| invalid(format!("cannot serialize to JSON: {e}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Sorts object keys recursively (`sort_keys=True`).
pub(crate) fn sorted(v: J) -> J {
    match v {
        J::Object(map) => {
            let mut entries: Vec<(String, J)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            J::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        J::Array(items) => J::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// `to_json(sort_keys=False)` with Python's default separators.
pub fn python_json(v: &J, sort_keys: bool) -> Result<String, Error> {
    let v = if sort_keys {
        sorted(v.clone())
    } else {
        v.clone()
    };
    dumps(
        &v,
        PyFormatter {
            inner: CompactFormatter,
            compact: true,
        },
    )
}

fn to_json_filter(v: Value, kwargs: Kwargs) -> Result<String, Error> {
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let _ = kwargs.get::<Option<Value>>("ensure_ascii")?;
    kwargs.assert_all_used()?;
    python_json(&to_json(&v), sort_keys)
}

fn to_nice_json(v: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(4);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let v = to_json(&v);
    let v = if sort_keys { sorted(v) } else { v };
    let indent = " ".repeat(indent);
    dumps(
        &v,
        PyFormatter {
            inner: PrettyFormatter::with_indent(indent.as_bytes()),
            compact: false,
        },
    )
}

fn from_json_filter(s: String) -> Result<Value, Error> {
    let v: J = serde_json::from_str(&s).map_err(|e| invalid(format!("from_json: {e}")))?;
    Ok(from_json(&v))
}

fn to_yaml(v: Value, kwargs: Kwargs, default_indent: usize) -> Result<String, Error> {
    let indent = kwargs
        .get::<Option<usize>>("indent")?
        .unwrap_or(default_indent)
        .clamp(1, 64);
    let _ = kwargs.get::<Option<Value>>("default_flow_style")?;
    let _ = kwargs.get::<Option<Value>>("width")?;
    kwargs.assert_all_used()?;
    let options = serde_saphyr::ser_options! {
        indent_step: indent,
    };
    serde_saphyr::to_string_with_options(&sorted(to_json(&v)), options)
        .map_err(|e| invalid(format!("cannot serialize to YAML: {e}")))
}

fn from_yaml(s: String) -> Result<Value, Error> {
    let node = crate::yaml::load_str(&s, std::path::Path::new("<from_yaml>"))
        .map_err(|e| invalid(format!("from_yaml: {e}")))?;
    Ok(from_json(&node.to_json()))
}
