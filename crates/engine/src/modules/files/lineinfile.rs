//! `lineinfile`: makes sure one line is present (or absent) in a text file, located by
//! `regexp`, `search_string` or the line itself, following Ansible's rules exactly:
//! the last match is replaced; otherwise the line goes after/before the last match of
//! `insertafter`/`insertbefore` (`firstmatch` picks the first), or at EOF/BOF.
//!
//! Patterns use Rust's `regex` syntax, which matches Python's for everything except
//! look-around and backreferences inside the pattern.

use async_trait::async_trait;
use regex::Regex;
use serde_json::{Map, Value};

use super::{finish_edit, read_text};
use crate::modules::args::Args;
use crate::modules::remote::WriteOpts;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::filters::strings::python_replacement;

pub struct LineInFile;

const KNOWN: &[&str] = &[
    "path",
    "dest",
    "destfile",
    "name",
    "regexp",
    "regex",
    "search_string",
    "line",
    "value",
    "state",
    "insertafter",
    "insertbefore",
    "create",
    "backrefs",
    "backup",
    "firstmatch",
    "mode",
    "owner",
    "group",
    "validate",
    "unsafe_writes",
];

/// How the wanted line is located.
pub struct Spec {
    pub regexp: Option<Regex>,
    pub search_string: Option<String>,
    pub line: String,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

/// Puts the line in `text`; returns the new text and Ansible's message.
pub fn present(text: &str, spec: &Spec) -> Result<(String, &'static str), String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let bare = |l: &str| l.trim_end_matches(['\r', '\n']).to_string();
    let ins_re = match (&spec.insertafter, &spec.insertbefore) {
        (Some(a), _) if a != "EOF" && a != "BOF" => {
            Some(Regex::new(a).map_err(|e| format!("insertafter: {e}"))?)
        }
        (None, Some(b)) if b != "BOF" => {
            Some(Regex::new(b).map_err(|e| format!("insertbefore: {e}"))?)
        }
        _ => None,
    };
    let (mut found, mut insert_at) = (None::<usize>, None::<usize>);
    let mut replacement = None;
    if let Some(re) = &spec.regexp {
        for (i, l) in lines.iter().enumerate() {
            if let Some(caps) = re.captures(&bare(l)) {
                found = Some(i);
                if spec.backrefs {
                    let mut s = String::new();
                    caps.expand(&python_replacement(&spec.line), &mut s);
                    replacement = Some(s);
                }
                if spec.firstmatch {
                    break;
                }
            }
        }
    } else if let Some(ss) = &spec.search_string {
        for (i, l) in lines.iter().enumerate() {
            if l.contains(ss.as_str()) {
                found = Some(i);
                if spec.firstmatch {
                    break;
                }
            }
        }
    }
    if found.is_none() {
        for (i, l) in lines.iter().enumerate() {
            if bare(l) == spec.line {
                found = Some(i);
            } else if let Some(re) = &ins_re
                && re.is_match(&bare(l))
            {
                if spec.firstmatch && insert_at.is_some() {
                    continue;
                }
                insert_at = Some(if spec.insertafter.is_some() { i + 1 } else { i });
            }
        }
    }
    let new_line = format!("{}\n", replacement.as_deref().unwrap_or(&spec.line));
    if let Some(i) = found {
        if lines[i] != new_line {
            lines[i] = new_line;
            return Ok((lines.concat(), "line replaced"));
        }
        return Ok((lines.concat(), ""));
    }
    if spec.backrefs {
        return Ok((lines.concat(), ""));
    }
    let at_bof =
        spec.insertbefore.as_deref() == Some("BOF") || spec.insertafter.as_deref() == Some("BOF");
    if at_bof {
        lines.insert(0, new_line);
    } else if let (Some(i), false) = (insert_at, spec.insertafter.as_deref() == Some("EOF")) {
        if spec.insertafter.is_some() && lines.get(i).is_some_and(|l| bare(l) == spec.line) {
            return Ok((lines.concat(), ""));
        }
        lines.insert(i, new_line);
    } else {
        if let Some(last) = lines.last_mut()
            && !last.ends_with('\n')
        {
            last.push('\n');
        }
        lines.push(new_line);
    }
    Ok((lines.concat(), "line added"))
}

/// Removes every line matching `regexp`, `search_string` or equal to `line`.
pub fn absent(text: &str, spec: &Spec) -> (String, usize) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let matches = |l: &str| {
        let b = l.trim_end_matches(['\r', '\n']);
        match (&spec.regexp, &spec.search_string) {
            (Some(re), _) => re.is_match(b),
            (None, Some(ss)) => b.contains(ss.as_str()),
            (None, None) => b == spec.line,
        }
    };
    let kept: Vec<&str> = lines.iter().copied().filter(|l| !matches(l)).collect();
    (kept.concat(), lines.len() - kept.len())
}

#[async_trait]
impl Module for LineInFile {
    fn name(&self) -> &'static str {
        "lineinfile"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(super::in_file_spec(KNOWN))
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("lineinfile", args, KNOWN)?;
        let path = ["path", "dest", "destfile", "name"]
            .iter()
            .find_map(|k| a.opt_str(k).ok().flatten())
            .ok_or_else(|| a.err("path", "is required"))?;
        let state = a.choice("state", &["present", "absent"], "present")?;
        let pattern = match a.opt_str("regexp")? {
            Some(p) => Some(p),
            None => a.opt_str("regex")?,
        };
        let regexp = pattern
            .map(|p| {
                Regex::new(&p)
                    .map_err(|e| a.err("regexp", format!("is not a valid regular expression: {e}")))
            })
            .transpose()?;
        let line = match a.opt_str("line")? {
            Some(l) => l,
            None => a.opt_str("value")?.unwrap_or_default(),
        };
        let spec = Spec {
            search_string: a.opt_str("search_string")?,
            line,
            insertafter: a.opt_str("insertafter")?,
            insertbefore: a.opt_str("insertbefore")?,
            backrefs: a.bool_or("backrefs", false)?,
            firstmatch: a.bool_or("firstmatch", false)?,
            regexp,
        };
        if state == "present" && !a.has("line") && !a.has("value") {
            return Err(a.err("line", "is required with state=present"));
        }
        if spec.backrefs && spec.regexp.is_none() {
            return Err(a.err("backrefs", "requires 'regexp'"));
        }
        if state == "absent"
            && spec.regexp.is_none()
            && spec.search_string.is_none()
            && !a.has("line")
        {
            return Err(
                a.fail("one of 'line', 'regexp' or 'search_string' is required with state=absent")
            );
        }
        let opts = WriteOpts {
            mode: a.opt_mode("mode")?,
            owner: a.opt_str("owner")?,
            group: a.opt_str("group")?,
            backup: a.bool_or("backup", false)?,
        };
        let create = a.bool_or("create", false)?;
        let file = read_text(ctx, "lineinfile", &path).await?;
        if file.stat.is_none() {
            if state == "absent" {
                return Ok(ModuleResult::ok()
                    .with_msg("file not present")
                    .with("found", 0));
            }
            if !create {
                return Ok(
                    ModuleResult::failed(format!("Destination {path} does not exist !"))
                        .with("rc", 257),
                );
            }
        }
        match state {
            "present" => {
                let (text, msg) = present(&file.text, &spec).map_err(|e| a.fail(e))?;
                finish_edit(ctx, &path, &file, &text, msg, &opts).await
            }
            _ => {
                let (text, n) = absent(&file.text, &spec);
                let msg = if n > 0 {
                    format!("{n} line(s) removed")
                } else {
                    String::new()
                };
                Ok(finish_edit(ctx, &path, &file, &text, &msg, &opts)
                    .await?
                    .with("found", n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(line: &str) -> Spec {
        Spec {
            regexp: None,
            search_string: None,
            line: line.into(),
            insertafter: None,
            insertbefore: None,
            backrefs: false,
            firstmatch: false,
        }
    }

    #[test]
    fn replaces_the_last_regexp_match() {
        let mut s = spec("port=2");
        s.regexp = Some(Regex::new("^port=").unwrap());
        let (t, m) = present("a\nport=1\nport=1\n", &s).unwrap();
        assert_eq!((t.as_str(), m), ("a\nport=1\nport=2\n", "line replaced"));
        let (t2, m2) = present(&t, &s).unwrap();
        assert_eq!((t2.as_str(), m2), ("a\nport=1\nport=2\n", ""));
    }

    #[test]
    fn inserts_after_and_before_patterns_and_at_bof() {
        let mut s = spec("new");
        s.insertafter = Some("^b".into());
        assert_eq!(present("a\nb\nc\n", &s).unwrap().0, "a\nb\nnew\nc\n");
        let mut s = spec("new");
        s.insertbefore = Some("^b".into());
        assert_eq!(present("a\nb\nc\n", &s).unwrap().0, "a\nnew\nb\nc\n");
        let mut s = spec("new");
        s.insertbefore = Some("BOF".into());
        assert_eq!(present("a\n", &s).unwrap().0, "new\na\n");
        // No trailing newline: one is added before appending.
        assert_eq!(present("a", &spec("b")).unwrap().0, "a\nb\n");
    }

    #[test]
    fn backrefs_expand_python_groups_and_do_nothing_without_a_match() {
        let mut s = spec(r"\1=on # \g<c>");
        s.regexp = Some(Regex::new(r"^(\w+)=off (?P<c>\w+)").unwrap());
        s.backrefs = true;
        assert_eq!(present("x=off y\n", &s).unwrap().0, "x=on # y\n");
        // `\n` in a single-quoted YAML line is a newline, as Python's `Match.expand` makes it.
        let mut s = spec(r"# \1 was off\n\1=on");
        s.regexp = Some(Regex::new(r"^(\w+)=off").unwrap());
        s.backrefs = true;
        assert_eq!(present("x=off\n", &s).unwrap().0, "# x was off\nx=on\n");
        assert_eq!(
            present("nothing\n", &s).unwrap(),
            ("nothing\n".to_string(), "")
        );
    }

    #[test]
    fn firstmatch_replaces_the_first_match() {
        let mut s = spec("port=2");
        s.regexp = Some(Regex::new("^port=").unwrap());
        s.firstmatch = true;
        assert_eq!(
            present("port=1\nport=1\n", &s).unwrap().0,
            "port=2\nport=1\n"
        );
    }

    #[test]
    fn absent_removes_every_match() {
        let (t, n) = absent("a\nb\na\n", &spec("a"));
        assert_eq!((t.as_str(), n), ("b\n", 2));
    }
}
