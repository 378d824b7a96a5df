//! `git`: a checkout of a repository at a version (branch, tag, commit or the remote's
//! HEAD), cloned on first use and brought up to date after. It runs the git commands
//! Ansible's module runs, in the same order and with the same reading of their output
//! (`ls-remote` to tell a branch from a tag from a commit, `status --porcelain` for local
//! changes, `rev-parse HEAD` before and after), so `changed`, `before` and `after` are
//! Ansible's and so is the checkout left on the host.
//!
//! Not here: `verify_commit` (GnuPG), `archive` and `separate_git_dir`; a task asking for
//! one fails saying so rather than doing something else.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::connection::{ExecOutput, sh_quote};
use crate::modules::args::Args;
use crate::modules::remote::{self, argv_line};
use crate::modules::{ArgSpec, Diff, Module, ModuleCtx, ModuleError, ModuleResult, Stop};

pub struct Git;

const KNOWN: &[&str] = &[
    "dest",
    "repo",
    "name",
    "version",
    "remote",
    "refspec",
    "reference",
    "force",
    "depth",
    "clone",
    "update",
    "verify_commit",
    "gpg_allowlist",
    "gpg_whitelist",
    "accept_hostkey",
    "accept_newhostkey",
    "key_file",
    "ssh_opts",
    "executable",
    "bare",
    "recursive",
    "single_branch",
    "track_submodules",
    "umask",
    "archive",
    "archive_prefix",
    "separate_git_dir",
];

/// Runs git on the host the way the module's `run_command` does: C locale, the ssh
/// settings in `GIT_SSH_COMMAND`, the umask, and a working directory used only when it
/// exists (Ansible ignores a `cwd` that is not a directory).
struct Runner<'a, 'c> {
    ctx: &'a ModuleCtx<'c>,
    git: String,
    prefix: String,
}

impl Runner<'_, '_> {
    async fn run(&self, args: &[&str], cwd: Option<&str>) -> Result<ExecOutput, ModuleError> {
        let mut line = self.prefix.clone();
        if let Some(dir) = cwd {
            line.push_str(&remote::cd_if_dir(dir));
        }
        let mut argv = vec![self.git.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        line.push_str(&argv_line(&argv));
        remote::run(self.ctx, line).await
    }

    /// [`Runner::run`], a non-zero exit being the task's failure as `check_rc` makes it.
    async fn checked(&self, args: &[&str], cwd: Option<&str>) -> Result<ExecOutput, Stop> {
        let out = self.run(args, cwd).await?;
        if out.rc == 0 {
            return Ok(out);
        }
        let mut argv = vec![self.git.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        Err(Stop::from(self.failure(
            out.stderr_str().trim_end(),
            &argv,
            &out,
        )))
    }

    fn failure(&self, msg: &str, argv: &[String], out: &ExecOutput) -> ModuleResult {
        ModuleResult::failed(msg)
            .with("cmd", argv_line(argv))
            .with("rc", out.rc)
            .with("stdout", out.stdout_str())
            .with("stderr", out.stderr_str())
    }

    /// `rev-parse` of `reference` in `dest` (empty when there is none yet).
    async fn version(&self, dest: &str, reference: &str) -> Result<String, ModuleError> {
        let out = self.run(&["rev-parse", reference], Some(dest)).await?;
        Ok(out.stdout_str().trim_end_matches('\n').to_string())
    }

    /// Whether `ls-remote` lists `version` among `remote`'s branches (`-h`) or tags (`-t`);
    /// like Ansible, "lists" is "its name appears in the output".
    async fn remote_has(
        &self,
        dest: Option<&str>,
        remote: &str,
        kind: &str,
        version: &str,
    ) -> Result<bool, Stop> {
        let refs = if kind == "-h" {
            "refs/heads"
        } else {
            "refs/tags"
        };
        let pattern = format!("{refs}/{version}");
        Ok(self
            .checked(&["ls-remote", remote, kind, &pattern], dest)
            .await?
            .stdout_str()
            .contains(version))
    }

    /// `git branch --no-color -a`, each line trimmed.
    async fn branches(&self, dest: &str) -> Result<Vec<String>, Stop> {
        let out = self
            .run(&["branch", "--no-color", "-a"], Some(dest))
            .await?;
        if out.rc != 0 {
            return Err(Stop::from(
                ModuleResult::failed(format!(
                    "Could not determine branch data - received {}",
                    out.stdout_str()
                ))
                .with("stdout", out.stdout_str())
                .with("stderr", out.stderr_str()),
            ));
        }
        Ok(out
            .stdout_str()
            .split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    /// The branch HEAD follows (from the remote's HEAD when detached), read from the
    /// repository's files as Ansible's `head_splitter` reads them.
    async fn head_branch(&self, dest: &str, repo_path: &str, remote: &str) -> Result<String, Stop> {
        let detached = self.branches(dest).await?.iter().any(|l| {
            l.starts_with("* ")
                && (l.contains("no branch")
                    || l.contains("detached from")
                    || l.contains("detached at"))
        });
        let headfile = if detached {
            format!("{repo_path}/refs/remotes/{remote}/HEAD")
        } else {
            format!("{repo_path}/HEAD")
        };
        let out = remote::run(
            self.ctx,
            format!("head -n 1 {} 2>/dev/null", sh_quote(&headfile)),
        )
        .await?;
        Ok(head_splitter(&out.stdout_str(), remote).unwrap_or_default())
    }
}

/// Ansible's `head_splitter` on the first line of a HEAD file: the branch name after
/// `refs/heads/` (or after `refs/remotes/<remote>/`).
pub fn head_splitter(line: &str, remote: &str) -> Option<String> {
    if line.is_empty() {
        return None;
    }
    let line = line.replacen(&format!("refs/remotes/{remote}"), "", 1);
    let last = line.split(' ').next_back()?;
    let part = last.splitn(3, '/').last()?;
    Some(part.trim_end_matches('\n').to_string())
}

/// Local changes as `status --porcelain` shows them, untracked files (`??`) aside.
pub fn has_local_mods(porcelain: &str) -> bool {
    porcelain.lines().any(|l| !l.starts_with("??"))
}

/// The commit `ls-remote` printed for a version: for a tag, the dereferenced commit of
/// an annotated tag (`v1^{}`) when listed.
pub fn remote_rev(out: &str, version: &str, tag: bool) -> Option<String> {
    let mut line = out;
    if tag {
        for l in out.split('\n') {
            if l.ends_with(&format!("{version}^{{}}")) {
                line = l;
                break;
            } else if l.ends_with(version) {
                line = l;
            }
        }
    }
    line.split_whitespace().next().map(String::from)
}

/// `git --version` as numbers (`2.39.5` → [2, 39, 5]).
fn parse_git_version(out: &str) -> Option<Vec<u32>> {
    let v = out.trim().rsplit("git version ").next()?;
    let nums: Vec<u32> = v.split('.').map_while(|p| p.parse::<u32>().ok()).collect();
    (!nums.is_empty()).then_some(nums)
}

/// Python's `os.path.normpath` of an absolute path.
fn normpath(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[async_trait]
impl Module for Git {
    fn name(&self) -> &'static str {
        "git"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["repo", "name"]],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        Stop::finish(checkout(ctx, args).await)
    }
}

/// The module's work, each step able to end it (see [`Stop`]).
async fn checkout(ctx: &ModuleCtx<'_>, args: &Map<String, Value>) -> Result<ModuleResult, Stop> {
    let a = Args::new("git", args, KNOWN)?;
    let repo_arg = match a.opt_str("repo")? {
        Some(r) => r,
        None => a.str("name")?,
    };
    let version = a.str_or("version", "HEAD")?;
    let remote = a.str_or("remote", "origin")?;
    let refspec = a.opt_str("refspec")?.filter(|s| !s.is_empty());
    let reference = a.opt_str("reference")?;
    let force = a.bool_or("force", false)?;
    let depth = a.opt_int("depth")?.filter(|d| *d != 0);
    let allow_clone = a.bool_or("clone", true)?;
    let update = a.bool_or("update", true)?;
    let bare = a.bool_or("bare", false)?;
    let recursive = a.bool_or("recursive", true)?;
    let single_branch = a.bool_or("single_branch", false)?;
    let track_submodules = a.bool_or("track_submodules", false)?;
    if a.bool_or("verify_commit", false)? {
        return Err(a
            .fail(
                "verify_commit (GnuPG signatures) is not supported by this engine: drop it, \
                 or run this task with ansible-playbook",
            )
            .into());
    }
    for unsupported in ["archive", "archive_prefix", "separate_git_dir"] {
        if a.has(unsupported) {
            return Err(a
                .err(
                    unsupported,
                    "is not supported by this engine: drop it (a plain checkout), or run \
                     this task with ansible-playbook",
                )
                .into());
        }
    }
    if a.bool_or("accept_hostkey", false)? && a.bool_or("accept_newhostkey", false)? {
        return Err(a
            .fail("parameters are mutually exclusive: accept_hostkey|accept_newhostkey")
            .into());
    }

    // ssh options as set_git_ssh_env builds them (git >= 2.3: GIT_SSH_COMMAND).
    let mut ssh_opts = a
        .opt_str("ssh_opts")?
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let has_accept = |o: &str| {
        o.contains("-o StrictHostKeyChecking=no")
            || o.contains("-o StrictHostKeyChecking=accept-new")
    };
    if a.bool_or("accept_hostkey", false)? && !has_accept(&ssh_opts) {
        ssh_opts.push_str(" -o StrictHostKeyChecking=no");
    }
    if a.bool_or("accept_newhostkey", false)? && !has_accept(&ssh_opts) {
        ssh_opts.push_str(" -o StrictHostKeyChecking=accept-new");
    }
    if !ssh_opts.contains("BatchMode=yes") {
        ssh_opts.push_str(" -o BatchMode=yes");
    }
    if let Some(key) = a.opt_str("key_file")? {
        let key_opt = format!("-i {key}");
        if !ssh_opts.contains(&key_opt) {
            ssh_opts.push_str(&format!("  {key_opt}"));
        }
        if !ssh_opts.contains("IdentitiesOnly=yes") {
            ssh_opts.push_str(" -o IdentitiesOnly=yes");
        }
    }
    let mut prefix = String::from(
        "LANG=C.UTF-8 LC_ALL=C.UTF-8 LC_MESSAGES=C.UTF-8 LC_CTYPE=C.UTF-8 LANGUAGE=C.UTF-8; \
         export LANG LC_ALL LC_MESSAGES LC_CTYPE LANGUAGE; ",
    );
    prefix.push_str(&format!(
        "GIT_SSH_COMMAND=\"${{GIT_SSH:-${{GIT_SSH_COMMAND:-ssh}}}}\"{}; export GIT_SSH_COMMAND; ",
        sh_quote(&ssh_opts)
    ));
    prefix.push_str(&remote::umask_prefix(&a)?);

    let git = match a.opt_str("executable")? {
        Some(g) => g,
        None => match remote::bin_path(ctx, "git").await? {
            Some(p) => p,
            None => return Ok(ModuleResult::failed(remote::bin_missing("git"))),
        },
    };
    let r = Runner { ctx, git, prefix };

    // Home for `~` and relative paths: the module runs in the login directory. Asked of
    // the host only when a path needs it (a round trip per host otherwise).
    let dest_arg = a.opt_str("dest")?;
    let needs_home = repo_arg.starts_with('~')
        || dest_arg
            .as_deref()
            .is_some_and(|d| d.starts_with('~') || !d.starts_with('/'));
    let home = if needs_home {
        remote::run(ctx, "printf %s \"$HOME\"").await?.stdout_str()
    } else {
        String::new()
    };
    let expand = |p: &str| match p.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None if p == "~" => home.clone(),
        None => p.to_string(),
    };
    // Depth and friends need a URL for a local path.
    let repo = if expand(&repo_arg).starts_with('/') {
        format!("file://{}", expand(&repo_arg))
    } else {
        repo_arg.clone()
    };
    let dest = match dest_arg {
        Some(d) => {
            let d = expand(&d);
            Some(if d.starts_with('/') {
                normpath(&d)
            } else {
                normpath(&format!("{home}/{d}"))
            })
        }
        None if allow_clone => {
            return Ok(ModuleResult::failed(
                "the destination directory must be specified unless clone=no",
            ));
        }
        None => None,
    };
    let repo_path = match &dest {
        None => None,
        Some(d) => Some(repo_path(ctx, d, bare).await?),
    };
    let git_version = parse_git_version(&r.run(&["--version"], None).await?.stdout_str());
    let at_least = |v: &[u32]| git_version.as_ref().is_some_and(|g| g.as_slice() >= v);

    let mut result = ModuleResult::ok().with("before", Value::Null);
    let gitconfig_exists = match &repo_path {
        Some(p) => {
            remote::run(ctx, format!("test -e {}/config", sh_quote(p)))
                .await?
                .rc
                == 0
        }
        None => false,
    };
    let dest_str = dest.clone().unwrap_or_default();
    let repo_path = repo_path.unwrap_or_default();
    let mut local_mods = false;
    let mut remote_url_changed = false;
    let mut remote_head: Option<String> = None;

    if (dest.is_some() && !gitconfig_exists) || (dest.is_none() && !allow_clone) {
        if ctx.check_mode || !allow_clone {
            let head =
                remote_head_of(&r, dest.as_deref(), &repo_path, &version, &repo, &repo_arg).await?;
            result.changed = true;
            result.data.insert("after".into(), json!(head));
            if ctx.diff {
                result.diff = Some(prepared(format!(">> Newly checked out {head}")));
            }
            return Ok(result);
        }
        // Clone.
        let dirname = remote::parent(&dest_str).to_string();
        remote::run(ctx, format!("mkdir -p {} 2>/dev/null", sh_quote(&dirname))).await?;
        let mut cmd: Vec<String> = vec!["clone".into()];
        if bare {
            cmd.push("--bare".into());
        } else {
            cmd.extend(["--origin".into(), remote.clone()]);
        }
        let is_branch = r.remote_has(Some(&dest_str), &repo, "-h", &version).await?;
        let is_branch_or_tag =
            is_branch || r.remote_has(Some(&dest_str), &repo, "-t", &version).await?;
        let mut warnings: Vec<String> = Vec::new();
        if let Some(d) = depth {
            if version == "HEAD" || refspec.is_some() {
                cmd.extend(["--depth".into(), d.to_string()]);
            } else if is_branch_or_tag {
                cmd.extend([
                    "--depth".into(),
                    d.to_string(),
                    "--branch".into(),
                    version.clone(),
                ]);
            } else {
                warnings.push(
                    "Ignoring depth argument. Shallow clones are only available for HEAD, \
                     branches, tags or in combination with refspec."
                        .into(),
                );
            }
        }
        if let Some(reference) = &reference {
            cmd.extend(["--reference".into(), reference.clone()]);
        }
        if single_branch && at_least(&[1, 7, 10]) {
            cmd.push("--single-branch".into());
            if is_branch_or_tag {
                cmd.extend(["--branch".into(), version.clone()]);
            }
        }
        cmd.extend([repo.clone(), dest_str.clone()]);
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        r.checked(&refs, Some(&dirname)).await?;
        if bare && remote != "origin" {
            r.checked(&["remote", "add", &remote, &repo], Some(&dest_str))
                .await?;
        }
        if let Some(spec) = &refspec {
            let mut f: Vec<String> = vec!["fetch".into()];
            if let Some(d) = depth {
                f.extend(["--depth".into(), d.to_string()]);
            }
            f.extend([remote.clone(), spec.clone()]);
            let refs: Vec<&str> = f.iter().map(String::as_str).collect();
            r.checked(&refs, Some(&dest_str)).await?;
        }
        if !warnings.is_empty() {
            result.data.insert("warnings".into(), json!(warnings));
        }
    } else if !update {
        let before = r.version(&dest_str, "HEAD").await?;
        result.data.insert("before".into(), json!(before));
        result.data.insert("after".into(), json!(before));
        return Ok(result);
    } else {
        if !bare {
            let st = r.run(&["status", "--porcelain"], Some(&dest_str)).await?;
            local_mods = has_local_mods(&st.stdout_str());
        }
        let before = r.version(&dest_str, "HEAD").await?;
        result.data.insert("before".into(), json!(before));
        if local_mods {
            if !force {
                result.failed = true;
                result.msg = Some(format!(
                    "Local modifications exist in the destination: {dest_str} (force=no)."
                ));
                return Ok(result);
            }
            if !ctx.check_mode {
                r.checked(&["reset", "--hard", "HEAD"], Some(&dest_str))
                    .await?;
                result.changed = true;
                result.msg = Some(format!(
                    "Local modifications exist in the destination: {dest_str}"
                ));
            }
        }
        let url = r
            .run(&["ls-remote", "--get-url", &remote], Some(&dest_str))
            .await?;
        let current = (url.rc == 0).then(|| url.stdout_str().trim_end_matches('\n').to_string());
        let same = |u: &str| u == repo || normpath_url(u) == normpath_url(&repo);
        if ctx.check_mode {
            remote_url_changed = current
                .as_deref()
                .is_some_and(|u| !u.is_empty() && !same(u));
            result
                .data
                .insert("remote_url_changed".into(), json!(remote_url_changed));
            let head = remote_head_of(
                &r,
                Some(&dest_str),
                &repo_path,
                &version,
                &remote,
                &repo_arg,
            )
            .await?;
            result.changed = before != head || remote_url_changed;
            result.data.insert("after".into(), json!(head));
            if ctx.diff {
                result.diff = diff_of(&r, &dest_str, Some(&before), &head).await?;
            }
            return Ok(result);
        }
        set_remote_url(&r, &dest_str, &remote, &repo, current.as_deref(), &same).await?;
        remote_url_changed = current.is_some() && !current.as_deref().is_some_and(same);
        result
            .data
            .insert("remote_url_changed".into(), json!(remote_url_changed));
        fetch(
            &r,
            &dest_str,
            &repo_path,
            &repo,
            &version,
            &remote,
            depth,
            bare,
            refspec.as_deref(),
            force,
            &at_least,
        )
        .await?;
        let after = r.version(&dest_str, "HEAD").await?;
        result.data.insert("after".into(), json!(after));
        remote_head = Some(after);
    }

    if !bare {
        switch_version(&r, &dest_str, &repo_path, &remote, &version, depth).await?;
    }
    let mut submodules_updated = false;
    if recursive && !bare {
        submodules_updated = submodules_fetch(&r, &dest_str, &remote, track_submodules).await?;
        if submodules_updated {
            result.data.insert("submodules_changed".into(), json!(true));
            if ctx.check_mode {
                result.changed = true;
                result.data.insert("after".into(), json!(remote_head));
                return Ok(result);
            }
            submodule_update(&r, &dest_str, track_submodules, force).await?;
        }
    }
    let after = r.version(&dest_str, "HEAD").await?;
    let before = result
        .data
        .get("before")
        .and_then(Value::as_str)
        .map(String::from);
    result.data.insert("after".into(), json!(after));
    if before.as_deref() != Some(after.as_str())
        || local_mods
        || submodules_updated
        || remote_url_changed
    {
        result.changed = true;
        if ctx.diff {
            result.diff = diff_of(&r, &dest_str, before.as_deref(), &after).await?;
        }
    }
    Ok(result)
}

fn prepared(text: String) -> Diff {
    Diff {
        prepared: Some(text),
        ..Default::default()
    }
}

/// Ansible's `unfrackgitpath` for what can be compared without the host: a path's
/// normal form (a URL stays as it is but for `.`/`..` segments).
fn normpath_url(p: &str) -> String {
    if p.starts_with('/') {
        normpath(p)
    } else {
        p.trim_end_matches('/').to_string()
    }
}

/// The repository directory: `dest/.git` (or `dest` when bare), or where a `.git` file
/// points (`gitdir: ...`, a submodule's or a worktree's).
async fn repo_path(ctx: &ModuleCtx<'_>, dest: &str, bare: bool) -> Result<String, Stop> {
    let path = if bare {
        dest.to_string()
    } else {
        format!("{dest}/.git")
    };
    let out = remote::run(ctx, format!("[ -f {p} ] && cat {p}", p = sh_quote(&path))).await?;
    if out.rc != 0 {
        return Ok(path);
    }
    let text = out.stdout_str();
    let bad = || {
        ModuleResult::failed(
            "Current repo does not have a valid reference to a separate Git dir or it refers \
             to the invalid path",
        )
    };
    let Some(gitdir) = text.trim_end().strip_prefix("gitdir: ") else {
        return Err(Stop::from(bad()));
    };
    let p = if gitdir.starts_with('/') {
        gitdir.to_string()
    } else {
        format!("{dest}/{gitdir}")
    };
    let is_dir = remote::run(ctx, format!("test -d {}", sh_quote(&p)))
        .await?
        .rc
        == 0;
    if is_dir { Ok(p) } else { Err(bad().into()) }
}

/// Ansible's `get_remote_head`: the commit `version` names on `remote` (a commit given
/// as `version` is taken as it is).
async fn remote_head_of(
    r: &Runner<'_, '_>,
    dest: Option<&str>,
    repo_path: &str,
    version: &str,
    remote: &str,
    repo_arg: &str,
) -> Result<String, Stop> {
    let cloning = remote == repo_arg || remote == format!("file://{repo_arg}");
    let cwd = if cloning { None } else { dest };
    let mut tag = false;
    let args: Vec<String> = if version == "HEAD" {
        if cloning {
            vec![
                "ls-remote".into(),
                remote.into(),
                "-h".into(),
                "HEAD".into(),
            ]
        } else {
            let branch = r
                .head_branch(dest.unwrap_or_default(), repo_path, remote)
                .await?;
            vec![
                "ls-remote".into(),
                remote.into(),
                "-h".into(),
                format!("refs/heads/{branch}"),
            ]
        }
    } else if r.remote_has(dest, remote, "-h", version).await? {
        vec![
            "ls-remote".into(),
            remote.into(),
            "-h".into(),
            format!("refs/heads/{version}"),
        ]
    } else if r.remote_has(dest, remote, "-t", version).await? {
        tag = true;
        vec![
            "ls-remote".into(),
            remote.into(),
            "-t".into(),
            format!("refs/tags/{version}*"),
        ]
    } else {
        return Ok(version.to_string());
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = r.checked(&refs, cwd).await?;
    let text = out.stdout_str();
    match remote_rev(&text, version, tag).filter(|_| !text.is_empty()) {
        Some(rev) => Ok(rev),
        None => Err(Stop::from(
            ModuleResult::failed(format!("Could not determine remote revision for {version}"))
                .with("stdout", text)
                .with("stderr", out.stderr_str())
                .with("rc", out.rc),
        )),
    }
}

/// Points `remote` at `repo` when it points elsewhere.
async fn set_remote_url(
    r: &Runner<'_, '_>,
    dest: &str,
    remote: &str,
    repo: &str,
    current: Option<&str>,
    same: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(), Stop> {
    if current.is_some_and(same) {
        return Ok(());
    }
    let out = r
        .run(&["remote", "set-url", remote, repo], Some(dest))
        .await?;
    if out.rc != 0 {
        return Err(Stop::from(ModuleResult::failed(format!(
            "Failed to set a new url {repo} for {remote}: {} {}",
            out.stdout_str(),
            out.stderr_str()
        ))));
    }
    Ok(())
}

/// Ansible's `fetch`: the fewest refs a shallow checkout needs, else every branch and tag.
#[allow(clippy::too_many_arguments)]
async fn fetch(
    r: &Runner<'_, '_>,
    dest: &str,
    repo_path: &str,
    repo: &str,
    version: &str,
    remote: &str,
    depth: Option<i64>,
    bare: bool,
    refspec: Option<&str>,
    force: bool,
    at_least: &(dyn Fn(&[u32]) -> bool + Sync),
) -> Result<(), Stop> {
    let mut cmd: Vec<String> = vec!["fetch".into()];
    let mut refspecs: Vec<String> = Vec::new();
    if let Some(d) = depth {
        let current = r.head_branch(dest, repo_path, remote).await?;
        if let Some(s) = refspec {
            refspecs.push(s.into());
        } else if version == "HEAD" {
            refspecs.push(current.clone());
        } else if r.remote_has(Some(dest), repo, "-h", version).await? {
            if current != version {
                refspecs.push(format!("+refs/heads/{version}:refs/heads/{version}"));
            }
            refspecs.push(format!(
                "+refs/heads/{version}:refs/remotes/{remote}/{version}"
            ));
        } else if r.remote_has(Some(dest), repo, "-t", version).await? {
            refspecs.push(format!("+refs/tags/{version}:refs/tags/{version}"));
        }
        if !refspecs.is_empty() {
            cmd.extend(["--depth".into(), d.to_string()]);
        }
    }
    let mut commands: Vec<Vec<String>> = Vec::new();
    if depth.is_none() || refspecs.is_empty() {
        if bare {
            refspecs = vec![
                "+refs/heads/*:refs/heads/*".into(),
                "+refs/tags/*:refs/tags/*".into(),
            ];
        } else if at_least(&[1, 9]) {
            cmd.push("--tags".into());
        } else {
            let mut first = cmd.clone();
            first.push(remote.into());
            commands.push(first);
            refspecs = vec!["+refs/tags/*:refs/tags/*".into()];
        }
        if let Some(s) = refspec {
            refspecs.push(s.into());
        }
    }
    if force {
        cmd.push("--force".into());
    }
    cmd.push(remote.into());
    cmd.extend(refspecs);
    commands.push(cmd);
    for c in commands {
        let refs: Vec<&str> = c.iter().map(String::as_str).collect();
        let out = r.run(&refs, Some(dest)).await?;
        if out.rc != 0 {
            let mut argv = vec![r.git.clone()];
            argv.extend(c.iter().cloned());
            return Err(Stop::from(
                ModuleResult::failed(format!(
                    "Failed to download remote objects and refs: {} {}",
                    out.stdout_str(),
                    out.stderr_str()
                ))
                .with("cmd", json!(argv)),
            ));
        }
    }
    Ok(())
}

/// Ansible's `switch_version`: the branch checked out and reset to the remote's, or the
/// tag or commit checked out detached.
async fn switch_version(
    r: &Runner<'_, '_>,
    dest: &str,
    repo_path: &str,
    remote: &str,
    version: &str,
    depth: Option<i64>,
) -> Result<(), Stop> {
    let checkout_failed = |what: &str, out: &ExecOutput| {
        ModuleResult::failed(format!("Failed to checkout branch {what}"))
            .with("stdout", out.stdout_str())
            .with("stderr", out.stderr_str())
            .with("rc", out.rc)
    };
    let last: Vec<String>;
    let mut branch = String::new();
    if version == "HEAD" {
        branch = r.head_branch(dest, repo_path, remote).await?;
        let out = r.run(&["checkout", "--force", &branch], Some(dest)).await?;
        if out.rc != 0 {
            return Err(Stop::from(checkout_failed(&branch, &out)));
        }
        last = vec![
            "reset".into(),
            "--hard".into(),
            format!("{remote}/{branch}"),
            "--".into(),
        ];
    } else if r.remote_has(Some(dest), remote, "-h", version).await? {
        let is_local = |b: &[String]| {
            b.iter()
                .any(|l| l == version || *l == format!("* {version}"))
        };
        let mut branches = r.branches(dest).await?;
        if let Some(d) = depth
            && !is_local(&branches)
        {
            let spec = format!(
                "+refs/heads/{version}:refs/heads/{version} +refs/heads/{version}:refs/remotes/{remote}/{version}"
            );
            let depth_arg = format!("--depth={d}");
            // Ansible builds this one as a string and splits it, so the two refspecs are
            // two arguments.
            let mut args = vec!["fetch", depth_arg.as_str(), remote];
            args.extend(spec.split(' '));
            let out = r.run(&args, Some(dest)).await?;
            if out.rc != 0 {
                return Err(Stop::from(
                    ModuleResult::failed(format!("Failed to fetch branch from remote: {version}"))
                        .with("stdout", out.stdout_str())
                        .with("stderr", out.stderr_str())
                        .with("rc", out.rc),
                ));
            }
            branches = r.branches(dest).await?;
        }
        if !is_local(&branches) {
            last = vec![
                "checkout".into(),
                "--track".into(),
                "-b".into(),
                version.into(),
                format!("{remote}/{version}"),
            ];
        } else {
            let out = r.run(&["checkout", "--force", version], Some(dest)).await?;
            if out.rc != 0 {
                return Err(Stop::from(checkout_failed(version, &out)));
            }
            last = vec![
                "reset".into(),
                "--hard".into(),
                format!("{remote}/{version}"),
            ];
        }
    } else {
        last = vec!["checkout".into(), "--force".into(), version.into()];
    }
    let refs: Vec<&str> = last.iter().map(String::as_str).collect();
    let out = r.run(&refs, Some(dest)).await?;
    if out.rc != 0 {
        let what = if version != "HEAD" {
            format!("Failed to checkout {version}")
        } else {
            format!("Failed to checkout branch {branch}")
        };
        let mut argv = vec![r.git.clone()];
        argv.extend(last.iter().cloned());
        return Err(Stop::from(
            ModuleResult::failed(what)
                .with("stdout", out.stdout_str())
                .with("stderr", out.stderr_str())
                .with("rc", out.rc)
                .with("cmd", argv_line(&argv)),
        ));
    }
    Ok(())
}

/// `submodule foreach git rev-parse <version>`: each submodule's commit.
async fn submodule_versions(
    r: &Runner<'_, '_>,
    dest: &str,
    version: &str,
) -> Result<Vec<(String, String)>, Stop> {
    let git = r.git.clone();
    let out = r
        .run(
            &["submodule", "foreach", &git, "rev-parse", version],
            Some(dest),
        )
        .await?;
    if out.rc != 0 {
        return Err(Stop::from(
            ModuleResult::failed("Unable to determine hashes of submodules")
                .with("stdout", out.stdout_str())
                .with("stderr", out.stderr_str())
                .with("rc", out.rc),
        ));
    }
    let mut found = Vec::new();
    let mut name: Option<String> = None;
    for line in out.stdout_str().lines() {
        if let Some(n) = line.strip_prefix("Entering '") {
            name = Some(n.trim_end_matches('\'').to_string());
        } else if line.trim().len() == 40 {
            if let Some(n) = name.take() {
                found.push((n, line.trim().to_string()));
            }
        } else {
            return Err(Stop::from(ModuleResult::failed(format!(
                "Unable to parse submodule hash line: {}",
                line.trim()
            ))));
        }
    }
    Ok(found)
}

/// Ansible's `submodules_fetch`: whether a submodule is new or behind.
async fn submodules_fetch(
    r: &Runner<'_, '_>,
    dest: &str,
    remote: &str,
    track: bool,
) -> Result<bool, Stop> {
    let gm = remote::run(r.ctx, format!("cat {}/.gitmodules", sh_quote(dest))).await?;
    if gm.rc != 0 {
        return Ok(false);
    }
    for line in gm.stdout_str().lines() {
        if line.trim().starts_with("path")
            && let Some((_, path)) = line.split_once('=')
        {
            let p = format!("{dest}/{}/.git", path.trim());
            if remote::run(r.ctx, format!("test -e {}", sh_quote(&p)))
                .await?
                .rc
                != 0
            {
                return Ok(true);
            }
        }
    }
    let begin = submodule_versions(r, dest, "HEAD").await?;
    let git = r.git.clone();
    r.checked(&["submodule", "foreach", &git, "fetch"], Some(dest))
        .await?;
    if track {
        let after = submodule_versions(r, dest, &format!("{remote}/master")).await?;
        return Ok(begin != after);
    }
    let status = r.checked(&["submodule", "status"], Some(dest)).await?;
    Ok(status.stdout_str().lines().any(|l| !l.starts_with(' ')))
}

/// Ansible's `submodule_update`, with `--remote` only where `git submodule update --help`
/// names it on stderr (as Ansible asks).
async fn submodule_update(
    r: &Runner<'_, '_>,
    dest: &str,
    track: bool,
    force: bool,
) -> Result<(), Stop> {
    let help = r
        .run(&["submodule", "update", "--help"], Some(dest))
        .await?;
    let knows_remote = help
        .stderr_str()
        .lines()
        .filter(|l| l.contains("git submodule [--quiet] update "))
        .any(|l| l.contains("--remote"));
    if remote::run(r.ctx, format!("test -e {}/.gitmodules", sh_quote(dest)))
        .await?
        .rc
        != 0
    {
        return Ok(());
    }
    r.checked(&["submodule", "sync"], Some(dest)).await?;
    let mut args = vec!["submodule", "update", "--init", "--recursive"];
    if knows_remote && track {
        args.push("--remote");
    }
    if force {
        args.push("--force");
    }
    let out = r.run(&args, Some(dest)).await?;
    if out.rc != 0 {
        return Err(Stop::from(ModuleResult::failed(format!(
            "Failed to init/update submodules: {}{}",
            out.stdout_str(),
            out.stderr_str()
        ))));
    }
    Ok(())
}

/// The `--diff` of a checkout that moved: `git diff before after`, as Ansible prepares it.
async fn diff_of(
    r: &Runner<'_, '_>,
    dest: &str,
    before: Option<&str>,
    after: &str,
) -> Result<Option<Diff>, ModuleError> {
    let Some(before) = before.filter(|b| !b.is_empty()) else {
        return Ok(Some(prepared(format!(">> Newly checked out {after}"))));
    };
    if before == after {
        return Ok(None);
    }
    let out = r.run(&["diff", before, after], Some(dest)).await?;
    let text = out.stdout_str();
    Ok(Some(prepared(if out.rc == 0 && !text.is_empty() {
        text
    } else if out.rc == 0 {
        format!(">> No visual differences between {before} and {after}")
    } else {
        format!(
            ">> Failed to get proper diff between {before} and {after}:\n>> {}",
            out.stderr_str()
        )
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_files_name_their_branch_as_ansible_reads_them() {
        assert_eq!(
            head_splitter("ref: refs/heads/main\n", "origin").as_deref(),
            Some("main")
        );
        assert_eq!(
            head_splitter("ref: refs/remotes/origin/main\n", "origin").as_deref(),
            Some("main")
        );
        assert_eq!(head_splitter("", "origin"), None);
    }

    #[test]
    fn local_changes_ignore_untracked_files() {
        assert!(!has_local_mods("?? new.txt\n"));
        assert!(has_local_mods(" M README\n?? new.txt\n"));
        assert!(!has_local_mods(""));
    }

    #[test]
    fn annotated_tags_resolve_to_their_commit() {
        let out = "aaa\trefs/tags/v1\nbbb\trefs/tags/v1^{}\n";
        assert_eq!(remote_rev(out, "v1", true).as_deref(), Some("bbb"));
        assert_eq!(
            remote_rev("ccc\trefs/heads/main\n", "main", false).as_deref(),
            Some("ccc")
        );
        assert_eq!(
            parse_git_version("git version 2.39.5\n"),
            Some(vec![2, 39, 5])
        );
        assert_eq!(normpath("/a/./b/../c/"), "/a/c");
    }
}
