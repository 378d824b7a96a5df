//! Modules that run on the controller and steer the play: `debug`, `set_fact`, `assert`,
//! `fail`, `pause`, `include_vars` and `add_host`. (`meta` and the `include_*`/`import_*` actions are
//! the executor's own.)

pub mod add_host;
mod vars;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Module, ModuleCtx, ModuleError, ModuleResult};

pub use vars::{IncludeVars, SetFact};

/// The control modules, for `Registry::builtin()`.
pub fn all() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(Debug),
        Arc::new(SetFact),
        Arc::new(Assert),
        Arc::new(Fail),
        Arc::new(Pause),
        Arc::new(IncludeVars),
        Arc::new(add_host::AddHost),
    ]
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `debug: msg=...` or `debug: var=name`.
pub struct Debug;

#[async_trait]
impl Module for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        if let Some(var) = args.get("var") {
            let name = text(var);
            let value = if crate::template::is_secret_name(&name) {
                Value::String("VALUE HIDDEN (secret variable name)".into())
            } else {
                match ctx.templar.eval_expr(&name, ctx.context) {
                    Ok(v) if !v.is_undefined() => crate::template::to_json(&v),
                    _ => Value::String("VARIABLE IS NOT DEFINED!".into()),
                }
            };
            return Ok(ModuleResult::ok().with(&name, value));
        }
        let msg = args
            .get("msg")
            .cloned()
            .unwrap_or_else(|| Value::String("Hello world!".into()));
        let mut r = ModuleResult::ok();
        // `msg` may be a list or mapping; keep its type in the result.
        r.data.insert("msg".into(), msg);
        Ok(r)
    }
}

/// `assert: that=[...]`: every expression must hold.
pub struct Assert;

#[async_trait]
impl Module for Assert {
    fn name(&self) -> &'static str {
        "assert"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let that: Vec<Value> = match args.get("that") {
            Some(Value::Array(a)) => a.clone(),
            Some(other) => vec![other.clone()],
            None => return Err(ModuleError::Args("missing required arguments: that".into())),
        };
        let jctx = ctx.context;
        for cond in &that {
            let expr = match cond {
                Value::Bool(b) => {
                    if *b {
                        "True".to_string()
                    } else {
                        "False".to_string()
                    }
                }
                other => text(other),
            };
            let ok = ctx.templar.eval_condition(&expr, jctx).map_err(|e| {
                ModuleError::Failed(format!(
                    "The conditional check '{expr}' failed. The error was: {}",
                    e.msg
                ))
            })?;
            if !ok {
                let msg = args
                    .get("fail_msg")
                    .or_else(|| args.get("msg"))
                    .map(text)
                    .unwrap_or_else(|| "Assertion failed".into());
                let mut r = ModuleResult::failed(msg)
                    .with("assertion", expr)
                    .with("evaluated_to", false);
                r.changed = false;
                return Ok(r);
            }
        }
        let msg = args
            .get("success_msg")
            .map(text)
            .unwrap_or_else(|| "All assertions passed".into());
        Ok(ModuleResult::ok().with_msg(msg))
    }
}

/// `fail: msg=...`.
pub struct Fail;

#[async_trait]
impl Module for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    async fn run(
        &self,
        _ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let msg = args
            .get("msg")
            .map(text)
            .unwrap_or_else(|| "Failed as requested from task".into());
        Ok(ModuleResult::failed(msg))
    }
}

/// `pause: seconds=N` / `minutes=N` (no interactive prompt).
pub struct Pause;

#[async_trait]
impl Module for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }
    async fn run(
        &self,
        _ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let num = |k: &str| -> Result<Option<f64>, ModuleError> {
            match args.get(k) {
                None => Ok(None),
                Some(v) => text(v)
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ModuleError::Args(format!("'{k}' must be a number"))),
            }
        };
        let secs = num("seconds")?.unwrap_or(0.0) + num("minutes")?.unwrap_or(0.0) * 60.0;
        if secs <= 0.0 && args.contains_key("prompt") {
            return Err(ModuleError::Args(
                "interactive pause prompts are not supported; give 'seconds'".into(),
            ));
        }
        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
        Ok(ModuleResult::ok()
            .with("delta", secs as i64)
            .with("stdout", format!("Paused for {secs} seconds")))
    }
}
