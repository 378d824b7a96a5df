//! `pip`: Python packages, in the host's Python or in a virtualenv that the task creates
//! on first use. The module decides what Ansible's does, from the same commands: it runs
//! `pip install` (or `uninstall -y`) and reads `changed` from pip's own report
//! (`Successfully installed`), or from `pip list` before and after for requirements files
//! and VCS URLs, whose names pip alone knows. So `cmd`, `changed` and the packages left
//! are Ansible's, and a role that switches engines installs the same things.
//!
//! Two things differ because the module runs over `/bin/sh` instead of inside a Python
//! interpreter: "the interpreter's own pip" is `ansible_python_interpreter` (else
//! `/usr/bin/python3`, else `python3` on `PATH`, Ansible's discovery on Debian), and
//! check mode compares versions with PEP 440 rules in Rust rather than with Python's
//! `packaging`.

use std::str::FromStr;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::connection::{ExecOutput, sh_quote};
use crate::modules::args::Args;
use crate::modules::remote::{self, argv_line};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult, Stop};

pub struct Pip;

const KNOWN: &[&str] = &[
    "state",
    "name",
    "version",
    "requirements",
    "virtualenv",
    "virtualenv_site_packages",
    "virtualenv_command",
    "virtualenv_python",
    "extra_args",
    "editable",
    "chdir",
    "executable",
    "umask",
    "break_system_packages",
];

const STATES: &[&str] = &["present", "absent", "latest", "forcereinstall"];

/// pip's arguments for each `state`.
fn state_args(state: &str) -> &'static [&'static str] {
    match state {
        "absent" => &["uninstall", "-y"],
        "latest" => &["install", "-U"],
        "forcereinstall" => &["install", "-U", "--force-reinstall"],
        _ => &["install"],
    }
}

/// The comparison operators of a version specifier, longest first so `===` is not read
/// as `==` followed by `=`.
const OPERATORS: &[&str] = &["===", "~=", "==", "!=", "<=", ">=", "<", ">"];

/// One requirement as Ansible's module holds it (its `Package` class): parsed like
/// `packaging.requirements.Requirement` when it is one, kept as written otherwise (a
/// path, a URL, `git+https://...`), in which case it is never "already present".
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// The canonical (PEP 503) name for a parsed requirement, the text otherwise.
    pub package_name: String,
    parsed: Option<Parsed>,
}

#[derive(Debug, Clone, PartialEq)]
struct Parsed {
    name: String,
    extras: Vec<String>,
    /// Each specifier as written, without spaces (`>=1.0`).
    specifiers: Vec<String>,
    url: Option<String>,
    marker: Option<String>,
}

/// PEP 503's canonical form of a distribution name.
pub fn canonical_name(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep {
                out.push('-');
                sep = false;
            }
            out.push(c.to_ascii_lowercase());
        }
    }
    if sep {
        out.push('-');
    }
    out
}

impl Requirement {
    pub fn new(text: &str) -> Requirement {
        match parse_requirement(text) {
            Some(p) => Requirement {
                package_name: canonical_name(&p.name),
                parsed: Some(p),
            },
            None => Requirement {
                package_name: text.to_string(),
                parsed: None,
            },
        }
    }

    /// `name` with the task's `version` added: `==` before a bare version, a space before
    /// one that starts with an operator, as Ansible joins them.
    pub fn with_version(name: &str, version: &str) -> Requirement {
        let version = version.trim_start();
        let sep = if version.starts_with(|c: char| c.is_ascii_digit()) {
            "=="
        } else {
            " "
        };
        Requirement::new(&format!("{name}{sep}{version}"))
    }

    pub fn has_version_specifier(&self) -> bool {
        self.parsed
            .as_ref()
            .is_some_and(|p| !p.specifiers.is_empty())
    }

    /// Whether an installed `version` satisfies the specifiers (pre-releases included).
    pub fn is_satisfied_by(&self, version: &str) -> bool {
        let Some(p) = &self.parsed else { return false };
        let Ok(v) = pep440_rs::Version::from_str(version.trim()) else {
            return false;
        };
        p.specifiers
            .iter()
            .all(|s| pep440_rs::VersionSpecifier::from_str(s).is_ok_and(|spec| spec.contains(&v)))
    }

    /// Whether `installed` (`pip list --format=freeze` lines) has a version of this
    /// requirement that satisfies it.
    pub fn is_present(&self, installed: &[&str]) -> bool {
        installed.iter().any(|line| {
            line.split_once("==").is_some_and(|(name, version)| {
                canonical_name(name) == self.package_name && self.is_satisfied_by(version)
            })
        })
    }
}

impl std::fmt::Display for Requirement {
    /// As `str(Requirement)` prints it: extras and specifiers sorted, no spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(p) = &self.parsed else {
            return f.write_str(&self.package_name);
        };
        f.write_str(&p.name)?;
        if !p.extras.is_empty() {
            let mut extras = p.extras.clone();
            extras.sort();
            write!(f, "[{}]", extras.join(","))?;
        }
        let mut specs = p.specifiers.clone();
        specs.sort();
        f.write_str(&specs.join(","))?;
        if let Some(url) = &p.url {
            write!(f, "@ {url}")?;
            if p.marker.is_some() {
                f.write_str(" ")?;
            }
        }
        if let Some(m) = &p.marker {
            write!(f, "; {m}")?;
        }
        Ok(())
    }
}

/// PEP 508's `name [extras] (specifiers | @ url) [; marker]`, `None` when `text` is not
/// one (Python's parser raises then, and Ansible keeps the text as it is).
fn parse_requirement(text: &str) -> Option<Parsed> {
    let text = text.trim();
    let (body, marker) = match text.split_once(';') {
        Some((b, m)) if !m.trim().is_empty() => (b.trim_end(), Some(m.trim().to_string())),
        Some(_) => return None,
        None => (text, None),
    };
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(body.len());
    let name = &body[..name_len];
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_name {
        return None;
    }
    let mut rest = body[name_len..].trim_start();
    let mut extras = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let (inside, tail) = after.split_once(']')?;
        for e in inside.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !e
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return None;
            }
            extras.push(e.to_string());
        }
        rest = tail.trim_start();
    }
    let mut url = None;
    let mut specifiers = Vec::new();
    if let Some(u) = rest.strip_prefix('@') {
        let u = u.trim();
        if u.is_empty() || u.contains(char::is_whitespace) {
            return None;
        }
        url = Some(u.to_string());
    } else if !rest.is_empty() {
        let inner = match rest.strip_prefix('(') {
            Some(r) => r.strip_suffix(')')?,
            None => rest,
        };
        for item in inner.split(',') {
            let item: String = item.chars().filter(|c| !c.is_whitespace()).collect();
            OPERATORS.iter().find(|op| item.starts_with(**op))?;
            pep440_rs::VersionSpecifier::from_str(&item).ok()?;
            specifiers.push(item);
        }
    }
    Some(Parsed {
        name: name.to_string(),
        extras,
        specifiers,
        url,
        marker,
    })
}

/// Ansible's `_recover_package_name`: `name` (a list, or a string split on commas) rejoins
/// the pieces a comma cut out of one requirement (`django>1.11,<2` gave `django>1.11` and
/// `<2`; `pkg[a,b]` gave `pkg[a` and `b]`).
pub fn recover_names(names: &[String]) -> Vec<String> {
    let pieces: Vec<&str> = names.iter().flat_map(|n| n.split(',')).collect();
    let mut out = Vec::new();
    let mut parts: Vec<&str> = Vec::new();
    let mut in_brackets = false;
    for piece in pieces {
        let is_name = !OPERATORS
            .iter()
            .any(|op| piece.trim_start().starts_with(op));
        if is_name && !in_brackets && !parts.is_empty() {
            out.push(parts.join(","));
            parts.clear();
        }
        if piece.contains('[') {
            in_brackets = true;
        }
        if in_brackets && piece.contains(']') {
            in_brackets = false;
        }
        parts.push(piece);
    }
    out.push(parts.join(","));
    out
}

/// Whether `name` is a VCS URL (`git+`, `hg+`, `svn+`, `bzr+`), which pip installs under
/// a name only it knows.
fn is_vcs_url(name: &str) -> bool {
    ["svn+", "git+", "hg+", "bzr+"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Whether `virtualenv_command` is the `venv` module (`python3 -m venv`) or `pyvenv`,
/// which take no `-p`.
pub fn is_venv_command(argv: &[String]) -> bool {
    if argv.first().map(String::as_str) == Some("pyvenv") {
        return true;
    }
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        if a == "-m" {
            return argv.get(i + 1).map(String::as_str) == Some("venv");
        }
        if let Some(m) = a.strip_prefix("-m") {
            return m.trim_start_matches('=') == "venv";
        }
        i += 1;
    }
    false
}

/// Joins paths as Python's `os.path.join` does: an absolute second part wins.
fn path_join(base: &str, p: &str) -> String {
    if p.starts_with('/') || base.is_empty() {
        p.to_string()
    } else if base.ends_with('/') {
        format!("{base}{p}")
    } else {
        format!("{base}/{p}")
    }
}

/// The failure Ansible's `_fail` reports: the command and both streams.
fn fail(cmd: Value, out: &str, err: &str) -> ModuleResult {
    let mut msg = String::new();
    if !out.is_empty() {
        msg.push_str(&format!("stdout: {out}"));
    }
    if !err.is_empty() {
        msg.push_str(&format!("\n:stderr: {err}"));
    }
    ModuleResult::failed(msg).with("cmd", cmd)
}

/// The shell line prefix every command of the task runs with: `umask` and `PATH`.
struct Shell {
    /// `umask 0022; ` or nothing ([`remote::umask_prefix`]).
    umask: String,
    path_prefix: Option<String>,
}

impl Shell {
    fn line(&self, cmd: &str, chdir: &str) -> String {
        let mut s = remote::cd_if_dir(chdir);
        s.push_str(&self.umask);
        if let Some(p) = &self.path_prefix {
            s.push_str(&format!("PATH={}:\"$PATH\"; export PATH; ", sh_quote(p)));
        }
        s.push_str(cmd);
        s
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        cmd: &str,
        chdir: &str,
    ) -> Result<ExecOutput, ModuleError> {
        remote::run(ctx, self.line(cmd, chdir)).await
    }
}

/// `pip list --format=freeze` (`pip freeze` for a pip too old for it), as Ansible's
/// `_get_packages`: the command as a string and its output, or the failed result.
async fn installed(
    ctx: &ModuleCtx<'_>,
    sh: &Shell,
    pip: &[String],
    chdir: &str,
) -> Result<(String, String, String), Stop> {
    let locale = "LANG=C.UTF-8 LC_ALL=C.UTF-8 LC_MESSAGES=C.UTF-8";
    let mut cmd: Vec<String> = pip.to_vec();
    cmd.extend(["list".into(), "--format=freeze".into()]);
    let mut out = sh
        .run(ctx, &format!("{locale} {}", argv_line(&cmd)), chdir)
        .await?;
    if out.rc != 0 {
        cmd.truncate(pip.len());
        cmd.push("freeze".into());
        out = sh.run(ctx, &argv_line(&cmd), chdir).await?;
        if out.rc != 0 {
            return Err(Stop::from(fail(
                json!(cmd),
                &out.stdout_str(),
                &out.stderr_str(),
            )));
        }
    }
    Ok((cmd.join(" "), out.stdout_str(), out.stderr_str()))
}

#[async_trait]
impl Module for Pip {
    fn name(&self) -> &'static str {
        "pip"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["name", "requirements"]],
            choices: &[("state", STATES)],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        Stop::finish(install(ctx, args).await)
    }
}

/// The module's work, each step able to end it (see [`Stop`]).
async fn install(ctx: &ModuleCtx<'_>, args: &Map<String, Value>) -> Result<ModuleResult, Stop> {
    let a = Args::new("pip", args, KNOWN)?;
    let state = a.choice("state", STATES, "present")?;
    let names = a.str_list("name")?;
    let version = a.opt_str("version")?;
    let requirements = a.opt_str("requirements")?;
    let extra_args = a.opt_str("extra_args")?;
    let executable = a.opt_str("executable")?;
    let chdir_arg = a.opt_str("chdir")?;
    let mut env = a.opt_str("virtualenv")?;
    if !a.has("name") && requirements.is_none() {
        return Err(a
            .fail("one of the following is required: name, requirements")
            .into());
    }
    if a.has("name") && requirements.is_some() {
        return Err(a
            .fail("parameters are mutually exclusive: name|requirements")
            .into());
    }
    if executable.is_some() && env.is_some() {
        return Err(a
            .fail("parameters are mutually exclusive: executable|virtualenv")
            .into());
    }
    if let (Some(e), Some(c)) = (&env, &chdir_arg) {
        env = Some(path_join(c, e));
    }
    let umask = remote::umask_prefix(&a)?;
    if state == "latest" && version.is_some() {
        return Ok(ModuleResult::failed(
            "version is incompatible with state=latest",
        ));
    }
    // Ansible runs pip from the temporary directory when no chdir is given (so a
    // relative requirements file is looked for there, as in Ansible).
    let chdir = chdir_arg.clone().unwrap_or_else(|| "/tmp".into());
    let mut sh = Shell {
        umask,
        path_prefix: None,
    };
    let (mut out, mut err) = (String::new(), String::new());

    let mut venv_created = false;
    if let Some(env) = &env {
        let exists = remote::run(
            ctx,
            format!("test -e {}", sh_quote(&path_join(env, "bin/activate"))),
        )
        .await?;
        if exists.rc != 0 {
            if ctx.check_mode {
                return Ok(ModuleResult::changed());
            }
            venv_created = true;
            create_venv(ctx, &a, &sh, env, &chdir, &mut out, &mut err).await?;
        }
        sh.path_prefix = Some(path_join(env, "bin"));
    }
    let pip = find_pip(ctx, env.as_deref(), executable.as_deref()).await?;

    let mut cmd: Vec<String> = pip.clone();
    cmd.extend(state_args(state).iter().map(|s| s.to_string()));
    let has_vcs = names.iter().any(|n| is_vcs_url(n));
    let mut packages: Vec<Requirement> = Vec::new();
    if !names.is_empty() {
        packages = recover_names(&names)
            .iter()
            .map(|n| Requirement::new(n))
            .collect();
        if let Some(v) = &version {
            if packages.len() > 1 {
                return Ok(ModuleResult::failed(
                    "'version' argument is ambiguous when installing multiple package \
                     distributions. Please specify version restrictions next to each \
                     package in 'name' argument.",
                ));
            }
            if packages[0].has_version_specifier() {
                return Ok(ModuleResult::failed(
                    "The 'version' argument conflicts with any version specifier provided \
                     along with a package name. Please keep the version specifier, but \
                     remove the 'version' argument.",
                ));
            }
            packages[0] = Requirement::with_version(&packages[0].to_string(), v);
        }
    }
    let mut extra = extra_args.clone();
    if a.bool_or("editable", false)? {
        let mut words: Vec<String> = extra
            .as_deref()
            .map(|e| e.split(' ').map(String::from).collect())
            .unwrap_or_default();
        if !words.iter().any(|w| w == "-e") {
            words.push("-e".into());
            extra = Some(words.join(" "));
        }
    }
    if let Some(e) = &extra {
        let words = shell_words::split(e).map_err(|why| a.err("extra_args", why))?;
        cmd.extend(words);
    }
    let break_system = a.bool_or("break_system_packages", false)?;
    if !packages.is_empty() {
        cmd.extend(packages.iter().map(|p| p.to_string()));
    } else if let Some(r) = &requirements {
        cmd.extend(["-r".to_string(), r.clone()]);
    } else {
        return Ok(ModuleResult::ok().with(
            "warnings",
            json!(["No valid name or requirements file found."]),
        ));
    }

    if ctx.check_mode {
        if extra.is_some() || requirements.is_some() || state == "latest" || names.is_empty() {
            return Ok(ModuleResult::changed());
        }
        let (pkg_cmd, list, list_err) = installed(ctx, &sh, &pip, &chdir).await?;
        out.push_str(&list);
        err.push_str(&list_err);
        let lines: Vec<&str> = out
            .split('\n')
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with("You are using")
                    && !l.starts_with("You should consider")
            })
            .collect();
        let changed = packages.iter().any(|p| {
            let present = p.is_present(&lines);
            (state == "present" && !present) || (state == "absent" && present)
        });
        let mut r = if changed {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        };
        r.data.insert("cmd".into(), json!(pkg_cmd));
        r.data.insert("stdout".into(), json!(out));
        r.data.insert("stderr".into(), json!(err));
        return Ok(r);
    }

    let before = if requirements.is_some() || has_vcs {
        Some(installed(ctx, &sh, &pip, &chdir).await?.1)
    } else {
        None
    };
    let line = if break_system {
        format!("PIP_BREAK_SYSTEM_PACKAGES=1 {}", argv_line(&cmd))
    } else {
        argv_line(&cmd)
    };
    let ran = sh.run(ctx, &line, &chdir).await?;
    let (pip_out, pip_err) = (ran.stdout_str(), ran.stderr_str());
    out.push_str(&pip_out);
    err.push_str(&pip_err);
    let not_installed = pip_out.contains("not installed") || pip_err.contains("not installed");
    if ran.rc != 0 && !(ran.rc == 1 && state == "absent" && not_installed) {
        return Ok(fail(json!(cmd), &out, &err));
    }
    let changed = if state == "absent" {
        pip_out.contains("Successfully uninstalled")
    } else if let Some(before) = before {
        before != installed(ctx, &sh, &pip, &chdir).await?.1
    } else {
        pip_out.contains("Successfully installed")
    };
    let mut r = if changed || venv_created {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| json!(s));
    r.data.insert("cmd".into(), json!(cmd));
    r.data.insert(
        "name".into(),
        if a.has("name") {
            json!(names)
        } else {
            Value::Null
        },
    );
    r.data.insert("version".into(), opt(&version));
    r.data.insert("state".into(), json!(state));
    r.data.insert("requirements".into(), opt(&requirements));
    r.data.insert("virtualenv".into(), opt(&env));
    r.data.insert("stdout".into(), json!(out));
    r.data.insert("stderr".into(), json!(err));
    Ok(r)
}

/// The Python Ansible would run the module with: `ansible_python_interpreter` when set
/// (other than `auto*`), else what its discovery finds on Debian.
async fn interpreter(ctx: &ModuleCtx<'_>) -> Result<String, ModuleError> {
    if ctx.vars.contains_key("ansible_python_interpreter") {
        let v = ctx
            .templar
            .render_str("{{ ansible_python_interpreter }}", ctx.context)
            .map_err(|e| ModuleError::Failed(format!("ansible_python_interpreter: {e}")))?;
        if !v.is_empty() && !v.starts_with("auto") {
            return Ok(v);
        }
    }
    let found = remote::run(
        ctx,
        "for p in /usr/bin/python3 \"$(command -v python3)\"; do \
         [ -n \"$p\" ] && [ -x \"$p\" ] && { echo \"$p\"; exit 0; }; done; echo python3",
    )
    .await?;
    Ok(found.stdout_str().trim().to_string())
}

/// Ansible's `setup_virtualenv`: `virtualenv_command` with its program found on `PATH`,
/// the site-packages choice, and `-p` for virtualenv proper (never for `venv`).
#[allow(clippy::too_many_arguments)]
async fn create_venv(
    ctx: &ModuleCtx<'_>,
    a: &Args<'_>,
    sh: &Shell,
    env: &str,
    chdir: &str,
    out: &mut String,
    err: &mut String,
) -> Result<(), Stop> {
    let command = a.str_or("virtualenv_command", "virtualenv")?;
    let mut cmd = shell_words::split(&command).map_err(|why| a.err("virtualenv_command", why))?;
    if cmd.is_empty() {
        return Err(a.err("virtualenv_command", "is empty").into());
    }
    match remote::bin_path(ctx, &cmd[0]).await? {
        Some(p) => cmd[0] = p,
        None => {
            return Err(Stop::from(ModuleResult::failed(remote::bin_missing(
                &cmd[0],
            ))));
        }
    }
    if a.bool_or("virtualenv_site_packages", false)? {
        cmd.push("--system-site-packages".into());
    } else {
        let help = remote::run(ctx, format!("{} --help", cmd[0])).await?;
        if help.rc != 0 {
            return Err(Stop::from(ModuleResult::failed(format!(
                "Could not get output from {} --help: {}{}",
                cmd[0],
                help.stdout_str(),
                help.stderr_str()
            ))));
        }
        if help
            .stdout_str()
            .split_whitespace()
            .any(|w| w == "--no-site-packages")
        {
            cmd.push("--no-site-packages".into());
        }
    }
    let venv_python = a.opt_str("virtualenv_python")?;
    if !is_venv_command(&shell_words::split(&command).unwrap_or_default()) {
        let python = match venv_python {
            Some(p) => p,
            None => interpreter(ctx).await?,
        };
        cmd.push(format!("-p{python}"));
    } else if venv_python.is_some() {
        return Err(Stop::from(ModuleResult::failed(
            "virtualenv_python should not be used when using the venv module or pyvenv as \
             virtualenv_command",
        )));
    }
    cmd.push(env.to_string());
    let ran = sh.run(ctx, &argv_line(&cmd), chdir).await?;
    out.push_str(&ran.stdout_str());
    err.push_str(&ran.stderr_str());
    if ran.rc != 0 {
        return Err(Stop::from(fail(json!(cmd), out, err)));
    }
    Ok(())
}

/// Ansible's `_get_pip`: the virtualenv's `pip3` or `pip`; else `executable` (a path, or
/// a name looked up on `PATH`); else the interpreter's own pip module; else `pip3`.
async fn find_pip(
    ctx: &ModuleCtx<'_>,
    env: Option<&str>,
    executable: Option<&str>,
) -> Result<Vec<String>, Stop> {
    if let Some(env) = env {
        let dir = path_join(env, "bin");
        let probe = format!(
            "for b in pip3 pip; do [ -f {d}/$b ] && [ -x {d}/$b ] && {{ echo {d}/$b; exit 0; }}; \
             done; exit 1",
            d = sh_quote(&dir)
        );
        let out = remote::run(ctx, probe).await?;
        return if out.rc == 0 {
            Ok(vec![out.stdout_str().trim().to_string()])
        } else {
            Err(ModuleResult::failed(format!(
                "Unable to find pip in the virtualenv, {env}, under any of these names: \
                 pip3, pip. Make sure pip is present in the virtualenv."
            ))
            .into())
        };
    }
    let basename = match executable {
        Some(e) if e.starts_with('/') => return Ok(vec![e.to_string()]),
        Some(e) => e.to_string(),
        None => {
            let python = interpreter(ctx).await?;
            let has_module = remote::run(
                ctx,
                format!(
                    "{} -c 'import importlib.util, sys; \
                     sys.exit(0 if importlib.util.find_spec(\"pip\") else 1)' 2>/dev/null",
                    sh_quote(&python)
                ),
            )
            .await?;
            if has_module.rc == 0 {
                return Ok(vec![python, "-m".into(), "pip.__main__".into()]);
            }
            "pip3".into()
        }
    };
    match remote::bin_path(ctx, &basename).await? {
        Some(p) => Ok(vec![p]),
        None => Err(ModuleResult::failed(format!(
            "Unable to find any of {basename} to use.  pip needs to be installed."
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_print_as_python_packaging_prints_them() {
        let s = |t: &str| Requirement::new(t).to_string();
        assert_eq!(s("pkg_a"), "pkg_a");
        assert_eq!(s("Django >= 1.11 , < 2"), "Django<2,>=1.11");
        assert_eq!(
            s("requests[socks, security]>=2"),
            "requests[security,socks]>=2"
        );
        assert_eq!(s("a (>=1.0)"), "a>=1.0");
        assert_eq!(s("/root/src/pkg"), "/root/src/pkg");
        assert_eq!(
            s("git+https://example.invalid/x.git"),
            "git+https://example.invalid/x.git"
        );
        assert_eq!(s("b; python_version >= '3'"), "b; python_version >= '3'");
        assert_eq!(
            Requirement::with_version("pkg_a", "1.0").to_string(),
            "pkg_a==1.0"
        );
        assert_eq!(
            Requirement::with_version("pkg_a", " >=1.0,<3").to_string(),
            "pkg_a<3,>=1.0"
        );
    }

    #[test]
    fn presence_uses_canonical_names_and_pep440_specifiers() {
        let installed = ["Pkg.A==1.0", "other==2.0rc1", "garbage"];
        assert!(Requirement::new("pkg-a").is_present(&installed));
        assert!(Requirement::new("pkg_a>=1.0,<2").is_present(&installed));
        assert!(!Requirement::new("pkg_a==1.1").is_present(&installed));
        assert!(Requirement::new("pkg_a==1.*").is_present(&installed));
        assert!(Requirement::new("pkg_a~=1.0").is_present(&installed));
        // Ansible asks for pre-releases too.
        assert!(Requirement::new("other>=2.0rc1").is_present(&installed));
        assert!(!Requirement::new("/root/pkg_a").is_present(&installed));
        assert!(!Requirement::new("pkg_a").has_version_specifier());
        assert!(Requirement::new("pkg_a<2").has_version_specifier());
    }

    #[test]
    fn names_cut_by_commas_are_put_back_together() {
        let v = |l: &[&str]| recover_names(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            v(&[
                "django>1.11.1",
                "<1.11.3",
                "ipaddress",
                "simpleproject>1.1.0",
                "<2.0.0"
            ]),
            [
                "django>1.11.1,<1.11.3",
                "ipaddress",
                "simpleproject>1.1.0,<2.0.0"
            ]
        );
        assert_eq!(
            v(&["django>1.11.1,<1.11.3,ipaddress"]),
            ["django>1.11.1,<1.11.3", "ipaddress"]
        );
        assert_eq!(v(&["pkg[a", "b]>=1"]), ["pkg[a,b]>=1"]);
    }

    #[test]
    fn venv_commands_are_told_from_virtualenv() {
        let w = |s: &str| shell_words::split(s).unwrap();
        assert!(is_venv_command(&w("python3 -m venv")));
        assert!(is_venv_command(&w("/usr/bin/python3.11 -mvenv")));
        assert!(is_venv_command(&w("pyvenv")));
        assert!(!is_venv_command(&w("virtualenv")));
        assert!(!is_venv_command(&w("python3 -m virtualenv")));
        assert_eq!(canonical_name("Foo__bar.Baz"), "foo-bar-baz");
        assert_eq!(path_join("/srv", "venv"), "/srv/venv");
        assert_eq!(path_join("/srv", "/opt/venv"), "/opt/venv");
    }
}
