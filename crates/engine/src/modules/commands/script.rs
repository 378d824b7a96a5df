//! `script`: uploads a controller-side script and runs it on the host.
//!
//! Upload, run and clean-up happen in one shell invocation: the script travels on stdin
//! into a private temp file, so the cost is one round trip like `command`.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::command::{Common, KNOWN};
use super::{Run, execute};
use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Script;

#[async_trait]
impl Module for Script {
    fn name(&self) -> &'static str {
        "script"
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
        let a = Args::new("script", args, KNOWN)?;
        let c = Common::read(&a)?;
        let raw = c.raw.ok_or_else(|| {
            a.fail("no script given: use the free form ('script: run.sh arg') or 'cmd'")
        })?;
        let words = shell_words::split(&raw)
            .map_err(|e| a.err("cmd", format!("cannot be split into words: {e}")))?;
        let (path, script_args) = words
            .split_first()
            .ok_or_else(|| a.fail("no script given"))?;
        let local = ctx.find_file("files", path).ok_or_else(|| {
            a.fail(format!(
                "could not find script '{path}' in files/ or the playbook directory"
            ))
        })?;
        let body = std::fs::read(&local)
            .map_err(|e| a.fail(format!("cannot read {}: {e}", local.display())))?;
        let interpreter = match &c.executable {
            Some(exe) => format!("{} ", sh_quote(exe)),
            None => String::new(),
        };
        let quoted: Vec<String> = script_args.iter().map(|w| sh_quote(w)).collect();
        let line = format!(
            "t=$(mktemp) || exit 1; cat > \"$t\"; chmod 700 \"$t\"; {interpreter}\"$t\" {} </dev/null; rc=$?; rm -f \"$t\"; exit $rc",
            quoted.join(" ")
        );
        let guarded = c.creates.is_some() || c.removes.is_some();
        let mut r = execute(
            ctx,
            Run {
                line,
                shown: Value::String(raw.clone()),
                chdir: c.chdir,
                creates: c.creates,
                removes: c.removes,
                stdin: Some(body),
                strip_output: true,
            },
        )
        .await?;
        // Unlike `command`, Ansible's script action reports a creates/removes skip as
        // skipped (it counts in the recap's skipped).
        if guarded && !r.changed && !r.failed {
            r.skipped = true;
        }
        Ok(r)
    }
}
