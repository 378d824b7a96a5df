//! `file`: makes a path be a file, directory, symlink or hard link with the given mode
//! and owner, touches it, or removes it.
//!
//! One round trip reads the current state; when something has to change, a second one
//! changes it and re-reads the state, so the result shows what is really on the host.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::modules::args::{Args, Mode};
use crate::modules::remote::{self, RemoteStat, attrs_commands, attrs_match, parent, qpath};
use crate::modules::{ArgSpec, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct File;

const KNOWN: &[&str] = &[
    "path",
    "dest",
    "name",
    "state",
    "mode",
    "owner",
    "group",
    "recurse",
    "src",
    "force",
    "follow",
    "modification_time",
    "access_time",
    "modification_time_format",
    "access_time_format",
    "unsafe_writes",
];

const STATES: &[&str] = &["file", "directory", "touch", "link", "hard", "absent"];

/// The state word Ansible uses for what is at a path now.
fn state_of(st: Option<&RemoteStat>) -> &'static str {
    match st {
        None => "absent",
        Some(s) if s.is_dir() => "directory",
        Some(s) if s.is_link() => "link",
        Some(s) if s.nlink > 1 => "hard",
        Some(_) => "file",
    }
}

fn describe(path: &str, state: &str, st: Option<&RemoteStat>) -> String {
    let mut s = format!("path: {path}\nstate: {state}\n");
    if let Some(st) = st.filter(|_| state != "absent") {
        s.push_str(&format!(
            "mode: '{}'\nowner: {}\ngroup: {}\n",
            st.mode_str(),
            st.owner,
            st.group
        ));
    }
    s
}

struct Req<'a> {
    path: &'a str,
    mode: Option<Mode>,
    owner: Option<String>,
    group: Option<String>,
}

impl Req<'_> {
    fn attrs_ok(&self, st: &RemoteStat) -> bool {
        attrs_match(
            st,
            self.mode.as_ref(),
            self.owner.as_deref(),
            self.group.as_deref(),
        )
    }
    fn attrs_cmd(&self, recurse: bool) -> String {
        attrs_commands(
            &qpath(self.path),
            self.mode.as_ref(),
            self.owner.as_deref(),
            self.group.as_deref(),
            recurse,
        )
    }
    fn fail(&self, msg: impl Into<String>) -> Result<ModuleResult, ModuleError> {
        Ok(ModuleResult::failed(msg).with("path", self.path))
    }
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["path", "dest", "name"]],
            choices: &[("state", STATES)],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("file", args, KNOWN)?;
        let path = match (a.opt_str("path")?, a.opt_str("dest")?, a.opt_str("name")?) {
            (Some(p), _, _) | (None, Some(p), _) | (None, None, Some(p)) => p,
            _ => return Err(a.err("path", "is required")),
        };
        let req = Req {
            path: &path,
            mode: a.opt_mode("mode")?,
            owner: a.opt_str("owner")?,
            group: a.opt_str("group")?,
        };
        let src = a.opt_str("src")?;
        let recurse = a.bool_or("recurse", false)?;
        let force = a.bool_or("force", false)?;
        let follow = a.bool_or("follow", true)?;
        let preserve_times = a.opt_str("modification_time")?.as_deref() == Some("preserve")
            && a.opt_str("access_time")?.as_deref() == Some("preserve");

        // For links the source is resolved relative to the link's directory, as `ln -s` does.
        let src_abs = src.as_ref().map(|s| {
            if s.starts_with('/') {
                s.clone()
            } else {
                format!("{}/{s}", parent(&path))
            }
        });
        let mut paths = vec![path.clone()];
        paths.extend(src_abs.clone());
        let stats = remote::stat_paths(ctx, &paths, false, None).await?;
        let mut st = stats[0].clone();
        let src_st = stats.get(1).cloned().flatten();
        let state = match a.opt_str("state")? {
            Some(_) => a.choice("state", STATES, "file")?,
            None if st.is_some() => state_of(st.as_ref()),
            None => "file",
        };
        if recurse && state != "directory" {
            return Err(a.err("recurse", "requires state=directory"));
        }
        if matches!(state, "link" | "hard") && src.is_none() {
            return Err(a.err("src", format!("is required for state={state}")));
        }
        if follow
            && st.as_ref().is_some_and(RemoteStat::is_link)
            && matches!(state, "file" | "directory" | "touch")
        {
            st = remote::stat_path(ctx, &path, true, None).await?;
        }
        let before = state_of(st.as_ref());
        let q = qpath(&path);

        // The shell commands that bring the path to the wanted state; empty when it is already there.
        let cmd = match state {
            "absent" => {
                if st.is_some() {
                    format!("rm -rf -- {q}")
                } else {
                    String::new()
                }
            }
            "directory" => match &st {
                // Like Ansible, every directory created on the way gets the mode/owner. The
                // missing ancestors are found with shell builtins only (no `dirname`, no
                // pipeline): at a hundred hosts each process spawned per task is what the
                // hosts spend their time on. They are kept as the positional parameters,
                // outermost first, so any byte in a name survives.
                None => format!(
                    "set --; d={}; while [ ! -e \"$d\" ] && [ ! -L \"$d\" ]; do set -- \"$d\" \"$@\"; \
                     case $d in */*) d=${{d%/*}}; d=${{d:-/}};; *) d=.;; esac; done; \
                     for d in \"$@\"; do mkdir -- \"$d\" || exit 1; {}done",
                    qpath(&remote::tidy_path(&path)),
                    attrs_commands(
                        "\"$d\"",
                        req.mode.as_ref(),
                        req.owner.as_deref(),
                        req.group.as_deref(),
                        false
                    )
                ),
                Some(s) if !s.is_dir() => {
                    return req.fail(format!("{path} already exists as a {before}"));
                }
                Some(s) if recurse => return recurse_dir(ctx, &req, s).await,
                Some(s) if req.attrs_ok(s) => String::new(),
                Some(_) => req.attrs_cmd(false),
            },
            "file" => match &st {
                None => return req.fail(format!("file ({path}) is absent, cannot continue")),
                Some(s) if s.is_dir() => {
                    return req.fail(format!("file ({path}) is directory, cannot continue"));
                }
                Some(s) if req.attrs_ok(s) => String::new(),
                Some(_) => req.attrs_cmd(false),
            },
            "touch" => match &st {
                Some(s) if preserve_times && req.attrs_ok(s) => String::new(),
                Some(_) if preserve_times => req.attrs_cmd(false),
                _ => format!("touch -- {q}; {}", req.attrs_cmd(false)),
            },
            "link" => {
                let src = src.as_deref().unwrap_or_default();
                let same = st.as_ref().and_then(|s| s.link_target.as_deref()) == Some(src);
                if !force && src_st.is_none() {
                    return req.fail(format!(
                        "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
                        src_abs.unwrap_or_default()
                    ));
                }
                match &st {
                    Some(s) if !s.is_link() && !force => {
                        return req.fail(format!(
                            "refusing to convert from {before} to symlink for {path}"
                        ));
                    }
                    Some(s) if same && req.owner_group_ok(s) => String::new(),
                    Some(_) if same => req.link_owner_cmd(),
                    _ => format!(
                        "rm -rf -- {q}; ln -s -- {} {q}; {}",
                        qpath(src),
                        req.link_owner_cmd()
                    ),
                }
            }
            _ => {
                let src = src.as_deref().unwrap_or_default();
                let Some(src_st) = &src_st else {
                    return req.fail(format!(
                        "src does not exist: {}",
                        src_abs.unwrap_or_default()
                    ));
                };
                match &st {
                    Some(s) if s.inode == src_st.inode && req.attrs_ok(s) => String::new(),
                    Some(s) if s.inode == src_st.inode => req.attrs_cmd(false),
                    Some(s) if s.is_dir() || (!force && s.is_link()) => {
                        return req.fail(format!(
                            "refusing to convert from {before} to hard link for {path}"
                        ));
                    }
                    _ => format!("ln -f -- {} {q}; {}", qpath(src), req.attrs_cmd(false)),
                }
            }
        };
        let mut result = if cmd.is_empty() {
            ModuleResult::ok()
        } else {
            ModuleResult::changed()
        };
        let mut after = st.clone();
        if !cmd.is_empty() && !ctx.check_mode {
            let (out, new) =
                remote::run_and_stat(ctx, &cmd, &path, state != "link" && follow).await?;
            if out.rc != 0 {
                return req.fail(format!(
                    "cannot make {path} a {state}: {}",
                    out.stderr_str().trim()
                ));
            }
            after = new;
        }
        if ctx.diff && !cmd.is_empty() {
            let after_text = if ctx.check_mode {
                format!("path: {path}\nstate: {state}\n")
            } else {
                describe(&path, state_of(after.as_ref()), after.as_ref())
            };
            result.diff = Some(Diff {
                before_header: path.clone(),
                after_header: path.clone(),
                before: describe(&path, before, st.as_ref()),
                after: after_text,
                prepared: None,
            });
        }
        Ok(with_state(
            result,
            &path,
            state,
            after.as_ref(),
            src.as_deref(),
        ))
    }
}

impl Req<'_> {
    fn owner_group_ok(&self, st: &RemoteStat) -> bool {
        attrs_match(st, None, self.owner.as_deref(), self.group.as_deref())
    }
    /// Links have no mode of their own on Linux; only their owner is set, with `-h` so the
    /// link changes and not its target. The owner/group command is [`attrs_commands`]' own
    /// (one `chown` or `chgrp`), with `-h` added after the verb.
    fn link_owner_cmd(&self) -> String {
        let cmd = attrs_commands(
            &qpath(self.path),
            None,
            self.owner.as_deref(),
            self.group.as_deref(),
            false,
        );
        match cmd.split_once(' ') {
            Some((verb, rest)) => format!("{verb} -h {rest}"),
            None => cmd,
        }
    }
}

/// The keys Ansible's `file` returns, from the state left behind.
fn with_state(
    r: ModuleResult,
    path: &str,
    state: &str,
    st: Option<&RemoteStat>,
    src: Option<&str>,
) -> ModuleResult {
    let mut r = r.with("path", path).with("state", state);
    if let Some(s) = st.filter(|_| state != "absent") {
        r = r
            .with("mode", s.mode_str())
            .with("owner", s.owner.clone())
            .with("group", s.group.clone())
            .with("uid", s.uid)
            .with("gid", s.gid)
            .with("size", s.size);
    }
    if let Some(src) = src.filter(|_| matches!(state, "link" | "hard")) {
        r = r.with("src", src);
    }
    r
}

/// `recurse: yes`: GNU `chmod -c`/`chown -c` print one line per path they really changed,
/// which tells us `changed` without walking the tree twice. Check mode asks `find` instead.
async fn recurse_dir(
    ctx: &ModuleCtx<'_>,
    req: &Req<'_>,
    st: &RemoteStat,
) -> Result<ModuleResult, ModuleError> {
    let q = qpath(req.path);
    let cmd = if ctx.check_mode {
        let mut tests = Vec::new();
        match &req.mode {
            Some(Mode::Octal(m)) => tests.push(format!("! -perm {m:04o}")),
            Some(_) if !req.attrs_ok(st) => tests.push("-prune".to_string()),
            _ => {}
        }
        if let Some(o) = &req.owner {
            tests.push(format!("! -user {}", qpath(o)));
        }
        if let Some(g) = &req.group {
            tests.push(format!("! -group {}", qpath(g)));
        }
        if tests.is_empty() {
            return Ok(with_state(
                ModuleResult::ok(),
                req.path,
                "directory",
                Some(st),
                None,
            ));
        }
        format!("find {q} \\( {} \\) -print | head -n 1", tests.join(" -o "))
    } else {
        req.attrs_cmd(true)
            .replace("chmod -R ", "chmod -R -c ")
            .replace("chown -R ", "chown -R -c ")
            .replace("chgrp -R ", "chgrp -R -c ")
    };
    let (out, after) = remote::run_and_stat(ctx, &cmd, req.path, true).await?;
    if out.rc != 0 {
        return req.fail(format!(
            "cannot set attributes under {}: {}",
            req.path,
            out.stderr_str().trim()
        ));
    }
    let changed = !out.stdout_str().trim().is_empty();
    let r = if changed {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    Ok(with_state(r, req.path, "directory", after.as_ref(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_owner_commands_change_the_link_not_its_target() {
        let req = |owner: Option<&str>, group: Option<&str>| Req {
            path: "~/a link",
            mode: Some(Mode::Octal(0o600)),
            owner: owner.map(str::to_string),
            group: group.map(str::to_string),
        };
        assert_eq!(
            req(Some("spark"), Some("hadoop")).link_owner_cmd(),
            "chown -h spark:hadoop \"$HOME\"/'a link'; "
        );
        assert_eq!(
            req(None, Some("hadoop")).link_owner_cmd(),
            "chgrp -h hadoop \"$HOME\"/'a link'; "
        );
        assert_eq!(req(None, None).link_owner_cmd(), "");
    }
}
