//! `raw`: sends the line as-is, with no guard, no output trimming and no check mode,
//! for hosts that are not yet fully usable (Ansible uses it to bootstrap Python).

use async_trait::async_trait;
use chrono::Local;
use serde_json::{Map, Value};

use super::{Run, output_result, with_executable};
use crate::modules::args::Args;
use crate::modules::remote::run_with;
use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Raw;

#[async_trait]
impl Module for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn supports_check_mode(&self) -> bool {
        false
    }

    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("raw", args, &["cmd", "executable"])?;
        let raw = match a.opt_str("_raw_params")? {
            Some(r) => r,
            None => a.str("cmd")?,
        };
        let run = Run {
            line: with_executable(&raw, a.opt_str("executable")?.as_deref()),
            shown: Value::String(raw),
            chdir: None,
            creates: None,
            removes: None,
            stdin: None,
            strip_output: false,
        };
        let start = Local::now();
        let out = run_with(ctx, run.line.clone(), None, None).await?;
        Ok(output_result(&run, out, start, Local::now()))
    }
}
