//! `stat`: reports what is at a path (type, mode, owner, size, mtime, checksum) without
//! changing anything; the answer comes back under the `stat` key.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::modules::args::Args;
use crate::modules::remote::{self, CHECKSUM_ALGORITHMS};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Stat;

const KNOWN: &[&str] = &[
    "path",
    "follow",
    "get_checksum",
    "checksum_algorithm",
    "get_mime",
    "get_attributes",
    "get_md5",
];

#[async_trait]
impl Module for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["path"]],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("stat", args, KNOWN)?;
        let path = a.str("path")?;
        let follow = a.bool_or("follow", false)?;
        let get_checksum = a.bool_or("get_checksum", true)?;
        let alg = a.choice("checksum_algorithm", CHECKSUM_ALGORITHMS, "sha1")?;
        let st = remote::stat_path(ctx, &path, follow, get_checksum.then_some(alg)).await?;
        let stat = match st {
            None => json!({"exists": false}),
            Some(s) => s.to_json(&path, get_checksum),
        };
        Ok(ModuleResult::ok().with("stat", stat))
    }
}
