//! `command`: runs a program with arguments, without a shell in between.
//!
//! The argument vector is quoted word by word, so `$HOME`, `*` and `|` reach the program
//! literally, as with Ansible's `command`. Use `shell` for shell features.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Run, execute, stdin_bytes};
use crate::connection::sh_quote;
use crate::modules::args::{Args, split_free_form};
use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Command;

/// Options that may be written inline in a free-form command (`ls creates=/x`).
pub(super) const INLINE: &[&str] = &["creates", "removes", "chdir", "executable", "stdin"];

/// The options `command` and `shell` share, read once for both.
pub(super) struct Common {
    pub raw: Option<String>,
    pub chdir: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub stdin: Option<Vec<u8>>,
    pub executable: Option<String>,
}

impl Common {
    pub fn read(a: &Args<'_>) -> Result<Self, ModuleError> {
        let raw = match a.opt_str("_raw_params")? {
            Some(r) => Some(r),
            None => a.opt_str("cmd")?,
        };
        let (raw, inline) = match raw {
            Some(r) => {
                let (cmd, opts) = split_free_form(&r, INLINE);
                (Some(cmd), opts)
            }
            None => (None, vec![]),
        };
        let pick = |key: &str| -> Result<Option<String>, ModuleError> {
            match a.opt_str(key)? {
                Some(v) => Ok(Some(v)),
                None => Ok(inline
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())),
            }
        };
        Ok(Common {
            raw: raw.filter(|r| !r.is_empty()),
            chdir: pick("chdir")?,
            creates: pick("creates")?,
            removes: pick("removes")?,
            stdin: stdin_bytes(pick("stdin")?, a.bool_or("stdin_add_newline", true)?),
            executable: pick("executable")?,
        })
    }
}

pub(super) const KNOWN: &[&str] = &[
    "cmd",
    "argv",
    "creates",
    "removes",
    "chdir",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
    "expand_argument_vars",
    "executable",
    "warn",
];

#[async_trait]
impl Module for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("command", args, KNOWN)?;
        let c = Common::read(&a)?;
        let argv = a.str_list("argv")?;
        let words = match (&c.raw, argv.is_empty()) {
            (Some(_), false) => {
                return Err(a.fail("only one of 'cmd' (free form) and 'argv' may be given"));
            }
            (Some(raw), true) => shell_words::split(raw)
                .map_err(|e| a.err("cmd", format!("cannot be split into words: {e}")))?,
            (None, false) => argv,
            (None, true) => {
                return Err(a.fail("no command given: use the free form, 'cmd' or 'argv'"));
            }
        };
        let mut line = words
            .iter()
            .map(|w| sh_quote(w))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(exe) = &c.executable {
            // `command`'s `executable` replaces argv[0]'s lookup; exec keeps the pid.
            line = format!("{} {}", sh_quote(exe), line);
        }
        execute(
            ctx,
            Run {
                line,
                shown: Value::from(words),
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
