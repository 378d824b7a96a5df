//! Remote file state and writes, each in one shell round trip.
//!
//! Modules decide whether anything changes by comparing the wanted state with the
//! host's; [`stat_paths`] fetches type, mode, owner, size and checksum of any number of
//! paths at once, and [`write_file`] uploads content and sets mode/owner/backup in a
//! single command, so `copy` costs one round trip when nothing changes and two when
//! something does. Everything runs through `/bin/sh` with GNU coreutils (`stat -c`,
//! `sha1sum`), which Debian, Ubuntu and Rocky all ship.

use serde_json::{Map, Value, json};
use sha1::Digest;

use super::args::Mode;
use super::{ModuleCtx, ModuleError};
use crate::connection::{ExecOutput, ExecRequest, sh_quote};

/// Runs `cmd` on the task's host with its environment and privilege escalation.
pub async fn run(ctx: &ModuleCtx<'_>, cmd: impl Into<String>) -> Result<ExecOutput, ModuleError> {
    run_with(ctx, cmd, None, None).await
}

/// A command given as its argument list, as one shell line (each word quoted).
pub fn argv_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The start of a shell line that enters `dir` when it is a directory and stays where it
/// is otherwise, as Ansible's `run_command(cwd=...)` does (it ignores an invalid `cwd`):
/// modules that mirror an Ansible module's commands (`pip`, `git`) run them this way.
pub fn cd_if_dir(dir: &str) -> String {
    format!("cd {} 2>/dev/null; ", sh_quote(dir))
}

/// The `umask` argument of a module that mirrors Ansible's `run_command(umask=...)`
/// (`git`, `pip`), as the start of a shell line setting it ("" without one). Like
/// Ansible, an octal string up to 0777; anything else fails the task with its message.
pub fn umask_prefix(a: &super::args::Args) -> Result<String, super::Stop> {
    match a.opt_str("umask")? {
        None => Ok(String::new()),
        Some(u) => match u32::from_str_radix(u.trim(), 8) {
            Ok(n) if n <= 0o777 => Ok(format!("umask {n:04o}; ")),
            _ => Err(super::ModuleResult::failed("umask must be an octal integer").into()),
        },
    }
}

/// The full path of `program` on the host's `PATH` plus the sbin directories, where
/// Ansible's `get_bin_path` looks; a path is taken as given. `None` when it is nowhere.
pub async fn bin_path(ctx: &ModuleCtx<'_>, program: &str) -> Result<Option<String>, ModuleError> {
    if program.contains('/') {
        return Ok(Some(program.to_string()));
    }
    let out = run(
        ctx,
        format!(
            "PATH=\"$PATH:/sbin:/usr/sbin:/usr/local/sbin\" command -v {}",
            sh_quote(program)
        ),
    )
    .await?;
    let p = out.stdout_str().trim().to_string();
    Ok((out.rc == 0 && p.starts_with('/')).then_some(p))
}

/// The failure for a program [`bin_path`] did not find, in Ansible's words.
pub fn bin_missing(program: &str) -> String {
    format!(
        "Failed to find required executable \"{program}\" in paths: the host's PATH and \
         /sbin:/usr/sbin:/usr/local/sbin"
    )
}

/// [`run`] with stdin data and a working directory.
pub async fn run_with(
    ctx: &ModuleCtx<'_>,
    cmd: impl Into<String>,
    stdin: Option<Vec<u8>>,
    chdir: Option<String>,
) -> Result<ExecOutput, ModuleError> {
    let req = ExecRequest {
        cmd: cmd.into(),
        stdin,
        env: ctx.env.clone(),
        chdir,
        become_: ctx.become_.clone(),
        timeout: None,
    };
    Ok(ctx.conn.exec(req).await?)
}

/// The state of one path on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteStat {
    /// Permission bits (`0o7777` part of `st_mode`).
    pub mode: u32,
    pub file_type: FileType,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
    pub inode: u64,
    pub nlink: u64,
    /// Hex digest of a regular file's content, when asked for and readable.
    pub checksum: Option<String>,
    /// Target of a symbolic link.
    pub link_target: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileType {
    #[default]
    File,
    Directory,
    Link,
    Other,
}

impl RemoteStat {
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }
    pub fn is_file(&self) -> bool {
        self.file_type == FileType::File
    }
    pub fn is_link(&self) -> bool {
        self.file_type == FileType::Link
    }
    /// `'0644'`, as Ansible prints modes.
    pub fn mode_str(&self) -> String {
        format!("{:04o}", self.mode)
    }
    /// The `stat` dictionary the `stat` module returns.
    pub fn to_json(&self, path: &str, checksum_key: bool) -> Value {
        let mut m = Map::new();
        let bits = self.mode;
        let entries = json!({
            "exists": true,
            "path": path,
            "mode": self.mode_str(),
            "isdir": self.is_dir(),
            "isreg": self.is_file(),
            "islnk": self.is_link(),
            "uid": self.uid,
            "gid": self.gid,
            "pw_name": self.owner,
            "gr_name": self.group,
            "size": self.size,
            "mtime": self.mtime,
            "inode": self.inode,
            "nlink": self.nlink,
            "readable": true,
            "executable": bits & 0o111 != 0,
            "rusr": bits & 0o400 != 0, "wusr": bits & 0o200 != 0, "xusr": bits & 0o100 != 0,
            "rgrp": bits & 0o040 != 0, "wgrp": bits & 0o020 != 0, "xgrp": bits & 0o010 != 0,
            "roth": bits & 0o004 != 0, "woth": bits & 0o002 != 0, "xoth": bits & 0o001 != 0,
            "isuid": bits & 0o4000 != 0, "isgid": bits & 0o2000 != 0,
        });
        if let Value::Object(e) = entries {
            m.extend(e);
        }
        if let Some(t) = &self.link_target {
            m.insert("lnk_source".into(), Value::String(t.clone()));
            m.insert("lnk_target".into(), Value::String(t.clone()));
        }
        if checksum_key && let Some(c) = &self.checksum {
            m.insert("checksum".into(), Value::String(c.clone()));
        }
        Value::Object(m)
    }
}

/// Checksum algorithms the host can compute with coreutils.
pub const CHECKSUM_ALGORITHMS: &[&str] = &["sha1", "md5", "sha224", "sha256", "sha384", "sha512"];

/// Shell function `st PATH` printing one line describing PATH (or `N` when missing).
/// `follow` dereferences symlinks (`stat -L`); `alg` adds a content checksum.
fn stat_function(follow: bool, alg: Option<&str>) -> String {
    let l = if follow { "-L " } else { "" };
    let sum = match alg {
        Some(a) => format!(
            "if [ -f \"$1\" ] && [ -r \"$1\" ]; then c=$({a}sum < \"$1\" | cut -d' ' -f1); fi; "
        ),
        None => String::new(),
    };
    format!(
        "st() {{ if [ -e \"$1\" ] || [ -L \"$1\" ]; then c=; t=; {sum}\
         if [ -L \"$1\" ]; then t=$(readlink \"$1\"); fi; \
         printf 'Y|%s|%s|%s\\n' \"$(stat {l}-c '%f|%u|%g|%U|%G|%s|%Y|%i|%h' -- \"$1\")\" \"$c\" \"$t\"; \
         else echo N; fi; }}; "
    )
}

/// Parses one line of [`stat_function`] output.
fn parse_stat_line(line: &str) -> Option<RemoteStat> {
    let mut f = line.split('|');
    if f.next()? != "Y" {
        return None;
    }
    let raw = u32::from_str_radix(f.next()?, 16).ok()?;
    let file_type = match raw & 0o170000 {
        0o040000 => FileType::Directory,
        0o100000 => FileType::File,
        0o120000 => FileType::Link,
        _ => FileType::Other,
    };
    let mut next = || f.next().unwrap_or("");
    let uid = next().parse().ok()?;
    let gid = next().parse().ok()?;
    let owner = next().to_string();
    let group = next().to_string();
    let size = next().parse().unwrap_or(0);
    let mtime = next().parse().unwrap_or(0);
    let inode = next().parse().unwrap_or(0);
    let nlink = next().parse().unwrap_or(0);
    let checksum = Some(next().to_string()).filter(|s| !s.is_empty());
    let link_target = Some(next().to_string()).filter(|s| !s.is_empty());
    Some(RemoteStat {
        mode: raw & 0o7777,
        file_type,
        uid,
        gid,
        owner,
        group,
        size,
        mtime,
        inode,
        nlink,
        checksum,
        link_target,
    })
}

/// Stats several paths in one round trip; `None` for a path that does not exist.
pub async fn stat_paths(
    ctx: &ModuleCtx<'_>,
    paths: &[String],
    follow: bool,
    checksum: Option<&str>,
) -> Result<Vec<Option<RemoteStat>>, ModuleError> {
    if paths.is_empty() {
        return Ok(vec![]);
    }
    let mut cmd = stat_function(follow, checksum);
    for p in paths {
        cmd.push_str(&format!("st {}; ", qpath(p)));
    }
    let out = run(ctx, cmd).await?;
    if out.rc != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot stat {}: {}",
            paths.join(", "),
            out.stderr_str().trim()
        )));
    }
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != paths.len() {
        return Err(ModuleError::Failed(format!(
            "unexpected output while checking {}: {}",
            paths.join(", "),
            out.stderr_str().trim()
        )));
    }
    Ok(lines.into_iter().map(parse_stat_line).collect())
}

pub async fn stat_path(
    ctx: &ModuleCtx<'_>,
    path: &str,
    follow: bool,
    checksum: Option<&str>,
) -> Result<Option<RemoteStat>, ModuleError> {
    Ok(stat_paths(ctx, &[path.to_string()], follow, checksum)
        .await?
        .pop()
        .flatten())
}

/// Reads a file together with its state in one round trip; `None` when it does not exist.
pub async fn read_with_stat(
    ctx: &ModuleCtx<'_>,
    path: &str,
) -> Result<Option<(RemoteStat, Vec<u8>)>, ModuleError> {
    let q = qpath(path);
    let cmd = format!(
        "{}st {q}; if [ -f {q} ]; then cat -- {q}; elif [ -e {q} ]; then echo 'not a regular file' >&2; exit 3; fi",
        stat_function(true, None)
    );
    let out = run(ctx, cmd).await?;
    if out.rc != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot read {path}: {}",
            out.stderr_str().trim()
        )));
    }
    let nl = out
        .stdout
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(out.stdout.len());
    let line = String::from_utf8_lossy(&out.stdout[..nl]);
    Ok(parse_stat_line(&line).map(|st| (st, out.stdout.get(nl + 1..).unwrap_or(&[]).to_vec())))
}

/// Reads every regular file among `words` (shell words, so globs and `$HOME` expand on the
/// host) in one round trip: each file's expanded path and exact bytes, in the order the
/// shell lists them. Missing files and anything but regular files are left out.
pub async fn read_many(
    ctx: &ModuleCtx<'_>,
    words: &str,
) -> Result<Vec<(String, Vec<u8>)>, ModuleError> {
    // Each file as "<length> <path>\n<bytes>", so any content reads back exactly.
    let cmd = format!(
        "for f in {words}; do if [ -f \"$f\" ]; then \
         printf '%s %s\\n' $(wc -c < \"$f\") \"$f\"; cat -- \"$f\"; fi; done"
    );
    let out = run(ctx, cmd).await?;
    Ok(parse_many(&out.stdout))
}

/// The files of [`read_many`]'s output.
pub fn parse_many(mut rest: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let head = String::from_utf8_lossy(&rest[..nl]).into_owned();
        let Some((len, path)) = head.split_once(' ') else {
            break;
        };
        let len: usize = len.parse().unwrap_or(0);
        let body = &rest[nl + 1..];
        let take = len.min(body.len());
        files.push((path.to_string(), body[..take].to_vec()));
        rest = &body[take..];
    }
    files
}

/// How [`write_file`] finishes the file it uploads.
#[derive(Clone, Debug, Default)]
pub struct WriteOpts {
    /// Wanted mode; `None` keeps an existing file's mode, else `0666 & ~umask`.
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Copy the old file to `dest.<timestamp>~` first, as Ansible's `backup: yes`.
    pub backup: bool,
}

/// Writes `data` to `dest` atomically (temp file in the same directory, then rename),
/// keeping an existing file's owner, group and mode unless told otherwise. A bind-mounted
/// `dest` is rewritten in place instead (see [`place_file`]).
/// Returns the backup file's path when one was made.
pub async fn write_file(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    data: &[u8],
    opts: &WriteOpts,
) -> Result<Option<String>, ModuleError> {
    place_file(ctx, dest, Source::Bytes(data), opts).await
}

/// Where the new content of a file comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Uploaded from the controller.
    Bytes(&'a [u8]),
    /// Another file on the host (`remote_src: yes`).
    Remote(&'a str),
}

/// [`write_file`] for either kind of [`Source`].
pub async fn place_file(
    ctx: &ModuleCtx<'_>,
    dest: &str,
    source: Source<'_>,
    opts: &WriteOpts,
) -> Result<Option<String>, ModuleError> {
    let d = qpath(dest);
    let parent = qpath(parent(dest));
    let (fill, stdin) = match source {
        Source::Bytes(data) => ("cat > \"$t\"".to_string(), Some(data.to_vec())),
        Source::Remote(src) => (format!("cat -- {} > \"$t\"", qpath(src)), None),
    };
    let mut cmd = format!(
        "set -e; if [ ! -d {parent} ]; then printf 'Destination directory %s does not exist\\n' {parent} >&2; exit 1; fi; \
         t=$(mktemp {d}.so-tmp.XXXXXX); trap 'rm -f \"$t\"' EXIT; (umask 077; {fill}); "
    );
    if opts.backup {
        // Ansible's backup name: `<file>.<pid>.<timestamp>~`.
        cmd.push_str(&format!(
            "if [ -f {d} ]; then b={d}.$$.$(date +%Y-%m-%d@%H:%M:%S)~; cp -p {d} \"$b\"; echo \"$b\"; fi; "
        ));
    }
    cmd.push_str(&format!(
        "if [ -e {d} ]; then chmod --reference={d} \"$t\"; chown --reference={d} \"$t\" 2>/dev/null || true; \
         else chmod $(printf '%o' $((0666 & ~$(umask)))) \"$t\"; fi; "
    ));
    cmd.push_str(&attrs_commands(
        "\"$t\"",
        opts.mode.as_ref(),
        opts.owner.as_deref(),
        opts.group.as_deref(),
        false,
    ));
    // A file that is itself a mount point (a container's or devcloud machine's bind-mounted
    // /etc/hosts) cannot be renamed over ("Device or resource busy"); like Ansible's
    // `unsafe_writes`, its content is then rewritten in place.
    cmd.push_str(&format!(
        "if ! e=$(mv -f \"$t\" {d} 2>&1); then case \"$e\" in *busy*) cat \"$t\" > {d}; rm -f \"$t\";; \
         *) echo \"$e\" >&2; exit 1;; esac; fi; trap - EXIT"
    ));
    let out = run_with(ctx, cmd, stdin, None).await?;
    if out.rc != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot write {dest}: {}",
            out.stderr_str().trim()
        )));
    }
    let backup = out.stdout_str().trim().to_string();
    Ok(Some(backup).filter(|b| !b.is_empty()))
}

/// `chmod`/`chown`/`chgrp` commands for `target` (already quoted), each followed by `; `.
pub fn attrs_commands(
    target: &str,
    mode: Option<&Mode>,
    owner: Option<&str>,
    group: Option<&str>,
    recurse: bool,
) -> String {
    let r = if recurse { "-R " } else { "" };
    let mut cmd = String::new();
    match mode {
        Some(Mode::Octal(m)) => cmd.push_str(&format!("chmod {r}{m:04o} {target}; ")),
        Some(Mode::Symbolic(s)) => cmd.push_str(&format!("chmod {r}{} {target}; ", sh_quote(s))),
        Some(Mode::Preserve) | None => {}
    }
    match (owner, group) {
        (Some(o), Some(g)) => cmd.push_str(&format!(
            "chown {r}{} {target}; ",
            sh_quote(&format!("{o}:{g}"))
        )),
        (Some(o), None) => cmd.push_str(&format!("chown {r}{} {target}; ", sh_quote(o))),
        (None, Some(g)) => cmd.push_str(&format!("chgrp {r}{} {target}; ", sh_quote(g))),
        (None, None) => {}
    }
    cmd
}

/// Sets mode/owner/group of `path` on the host (of everything under it with `recurse`),
/// for a file whose content is already right. Every module that fixes attributes goes
/// through here so that all of them quote the path the same way: with [`qpath`], a `~/`
/// path means the (become) user's home, as it does when the file is read or written.
pub async fn set_attrs(
    ctx: &ModuleCtx<'_>,
    path: &str,
    mode: Option<&Mode>,
    owner: Option<&str>,
    group: Option<&str>,
    recurse: bool,
) -> Result<(), ModuleError> {
    let cmd = attrs_commands(&qpath(path), mode, owner, group, recurse);
    if cmd.is_empty() {
        return Ok(());
    }
    let out = run(ctx, format!("set -e; {cmd}")).await?;
    if out.rc != 0 {
        let place = if recurse { "under" } else { "of" };
        return Err(ModuleError::Failed(format!(
            "cannot set attributes {place} {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}

/// Whether `st` already has the wanted mode, owner and group. Owners may be names or ids.
pub fn attrs_match(
    st: &RemoteStat,
    mode: Option<&Mode>,
    owner: Option<&str>,
    group: Option<&str>,
) -> bool {
    let mode_ok = mode.is_none_or(|m| m.apply(st.mode, st.is_dir()) == st.mode);
    let owner_ok = owner.is_none_or(|o| o == st.owner || o == st.uid.to_string());
    let group_ok = group.is_none_or(|g| g == st.group || g == st.gid.to_string());
    mode_ok && owner_ok && group_ok
}

/// SHA-1 of `data` in hex: Ansible's `checksum`.
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

/// The parent directory of a remote path (`/` for top-level paths, `.` for bare names).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// `path` without repeated or trailing slashes (`/` stays `/`): the spelling a shell loop
/// that walks up a path with `${d%/*}` needs to meet each ancestor once.
pub fn tidy_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// The last component of a path.
pub fn basename(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// Runs `cmd` (in a `set -e` subshell) and then stats `path`, in one round trip, so a
/// module can report the state it left behind. Returns the command's output without
/// the stat line, and the path's new state.
pub async fn run_and_stat(
    ctx: &ModuleCtx<'_>,
    cmd: &str,
    path: &str,
    follow: bool,
) -> Result<(ExecOutput, Option<RemoteStat>), ModuleError> {
    let script = format!(
        "{}(set -e; {cmd}\n); rc=$?; echo; st {}; exit $rc",
        stat_function(follow, None),
        qpath(path)
    );
    let mut out = run(ctx, script).await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let body = text.trim_end_matches('\n');
    let (before, last) = body.rsplit_once('\n').unwrap_or(("", body));
    let st = parse_stat_line(last);
    out.stdout = before.as_bytes().to_vec();
    Ok((out, st))
}

/// Quotes a remote path for the shell like [`sh_quote`], but keeps a leading `~` or `~/`
/// meaning the (become) user's home, as Ansible expands it on the host.
pub fn qpath(p: &str) -> String {
    if p == "~" {
        "\"$HOME\"".to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("\"$HOME\"/{}", sh_quote(rest))
    } else {
        sh_quote(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_their_home_prefix() {
        assert_eq!(qpath("~/.ssh/a b"), "\"$HOME\"/'.ssh/a b'");
        assert_eq!(qpath("/etc/x"), "/etc/x");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(tidy_path("/a//b/"), "/a/b");
        assert_eq!(tidy_path("//"), "/");
        assert_eq!(tidy_path("~/x/"), "~/x");
        assert_eq!(tidy_path("a"), "a");
    }

    #[test]
    fn stat_lines_parse() {
        let st = parse_stat_line("Y|81a4|0|0|root|root|3|1700000000|42|1|abc|").unwrap();
        assert_eq!(
            (st.mode, st.is_file(), st.size, st.checksum.as_deref()),
            (0o644, true, 3, Some("abc"))
        );
        assert!(parse_stat_line("N").is_none());
    }
}
