//! Naming the undefined variable behind a template error, as Ansible does
//! ("'foo' is undefined").
//!
//! Two sources, because neither covers every case on its own:
//! - At run time, minijinja (in debug mode) remembers where an undefined value came from
//!   and appends "(`foo.bar` is undefined)" to the error; [`from_error_detail`] reads it.
//! - Chainable undefined lets filters and loops swallow a missing variable silently
//!   (`{{ x | upper }}` prints nothing, `{% for i in x %}` loops zero times), where Ansible
//!   fails. [`find_unguarded_missing`] closes that gap statically: it asks minijinja which
//!   variables the template reads, keeps those the render actually looked up (a name in
//!   a branch that did not run is not read, see `Seen` in `mod.rs`), and reports the
//!   first one that is absent from the context and not guarded by `is defined` /
//!   `default` anywhere in the source.

use std::collections::HashSet;
use std::sync::LazyLock;

use minijinja::Value as JValue;
use regex::Regex;

/// Extracts `foo.bar` from minijinja's "… (`foo.bar` is undefined …)" detail.
pub fn from_error_detail(detail: &str) -> Option<String> {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"`([^`]+)` is undefined").expect("static regex"));
    RE.captures(detail).map(|c| c[1].to_string())
}

/// The first variable read by the template (`roots`: the names minijinja reports with
/// `undeclared_variables(false)`) that the context lacks and the source does not guard.
/// Only roots are checked: `a.b` may be a method call (`a.items()`), not a lookup.
pub fn find_unguarded_missing(
    src: &str,
    roots: HashSet<String>,
    ctx: &JValue,
    is_global: impl Fn(&str) -> bool,
) -> Option<String> {
    roots
        .into_iter()
        .filter(|root| {
            !is_global(root)
                && ctx.get_attr(root).unwrap_or_default().is_undefined()
                && !is_guarded(src, root)
        })
        .map(|root| (first_position(src, &root).unwrap_or(usize::MAX), root))
        .min()
        .map(|(_, root)| root)
}

/// True when `name` appears somewhere followed by a guard: `is defined`, `is undefined`,
/// `is not defined`, `is none`, `| default` / `| d(`, or `| mandatory`.
fn is_guarded(src: &str, name: &str) -> bool {
    let pattern = format!(
        r"\b{}\b(?:\s*(?:\.\s*\w+|\[[^\]]*\]))*\s*(?:is\s+(?:not\s+)?(?:defined|undefined|none)\b|\|\s*(?:default|d|mandatory)\b)",
        regex::escape(name)
    );
    Regex::new(&pattern).is_ok_and(|re| re.is_match(src))
}

fn first_position(src: &str, name: &str) -> Option<usize> {
    let re = Regex::new(&format!(r"\b{}\b", regex::escape(name))).ok()?;
    re.find(src).map(|m| m.start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_minijinja_detail() {
        assert_eq!(
            from_error_detail("value of type undefined is not callable (`a.c` is undefined)"),
            Some("a.c".to_string())
        );
        assert_eq!(from_error_detail("something else"), None);
    }

    #[test]
    fn guards_are_recognised() {
        assert!(is_guarded("x is defined and x.y", "x"));
        assert!(is_guarded("x.y | default(1)", "x"));
        assert!(is_guarded("x['k'] is not defined", "x"));
        assert!(!is_guarded("x | upper", "x"));
        assert!(!is_guarded("xx is defined", "x"));
    }
}
