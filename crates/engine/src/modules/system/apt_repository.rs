//! `apt_repository`: a one-line APT source in `sources.list` or `sources.list.d/*.list`,
//! kept as ansible-core keeps it: lines compared by their normalised text, a disabled
//! matching line re-enabled in place, a new line appended to a file named after the
//! repository's host and path, every source file rewritten in the normalised form (and
//! emptied ones removed) when anything changes, and the package lists updated after.
//!
//! Ansible reads the sources with python3-apt; this reads them with `cat`, so the host
//! needs no Python. `ppa:` repositories (Launchpad, Ubuntu) are refused by name.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::apt::update_lists;
use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::remote::{self, WriteOpts};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct AptRepository;

const KNOWN: &[&str] = &[
    "repo",
    "state",
    "mode",
    "update_cache",
    "update-cache",
    "update_cache_retries",
    "update_cache_retry_max_delay",
    "validate_certs",
    "filename",
    "codename",
    "install_python_apt",
];

const SOURCES_LIST: &str = "/etc/apt/sources.list";
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// One line of a sources file, as Ansible's `SourcesList` parses it.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub disabled: bool,
    /// A valid line's tokens joined by single spaces; otherwise the stripped text.
    pub source: String,
    pub comment: Option<String>,
    /// Starts with `deb` or `deb-src`.
    pub valid: bool,
}

pub fn parse_line(raw: &str) -> Line {
    let mut line = raw.trim();
    let disabled = line.starts_with('#');
    if disabled {
        line = &line[1..];
    }
    let mut comment = None;
    if let Some(i) = line.find('#')
        && i > 0
    {
        comment = Some(line[i + 1..].trim().to_string());
        line = &line[..i];
    }
    let source = line.trim();
    let tokens: Vec<&str> = source.split_whitespace().collect();
    let valid = matches!(tokens.first(), Some(&"deb" | &"deb-src"));
    Line {
        disabled,
        source: if valid {
            tokens.join(" ")
        } else {
            source.to_string()
        },
        comment,
        valid,
    }
}

fn render(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| {
            let mut s = String::new();
            if l.disabled {
                s.push_str("# ");
            }
            s.push_str(&l.source);
            if let Some(c) = &l.comment {
                s.push_str(" # ");
                s.push_str(c);
            }
            s.push('\n');
            s
        })
        .collect()
}

/// The file a new repository line goes to, as Ansible names it.
pub fn file_for(source: &str, filename: Option<&str>) -> Option<String> {
    let no_opts = regex::Regex::new(r"\[[^\]]+\]")
        .ok()?
        .replace_all(source, "")
        .into_owned();
    let no_scheme = regex::Regex::new(r"\w+://")
        .ok()?
        .replace_all(&no_opts, "")
        .into_owned();
    let first = no_scheme
        .split_whitespace()
        .find(|t| *t != "deb" && *t != "deb-src")?;
    let host_path = first.split_once('@').map_or(first, |(_, rest)| rest);
    let name = match filename {
        Some(f) => format!("{f}.list"),
        None => {
            let words: Vec<String> = host_path
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            format!("{}.list", words.join("_"))
        }
    };
    Some(if name.contains('/') {
        name
    } else {
        format!("{SOURCES_DIR}/{name}")
    })
}

/// The sources as read: each file's path, raw bytes and parsed lines.
struct Source {
    path: String,
    raw: String,
    lines: Vec<Line>,
}

fn dump(files: &[Source]) -> Vec<(String, String)> {
    files
        .iter()
        .filter(|f| !f.lines.is_empty())
        .map(|f| (f.path.clone(), render(&f.lines)))
        .collect()
}

#[async_trait]
impl Module for AptRepository {
    fn name(&self) -> &'static str {
        "apt_repository"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["repo"]],
            choices: &[("state", &["present", "absent"])],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("apt_repository", args, KNOWN)?;
        let repo = a.str("repo")?;
        if repo.trim().is_empty() {
            return Err(a.fail("Please set argument 'repo' to a non-empty value"));
        }
        if repo.trim().starts_with("ppa:") {
            return Err(a.err(
                "repo",
                "names a Launchpad PPA, which serves Ubuntu only; give the 'deb ...' line of \
                 a repository for this distribution",
            ));
        }
        let present = a.choice("state", &["present", "absent"], "present")? == "present";
        let update_cache = match a.opt_bool("update_cache")? {
            Some(b) => b,
            None => a.bool_or("update-cache", true)?,
        };
        let mode = a.opt_mode("mode")?;
        let filename = a.opt_str("filename")?;
        let wanted = parse_line(&repo);
        if !wanted.valid || (!present && wanted.disabled) {
            let shown = repo.trim().strip_prefix('#').unwrap_or(repo.trim());
            let shown = shown.split('#').next().unwrap_or(shown);
            return Ok(ModuleResult::failed(format!(
                "Invalid repository string: {shown}"
            )));
        }
        let target = file_for(&wanted.source, filename.as_deref())
            .ok_or_else(|| a.err("repo", format!("has no repository URL: {repo}")))?;

        // Every source file, in the order apt reads them.
        let listed = remote::read_many(
            ctx,
            &format!("{SOURCES_LIST} {SOURCES_DIR}/*.list {}", sh_quote(&target)),
        )
        .await?;
        let mut files: Vec<Source> = Vec::new();
        for (path, data) in listed {
            if files.iter().any(|f| f.path == path) {
                continue;
            }
            let raw = String::from_utf8_lossy(&data).replace("\r\n", "\n");
            let lines = raw.lines().map(parse_line).collect();
            files.push(Source { path, raw, lines });
        }
        let before = dump(&files);

        let mut new_files: Vec<String> = Vec::new();
        if present {
            let mut found = false;
            for f in &mut files {
                for l in f
                    .lines
                    .iter_mut()
                    .filter(|l| l.valid && l.source == wanted.source)
                {
                    found = true;
                    l.disabled = false;
                }
            }
            if !found {
                let line = Line {
                    disabled: false,
                    comment: None,
                    ..wanted.clone()
                };
                match files.iter_mut().find(|f| f.path == target) {
                    Some(f) => f.lines.push(line),
                    None => files.push(Source {
                        path: target.clone(),
                        raw: String::new(),
                        lines: vec![line],
                    }),
                }
                new_files.push(target.clone());
            }
        } else {
            for f in &mut files {
                f.lines
                    .retain(|l| !(l.valid && !l.disabled && l.source == wanted.source));
            }
        }
        let after = dump(&files);
        let changed = before != after;
        let paths = |d: &[(String, String)]| d.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        let (before_paths, after_paths) = (paths(&before), paths(&after));
        let added: Vec<&String> = after_paths
            .iter()
            .filter(|p| !before_paths.contains(p))
            .collect();
        let removed: Vec<&String> = before_paths
            .iter()
            .filter(|p| !after_paths.contains(p))
            .collect();
        let mut r = if changed {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        }
        .with("repo", repo.as_str())
        .with("state", if present { "present" } else { "absent" })
        .with("sources_added", json!(added))
        .with("sources_removed", json!(removed));
        let mut diff = Vec::new();
        if ctx.diff {
            let text = |d: &[(String, String)], p: &str| {
                d.iter()
                    .find(|(q, _)| q == p)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default()
            };
            for p in &added {
                diff.push(json!({"before": "", "after": text(&after, p),
                    "before_header": "/dev/null", "after_header": p}));
            }
            for p in &removed {
                diff.push(json!({"before": text(&before, p), "after": "",
                    "before_header": p, "after_header": "/dev/null"}));
            }
        }
        r = r.with("diff", diff);
        if !changed || ctx.check_mode {
            return Ok(r);
        }

        // Save: every file in its normalised form, emptied files removed.
        let save = |files: &[(String, String, bool)]| {
            let files = files.to_vec();
            async move {
                for (path, text, keep) in &files {
                    if *keep {
                        remote::write_file(ctx, path, text.as_bytes(), &WriteOpts::default())
                            .await?;
                    } else {
                        remote::run(ctx, format!("rm -f {}", sh_quote(path))).await?;
                    }
                }
                Ok::<(), ModuleError>(())
            }
        };
        let plan: Vec<(String, String, bool)> = files
            .iter()
            .map(|f| (f.path.clone(), render(&f.lines), !f.lines.is_empty()))
            .filter(|(p, text, keep)| {
                let raw = files.iter().find(|f| &f.path == p).map(|f| &f.raw);
                !*keep || raw != Some(text)
            })
            .collect();
        save(&plan).await?;
        if let Some(mode) = &mode {
            for p in &new_files {
                remote::set_attrs(ctx, p, Some(mode), None, None, false).await?;
            }
        }
        if update_cache {
            let retries = a.int_or("update_cache_retries", 5)?;
            let max_delay = a.int_or("update_cache_retry_max_delay", 12)?;
            if let Some(failed) = update_lists(ctx, retries, max_delay, "").await? {
                // Put the sources back as they were, as Ansible does.
                let undo: Vec<(String, String, bool)> = files
                    .iter()
                    .map(|f| {
                        let old = before.iter().find(|(p, _)| p == &f.path);
                        (
                            f.path.clone(),
                            old.map(|(_, t)| t.clone()).unwrap_or_default(),
                            old.is_some(),
                        )
                    })
                    .collect();
                save(&undo).await?;
                return Ok(failed);
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_render_as_ansible_normalises_them() {
        let l = parse_line("  #deb   http://a/b  x   main # backports ");
        assert!(l.disabled && l.valid);
        assert_eq!(l.source, "deb http://a/b x main");
        assert_eq!(l.comment.as_deref(), Some("backports"));
        assert_eq!(render(&[l]), "# deb http://a/b x main # backports\n");
        assert_eq!(render(&[parse_line("#")]), "# \n");
        assert_eq!(render(&[parse_line("##x")]), "# #x\n");
        assert!(!parse_line("foo bar").valid);
    }

    #[test]
    fn files_are_named_after_host_and_path() {
        let f = |s: &str| file_for(&parse_line(s).source, None).unwrap();
        assert_eq!(
            f("deb http://deb.debian.org/debian bookworm-backports main"),
            "/etc/apt/sources.list.d/deb_debian_org_debian.list"
        );
        assert_eq!(
            f(
                "deb [arch=amd64 signed-by=/x.asc] https://download.docker.com/linux/debian bookworm stable"
            ),
            "/etc/apt/sources.list.d/download_docker_com_linux_debian.list"
        );
        assert_eq!(
            f("deb-src https://user:pw@example.com:8080/a_b/c/ x y"),
            "/etc/apt/sources.list.d/example_com_8080_a_b_c.list"
        );
        assert_eq!(
            file_for("deb http://a/b x", Some("/etc/apt/sources")).unwrap(),
            "/etc/apt/sources.list"
        );
        assert_eq!(file_for("deb [arch=amd64]", None), None);
    }
}
