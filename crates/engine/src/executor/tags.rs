//! `--tags` / `--skip-tags`, as Ansible's `Taggable.evaluate_tags`, including the special
//! tags `always`, `never`, `tagged`, `untagged` and `all`.

/// Whether a task with `tags` runs under `only` (empty = `all`) and `skip`.
pub fn should_run(tags: &[String], only: &[String], skip: &[String]) -> bool {
    let has = |t: &str| tags.iter().any(|x| x == t);
    let all = ["all".to_string()];
    let only = if only.is_empty() { &all[..] } else { only };
    let in_only = |t: &str| only.iter().any(|x| x == t);
    let run = has("always")
        || (in_only("all") && !has("never"))
        || tags.iter().any(|t| in_only(t))
        || (in_only("tagged") && !tags.is_empty() && !has("never"))
        || (in_only("untagged") && tags.is_empty());
    if !run || skip.is_empty() {
        return run;
    }
    let in_skip = |t: &str| skip.iter().any(|x| x == t);
    if in_skip("all") {
        return has("always") && !in_skip("always");
    }
    if tags.iter().any(|t| in_skip(t)) {
        return false;
    }
    if in_skip("tagged") && !tags.is_empty() {
        return false;
    }
    !(in_skip("untagged") && tags.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn special_tags() {
        assert!(should_run(&[], &[], &[]));
        assert!(!should_run(&v(&["never"]), &[], &[]));
        assert!(should_run(&v(&["never", "debug"]), &v(&["debug"]), &[]));
        assert!(should_run(&v(&["always"]), &v(&["x"]), &[]));
        assert!(!should_run(&v(&["always"]), &[], &v(&["always"])));
        assert!(!should_run(&v(&["a"]), &v(&["b"]), &[]));
        assert!(should_run(&[], &v(&["untagged"]), &[]));
        assert!(!should_run(&v(&["a"]), &v(&["untagged"]), &[]));
        assert!(should_run(&v(&["a"]), &v(&["tagged"]), &[]));
        assert!(!should_run(&v(&["a"]), &[], &v(&["a"])));
        assert!(should_run(&v(&["always"]), &[], &v(&["all"])));
    }
}
