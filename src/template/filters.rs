//! Ansible's filters and tests that minijinja does not have, and overrides where
//! minijinja's built-in differs from Ansible (`bool`).

use minijinja::{Environment, Value};

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", |v: Value| ansible_bool(&v));
}

/// Ansible's `bool`: `yes/on/true/1` (any case) and `True` are true; everything else false.
pub fn ansible_bool(v: &Value) -> bool {
    if let Some(b) = v.as_str() {
        return matches!(
            b.trim().to_ascii_lowercase().as_str(),
            "yes" | "on" | "true" | "1" | "y" | "t"
        );
    }
    if v.is_undefined() || v.is_none() {
        return false;
    }
    v.is_true()
}
