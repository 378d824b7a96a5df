//! Modules that run commands: `command`, `shell`, `raw` and `script`.
//!
//! They share the run itself ([`execute`]): the `creates`/`removes` guard is evaluated in
//! the same shell invocation as the command, so a guarded command costs one round trip,
//! and the result carries Ansible's keys (`rc`, `stdout`, `stdout_lines`, `stderr`,
//! `stderr_lines`, `cmd`, `start`, `end`, `delta`).

pub mod async_job;
pub mod command;
pub mod raw;
pub mod script;
pub mod shell;

use chrono::{DateTime, Local};
use serde_json::Value;

use super::remote::run_with;
use super::{ModuleCtx, ModuleError, ModuleResult};
use crate::connection::sh_quote;

/// Printed instead of running when the `creates`/`removes` guard says "skip".
const SKIP_MARKER: &str = "__spark_openstack_guard_skip__";

/// One command run, as the command-like modules describe it.
pub struct Run {
    /// The shell line to execute.
    pub line: String,
    /// What the result's `cmd` key shows (a list for `command`, a string for `shell`).
    pub shown: Value,
    pub chdir: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub stdin: Option<Vec<u8>>,
    /// Whether the module supports the guard and check mode at all (`raw` does not).
    pub strip_output: bool,
}

/// A shell test that succeeds when glob `pattern` matches an existing path.
fn glob_exists(pattern: &str) -> String {
    // The pattern is left unquoted on purpose so the shell expands it; only characters
    // that would break out of the word are escaped.
    let escaped: String = pattern
        .chars()
        .flat_map(|c| match c {
            ' ' | '\'' | '"' | ';' | '&' | '|' | '$' | '`' | '(' | ')' | '<' | '>' | '\\' => {
                vec!['\\', c]
            }
            _ => vec![c],
        })
        .collect();
    format!("(for f in {escaped}; do [ -e \"$f\" ] || [ -L \"$f\" ] && exit 0; done; exit 1)")
}

/// The guard prefix: prints [`SKIP_MARKER`] and exits when the command must not run.
fn guard(run: &Run) -> String {
    let mut g = String::new();
    if let Some(c) = &run.creates {
        g.push_str(&format!(
            "if {}; then printf {SKIP_MARKER}; exit 0; fi; ",
            glob_exists(c)
        ));
    }
    if let Some(r) = &run.removes {
        g.push_str(&format!(
            "if ! {}; then printf {SKIP_MARKER}; exit 0; fi; ",
            glob_exists(r)
        ));
    }
    g
}

fn timestamp(t: &DateTime<Local>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

fn delta(d: chrono::TimeDelta) -> String {
    let us = d.num_microseconds().unwrap_or(0).max(0);
    let secs = us / 1_000_000;
    format!(
        "{}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        us % 1_000_000
    )
}

fn skipped_result(run: &Run, check: bool) -> ModuleResult {
    let verb = if check { "Would" } else { "Did" };
    let (msg, stdout) = match (&run.creates, &run.removes) {
        (Some(c), _) if !c.is_empty() => (
            format!("{verb} not run command since '{c}' exists"),
            format!("skipped, since {c} exists"),
        ),
        (_, Some(r)) => (
            format!("{verb} not run command since '{r}' does not exist"),
            format!("skipped, since {r} does not exist"),
        ),
        _ => (String::new(), String::new()),
    };
    ModuleResult::ok()
        .with_msg(msg)
        .with("cmd", run.shown.clone())
        .with("rc", 0)
        .with("stdout", stdout.clone())
        .with("stdout_lines", vec![stdout])
        .with("stderr", "")
        .with("stderr_lines", Vec::<String>::new())
}

/// Runs `run` with Ansible's `command` semantics: always changed unless the guard skips
/// it, failed on a non-zero return code, skipped in check mode unless the guard decides.
pub async fn execute(ctx: &ModuleCtx<'_>, run: Run) -> Result<ModuleResult, ModuleError> {
    if let (Some(job), false) = (&ctx.async_job, ctx.check_mode) {
        return async_job::start(ctx, job, &run).await;
    }
    let guard = guard(&run);
    if ctx.check_mode {
        if guard.is_empty() {
            let mut r = ModuleResult::ok().with_msg("Command would have run if not in check mode");
            r.skipped = true;
            return Ok(r.with("cmd", run.shown));
        }
        let out = run_with(ctx, format!("{guard}exit 1"), None, run.chdir.clone()).await?;
        if out.stdout_str() == SKIP_MARKER {
            return Ok(skipped_result(&run, true));
        }
        return Ok(ModuleResult::changed()
            .with_msg("Command would have run if not in check mode")
            .with("cmd", run.shown)
            .with("rc", 0));
    }
    let line = format!("{guard}{}", run.line);
    let start = Local::now();
    let out = run_with(ctx, line, run.stdin.clone(), run.chdir.clone()).await?;
    let end = Local::now();
    if !guard.is_empty() && out.rc == 0 && out.stdout_str() == SKIP_MARKER {
        return Ok(skipped_result(&run, false));
    }
    Ok(output_result(&run, out, start, end))
}

/// Turns an exit status and output into the registered result.
pub fn output_result(
    run: &Run,
    out: crate::connection::ExecOutput,
    start: DateTime<Local>,
    end: DateTime<Local>,
) -> ModuleResult {
    let mut stdout = out.stdout_str();
    let mut stderr = out.stderr_str();
    if run.strip_output {
        for s in [&mut stdout, &mut stderr] {
            if s.ends_with('\n') {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
            }
        }
    }
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let mut r = ModuleResult::changed()
        .with("cmd", run.shown.clone())
        .with("rc", out.rc)
        .with("stdout_lines", lines(&stdout))
        .with("stderr_lines", lines(&stderr))
        .with("stdout", stdout)
        .with("stderr", stderr)
        .with("start", timestamp(&start))
        .with("end", timestamp(&end))
        .with("delta", delta(end - start));
    // Ansible's command module always returns a msg: empty unless the command failed.
    r.msg = Some(if out.rc != 0 {
        r.failed = true;
        "non-zero return code".into()
    } else {
        String::new()
    });
    r
}

/// Wraps `line` to run under another interpreter (`executable: /bin/bash`).
pub fn with_executable(line: &str, executable: Option<&str>) -> String {
    match executable {
        Some(exe) => format!("{} -c {}", sh_quote(exe), sh_quote(line)),
        None => line.to_string(),
    }
}

/// The `stdin` argument as bytes, with the trailing newline Ansible adds by default.
pub fn stdin_bytes(stdin: Option<String>, add_newline: bool) -> Option<Vec<u8>> {
    stdin.map(|mut s| {
        if add_newline {
            s.push('\n');
        }
        s.into_bytes()
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn deltas_look_like_pythons_timedelta() {
        assert_eq!(
            delta(chrono::TimeDelta::microseconds(3_723_000_001)),
            "1:02:03.000001"
        );
    }

    #[test]
    fn glob_escapes_spaces_but_keeps_wildcards() {
        assert_eq!(
            glob_exists("/a b/*.txt"),
            "(for f in /a\\ b/*.txt; do [ -e \"$f\" ] || [ -L \"$f\" ] && exit 0; done; exit 1)"
        );
    }
}

#[cfg(test)]
mod tests;
