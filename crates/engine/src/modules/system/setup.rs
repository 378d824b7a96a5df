//! `setup`: gathers host facts (see [`crate::facts`]) and returns them as facts, so the
//! executor merges them into the host's variables. `filter` keeps only matching names.

use async_trait::async_trait;
use globset::{Glob, GlobSetBuilder};
use serde_json::{Map, Value};

use crate::facts;
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Setup;

const KNOWN: &[&str] = &["filter", "gather_subset", "gather_timeout", "fact_path"];

#[async_trait]
impl Module for Setup {
    fn name(&self) -> &'static str {
        "setup"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("setup", args, KNOWN)?;
        let filters = a.str_list("filter")?;
        let mut all = facts::gather(ctx.conn.as_ref()).await?;
        if !filters.is_empty() {
            let mut b = GlobSetBuilder::new();
            for f in &filters {
                let g = Glob::new(f)
                    .map_err(|e| a.err("filter", format!("has a bad pattern '{f}': {e}")))?;
                b.add(g);
            }
            let set = b.build().map_err(|e| a.err("filter", e))?;
            all.remove("ansible_facts");
            // Patterns may be written with or without the `ansible_` prefix.
            all.retain(|k, _| {
                set.is_match(k) || set.is_match(k.strip_prefix("ansible_").unwrap_or(k))
            });
            all = facts::with_facts_view(all);
        }
        let mut r = ModuleResult::ok();
        r.facts = Some(all);
        Ok(r)
    }
}
