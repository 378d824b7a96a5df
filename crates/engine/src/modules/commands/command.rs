//! `command`: runs a program with arguments, without a shell in between.
//!
//! The argument vector is quoted word by word, so `*`, `|` and `>` reach the program
//! literally, as with Ansible's `command`; like ansible-core's `expand_argument_vars`
//! (on by default), `$VAR`, `${VAR}` and a leading `~` are expanded on the host, and an
//! unset variable stays as written. Use `shell` for shell features.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Run, execute, stdin_bytes};
use crate::connection::sh_quote;
use crate::modules::args::{Args, split_free_form};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Command;

/// Shell text for one argument that expands what Python's `os.path.expanduser` and
/// `os.path.expandvars` would (a leading `~`, `$NAME`, `${NAME}`; an unset variable
/// stays as written) and nothing else.
fn expanding_word(word: &str) -> String {
    static VAR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\$(\w+)|\$\{(\w+)\}").expect("valid regex")
    });
    let mut out = String::new();
    let mut rest = word;
    if rest == "~" || rest.starts_with("~/") {
        out.push_str("\"$HOME\"");
        rest = &rest[1..];
    }
    let mut last = 0;
    for m in VAR.captures_iter(rest) {
        let whole = m.get(0).expect("match");
        let name = m.get(1).or(m.get(2)).expect("a name").as_str();
        if whole.start() > last {
            out.push_str(&sh_quote(&rest[last..whole.start()]));
        }
        // `${N-\$N}` inside double quotes: the value, or the text itself when unset.
        let literal = whole.as_str().replace('$', "\\$").replace('}', "\\}");
        out.push_str(&format!("\"${{{name}-{literal}}}\""));
        last = whole.end();
    }
    if last < rest.len() || out.is_empty() {
        out.push_str(&sh_quote(&rest[last..]));
    }
    out
}

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
        let expand = a.bool_or("expand_argument_vars", true)?;
        let mut line = words
            .iter()
            .map(|w| {
                if expand {
                    expanding_word(w)
                } else {
                    sh_quote(w)
                }
            })
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

#[cfg(test)]
mod tests {
    use super::expanding_word;

    fn sh(text: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("unset NOPE; X=val; printf %s {text}")])
            .env("HOME", "/home/u")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn arguments_expand_like_ansible_core() {
        assert_eq!(sh(&expanding_word("$HOME")), "/home/u");
        assert_eq!(sh(&expanding_word("a${X}b$X-$NOPE")), "avalbval-$NOPE");
        assert_eq!(sh(&expanding_word("~/x y")), "/home/u/x y");
        assert_eq!(
            sh(&expanding_word("> * | ; $(id) `id` '")),
            "> * | ; $(id) `id` '"
        );
        assert_eq!(sh(&expanding_word("")), "");
    }
}
