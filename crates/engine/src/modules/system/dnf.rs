//! `dnf` (and `yum`, which ansible-core redirects to it): RPM packages present, at their
//! latest, or absent. Ansible's module drives dnf's Python API; this one runs the `dnf`
//! command the host already has (dnf is itself a Python program, so the host needs
//! nothing more) and decides as Ansible's does, spec by spec:
//! - present: a spec already installed (by name, name-version, NEVRA or glob, as
//!   `dnf list --installed` matches it) is left alone; a spec that would only downgrade
//!   a newer installed package is left alone unless `allow_downgrade`; a spec no enabled
//!   repository has fails the task before anything is installed ("No package X
//!   available.");
//! - latest: installed specs are upgraded, the others installed;
//! - absent: installed specs are removed; each one that is not is reported as
//!   "No match for argument: X", which is not a failure.
//!
//! `results` lists `Installed: <nevra>` and `Removed: <nevra>` (an upgrade is both), read
//! from the RPM database before and after, so they are what happened. In check mode the
//! task reports whether anything would change, without the package list Ansible adds.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::remote;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult, Stop};

/// The module, under either of its names.
pub struct Dnf {
    name: &'static str,
}

impl Dnf {
    pub const DNF: Dnf = Dnf { name: "dnf" };
    pub const YUM: Dnf = Dnf { name: "yum" };
}

pub const KNOWN: &[&str] = &[
    "name",
    "pkg",
    "state",
    "list",
    "enablerepo",
    "disablerepo",
    "conf_file",
    "disable_gpg_check",
    "installroot",
    "releasever",
    "autoremove",
    "exclude",
    "skip_broken",
    "update_cache",
    "expire-cache",
    "update_only",
    "security",
    "bugfix",
    "enable_plugin",
    "disable_plugin",
    "disable_excludes",
    "validate_certs",
    "sslverify",
    "allow_downgrade",
    "install_repoquery",
    "download_only",
    "download_dir",
    "lock_timeout",
    "install_weak_deps",
    "allowerasing",
    "nobest",
    "best",
    "cacheonly",
    "use_backend",
];

/// Arguments Ansible's module has and this one does not implement: a task using one
/// fails saying so, rather than doing something else.
const UNSUPPORTED: &[&str] = &[
    "list",
    "security",
    "bugfix",
    "enable_plugin",
    "disable_plugin",
    "disable_excludes",
    "download_only",
    "download_dir",
    "update_only",
];

const STATES: &[&str] = &["absent", "present", "installed", "removed", "latest"];

/// Ansible's failure message when a spec cannot be installed.
const INSTALL_FAILED: &str = "Failed to install some of the specified packages";

/// What `dnf --assumeno <verb> <spec>` says it would do.
#[derive(Debug, PartialEq)]
pub enum Preview {
    /// No enabled repository has the spec.
    Unavailable,
    Nothing,
    /// Only an older version than the installed one matches.
    Downgrade,
    Changes,
}

/// Reads the output of `dnf --assumeno` (C locale).
pub fn read_preview(out: &str) -> Preview {
    let has = |section: &str| out.lines().any(|l| l.trim_end() == section);
    if out.contains("No match for argument") || out.contains("Unable to find a match") {
        Preview::Unavailable
    } else if has("Downgrading:") {
        Preview::Downgrade
    } else if ["Installing:", "Upgrading:", "Removing:", "Reinstalling:"]
        .iter()
        .any(|s| has(s))
    {
        Preview::Changes
    } else {
        Preview::Nothing
    }
}

/// dnf and rpm with the task's options.
struct Host<'a, 'c> {
    ctx: &'a ModuleCtx<'c>,
    /// `dnf -y` and the options every command of the task takes.
    dnf: String,
    /// `rpm --root R` (or `rpm`).
    rpm: String,
}

impl Host<'_, '_> {
    /// The installed packages, each as Ansible prints one (`name-[epoch:]version-release.arch`).
    async fn packages(&self) -> Result<BTreeSet<String>, Stop> {
        let out = remote::run(
            self.ctx,
            format!(
                "{} -qa --qf '%{{NAME}}-%|EPOCH?{{%{{EPOCH}}:}}|%{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\\n'",
                self.rpm
            ),
        )
        .await?;
        if out.rc != 0 {
            return Err(ModuleResult::failed(format!(
                "cannot read the RPM database: {}",
                out.stderr_str().trim()
            ))
            .into());
        }
        Ok(out.stdout_str().lines().map(String::from).collect())
    }

    async fn is_installed(&self, spec: &str) -> Result<bool, Stop> {
        let line = format!(
            "{} -q list --installed {} >/dev/null 2>&1",
            self.dnf,
            sh_quote(spec)
        );
        Ok(remote::run(self.ctx, line).await?.rc == 0)
    }

    async fn preview(&self, verb: &str, spec: &str) -> Result<Preview, Stop> {
        let line = format!(
            "{} --assumeno {verb} {} 2>&1",
            self.dnf.replacen(" -y", "", 1),
            sh_quote(spec)
        );
        Ok(read_preview(
            &remote::run(self.ctx, line).await?.stdout_str(),
        ))
    }

    /// Runs `dnf <verb> <specs>`; a failure ends the task with dnf's words.
    async fn transact(&self, verb: &str, specs: &[String]) -> Result<(), Stop> {
        let mut line = format!("{} {verb}", self.dnf);
        for s in specs {
            line.push(' ');
            line.push_str(&sh_quote(s));
        }
        let out = remote::run(self.ctx, line).await?;
        if out.rc != 0 {
            let stderr = out.stderr_str();
            let why = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("dnf failed")
                .trim()
                .to_string();
            return Err(
                ModuleResult::failed(format!("Unknown Error occurred: {why}"))
                    .with("rc", out.rc)
                    .with("stdout", out.stdout_str())
                    .with("stderr", stderr)
                    .with("results", json!([]))
                    .into(),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Module for Dnf {
    fn name(&self) -> &'static str {
        self.name
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            choices: &[("state", STATES)],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        Stop::finish(ensure(self.name, ctx, args).await)
    }
}

/// The first of `keys` given (an argument and its aliases).
fn first<'k>(a: &Args, keys: &[&'k str]) -> &'k str {
    keys.iter().copied().find(|k| a.has(k)).unwrap_or(keys[0])
}

/// The module's work, each step able to end it (see [`Stop`]).
async fn ensure(
    module: &'static str,
    ctx: &ModuleCtx<'_>,
    args: &Map<String, Value>,
) -> Result<ModuleResult, Stop> {
    let a = Args::new(module, args, KNOWN)?;
    for u in UNSUPPORTED {
        if a.has(u) {
            return Err(a
                .err(
                    u,
                    "is not supported by this engine: drop it, or run this task with \
                     ansible-playbook",
                )
                .into());
        }
    }
    let names = a.str_list(first(&a, &["name", "pkg"]))?;
    let autoremove = a.bool_or("autoremove", false)?;
    let state = match a.opt_str("state")? {
        None if autoremove => "absent",
        None => "present",
        Some(_) => match a.choice("state", STATES, "present")? {
            "installed" => "present",
            "removed" => "absent",
            s => s,
        },
    };
    if names.is_empty() && !autoremove {
        return Err(a.fail("name is required unless autoremove is true").into());
    }
    if autoremove && state != "absent" {
        return Err(a
            .fail("Autoremove should be used alone or with state=absent")
            .into());
    }
    let installroot = a.str_or("installroot", "/")?;

    let mut dnf = String::from("LANG=C LC_ALL=C dnf -y");
    let mut opt = |o: String| {
        dnf.push(' ');
        dnf.push_str(&sh_quote(&o));
    };
    if installroot != "/" {
        opt(format!("--installroot={installroot}"));
    }
    if let Some(v) = a.opt_str("releasever")? {
        opt(format!("--releasever={v}"));
    }
    if let Some(conf) = a.opt_str("conf_file")? {
        let readable = remote::run(ctx, format!("test -r {}", sh_quote(&conf))).await?;
        if readable.rc != 0 {
            return Err(ModuleResult::failed("cannot read configuration file")
                .with("conf_file", conf)
                .with("results", json!([]))
                .into());
        }
        opt(format!("--config={conf}"));
    }
    if a.bool_or("disable_gpg_check", false)? {
        opt("--nogpgcheck".into());
    }
    // Disabled first, as Ansible's module applies them, so `disablerepo: '*'` with an
    // `enablerepo` leaves just that one.
    for r in a.str_list("disablerepo")? {
        opt(format!("--disablerepo={r}"));
    }
    for r in a.str_list("enablerepo")? {
        opt(format!("--enablerepo={r}"));
    }
    for e in a.str_list("exclude")? {
        opt(format!("--exclude={e}"));
    }
    let sslverify = a.bool_or("sslverify", true)? && a.bool_or("validate_certs", true)?;
    if !sslverify {
        opt("--setopt=sslverify=False".into());
    }
    if a.has("install_weak_deps") {
        let weak = a.bool_or("install_weak_deps", true)?;
        opt(format!("--setopt=install_weak_deps={}", weak));
    }
    if a.bool_or("skip_broken", false)? {
        opt("--skip-broken".into());
    }
    if a.bool_or("nobest", false)? {
        opt("--nobest".into());
    } else if a.bool_or("best", false)? {
        opt("--best".into());
    }
    if a.bool_or("cacheonly", false)? {
        opt("--cacheonly".into());
    }
    if a.bool_or(first(&a, &["update_cache", "expire-cache"]), false)? {
        opt("--refresh".into());
    }
    let allowerasing = a.bool_or("allowerasing", false)?;
    let allow_downgrade = a.bool_or("allow_downgrade", false)?;
    let rpm = if installroot == "/" {
        "rpm".to_string()
    } else {
        format!("rpm --root {}", sh_quote(&installroot))
    };
    let host = Host { ctx, dnf, rpm };

    // Marking, spec by spec, as Ansible's `ensure` does.
    let mut results: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let (mut install, mut upgrade, mut remove) = (Vec::new(), Vec::new(), Vec::new());
    for spec in &names {
        let installed = host.is_installed(spec).await?;
        match state {
            "absent" if installed => remove.push(spec.clone()),
            "absent" => results.push(format!("No match for argument: {spec}")),
            "latest" if installed => {
                if host.preview("upgrade", spec).await? == Preview::Changes {
                    upgrade.push(spec.clone());
                }
            }
            _ if installed => {}
            _ => match host.preview("install", spec).await? {
                Preview::Unavailable => failures.push(format!("No package {spec} available.")),
                Preview::Nothing => {}
                Preview::Downgrade if !allow_downgrade => {}
                Preview::Downgrade | Preview::Changes => install.push(spec.clone()),
            },
        }
    }
    let failed = |results: Vec<String>| {
        ModuleResult::failed(INSTALL_FAILED)
            .with("failures", json!(failures))
            .with("rc", 1)
            .with("results", json!(results))
    };
    if !failures.is_empty() {
        return Ok(failed(Vec::new()));
    }
    let would_change =
        !install.is_empty() || !upgrade.is_empty() || !remove.is_empty() || autoremove;
    if !would_change {
        return Ok(ModuleResult::ok()
            .with("msg", "Nothing to do")
            .with("rc", 0)
            .with("results", json!(results)));
    }
    if ctx.check_mode {
        return Ok(ModuleResult::changed()
            .with(
                "msg",
                "Check mode: No changes made, but would have if not in check mode",
            )
            .with("rc", 0)
            .with("results", json!(results)));
    }

    let before = host.packages().await?;
    if !install.is_empty() {
        let verb = if allowerasing {
            "install --allowerasing"
        } else {
            "install"
        };
        host.transact(verb, &install).await?;
    }
    if !upgrade.is_empty() {
        host.transact("upgrade", &upgrade).await?;
    }
    if !remove.is_empty() {
        host.transact("remove", &remove).await?;
    }
    if autoremove {
        host.transact("autoremove", &[]).await?;
    }
    let after = host.packages().await?;
    let added: Vec<&String> = after.difference(&before).collect();
    let gone: Vec<&String> = before.difference(&after).collect();
    let changed = !added.is_empty() || !gone.is_empty();
    results.extend(added.iter().map(|p| format!("Installed: {p}")));
    results.extend(gone.iter().map(|p| format!("Removed: {p}")));
    let r = if changed {
        ModuleResult::changed().with("msg", "")
    } else {
        ModuleResult::ok().with("msg", "Nothing to do")
    };
    Ok(r.with("rc", 0).with("results", json!(results)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_read_as_dnf_prints_them() {
        let install = "Dependencies resolved.\n====\n Package  Arch\n====\nInstalling:\n spark-hello  noarch  1.0-1  local  6 k\n\nTransaction Summary\n====\nInstall  1 Package\n\nOperation aborted.\n";
        assert_eq!(read_preview(install), Preview::Changes);
        let down = "Dependencies resolved.\n====\nDowngrading:\n spark-hello  noarch  1.0-1  local\n\nOperation aborted.\n";
        assert_eq!(read_preview(down), Preview::Downgrade);
        assert_eq!(
            read_preview("Dependencies resolved.\nNothing to do.\nComplete!\n"),
            Preview::Nothing
        );
        assert_eq!(
            read_preview("No match for argument: nosuch\nError: Unable to find a match: nosuch\n"),
            Preview::Unavailable
        );
    }
}
