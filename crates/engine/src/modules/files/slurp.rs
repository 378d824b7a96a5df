//! `slurp`: returns a remote file's content, base64-encoded, for use in later tasks.

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Map, Value};

use crate::modules::args::Args;
use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Slurp;

#[async_trait]
impl Module for Slurp {
    fn name(&self) -> &'static str {
        "slurp"
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("slurp", args, &["src", "path"])?;
        let src = match a.opt_str("src")? {
            Some(s) => s,
            None => a.str("path").map_err(|_| a.err("src", "is required"))?,
        };
        let data = match ctx.conn.get(&src, ctx.become_.as_ref()).await {
            Ok(d) => d,
            Err(e) if e.is_unreachable() => return Err(e.into()),
            Err(e) => {
                return Ok(ModuleResult::failed(format!(
                    "file not found or unreadable: {src} ({e})"
                )));
            }
        };
        Ok(ModuleResult::ok()
            .with(
                "content",
                base64::engine::general_purpose::STANDARD.encode(data),
            )
            .with("encoding", "base64")
            .with("source", src))
    }
}
