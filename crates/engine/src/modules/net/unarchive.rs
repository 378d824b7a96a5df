//! `unarchive`: unpacks a tar (plain, gz, bz2, xz) or zip archive into an existing
//! directory on the host.
//!
//! A controller-side archive travels on stdin of the same command that unpacks it. The
//! archive is first compared with `dest` (`tar --diff`, or `unzip -p | cmp` per member),
//! so an already-unpacked archive reports `ok` and is not extracted again.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::remote::{self, qpath};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

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

/// `$1` archive, `$2` dest; `$EXTRA` extra options for unzip; `$CHECK` 1 in check mode;
/// `$KEEP_NEWER` 1 for `keep_newer` (a zip's members older than the file there are left
/// out, and do not count as changes, as in Ansible's `ZipArchive`);
/// `$MODE`/`$OWNER`/`$GROUP` 1 when the task sets them. `@TAR_OPTS@` and `@TAR_MEMBERS@`
/// are replaced by quoted words (see [`tar_words`]).
///
/// A tarball counts as unpacked as Ansible's `TgzArchive.is_unarchived` decides: by the
/// lines of `tar --diff` that matter (content, size, mtime, missing files, links; the mode
/// unless `mode` is set; as root, owners unless set), not by its exit status, which the
/// empty name `--strip-components` leaves makes an error every time. In check mode a
/// tarball is skipped, as Ansible's tar handler does (a zip is compared).
const SCRIPT: &str = r#"a=$1; d=$2
[ -d "$d" ] || { echo "dest '$d' must be an existing dir" >&2; exit 3; }
if [ "$(head -c 2 "$a")" = PK ]; then
  echo handler=ZipArchive
  command -v unzip >/dev/null 2>&1 || { echo "unzip is not installed on the host; it is needed to unpack zip archives" >&2; exit 5; }
  same=1; keep=
  for f in $(unzip -Z1 "$a"); do
    case "$f" in
      */) [ -d "$d/$f" ] || { same=0; [ "$KEEP_NEWER" = 1 ] || break; } ;;
      *)
        if [ "$KEEP_NEWER" = 1 ] && [ -f "$d/$f" ]; then
          ts=$(unzip -Z -T "$a" "$f" | awk '{print $7}')
          when=$(echo "$ts" | sed 's/^\(....\)\(..\)\(..\)\.\(..\)\(..\)\(..\)$/\1-\2-\3 \4:\5:\6/')
          if [ -n "$(find "$d/$f" -maxdepth 0 -newermt "$when" 2>/dev/null)" ]; then keep="$keep $f"; continue; fi
        fi
        unzip -p "$a" "$f" | cmp -s - "$d/$f" || { same=0; [ "$KEEP_NEWER" = 1 ] || break; } ;;
    esac
  done
  [ "$LIST" = 1 ] && unzip -Z1 "$a" | sed 's/^/file=/'
  [ $same = 1 ] && { echo status=ok; exit 0; }
  [ "$CHECK" = 1 ] && { echo status=changed; exit 0; }
  if [ -n "$keep" ]; then unzip -o -q $EXTRA "$a" -x $keep -d "$d" >&2 || exit 4
  else unzip -o -q $EXTRA "$a" -d "$d" >&2 || exit 4; fi
else
  echo handler=TgzArchive
  [ "$CHECK" = 1 ] && { echo status=skipped; exit 0; }
  tar -tf "$a" >/dev/null 2>&1 || { echo "Failed to find handler for \"$a\". Make sure the required command to extract the file is installed (tar with gzip/bzip2/xz, or unzip)." >&2; exit 5; }
  [ "$LIST" = 1 ] && tar -tf "$a" | sed 's/^/file=/'
  re=': Mod time differs$|: Warning: Cannot stat: No such file or directory$|: Invalid owner|: Invalid group|: Symlink differs$|: Contents differ$|: Size differs$'
  [ "$MODE" = 1 ] || re="$re|: Mode differs\$"
  if [ "$(id -u)" = 0 ]; then
    [ "$OWNER" = 1 ] || re="$re|: Uid differs\$"
    [ "$GROUP" = 1 ] || re="$re|: Gid differs\$"
  fi
  diffs=$(cd "$d" && LC_ALL=C tar --diff -C "$d" @TAR_OPTS@ -f "$a" @TAR_MEMBERS@ 2>&1 | grep -v ': : Warning: Cannot stat: No such file or directory$' | grep -E "$re")
  [ -z "$diffs" ] && { echo status=ok; exit 0; }
  (cd "$d" && LC_ALL=C tar --extract -C "$d" @TAR_OPTS@ -f "$a" @TAR_MEMBERS@) >&2 || exit 4
fi
echo status=changed
"#;

#[async_trait]
impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["src"], &["dest"]],
            src_dir: Some("files"),
            ..Default::default()
        })
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
        let (mode, owner, group) = (
            a.opt_mode("mode")?,
            a.opt_str("owner")?,
            a.opt_str("group")?,
        );
        let keep_newer = a.bool_or("keep_newer", false)?;
        let (opts, members) = tar_words(
            &extra,
            owner.as_deref(),
            group.as_deref(),
            keep_newer,
            &a.str_list("exclude")?,
            &a.str_list("include")?,
        );
        let script = SCRIPT
            .replace("@TAR_OPTS@", &opts)
            .replace("@TAR_MEMBERS@", &members);
        let cmd = format!(
            "EXTRA={}; LIST={}; CHECK={}; KEEP_NEWER={}; MODE={}; OWNER={}; GROUP={}; {archive_setup}set -- \"$a_path\" {}\n{script}",
            qpath(&extra.join(" ")),
            u8::from(list),
            u8::from(ctx.check_mode),
            u8::from(keep_newer),
            u8::from(mode.is_some()),
            u8::from(owner.is_some()),
            u8::from(group.is_some()),
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
        let mut r = match field("status").as_str() {
            "changed" => ModuleResult::changed(),
            // As Ansible's module: its tar handler gives up in check mode.
            "skipped" => {
                let mut r = ModuleResult::ok().with_msg(
                    "remote module (unarchive) does not support check mode when using gtar",
                );
                r.skipped = true;
                r
            }
            _ => ModuleResult::ok(),
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

/// The options Ansible's `TgzArchive` gives both `tar --diff` and `tar --extract`, each a
/// quoted shell word: `extra_opts` (after `--show-transformed-names`), `--owner`,
/// `--group`, `--keep-newer-files` for `keep_newer`, `--exclude` per pattern; and the
/// `include` members, which go after the archive.
fn tar_words(
    extra: &[String],
    owner: Option<&str>,
    group: Option<&str>,
    keep_newer: bool,
    exclude: &[String],
    include: &[String],
) -> (String, String) {
    let mut opts: Vec<String> = Vec::new();
    if !extra.is_empty() {
        opts.push("--show-transformed-names".into());
        opts.extend(extra.iter().cloned());
    }
    opts.extend(owner.map(|o| format!("--owner={o}")));
    opts.extend(group.map(|g| format!("--group={g}")));
    if keep_newer {
        opts.push("--keep-newer-files".into());
    }
    opts.extend(exclude.iter().map(|e| format!("--exclude={e}")));
    let quote = |w: &[String]| w.iter().map(|x| sh_quote(x)).collect::<Vec<_>>().join(" ");
    (quote(&opts), quote(include))
}

#[cfg(test)]
mod word_tests {
    use super::tar_words;

    #[test]
    fn tar_gets_ansibles_options_as_quoted_words() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (opts, members) = tar_words(
            &s(&["--strip-components=1"]),
            Some("spark"),
            None,
            true,
            &s(&["*.md"]),
            &s(&["top/a b"]),
        );
        assert_eq!(
            opts,
            "--show-transformed-names --strip-components=1 --owner=spark --keep-newer-files '--exclude=*.md'"
        );
        assert_eq!(members, "'top/a b'");
        assert_eq!(
            tar_words(&[], None, None, false, &[], &[]),
            (String::new(), String::new())
        );
    }
}
