//! `unarchive`: unpacks a tar (plain, gz, bz2, xz) or zip archive into an existing
//! directory on the host.
//!
//! A controller-side archive travels on stdin of the same command that unpacks it. The
//! archive is first compared with `dest` (`tar --diff`, or `unzip -p | cmp` per member),
//! so an already-unpacked archive reports `ok` and is not extracted again.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::modules::args::Args;
use crate::modules::remote::{self, qpath};
use crate::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Unarchive;

const KNOWN: &[&str] = &[
    "src",
    "dest",
    "remote_src",
    "copy",
    "creates",
    "extra_opts",
    "list_files",
    "keep_newer",
    "mode",
    "owner",
    "group",
    "include",
    "exclude",
    "validate_certs",
    "io_buffer_size",
    "decrypt",
];

/// `$1` archive, `$2` dest; `$EXTRA` extra options; `$CHECK` 1 in check mode.
const SCRIPT: &str = r#"a=$1; d=$2
[ -d "$d" ] || { echo "dest '$d' must be an existing dir" >&2; exit 3; }
if [ "$(head -c 2 "$a")" = PK ]; then
  echo handler=ZipArchive
  command -v unzip >/dev/null 2>&1 || { echo "unzip is not installed on the host; it is needed to unpack zip archives" >&2; exit 5; }
  same=1
  for f in $(unzip -Z1 "$a"); do
    case "$f" in */) [ -d "$d/$f" ] || { same=0; break; } ;; *) unzip -p "$a" "$f" | cmp -s - "$d/$f" || { same=0; break; } ;; esac
  done
  [ "$LIST" = 1 ] && unzip -Z1 "$a" | sed 's/^/file=/'
  [ $same = 1 ] && { echo status=ok; exit 0; }
  [ "$CHECK" = 1 ] && { echo status=changed; exit 0; }
  unzip -o -q $EXTRA "$a" -d "$d" >&2 || exit 4
else
  echo handler=TgzArchive
  tar -tf "$a" >/dev/null 2>&1 || { echo "Failed to find handler for \"$a\". Make sure the required command to extract the file is installed (tar with gzip/bzip2/xz, or unzip)." >&2; exit 5; }
  [ "$LIST" = 1 ] && tar -tf "$a" | sed 's/^/file=/'
  if tar -df "$a" -C "$d" $EXTRA >/dev/null 2>&1; then echo status=ok; exit 0; fi
  [ "$CHECK" = 1 ] && { echo status=changed; exit 0; }
  tar -xf "$a" -C "$d" $EXTRA >&2 || exit 4
fi
echo status=changed
"#;

#[async_trait]
impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("unarchive", args, KNOWN)?;
        let src = a.str("src")?;
        let dest = a.str("dest")?;
        // `copy: no` is the old spelling of `remote_src: yes`.
        let remote_src = a.bool_or("remote_src", !a.bool_or("copy", true)?)?;
        // Extra options are split on spaces by the script, as words of one tar/unzip call.
        let extra = a.str_list("extra_opts")?;
        let list = a.bool_or("list_files", false)?;
        if let Some(c) = a.opt_str("creates")?
            && remote::stat_path(ctx, &c, false, None).await?.is_some()
        {
            // Ansible's unarchive action reports this as skipped, not ok.
            let mut r = ModuleResult::ok()
                .with_msg(format!("skipped, since {c} exists"))
                .with("dest", dest)
                .with("src", src);
            r.skipped = true;
            return Ok(r);
        }
        let (archive_setup, stdin) = if remote_src {
            (format!("a_path={}; ", qpath(&src)), None)
        } else {
            let local = ctx.find_file("files", &src).ok_or_else(|| {
                a.err(
                    "src",
                    format!("'{src}' was not found in files/ or next to the playbook"),
                )
            })?;
            let data = std::fs::read(&local)
                .map_err(|e| a.err("src", format!("cannot be read ({}): {e}", local.display())))?;
            // The archive keeps its name's suffix so tools that look at it still work.
            let suffix = remote::basename(&src).to_string();
            (
                format!(
                    "a_path=$(mktemp -d)/{} || exit 1; trap 'rm -rf \"$(dirname \"$a_path\")\"' EXIT; cat > \"$a_path\"; ",
                    qpath(&suffix)
                ),
                Some(data),
            )
        };
        let cmd = format!(
            "EXTRA={}; LIST={}; CHECK={}; {archive_setup}set -- \"$a_path\" {}\n{SCRIPT}",
            qpath(&extra.join(" ")),
            u8::from(list),
            u8::from(ctx.check_mode),
            qpath(&dest)
        );
        let out = remote::run_with(ctx, cmd, stdin, None).await?;
        let text = out.stdout_str();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        let mut r = if field("status") == "changed" {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        };
        if out.rc != 0 {
            r = ModuleResult::failed(out.stderr_str().trim().to_string());
        }
        r = r
            .with("dest", dest.clone())
            .with("src", src)
            .with("handler", field("handler"));
        if list {
            let files: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("file="))
                .map(str::to_string)
                .collect();
            r = r.with("files", files);
        }
        let (mode, owner, group) = (
            a.opt_mode("mode")?,
            a.opt_str("owner")?,
            a.opt_str("group")?,
        );
        if r.changed && !ctx.check_mode && (mode.is_some() || owner.is_some() || group.is_some()) {
            let fix = remote::set_attrs(
                ctx,
                &dest,
                mode.as_ref(),
                owner.as_deref(),
                group.as_deref(),
                true,
            );
            // A failure is this task's result (with its message), not an error.
            match fix.await {
                Err(ModuleError::Failed(msg)) => return Ok(ModuleResult::failed(msg)),
                other => other?,
            }
        }
        Ok(r)
    }
}
