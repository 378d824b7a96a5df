//! `sysctl` (ansible.posix): a kernel parameter in a sysctl file and, with `reload` or
//! `sysctl_set`, in the running kernel. The file is rewritten the way the collection
//! rewrites it (every line stripped, `key = value` written `key=value`, a key's later
//! duplicates dropped), so a file managed by both tools converges to the same bytes.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::files::{TextFile, read_text, text_diff};
use crate::modules::remote::{self, WriteOpts};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Sysctl;

const KNOWN: &[&str] = &[
    "name",
    "key",
    "value",
    "val",
    "state",
    "ignoreerrors",
    "reload",
    "sysctl_file",
    "sysctl_set",
];

/// A value as the collection compares it: booleans spelled any YAML way become `1`/`0`.
pub fn normalise(v: &str) -> String {
    match v.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => "1".into(),
        "n" | "no" | "off" | "0" | "false" | "f" => "0".into(),
        _ => v.trim().to_string(),
    }
}

/// The value of `key` in a sysctl file (the last one when a key is repeated).
pub fn file_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            found = Some(v.trim().to_string());
        }
    }
    found
}

/// The file with `key` set to `value` (`None`: removed), rewritten as the collection does.
pub fn rewrite(text: &str, key: &str, value: Option<&str>) -> String {
    let mut out = String::new();
    let mut seen: Vec<String> = Vec::new();
    let mut placed = false;
    for line in text.lines().map(str::trim) {
        let kv = (!line.is_empty() && !line.starts_with('#') && !line.starts_with(';'))
            .then(|| line.split_once('='))
            .flatten();
        let Some((k, v)) = kv else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if seen.iter().any(|s| s == k) {
            continue;
        }
        seen.push(k.to_string());
        if k == key {
            placed = true;
            if let Some(value) = value {
                out.push_str(&format!("{k}={value}\n"));
            }
        } else {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    if !placed && let Some(value) = value {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// Whether two values are the same list of words (the kernel prints tabs between them).
fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// `sysctl` failed, by its exit code or by its message for a key it could not set (it
/// exits 0 for some of those).
fn sysctl_failed(out: &crate::connection::ExecOutput) -> bool {
    out.rc != 0
        || out.stderr_str().lines().any(|l| {
            l.starts_with("sysctl: setting key \"")
                && (l.ends_with("\": Invalid argument") || l.ends_with("\": Read-only file system"))
        })
}

#[async_trait]
impl Module for Sysctl {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["name", "key"]],
            choices: &[("state", &["present", "absent"])],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("sysctl", args, KNOWN)?;
        let name = match a.opt_str("name")? {
            Some(n) => n,
            None => a.str("key")?,
        };
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(a.fail("name cannot be blank"));
        }
        let present = a.choice("state", &["present", "absent"], "present")? == "present";
        let raw = match a.opt_str("value")? {
            Some(v) => Some(v),
            None => a.opt_str("val")?,
        };
        let value = match (present, raw) {
            (true, None) => {
                return Err(a.fail("state is present but all of the following are missing: value"));
            }
            (true, Some(v)) if v.trim().is_empty() => return Err(a.fail("value cannot be blank")),
            (_, v) => normalise(v.as_deref().unwrap_or("")),
        };
        let reload = a.bool_or("reload", true)?;
        let set = a.bool_or("sysctl_set", false)?;
        let e = if a.bool_or("ignoreerrors", false)? {
            "-e "
        } else {
            ""
        };
        let path = a.str_or("sysctl_file", "/etc/sysctl.conf")?;

        let file: TextFile = read_text(ctx, "sysctl", &path).await?;
        let in_file = file_value(&file.text, &name);
        let kernel = || async {
            let out = remote::run(
                ctx,
                format!(
                    "LANG=C LC_ALL=C LC_MESSAGES=C sysctl -e -n {}",
                    sh_quote(&name)
                ),
            )
            .await?;
            Ok::<_, ModuleError>((out.rc == 0).then(|| out.stdout_str().to_string()))
        };

        let (mut changed, mut write) = (false, false);
        match (&in_file, present) {
            (None, true) => (changed, write) = (true, true),
            (None, false) => {}
            (Some(v), false) if !v.is_empty() => (changed, write) = (true, true),
            (Some(v), _) if *v != value => (changed, write) = (true, true),
            _ => {
                if reload {
                    let k = kernel().await?;
                    changed = k.is_none_or(|k| !same_words(&k, &value));
                }
            }
        }
        let mut set_now = false;
        if set && present {
            match kernel().await? {
                None => changed = true,
                Some(k) if !same_words(&k, &value) => (changed, set_now) = (true, true),
                Some(_) => {}
            }
        }
        let after = rewrite(&file.text, &name, present.then_some(value.as_str()));
        let mut r = if changed {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        };
        if ctx.diff && write {
            r.diff = text_diff(
                &path,
                file.stat.as_ref().map(|_| file.text.as_bytes()),
                after.as_bytes(),
            );
        }
        if ctx.check_mode {
            return Ok(r);
        }
        if set_now {
            let out = remote::run(
                ctx,
                format!("sysctl {e}-w {}", sh_quote(&format!("{name}={value}"))),
            )
            .await?;
            if sysctl_failed(&out) {
                return Ok(ModuleResult::failed(format!(
                    "setting {name} failed: {}{}",
                    out.stdout_str(),
                    out.stderr_str()
                )));
            }
        }
        if write {
            remote::write_file(ctx, &path, after.as_bytes(), &WriteOpts::default()).await?;
        }
        if changed && reload {
            let out = remote::run(ctx, format!("sysctl {e}-p {}", sh_quote(&path))).await?;
            if sysctl_failed(&out) {
                return Ok(ModuleResult::failed(format!(
                    "Failed to reload sysctl: {}{}",
                    out.stdout_str(),
                    out.stderr_str()
                )));
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_normalise_as_the_collection_does() {
        assert_eq!(normalise(" yes "), "1");
        assert_eq!(normalise("False"), "0");
        assert_eq!(normalise("4096  87380 "), "4096  87380");
        assert!(same_words("4096\t87380", "4096 87380"));
    }

    #[test]
    fn files_are_rewritten_stripped_with_first_keys_kept() {
        let text = "# tuned\n  vm.swappiness = 10\nvm.swappiness=30\n\nnet.core.somaxconn = 1024\n";
        assert_eq!(file_value(text, "vm.swappiness").as_deref(), Some("30"));
        assert_eq!(
            rewrite(text, "vm.swappiness", Some("20")),
            "# tuned\nvm.swappiness=20\n\nnet.core.somaxconn=1024\n"
        );
        assert_eq!(
            rewrite(text, "fs.file-max", Some("100000")),
            "# tuned\nvm.swappiness=10\n\nnet.core.somaxconn=1024\nfs.file-max=100000\n"
        );
        assert_eq!(
            rewrite(text, "vm.swappiness", None),
            "# tuned\n\nnet.core.somaxconn=1024\n"
        );
    }
}
