//! `copy`: puts a controller file, a directory tree or inline `content` on the host.
//!
//! Change detection is by SHA-1, as in Ansible: one round trip stats the destination
//! (and `dest/<basename>` in case `dest` is a directory) with its checksum, and a second
//! one writes only when content or attributes differ. `template` reuses
//! [`copy_content`] after rendering.

use std::path::Path;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::text_diff;
use crate::modules::args::{Args, Mode};
use crate::modules::remote::{
    self, RemoteStat, Source, WriteOpts, attrs_commands, attrs_match, basename, qpath, sha1_hex,
};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Copy;

const KNOWN: &[&str] = &[
    "src",
    "content",
    "dest",
    "mode",
    "owner",
    "group",
    "backup",
    "force",
    "remote_src",
    "directory_mode",
    "follow",
    "local_follow",
    "checksum",
    "decrypt",
    "unsafe_writes",
];

/// The file options `copy` and `template` share.
#[derive(Clone, Debug, Default)]
pub struct FileOpts {
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub backup: bool,
    /// `force: no` leaves an existing destination alone, whatever its content.
    pub force: bool,
}

impl FileOpts {
    pub fn read(a: &Args<'_>) -> Result<Self, ModuleError> {
        Ok(FileOpts {
            mode: a.opt_mode("mode")?,
            owner: a.opt_str("owner")?,
            group: a.opt_str("group")?,
            backup: a.bool_or("backup", false)?,
            force: a.bool_or("force", true)?,
        })
    }

    fn write_opts(&self) -> WriteOpts {
        WriteOpts {
            mode: self.mode.clone(),
            owner: self.owner.clone(),
            group: self.group.clone(),
            backup: self.backup,
        }
    }

    /// Applies mode/owner/group to an existing file whose content is already right.
    async fn set_attrs(&self, ctx: &ModuleCtx<'_>, path: &str) -> Result<(), ModuleError> {
        remote::set_attrs(
            ctx,
            path,
            self.mode.as_ref(),
            self.owner.as_deref(),
            self.group.as_deref(),
            false,
        )
        .await
    }

    /// `mode: preserve` means the controller file's own mode.
    fn resolve_preserve(&mut self, local: Option<&Path>) {
        if self.mode == Some(Mode::Preserve) {
            use std::os::unix::fs::PermissionsExt;
            self.mode = local
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| Mode::Octal(m.permissions().mode() & 0o7777));
        }
    }
}

/// What has to happen to one destination file.
struct Plan {
    write: bool,
    fix_attrs: bool,
}

fn plan(st: Option<&RemoteStat>, checksum: &str, opts: &FileOpts) -> Plan {
    match st {
        None => Plan {
            write: true,
            fix_attrs: false,
        },
        Some(_) if !opts.force => Plan {
            write: false,
            fix_attrs: false,
        },
        Some(st) => {
            let same = st.checksum.as_deref() == Some(checksum);
            let attrs_ok = attrs_match(
                st,
                opts.mode.as_ref(),
                opts.owner.as_deref(),
                opts.group.as_deref(),
            );
            Plan {
                write: !same,
                fix_attrs: same && !attrs_ok,
            }
        }
    }
}

/// Puts `data` at `dest` with copy semantics. `src_name` is the basename used when `dest`
/// turns out to be a directory (`None` for inline content, where that is an error).
pub async fn copy_content(
    ctx: &ModuleCtx<'_>,
    module: &str,
    dest: &str,
    data: &[u8],
    src_name: Option<&str>,
    opts: &FileOpts,
) -> Result<ModuleResult, ModuleError> {
    let checksum = sha1_hex(data);
    let mut paths = vec![dest.to_string()];
    if let Some(name) = src_name {
        paths.push(join(dest, name));
    }
    let mut stats = remote::stat_paths(ctx, &paths, true, Some("sha1")).await?;
    let dest_is_dir = dest.ends_with('/') || stats[0].as_ref().is_some_and(RemoteStat::is_dir);
    let (target, st) = if dest_is_dir {
        if src_name.is_none() {
            return Err(ModuleError::Failed(format!(
                "{module}: can not use content with a dir as dest ({dest})"
            )));
        }
        (paths[1].clone(), stats.pop().flatten())
    } else {
        (dest.to_string(), stats.swap_remove(0))
    };
    let p = plan(st.as_ref(), &checksum, opts);
    let mut result = if p.write || p.fix_attrs {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    if p.write && ctx.diff {
        let before = match &st {
            Some(_) => Some(ctx.conn.get(&target, ctx.become_.as_ref()).await?),
            None => None,
        };
        result.diff = text_diff(&target, before.as_deref(), data);
    }
    if !ctx.check_mode {
        if p.write {
            if dest.ends_with('/') && st.is_none() {
                remote::run(ctx, format!("mkdir -p {}", qpath(dest))).await?;
            }
            let backup =
                remote::place_file(ctx, &target, Source::Bytes(data), &opts.write_opts()).await?;
            if let Some(b) = backup {
                result = result.with("backup_file", b);
            }
        } else if p.fix_attrs {
            opts.set_attrs(ctx, &target).await?;
        }
    }
    let mode = st
        .as_ref()
        .map(|s| {
            opts.mode
                .as_ref()
                .map_or(s.mode, |m| m.apply(s.mode, false))
        })
        .or(match &opts.mode {
            Some(Mode::Octal(m)) => Some(*m),
            _ => None,
        });
    if let Some(m) = mode {
        result = result.with("mode", format!("{m:04o}"));
    }
    Ok(result
        .with("dest", target)
        .with("checksum", checksum)
        .with("size", data.len())
        .with("state", "file"))
}

/// `dir/name`, without doubling the slash.
fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

/// Copies a controller directory tree. A trailing `/` on `src` copies its contents into
/// `dest`; without it the directory itself lands in `dest/<name>`, as in Ansible (and rsync).
async fn copy_tree(
    ctx: &ModuleCtx<'_>,
    src: &str,
    local: &Path,
    dest: &str,
    opts: &FileOpts,
    dir_mode: Option<Mode>,
) -> Result<ModuleResult, ModuleError> {
    let base = if src.ends_with('/') {
        dest.to_string()
    } else {
        join(dest, basename(src))
    };
    let mut files = Vec::new();
    let mut dirs = vec![base.clone()];
    for entry in walkdir::WalkDir::new(local)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            ModuleError::Failed(format!("copy: cannot read {}: {e}", local.display()))
        })?;
        let rel = entry.path().strip_prefix(local).unwrap_or(entry.path());
        if rel.as_os_str().is_empty() {
            continue;
        }
        let remote_path = join(&base, &rel.to_string_lossy());
        if entry.file_type().is_dir() {
            dirs.push(remote_path);
        } else {
            files.push((entry.path().to_path_buf(), remote_path));
        }
    }
    let paths: Vec<String> = dirs
        .iter()
        .chain(files.iter().map(|(_, r)| r))
        .cloned()
        .collect();
    let stats = remote::stat_paths(ctx, &paths, true, Some("sha1")).await?;
    let (dir_stats, file_stats) = stats.split_at(dirs.len());
    let missing_dirs: Vec<&String> = dirs
        .iter()
        .zip(dir_stats)
        .filter(|(_, s)| s.is_none())
        .map(|(d, _)| d)
        .collect();
    let mut changed = !missing_dirs.is_empty();
    if !missing_dirs.is_empty() && !ctx.check_mode {
        let quoted: Vec<String> = missing_dirs.iter().map(|d| qpath(d)).collect();
        let mut cmd = format!("set -e; mkdir -p {}; ", quoted.join(" "));
        for d in &quoted {
            cmd.push_str(&attrs_commands(
                d,
                dir_mode.as_ref(),
                opts.owner.as_deref(),
                opts.group.as_deref(),
                false,
            ));
        }
        let out = remote::run(ctx, cmd).await?;
        if out.rc != 0 {
            return Err(ModuleError::Failed(format!(
                "copy: cannot create directories: {}",
                out.stderr_str().trim()
            )));
        }
    }
    for ((local_file, remote_path), st) in files.iter().zip(file_stats) {
        let data = std::fs::read(local_file).map_err(|e| {
            ModuleError::Failed(format!("copy: cannot read {}: {e}", local_file.display()))
        })?;
        let mut file_opts = opts.clone();
        file_opts.resolve_preserve(Some(local_file));
        let p = plan(st.as_ref(), &sha1_hex(&data), &file_opts);
        changed |= p.write || p.fix_attrs;
        if ctx.check_mode {
            continue;
        }
        if p.write {
            remote::place_file(
                ctx,
                remote_path,
                Source::Bytes(&data),
                &file_opts.write_opts(),
            )
            .await?;
        } else if p.fix_attrs {
            file_opts.set_attrs(ctx, remote_path).await?;
        }
    }
    let r = if changed {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    Ok(r.with("dest", base).with("src", src))
}

/// `remote_src: yes`: the source is on the host, compared by checksum there.
async fn copy_remote(
    ctx: &ModuleCtx<'_>,
    src: &str,
    dest: &str,
    opts: &FileOpts,
) -> Result<ModuleResult, ModuleError> {
    let candidates = [src.to_string(), dest.to_string(), join(dest, basename(src))];
    let stats = remote::stat_paths(ctx, &candidates, true, Some("sha1")).await?;
    let src_st = stats[0]
        .as_ref()
        .ok_or_else(|| ModuleError::Failed(format!("copy: source {src} not found on the host")))?;
    if src_st.is_dir() {
        return copy_remote_tree(ctx, src, dest, opts).await;
    }
    let dest_is_dir = dest.ends_with('/') || stats[1].as_ref().is_some_and(RemoteStat::is_dir);
    let (target, st) = if dest_is_dir {
        (&candidates[2], &stats[2])
    } else {
        (&candidates[1], &stats[1])
    };
    let checksum = src_st.checksum.clone().unwrap_or_default();
    let p = plan(st.as_ref(), &checksum, opts);
    if !ctx.check_mode {
        if p.write {
            remote::place_file(ctx, target, Source::Remote(src), &opts.write_opts()).await?;
        } else if p.fix_attrs {
            opts.set_attrs(ctx, target).await?;
        }
    }
    let r = if p.write || p.fix_attrs {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    Ok(r.with("dest", target.clone())
        .with("src", src)
        .with("checksum", checksum)
        .with("size", src_st.size))
}

/// A remote directory copied with `cp -a` unless `diff -r` finds both trees identical.
async fn copy_remote_tree(
    ctx: &ModuleCtx<'_>,
    src: &str,
    dest: &str,
    opts: &FileOpts,
) -> Result<ModuleResult, ModuleError> {
    let target = if src.ends_with('/') {
        dest.to_string()
    } else {
        join(dest, basename(src))
    };
    let (s, t) = (qpath(src.trim_end_matches('/')), qpath(&target));
    let act = if ctx.check_mode {
        String::new()
    } else {
        let attrs = attrs_commands(&t, None, opts.owner.as_deref(), opts.group.as_deref(), true);
        format!("mkdir -p {t} && cp -a {s}/. {t}/ && {attrs}")
    };
    let cmd = format!(
        "if [ -d {t} ] && diff -rq {s} {t} >/dev/null 2>&1; then echo same; else {act} echo changed; fi"
    );
    let out = remote::run(ctx, cmd).await?;
    if out.rc != 0 {
        return Err(ModuleError::Failed(format!(
            "copy: cannot copy {src} to {target}: {}",
            out.stderr_str().trim()
        )));
    }
    let r = if out.stdout_str().trim() == "changed" {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    Ok(r.with("dest", target).with("src", src))
}

#[async_trait]
impl Module for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["dest"]],
            src_dir: Some("files"),
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("copy", args, KNOWN)?;
        let dest = a.str("dest")?;
        let mut opts = FileOpts::read(&a)?;
        // As Ansible's copy action: a list or mapping is written as its JSON.
        let content = match args.get("content") {
            Some(v @ (Value::Array(_) | Value::Object(_))) => {
                Some(crate::template::pyjson::dumps(v, None))
            }
            _ => a.opt_str("content")?,
        };
        let src = a.opt_str("src")?;
        match (content, src) {
            (Some(_), Some(_)) => Err(a.fail("'src' and 'content' are mutually exclusive")),
            (None, None) => Err(a.fail("one of 'src' or 'content' is required")),
            (Some(content), None) => {
                opts.resolve_preserve(None);
                copy_content(ctx, "copy", &dest, content.as_bytes(), None, &opts).await
            }
            (None, Some(src)) if a.bool_or("remote_src", false)? => {
                copy_remote(ctx, &src, &dest, &opts).await
            }
            (None, Some(src)) => {
                let local = ctx.find_file("files", &src).ok_or_else(|| {
                    a.err(
                        "src",
                        format!("'{src}' was not found in files/ or next to the playbook"),
                    )
                })?;
                if local.is_dir() {
                    return copy_tree(
                        ctx,
                        &src,
                        &local,
                        &dest,
                        &opts,
                        a.opt_mode("directory_mode")?,
                    )
                    .await;
                }
                let data = std::fs::read(&local).map_err(|e| {
                    a.err("src", format!("cannot be read ({}): {e}", local.display()))
                })?;
                opts.resolve_preserve(Some(&local));
                let r =
                    copy_content(ctx, "copy", &dest, &data, Some(basename(&src)), &opts).await?;
                Ok(r.with("src", local.display().to_string()))
            }
        }
    }
}
