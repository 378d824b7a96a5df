//! `set_fact` and `include_vars`: modules whose whole job is to hand variables back to
//! the executor (through `ModuleResult::facts`), which files them at the right level.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::text;
use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

/// `set_fact: key=value ...`; `cacheable` is accepted and ignored.
pub struct SetFact;

#[async_trait]
impl Module for SetFact {
    fn name(&self) -> &'static str {
        "set_fact"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    async fn run(
        &self,
        _ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let mut facts = args.clone();
        facts.remove("cacheable");
        if facts.is_empty() {
            return Err(ModuleError::Args(
                "No key/value pairs provided, at least one is required for this action to succeed"
                    .into(),
            ));
        }
        if let Some(bad) = facts.keys().find(|k| !valid_name(k)) {
            return Err(ModuleError::Args(format!(
                "The variable name '{bad}' is not valid. Variables must start with a letter or underscore character, and contain only letters, numbers and underscores."
            )));
        }
        let mut r = ModuleResult::ok();
        r.facts = Some(facts);
        Ok(r)
    }
}

fn valid_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `include_vars: file.yml` or `include_vars: {file: x, name: ns}` or `{dir: d}`.
pub struct IncludeVars;

#[async_trait]
impl Module for IncludeVars {
    fn name(&self) -> &'static str {
        "include_vars"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    fn free_form(&self) -> Option<&'static str> {
        Some("file")
    }
    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let mut files: Vec<PathBuf> = Vec::new();
        if let Some(f) = args.get("file").or_else(|| args.get("_raw_params")) {
            let f = text(f);
            let path = ctx
                .find_file("vars", &f)
                .ok_or_else(|| ModuleError::Failed(format!("Could not find or access '{f}'")))?;
            files.push(path);
        } else if let Some(d) = args.get("dir") {
            let d = text(d);
            let dir = ctx.find_file("vars", &d).ok_or_else(|| {
                ModuleError::Failed(format!("Could not find or access directory '{d}'"))
            })?;
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
                .into_iter()
                .filter_map(|e| e.ok())
                .map(|e| e.into_path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yml" | "yaml" | "json")
                    )
                })
                .collect();
            found.sort();
            files = found;
        } else {
            return Err(ModuleError::Args(
                "one of 'file' or 'dir' is required".into(),
            ));
        }
        let mut vars = Map::new();
        for f in &files {
            let node = crate::yaml::load_file(f).map_err(|e| ModuleError::Failed(e.to_string()))?;
            match node.to_json() {
                Value::Object(m) => vars.extend(m),
                Value::Null => {}
                _ => {
                    return Err(ModuleError::Failed(format!(
                        "{}: must be a mapping",
                        f.display()
                    )));
                }
            }
        }
        let facts = match args.get("name") {
            Some(n) => {
                let mut m = Map::new();
                m.insert(text(n), Value::Object(vars));
                m
            }
            None => vars,
        };
        let mut r = ModuleResult::ok();
        r.data.insert(
            "ansible_included_var_files".into(),
            Value::Array(
                files
                    .iter()
                    .map(|f| Value::String(f.display().to_string()))
                    .collect(),
            ),
        );
        r.facts = Some(facts);
        Ok(r)
    }
}
