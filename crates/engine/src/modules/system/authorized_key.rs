//! `authorized_key`: adds or removes SSH public keys in a user's `authorized_keys`.
//!
//! Keys are compared by type and base64 blob, so a key already present with another
//! comment is not added twice; `exclusive: yes` removes every other key. One round trip
//! reads the user's home, group and current file; a second one writes, only on change.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::modules::args::{Args, Mode};
use crate::modules::files::text_diff;
use crate::modules::remote::{self, WriteOpts, qpath};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct AuthorizedKey;

const KNOWN: &[&str] = &[
    "user",
    "key",
    "state",
    "exclusive",
    "path",
    "manage_dir",
    "key_options",
    "comment",
    "validate_certs",
    "follow",
];

const KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The identity of a key line: (type, blob). Options before the type are skipped.
pub fn key_id(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| KEY_TYPES.contains(w) || w.starts_with("ssh-") || w.starts_with("ecdsa-"))?;
    Some((words[i].to_string(), words.get(i + 1)?.to_string()))
}

/// The new file content for the wanted keys.
pub fn update(current: &str, wanted: &[String], present: bool, exclusive: bool) -> String {
    let wanted_ids: Vec<_> = wanted.iter().filter_map(|k| key_id(k)).collect();
    let mut lines: Vec<String> = Vec::new();
    for line in current.lines() {
        match key_id(line) {
            Some(id) if wanted_ids.contains(&id) => {
                if present {
                    // Replace in place, so changed options or comments are applied.
                    let idx = wanted_ids.iter().position(|w| *w == id).unwrap_or(0);
                    if !lines.iter().any(|l| key_id(l).as_ref() == Some(&id)) {
                        lines.push(wanted[idx].clone());
                    }
                }
            }
            Some(_) if exclusive && present => {}
            _ => lines.push(line.to_string()),
        }
    }
    if present {
        for (k, id) in wanted.iter().zip(&wanted_ids) {
            if !lines.iter().any(|l| key_id(l).as_ref() == Some(id)) {
                lines.push(k.clone());
            }
        }
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[async_trait]
impl Module for AuthorizedKey {
    fn name(&self) -> &'static str {
        "authorized_key"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["user"], &["key"]],
            choices: &[("state", &["present", "absent"])],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("authorized_key", args, KNOWN)?;
        let user = a.str("user")?;
        let key = a.str("key")?;
        let present = a.choice("state", &["present", "absent"], "present")? == "present";
        let exclusive = a.bool_or("exclusive", false)?;
        let manage_dir = a.bool_or("manage_dir", true)?;
        let options = a.opt_str("key_options")?;
        let comment = a.opt_str("comment")?;
        let mut wanted = Vec::new();
        for line in key
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((kind, blob)) = key_id(line) else {
                return Err(a.err("key", format!("is not an SSH public key: '{line}'")));
            };
            let rest = line
                .split_whitespace()
                .skip_while(|w| *w != kind)
                .skip(2)
                .collect::<Vec<_>>()
                .join(" ");
            let comment = comment.clone().unwrap_or(rest);
            let mut l = options
                .as_ref()
                .map(|o| format!("{o} "))
                .unwrap_or_default();
            l.push_str(&format!("{kind} {blob}"));
            if !comment.is_empty() {
                l.push_str(&format!(" {comment}"));
            }
            wanted.push(l);
        }
        let path_arg = a.opt_str("path")?;
        let probe = format!(
            "h=$(getent passwd {u} | cut -d: -f6); g=$(id -gn {u} 2>/dev/null); [ -n \"$h\" ] || {{ echo 'no such user' >&2; exit 3; }}; \
             p={p}; echo \"$h\"; echo \"$g\"; echo \"$p\"; if [ -f \"$p\" ]; then cat \"$p\"; fi",
            u = qpath(&user),
            p = match &path_arg {
                Some(p) => qpath(p),
                None => "\"$h/.ssh/authorized_keys\"".into(),
            }
        );
        let out = remote::run(ctx, probe).await?;
        if out.rc == 3 {
            return Ok(ModuleResult::failed(format!(
                "Failed to lookup user {user}: no such user on the host"
            )));
        }
        if out.rc != 0 {
            return Ok(ModuleResult::failed(format!(
                "cannot read the keys of {user}: {}",
                out.stderr_str().trim()
            )));
        }
        let text = out.stdout_str();
        let mut parts = text.splitn(4, '\n');
        let (_home, group, path) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let current = parts.next().unwrap_or_default();
        let new = update(current, &wanted, present, exclusive);
        let mut r = ModuleResult::ok()
            .with("user", user.clone())
            .with("key", key.clone())
            .with("path", path.clone())
            .with("state", if present { "present" } else { "absent" })
            .with("exclusive", exclusive);
        if new == current {
            return Ok(r);
        }
        r.changed = true;
        if ctx.diff {
            r.diff = text_diff(&path, Some(current.as_bytes()), new.as_bytes());
        }
        if ctx.check_mode {
            return Ok(r);
        }
        let dir = remote::parent(&path).to_string();
        if manage_dir {
            let cmd = format!(
                "[ -d {d} ] || {{ mkdir -p {d} && chmod 700 {d} && chown {o} {d}; }}",
                d = qpath(&dir),
                o = qpath(&format!("{user}:{group}"))
            );
            let out = remote::run(ctx, cmd).await?;
            if out.rc != 0 {
                return Ok(ModuleResult::failed(format!(
                    "cannot create {dir}: {}",
                    out.stderr_str().trim()
                )));
            }
        }
        let opts = WriteOpts {
            mode: Some(Mode::Octal(0o600)),
            owner: Some(user),
            group: Some(group).filter(|g| !g.is_empty()),
            backup: false,
        };
        remote::write_file(ctx, &path, new.as_bytes(), &opts).await?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA1 alice@x";
    const K2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ2 bob@y";

    #[test]
    fn adds_once_replaces_options_and_removes() {
        let once = update("", &[K1.to_string()], true, false);
        assert_eq!(once, format!("{K1}\n"));
        assert_eq!(update(&once, &[K1.to_string()], true, false), once);
        let with_opts = format!("from=\"10.0.0.1\" {K1}");
        assert_eq!(
            update(&once, std::slice::from_ref(&with_opts), true, false),
            format!("{with_opts}\n")
        );
        let both = update(&once, &[K2.to_string()], true, false);
        assert_eq!(both, format!("{K1}\n{K2}\n"));
        assert_eq!(
            update(&both, &[K2.to_string()], true, true),
            format!("{K2}\n")
        );
        assert_eq!(
            update(&both, &[K1.to_string()], false, false),
            format!("{K2}\n")
        );
    }
}
