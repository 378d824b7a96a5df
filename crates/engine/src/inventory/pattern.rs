//! Host patterns, as `ansible-playbook` reads `hosts:` and `--limit`:
//! `all`/`*`, group and host names, `a:b` / `a,b` (union), `a:&b` (intersection),
//! `a:!b` (exclusion), globs (`web*`), regexes (`~web\d+`, matched at the start),
//! subscripts (`group[0]`, `group[1:3]` inclusive, `group[-1]`), and `@file` for limits.
//! An element that matches nothing is skipped with Ansible's warning.

use globset::GlobBuilder;

use super::{Inventory, InventoryError, LOCALHOST_NAMES};

/// The hosts a pattern selected, and the warnings for elements that matched nothing.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    pub hosts: Vec<String>,
    pub warnings: Vec<String>,
}

/// Splits on `,`, or else on `:` outside subscripts (`web[1:2]` stays whole).
pub fn split_pattern(pattern: &str) -> Vec<String> {
    if pattern.contains(',') {
        return pattern
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in pattern.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

impl Inventory {
    /// Evaluates a host pattern against this inventory.
    pub fn select(&self, pattern: &str) -> Result<Selection, InventoryError> {
        let parts = split_pattern(pattern);
        let mut sel = Selection::default();
        let (mut plain, mut inter, mut excl) = (Vec::new(), Vec::new(), Vec::new());
        for p in &parts {
            if let Some(x) = p.strip_prefix('&') {
                inter.push(x.to_string());
            } else if let Some(x) = p.strip_prefix('!') {
                excl.push(x.to_string());
            } else {
                plain.push(p.clone());
            }
        }
        if plain.is_empty() {
            plain.push("all".into());
        }
        for p in &plain {
            for h in self.match_one(p, &mut sel.warnings)? {
                if !sel.hosts.contains(&h) {
                    sel.hosts.push(h);
                }
            }
        }
        for p in &inter {
            let that = self.match_one(p, &mut sel.warnings)?;
            sel.hosts.retain(|h| that.contains(h));
        }
        for p in &excl {
            let that = self.match_one(p, &mut sel.warnings)?;
            sel.hosts.retain(|h| !that.contains(h));
        }
        Ok(sel)
    }

    /// Restricts `selection` to the hosts `limit` selects (`--limit`). `@path` reads one
    /// pattern per line from a file (as written by a `.retry` file).
    pub fn apply_limit(
        &self,
        selection: &mut Selection,
        limit: &str,
    ) -> Result<(), InventoryError> {
        let mut allowed = Vec::new();
        for part in limit.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(file) = part.strip_prefix('@') {
                let text = std::fs::read_to_string(file).map_err(|e| InventoryError::Io {
                    path: file.into(),
                    msg: format!("cannot read --limit file: {e}"),
                })?;
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let s = self.select(line)?;
                    selection.warnings.extend(s.warnings);
                    allowed.extend(s.hosts);
                }
            } else {
                let s = self.select(part)?;
                selection.warnings.extend(s.warnings);
                allowed.extend(s.hosts);
            }
        }
        selection.hosts.retain(|h| allowed.contains(h));
        Ok(())
    }

    fn match_one(
        &self,
        pattern: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<String>, InventoryError> {
        let (base, subscript) = split_subscript(pattern);
        let mut hosts = self.enumerate(base)?;
        if hosts.is_empty() && base != "all" {
            warnings.push(format!(
                "Could not match supplied host pattern, ignoring: {base}"
            ));
        }
        if let Some(sub) = subscript {
            hosts = apply_subscript(&hosts, sub).ok_or_else(|| {
                InventoryError::Invalid(format!("invalid host pattern subscript: {pattern}"))
            })?;
        }
        Ok(hosts)
    }

    fn enumerate(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        if pattern == "all" || pattern == "*" {
            return Ok(self.group_hosts("all"));
        }
        let matcher = Matcher::new(pattern)?;
        let mut out: Vec<String> = Vec::new();
        let groups: Vec<&String> = self.groups.keys().filter(|g| matcher.is_match(g)).collect();
        for g in &groups {
            for h in self.group_hosts(g) {
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
        let special = pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']);
        if groups.is_empty() || special {
            for h in self.hosts.keys().filter(|h| matcher.is_match(h)) {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
        }
        if out.is_empty() && LOCALHOST_NAMES.contains(&pattern) {
            out.push(pattern.to_string());
        }
        Ok(out)
    }
}

enum Matcher {
    Exact(String),
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
}

impl Matcher {
    fn new(pattern: &str) -> Result<Matcher, InventoryError> {
        let bad = |e: String| {
            InventoryError::Invalid(format!("Invalid host list pattern: {pattern}: {e}"))
        };
        if let Some(re) = pattern.strip_prefix('~') {
            return regex::Regex::new(&format!(r"\A(?:{re})"))
                .map(Matcher::Regex)
                .map_err(|e| bad(e.to_string()));
        }
        if pattern.contains(['*', '?', '[']) {
            return GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map(|g| Matcher::Glob(g.compile_matcher()))
                .map_err(|e| bad(e.to_string()));
        }
        Ok(Matcher::Exact(pattern.to_string()))
    }

    fn is_match(&self, name: &str) -> bool {
        match self {
            Matcher::Exact(p) => p == name,
            Matcher::Glob(g) => g.is_match(name),
            Matcher::Regex(r) => r.is_match(name),
        }
    }
}

/// `web[1:3]` → (`web`, `1:3`); a glob class like `web[12]` has no `:`/digits-only form
/// and is left to the glob.
fn split_subscript(pattern: &str) -> (&str, Option<&str>) {
    if pattern.starts_with('~') || !pattern.ends_with(']') {
        return (pattern, None);
    }
    let Some(open) = pattern.rfind('[') else {
        return (pattern, None);
    };
    let inner = &pattern[open + 1..pattern.len() - 1];
    let is_subscript = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '-')
        && inner.matches(':').count() <= 1;
    if is_subscript {
        (&pattern[..open], Some(inner))
    } else {
        (pattern, None)
    }
}

fn apply_subscript(hosts: &[String], sub: &str) -> Option<Vec<String>> {
    let len = hosts.len() as i64;
    let idx = |s: &str, default: i64| -> Option<i64> {
        if s.is_empty() {
            return Some(default);
        }
        let i: i64 = s.parse().ok()?;
        Some(if i < 0 { len + i } else { i })
    };
    match sub.split_once(':') {
        None => {
            let i = idx(sub, 0)?;
            Some(
                hosts
                    .get(usize::try_from(i).ok()?)
                    .cloned()
                    .into_iter()
                    .collect(),
            )
        }
        Some((a, b)) => {
            let start = idx(a, 0)?.max(0);
            let end = idx(b, len - 1)?.min(len - 1);
            if start > end {
                return Some(Vec::new());
            }
            Some(hosts[start as usize..=end as usize].to_vec())
        }
    }
}
