//! `blockinfile`: keeps a block of lines between two marker lines, replacing the block
//! in place when the markers exist, else inserting it at `insertafter`/`insertbefore`
//! (last match) or EOF, with Ansible's messages ("Block inserted", "Block removed").

use async_trait::async_trait;
use regex::Regex;
use serde_json::{Map, Value};

use super::{finish_edit, read_text};
use crate::modules::args::Args;
use crate::modules::remote::WriteOpts;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct BlockInFile;

const KNOWN: &[&str] = &[
    "path",
    "dest",
    "destfile",
    "name",
    "block",
    "content",
    "marker",
    "marker_begin",
    "marker_end",
    "state",
    "insertafter",
    "insertbefore",
    "create",
    "backup",
    "mode",
    "owner",
    "group",
    "append_newline",
    "prepend_newline",
    "validate",
    "unsafe_writes",
];

pub struct Spec {
    pub begin: String,
    pub end: String,
    /// Lines of the block; empty removes the block.
    pub block: Vec<String>,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
}

/// Applies the block to `original` (`None` for a file that does not exist yet).
pub fn apply(original: Option<&str>, spec: &Spec) -> Result<(String, &'static str), String> {
    let text = original.unwrap_or("");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let blocklines: Vec<String> = if spec.block.is_empty() {
        vec![]
    } else {
        std::iter::once(spec.begin.clone())
            .chain(spec.block.iter().cloned())
            .chain(std::iter::once(spec.end.clone()))
            .collect()
    };
    let n0 = lines.iter().rposition(|l| *l == spec.begin);
    let n1 = lines.iter().rposition(|l| *l == spec.end);
    let at = match (n0, n1) {
        (Some(a), Some(b)) => {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            lines.drain(lo..=hi);
            lo
        }
        _ => {
            let pattern = match (&spec.insertafter, &spec.insertbefore) {
                (Some(a), _) if a != "EOF" => Some((a, true)),
                (None, Some(b)) if b != "BOF" => Some((b, false)),
                _ => None,
            };
            match pattern {
                Some((p, after)) => {
                    let re =
                        Regex::new(p).map_err(|e| format!("invalid insert pattern '{p}': {e}"))?;
                    match lines.iter().rposition(|l| re.is_match(l)) {
                        Some(i) if after => i + 1,
                        Some(i) => i,
                        None => lines.len(),
                    }
                }
                None if spec.insertbefore.as_deref() == Some("BOF") => 0,
                None => lines.len(),
            }
        }
    };
    let had_block = n0.is_some() && n1.is_some();
    lines.splice(at..at, blocklines.iter().cloned());
    let mut result = lines.join("\n");
    if !lines.is_empty() && (original.is_none() || text.ends_with('\n') || text.is_empty()) {
        result.push('\n');
    }
    let msg = if original == Some(result.as_str()) {
        ""
    } else if original.is_none() {
        "File created"
    } else if blocklines.is_empty() {
        if had_block { "Block removed" } else { "" }
    } else {
        "Block inserted"
    };
    Ok((result, msg))
}

#[async_trait]
impl Module for BlockInFile {
    fn name(&self) -> &'static str {
        "blockinfile"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(super::in_file_spec(KNOWN))
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("blockinfile", args, KNOWN)?;
        let path = ["path", "dest", "destfile", "name"]
            .iter()
            .find_map(|k| a.opt_str(k).ok().flatten())
            .ok_or_else(|| a.err("path", "is required"))?;
        let state = a.choice("state", &["present", "absent"], "present")?;
        let marker = a.str_or("marker", "# {mark} ANSIBLE MANAGED BLOCK")?;
        let block = match a.opt_str("block")? {
            Some(b) => b,
            None => a.opt_str("content")?.unwrap_or_default(),
        };
        let spec = Spec {
            begin: marker.replace("{mark}", &a.str_or("marker_begin", "BEGIN")?),
            end: marker.replace("{mark}", &a.str_or("marker_end", "END")?),
            block: if state == "absent" {
                vec![]
            } else {
                block.lines().map(str::to_string).collect()
            },
            insertafter: a.opt_str("insertafter")?,
            insertbefore: a.opt_str("insertbefore")?,
        };
        let opts = WriteOpts {
            mode: a.opt_mode("mode")?,
            owner: a.opt_str("owner")?,
            group: a.opt_str("group")?,
            backup: a.bool_or("backup", false)?,
        };
        let file = read_text(ctx, "blockinfile", &path).await?;
        if file.stat.is_none() {
            if state == "absent" || spec.block.is_empty() {
                return Ok(ModuleResult::ok().with_msg(""));
            }
            if !a.bool_or("create", false)? {
                return Ok(
                    ModuleResult::failed(format!("Path {path} does not exist !")).with("rc", 257),
                );
            }
        }
        let original = file.stat.as_ref().map(|_| file.text.as_str());
        let (text, msg) = apply(original, &spec).map_err(|e| a.fail(e))?;
        finish_edit(ctx, &path, &file, &text, msg, &opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(block: &[&str]) -> Spec {
        Spec {
            begin: "# BEGIN".into(),
            end: "# END".into(),
            block: block.iter().map(|s| s.to_string()).collect(),
            insertafter: None,
            insertbefore: None,
        }
    }

    #[test]
    fn inserts_replaces_and_removes() {
        let (t, m) = apply(Some("a\n"), &spec(&["x", "y"])).unwrap();
        assert_eq!(
            (t.as_str(), m),
            ("a\n# BEGIN\nx\ny\n# END\n", "Block inserted")
        );
        let (t2, m2) = apply(Some(&t), &spec(&["x", "y"])).unwrap();
        assert_eq!((t2.as_str(), m2), (t.as_str(), ""));
        let (t3, _) = apply(Some(&t), &spec(&["z"])).unwrap();
        assert_eq!(t3, "a\n# BEGIN\nz\n# END\n");
        let (t4, m4) = apply(Some(&t3), &spec(&[])).unwrap();
        assert_eq!((t4.as_str(), m4), ("a\n", "Block removed"));
    }

    #[test]
    fn insert_positions() {
        let mut s = spec(&["x"]);
        s.insertbefore = Some("BOF".into());
        assert_eq!(apply(Some("a\n"), &s).unwrap().0, "# BEGIN\nx\n# END\na\n");
        let mut s = spec(&["x"]);
        s.insertafter = Some("^a".into());
        assert_eq!(
            apply(Some("a\nb\n"), &s).unwrap().0,
            "a\n# BEGIN\nx\n# END\nb\n"
        );
        assert_eq!(
            apply(None, &spec(&["x"])).unwrap(),
            ("# BEGIN\nx\n# END\n".to_string(), "File created")
        );
    }
}
