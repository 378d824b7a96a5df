//! `fetch`: copies a file from the host to the controller.
//!
//! Without `flat`, the file lands in `dest/<inventory_hostname>/<full remote path>`, so
//! the same path fetched from many hosts does not collide; with `flat: yes` it lands at
//! `dest` itself (or `dest/<basename>` when `dest` ends with `/`), as in Ansible. The
//! remote checksum is compared first so an unchanged file is not transferred again.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::expand_home;
use crate::modules::args::Args;
use crate::modules::remote::{self, basename, sha1_hex};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Fetch;

const KNOWN: &[&str] = &[
    "src",
    "dest",
    "flat",
    "fail_on_missing",
    "validate_checksum",
];

/// Where a fetched file goes on the controller.
pub fn local_dest(dest: &str, host: &str, src: &str, flat: bool, base: Option<&Path>) -> PathBuf {
    let dest_path = expand_home(dest);
    let dest_path = match base {
        Some(b) if dest_path.is_relative() => b.join(dest_path),
        _ => dest_path,
    };
    if flat {
        if dest.ends_with('/') {
            dest_path.join(basename(src))
        } else {
            dest_path
        }
    } else {
        dest_path.join(host).join(src.trim_start_matches('/'))
    }
}

#[async_trait]
impl Module for Fetch {
    fn name(&self) -> &'static str {
        "fetch"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["src"], &["dest"]],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("fetch", args, KNOWN)?;
        let src = a.str("src")?;
        let dest = a.str("dest")?;
        let flat = a.bool_or("flat", false)?;
        let fail_on_missing = a.bool_or("fail_on_missing", true)?;
        let validate = a.bool_or("validate_checksum", true)?;
        // Relative destinations are relative to the playbook's directory, the last search path.
        let target = local_dest(
            &dest,
            ctx.host,
            &src,
            flat,
            ctx.search_paths.last().map(PathBuf::as_path),
        );
        let st = remote::stat_path(ctx, &src, true, Some("sha1")).await?;
        let Some(st) = st.filter(|s| !s.is_dir()) else {
            let msg = format!("the remote file does not exist, not transferring, ignored: {src}");
            let r = if fail_on_missing {
                ModuleResult::failed(msg)
            } else {
                ModuleResult::ok().with_msg(msg)
            };
            return Ok(r.with("file", src));
        };
        let remote_sum = st.checksum.clone().unwrap_or_default();
        let local_sum = std::fs::read(&target).ok().map(|d| sha1_hex(&d));
        let target_str = target.display().to_string();
        let base = ModuleResult::ok()
            .with("dest", target_str.clone())
            .with("file", src.clone())
            .with("remote_checksum", remote_sum.clone());
        if local_sum.as_deref() == Some(remote_sum.as_str()) {
            return Ok(base.with("checksum", remote_sum));
        }
        let mut r = ModuleResult {
            changed: true,
            ..base
        };
        if ctx.check_mode {
            return Ok(r);
        }
        let data = ctx.conn.get(&src, ctx.become_.as_ref()).await?;
        let got = sha1_hex(&data);
        if validate && !remote_sum.is_empty() && got != remote_sum {
            return Ok(ModuleResult::failed(format!(
                "checksum mismatch fetching {src}: the file changed on the host during the transfer"
            )));
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                ModuleError::Failed(format!("fetch: cannot create {}: {e}", dir.display()))
            })?;
        }
        let new = !target.exists();
        std::fs::write(&target, &data)
            .map_err(|e| ModuleError::Failed(format!("fetch: cannot write {target_str}: {e}")))?;
        if new {
            // As Ansible's sftp transfer leaves it: the remote file's permission bits
            // (owner-writable) less the controller's umask.
            use std::os::unix::fs::PermissionsExt;
            let umask = current_umask();
            let mode = (st.mode | 0o200) & 0o777 & !umask;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).map_err(
                |e| ModuleError::Failed(format!("fetch: cannot set the mode of {target_str}: {e}")),
            )?;
        }
        r = r.with("checksum", got);
        Ok(r)
    }
}

/// The process umask, from /proc (setting it to read it back would race other threads).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}
