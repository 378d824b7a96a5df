//! Modules that manage files on the host: `copy`, `template`, `file`, `lineinfile`,
//! `blockinfile`, `stat`, `slurp` and `fetch`.

pub mod blockinfile;
pub mod copy;
pub mod fetch;
pub mod file;
pub mod lineinfile;
pub mod slurp;
pub mod stat;
pub mod template;

use super::{ArgSpec, Diff};

/// What `lineinfile` and `blockinfile` share of their statically checkable arguments:
/// the file (`path` or an alias) is required, `state` is `present` or `absent`.
const fn in_file_spec(known: &'static [&'static str]) -> ArgSpec {
    ArgSpec {
        known,
        required: &[&["path", "dest", "destfile", "name"]],
        choices: &[("state", &["present", "absent"])],
        src_dir: None,
    }
}

/// Largest file whose text goes into `--diff` output; Ansible's `max_diff_size` is 100 KB.
const MAX_DIFF: usize = 100 * 1024;

/// A text diff between two versions of `path`, or `None` when either side is binary or
/// too big to show.
pub fn text_diff(path: &str, before: Option<&[u8]>, after: &[u8]) -> Option<Diff> {
    let before = before.unwrap_or(&[]);
    if before.len() > MAX_DIFF || after.len() > MAX_DIFF {
        return None;
    }
    Some(Diff {
        before_header: path.to_string(),
        after_header: path.to_string(),
        before: String::from_utf8(before.to_vec()).ok()?,
        after: String::from_utf8(after.to_vec()).ok()?,
        prepared: None,
    })
}

use super::remote::{self, RemoteStat, WriteOpts, attrs_match};
use super::{ModuleCtx, ModuleError, ModuleResult};

/// A text file as read for editing: its state and content (`None` when missing).
pub struct TextFile {
    pub stat: Option<RemoteStat>,
    pub text: String,
}

/// Reads `path` and its state in one round trip, for `lineinfile` and `blockinfile`.
pub async fn read_text(
    ctx: &ModuleCtx<'_>,
    module: &str,
    path: &str,
) -> Result<TextFile, ModuleError> {
    match remote::read_with_stat(ctx, path).await? {
        None => Ok(TextFile {
            stat: None,
            text: String::new(),
        }),
        Some((st, data)) => {
            let text = String::from_utf8(data).map_err(|_| {
                ModuleError::Failed(format!("{module}: {path} is not a UTF-8 text file"))
            })?;
            Ok(TextFile {
                stat: Some(st),
                text,
            })
        }
    }
}

/// Writes an edited text file when it changed (or fixes its attributes when only those
/// differ), honouring check mode and producing the `--diff` text.
pub async fn finish_edit(
    ctx: &ModuleCtx<'_>,
    path: &str,
    before: &TextFile,
    after: &str,
    msg: &str,
    opts: &WriteOpts,
) -> Result<ModuleResult, ModuleError> {
    let content_changed = before.stat.is_none() || before.text != after;
    let attrs_ok = before.stat.as_ref().is_none_or(|st| {
        attrs_match(
            st,
            opts.mode.as_ref(),
            opts.owner.as_deref(),
            opts.group.as_deref(),
        )
    });
    let mut msg = msg.to_string();
    if !content_changed && !attrs_ok {
        msg = if msg.is_empty() {
            String::new()
        } else {
            format!("{msg} and ")
        } + "ownership, perms or SE linux context changed";
    }
    if !content_changed && attrs_ok {
        return Ok(ModuleResult::ok().with_msg(msg).with("backup", ""));
    }
    let mut r = ModuleResult::changed().with_msg(msg);
    if ctx.diff && content_changed {
        r.diff = text_diff(
            path,
            before.stat.as_ref().map(|_| before.text.as_bytes()),
            after.as_bytes(),
        );
    }
    if ctx.check_mode {
        return Ok(r);
    }
    if content_changed {
        let backup = remote::write_file(ctx, path, after.as_bytes(), opts).await?;
        r = r.with("backup", backup.unwrap_or_default());
    } else {
        remote::set_attrs(
            ctx,
            path,
            opts.mode.as_ref(),
            opts.owner.as_deref(),
            opts.group.as_deref(),
            false,
        )
        .await?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
