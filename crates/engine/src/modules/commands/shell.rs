//! `shell`: runs a command line through `/bin/sh` (or `executable`), so pipes, globs,
//! redirections and variables work.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::command::{Common, KNOWN};
use super::{Run, execute, with_executable};
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Shell;

#[async_trait]
impl Module for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            ..Default::default()
        })
    }

    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("shell", args, KNOWN)?;
        let c = Common::read(&a)?;
        let raw = c
            .raw
            .ok_or_else(|| a.fail("no command given: use the free form or 'cmd'"))?;
        execute(
            ctx,
            Run {
                line: with_executable(&raw, c.executable.as_deref()),
                shown: Value::String(raw),
                chdir: c.chdir,
                creates: c.creates,
                removes: c.removes,
                stdin: c.stdin,
                strip_output: true,
            },
        )
        .await
    }
}
