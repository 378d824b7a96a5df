//! `apt`: install, upgrade and remove Debian packages, update the package lists, as
//! `ansible.builtin.apt` does, over plain `/bin/sh` (Ansible's needs Python and python3-apt
//! on the host; this one needs only apt and dpkg, which every Debian and Ubuntu has).
//!
//! What changes is decided the way Ansible's module decides it, from the same facts:
//! `dpkg-query` says what is installed, `apt-cache policy` what can be installed (the
//! candidate, honouring pins and `default_release`, and the version table for `name=1.2*`),
//! and `apt-cache showpkg` which real packages provide a virtual one. Nothing that is
//! already as asked is passed to apt-get, so a second run reports no change. Check mode runs
//! apt-get with `--simulate`; `--diff` shows apt-get's plan ("The following NEW packages
//! will be installed: ...") as Ansible's `prepared` diff does.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::remote;
use crate::modules::{ArgSpec, Diff, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Apt;

pub(super) const KNOWN: &[&str] = &[
    "name",
    "pkg",
    "package",
    "state",
    "update_cache",
    "update-cache",
    "update_cache_retries",
    "update_cache_retry_max_delay",
    "cache_valid_time",
    "purge",
    "deb",
    "default_release",
    "default-release",
    "install_recommends",
    "install-recommends",
    "force",
    "upgrade",
    "dpkg_options",
    "autoremove",
    "autoclean",
    "fail_on_autoremove",
    "policy_rc_d",
    "only_upgrade",
    "force_apt_get",
    "clean",
    "allow_unauthenticated",
    "allow-unauthenticated",
    "allow_downgrade",
    "allow-downgrade",
    "allow_downgrades",
    "allow-downgrades",
    "allow_change_held_packages",
    "lock_timeout",
    "auto_install_module_deps",
];

const STATES: &[&str] = &["absent", "build-dep", "fixed", "latest", "present"];
const UPGRADES: &[&str] = &["dist", "full", "no", "safe", "yes"];

/// What apt-get prints when it did nothing (Ansible's `APT_GET_ZERO`).
const APT_GET_ZERO: &str = "\n0 upgraded, 0 newly installed, 0 to remove";

/// apt and dpkg never ask, in the C locale (so the markers above are found), as Ansible
/// runs them (`APT_ENV_VARS`).
const ENV: &str = "env DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
                   LANG=C LC_ALL=C LC_MESSAGES=C LC_CTYPE=C";

/// The mtime of the package lists, as Ansible's `get_cache_mtime`: the update-success
/// stamp when the system keeps one, else the lists directory; 0 when neither exists.
const CACHE_MTIME: &str = "if [ -e /var/lib/apt/periodic/update-success-stamp ]; then \
     stat -c %Y /var/lib/apt/periodic/update-success-stamp; \
     elif [ -e /var/lib/apt/lists ]; then stat -c %Y /var/lib/apt/lists; else echo 0; fi";

/// `sh -c PROBE sh RELEASE NAME...`: for each package, what dpkg has and what apt offers.
/// A name with wildcards is first expanded against the package names apt knows
/// (`apt-cache pkgnames`, native architecture only), as Ansible's fnmatch expansion.
const PROBE: &str = r#"rel=$1; shift
pol() { if [ -n "$rel" ]; then apt-cache -o "APT::Default-Release=$rel" policy "$1"; else apt-cache policy "$1"; fi; }
one() {
  n=$1
  echo "@pkg $n"
  echo "@status $(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$n" 2>/dev/null)"
  pol "$n" 2>/dev/null | sed 's/^/@policy /'
  apt-cache showpkg "$n" 2>/dev/null | sed -n '/^Reverse Provides:/,$p' | sed 1d | while read -r p v; do
    [ -n "$p" ] && echo "@provider $p $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)"
  done
}
for spec in "$@"; do
  case $spec in
    *[\*\?\[\]\!]*)
      found=
      for n in $(apt-cache pkgnames 2>/dev/null | grep -v : | sort); do
        case $n in $spec) one "$n"; found=1 ;; esac
      done
      [ -n "$found" ] || echo "@nomatch $spec" ;;
    *) one "$spec" ;;
  esac
done"#;

/// One package as the host knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PkgFacts {
    name: String,
    /// Installed (dpkg's current state "installed": status `?i`).
    installed: bool,
    /// Removed but its configuration files are still there (status `rc`).
    config_files: bool,
    installed_version: Option<String>,
    /// apt's candidate, `None` for a purely virtual or unknown package.
    candidate: Option<String>,
    /// Every version apt knows, highest first (apt-cache policy's version table).
    versions: Vec<String>,
    /// Real packages that provide this (virtual) name, with whether each is installed.
    providers: Vec<(String, bool)>,
    /// apt-cache policy printed nothing: apt has never heard of it.
    unknown: bool,
}

/// Parses [`PROBE`]'s output. `@nomatch` specs come back as errors.
fn parse_probe(text: &str) -> Result<Vec<PkgFacts>, String> {
    let mut out: Vec<PkgFacts> = Vec::new();
    for line in text.lines() {
        if let Some(spec) = line.strip_prefix("@nomatch ") {
            return Err(format!("No package(s) matching '{spec}' available"));
        }
        if let Some(name) = line.strip_prefix("@pkg ") {
            out.push(PkgFacts {
                name: name.to_string(),
                unknown: true,
                ..Default::default()
            });
            continue;
        }
        let Some(p) = out.last_mut() else { continue };
        if let Some(st) = line.strip_prefix("@status ") {
            let (abbrev, version) = st.split_once('|').unwrap_or((st, ""));
            let abbrev = abbrev.trim();
            // db:Status-Abbrev: want, current state, error flag ("ii", "rc", "un", "iU").
            let current = abbrev.chars().nth(1);
            p.installed = current == Some('i');
            p.config_files = current == Some('c');
            if p.installed && !version.is_empty() {
                p.installed_version = Some(version.to_string());
            }
        } else if let Some(pol) = line.strip_prefix("@policy ") {
            p.unknown = false;
            if let Some(c) = pol.trim_start().strip_prefix("Candidate: ") {
                p.candidate = (c != "(none)").then(|| c.trim().to_string());
            } else if let Some(v) = version_table_entry(pol) {
                p.versions.push(v);
            }
        } else if let Some(rest) = line.strip_prefix("@provider ") {
            let mut parts = rest.split_whitespace();
            if let Some(name) = parts.next() {
                let installed = parts.next().is_some_and(|s| s.chars().nth(1) == Some('i'));
                p.providers.push((name.to_string(), installed));
            }
        }
    }
    Ok(out)
}

/// A version line of `apt-cache policy`'s table: ` *** 2.10-2 100` or `     2.10-3 500`.
fn version_table_entry(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix(" *** ")
        .or_else(|| line.strip_prefix("     "))?;
    let mut parts = rest.split(' ');
    let version = parts.next()?;
    let priority = parts.next()?;
    (parts.next().is_none()
        && !version.is_empty()
        && priority.trim_start_matches('-').parse::<i64>().is_ok())
    .then(|| version.to_string())
}

/// `name`, `name=1.2*` or `name>=1.2` (Ansible's `package_split`).
fn split_spec(spec: &str) -> (&str, Option<&str>, Option<&str>) {
    if let Some((n, v)) = spec.split_once(">=") {
        return (n, Some(">="), Some(v));
    }
    match spec.split_once('=') {
        Some((n, v)) => (n, Some("="), Some(v)),
        None => (spec, None, None),
    }
}

fn fnmatch(pattern: &str, text: &str) -> bool {
    globset::Glob::new(pattern)
        .map(|g| g.compile_matcher().is_match(text))
        .unwrap_or(pattern == text)
}

/// What to do for one requested package, decided as Ansible's `package_status` + `install`.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Nothing: already as asked.
    Keep,
    /// Pass this to `apt-get install` (`name` or `name=version`).
    Install(String),
    /// Cannot be installed at all.
    NoCandidate,
}

/// Decides for `spec` (already split) given the host's facts. `ge` answers `a >= b` for
/// Debian versions (dpkg's comparison, asked of the host beforehand).
fn plan_install(
    facts: &PkgFacts,
    cmp: Option<&str>,
    version: Option<&str>,
    upgrade: bool,
    only_upgrade: bool,
    ge: &dyn Fn(&str, &str) -> bool,
) -> Plan {
    // A name apt does not know as a real package: virtual (apt picks a provider), or
    // provided by exactly one installed package (then that package's status counts).
    if facts.candidate.is_none() && !facts.installed && !facts.providers.is_empty() {
        let installed: Vec<_> = facts.providers.iter().filter(|(_, i)| *i).collect();
        if facts.providers.len() == 1 && installed.len() == 1 {
            return Plan::Keep;
        }
        return match only_upgrade {
            true => Plan::Keep,
            false => Plan::Install(facts.name.clone()),
        };
    }
    // The best installable version: the candidate, or for `=pattern` the highest version
    // matching it (Ansible pins it at 1001, above every other pin).
    let best = match (cmp, version) {
        (Some("="), Some(pat)) => facts.versions.iter().find(|v| fnmatch(pat, v)).cloned(),
        _ => facts.candidate.clone(),
    };
    let (version_is_installed, installable) = match &facts.installed_version {
        Some(inst) => {
            let ok = match (cmp, version) {
                (Some("="), Some(pat)) => fnmatch(pat, inst),
                (Some(">="), Some(v)) => ge(inst, v),
                _ => true,
            };
            let better = best.as_ref().filter(|b| {
                *b != inst
                    && match (cmp, version) {
                        (Some(">="), Some(v)) => ge(b, v),
                        _ => true,
                    }
            });
            (ok, better.cloned())
        }
        None => (false, best),
    };
    if !facts.installed && only_upgrade {
        return Plan::Keep;
    }
    if !version_is_installed && installable.is_none() {
        return Plan::NoCandidate;
    }
    let name = &facts.name;
    match (installable, cmp, version) {
        (Some(v), _, _) if !facts.installed || upgrade || !version_is_installed => {
            Plan::Install(format!("{name}={v}"))
        }
        // Installed and matching `=pattern`, with a newer version matching it too: Ansible
        // passes the pattern to apt-get, which moves to that version (its "legacy
        // behaviour", kept for the same results).
        (Some(_), Some("="), Some(pat)) => Plan::Install(format!("{name}={pat}")),
        _ => Plan::Keep,
    }
}

/// Ansible's `parse_diff`: apt-get's plan, between "Reading state information..." and the
/// "N upgraded, ..." line (both included at the end).
fn prepared_diff(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "Reading state information...")
        .map_or(0, |i| i + 1);
    let end = lines
        .iter()
        .position(|l| {
            let mut w = l.split_whitespace();
            w.next().is_some_and(|n| n.parse::<u64>().is_ok())
                && matches!(
                    (w.next(), w.next()),
                    (Some("upgraded,"), _) | (Some("packages"), Some("upgraded,"))
                )
        })
        .map_or(lines.len(), |i| i + 1);
    lines
        .get(start.min(end)..end)
        .unwrap_or_default()
        .join("\n")
}

struct Opts {
    packages: Vec<String>,
    state: &'static str,
    update_cache: bool,
    cache_valid_time: i64,
    retries: i64,
    retry_max_delay: i64,
    purge: bool,
    deb: Option<String>,
    default_release: Option<String>,
    install_recommends: Option<bool>,
    force: bool,
    upgrade: &'static str,
    dpkg_options: String,
    autoremove: bool,
    autoclean: bool,
    fail_on_autoremove: bool,
    policy_rc_d: Option<i64>,
    only_upgrade: bool,
    clean: bool,
    allow_unauthenticated: bool,
    allow_downgrade: bool,
    allow_change_held_packages: bool,
    lock_timeout: i64,
}

/// The first of `keys` given (an argument and its aliases).
fn first<'k>(a: &Args, keys: &[&'k str]) -> &'k str {
    keys.iter().copied().find(|k| a.has(k)).unwrap_or(keys[0])
}

impl Opts {
    fn parse(a: &Args) -> Result<Opts, ModuleError> {
        let bool_alias = |keys: &[&str]| a.opt_bool(first(a, keys));
        Ok(Opts {
            packages: a.str_list(first(a, &["name", "pkg", "package"]))?,
            state: a.choice("state", STATES, "present")?,
            update_cache: bool_alias(&["update_cache", "update-cache"])?.unwrap_or(false),
            cache_valid_time: a.int_or("cache_valid_time", 0)?,
            retries: a.int_or("update_cache_retries", 5)?,
            retry_max_delay: a.int_or("update_cache_retry_max_delay", 12)?,
            purge: a.bool_or("purge", false)?,
            deb: a.opt_str("deb")?,
            default_release: a.opt_str(first(a, &["default_release", "default-release"]))?,
            install_recommends: bool_alias(&["install_recommends", "install-recommends"])?,
            force: a.bool_or("force", false)?,
            upgrade: a.choice("upgrade", UPGRADES, "no")?,
            dpkg_options: a.str_or("dpkg_options", "force-confdef,force-confold")?,
            autoremove: a.bool_or("autoremove", false)?,
            autoclean: a.bool_or("autoclean", false)?,
            fail_on_autoremove: a.bool_or("fail_on_autoremove", false)?,
            policy_rc_d: a.opt_int("policy_rc_d")?,
            only_upgrade: a.bool_or("only_upgrade", false)?,
            clean: a.bool_or("clean", false)?,
            allow_unauthenticated: bool_alias(&["allow_unauthenticated", "allow-unauthenticated"])?
                .unwrap_or(false),
            allow_downgrade: bool_alias(&[
                "allow_downgrade",
                "allow-downgrade",
                "allow_downgrades",
                "allow-downgrades",
            ])?
            .unwrap_or(false),
            allow_change_held_packages: a.bool_or("allow_change_held_packages", false)?,
            lock_timeout: a.int_or("lock_timeout", 60)?,
        })
    }

    /// `-o "Dpkg::Options::=--force-confdef" ...` (Ansible's `expand_dpkg_options`), and
    /// how long to wait for another apt or dpkg to finish.
    fn common(&self) -> String {
        let mut s: String = self
            .dpkg_options
            .split(',')
            .filter(|o| !o.trim().is_empty())
            .map(|o| {
                format!(
                    " -o {}",
                    sh_quote(&format!("Dpkg::Options::=--{}", o.trim()))
                )
            })
            .collect();
        s.push_str(&format!(
            " -o DPkg::Lock::Timeout={}",
            self.lock_timeout.max(0)
        ));
        s
    }
}

/// Runs `cmd` (an apt-get command line) with apt's environment and, when asked, a
/// policy-rc.d that answers `policy_rc_d` (kept only for the command, the host's own put
/// back afterwards, as Ansible's `PolicyRcD`).
async fn apt_run(
    ctx: &ModuleCtx<'_>,
    o: &Opts,
    cmd: &str,
) -> Result<crate::connection::ExecOutput, ModuleError> {
    let full = match o.policy_rc_d {
        None => format!("{ENV} {cmd}"),
        Some(code) => format!(
            "p=/usr/sbin/policy-rc.d; b=$p.ansible-bak; \
             if [ -e $p ]; then mv $p $b; fi; \
             printf '#!/bin/sh\\nexit {code}\\n' > $p && chmod 0755 $p; \
             {ENV} {cmd}; rc=$?; rm -f $p; if [ -e $b ]; then mv $b $p; fi; exit $rc"
        ),
    };
    remote::run(ctx, full).await
}

/// The package lists' mtime and the host's clock, in one round trip: `cache_valid_time`
/// compares the two, and both must come from the host (its clock, not ours).
async fn cache_mtime(ctx: &ModuleCtx<'_>) -> Result<(i64, i64), ModuleError> {
    let out = remote::run(ctx, format!("{CACHE_MTIME}; date +%s")).await?;
    let text = out.stdout_str();
    let mut nums = text.lines().filter_map(|l| l.trim().parse::<i64>().ok());
    let mtime = nums.next().unwrap_or(0);
    // An unreadable clock reads as "now is far away": the lists are refreshed, never
    // wrongly trusted.
    let now = nums.next().unwrap_or(i64::MAX);
    Ok((mtime, now))
}

/// An apt or dpkg command that exited non-zero, as Ansible reports it: the command, its
/// stderr, its rc and its output.
fn apt_failed(what: &str, out: &crate::connection::ExecOutput) -> ModuleResult {
    let r = ModuleResult::failed(format!("'{what}' failed: {}", out.stderr_str().trim_end()))
        .with("rc", out.rc);
    with_output(r, out)
}

fn with_output(r: ModuleResult, out: &crate::connection::ExecOutput) -> ModuleResult {
    let stdout = out.stdout_str();
    let stderr = out.stderr_str();
    r.with("stdout", stdout.to_string())
        .with(
            "stdout_lines",
            stdout.lines().map(str::to_string).collect::<Vec<_>>(),
        )
        .with("stderr", stderr.to_string())
        .with(
            "stderr_lines",
            stderr.lines().map(str::to_string).collect::<Vec<_>>(),
        )
}

/// `apt-get update` with Ansible's retries (a doubling pause up to `max_delay` seconds);
/// `Some` is the failed result, in Ansible's words. `apt` and `apt_repository` share it.
pub(super) async fn update_lists(
    ctx: &ModuleCtx<'_>,
    retries: i64,
    max_delay: i64,
    options: &str,
) -> Result<Option<ModuleResult>, ModuleError> {
    let retries = retries.max(1);
    let max_delay = max_delay.max(0);
    let update = format!(
        "i=0; while :; do {ENV} apt-get update -q {options} && exit 0; \
         i=$((i+1)); [ $i -ge {retries} ] && exit 1; \
         d=$((1 << (i - 1))); [ $d -gt {max_delay} ] && d={max_delay}; sleep $d; done"
    );
    let out = remote::run(ctx, update).await?;
    Ok((out.rc != 0).then(|| {
        ModuleResult::failed(format!(
            "Failed to update apt cache after {retries} retries: {}",
            out.stderr_str().trim()
        ))
    }))
}

fn prepared(ctx: &ModuleCtx<'_>, out: &str) -> Option<Diff> {
    ctx.diff.then(|| Diff {
        prepared: Some(prepared_diff(out)),
        ..Default::default()
    })
}

#[async_trait]
impl Module for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            choices: &[("state", STATES), ("upgrade", UPGRADES)],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("apt", args, KNOWN)?;
        let o = Opts::parse(&a)?;
        let nothing_else = |o: &Opts| o.packages.is_empty() && o.upgrade == "no" && o.deb.is_none();
        if o.packages.is_empty()
            && o.deb.is_none()
            && o.upgrade == "no"
            && !o.update_cache
            && o.cache_valid_time == 0
            && !o.autoremove
            && !o.autoclean
            && !o.clean
        {
            return Err(a.fail(
                "one of the following is required: name, package, pkg, deb, upgrade, \
                 update_cache, autoremove, autoclean, clean",
            ));
        }
        if o.clean {
            let out = remote::run(ctx, format!("{ENV} apt-get clean")).await?;
            if out.rc != 0 {
                return Ok(ModuleResult::failed(format!(
                    "apt-get clean failed: {}",
                    out.stderr_str().trim()
                )));
            }
            if nothing_else(&o) {
                return Ok(with_output(ModuleResult::changed(), &out));
            }
        }

        // The package lists: updated when asked and older than cache_valid_time.
        let mut cache_updated = false;
        let (mut cache_time, now) = cache_mtime(ctx).await?;
        if o.update_cache || o.cache_valid_time > 0 {
            if cache_time.saturating_add(o.cache_valid_time) < now {
                if !ctx.check_mode
                    && let Some(failed) =
                        update_lists(ctx, o.retries, o.retry_max_delay, &o.common()).await?
                {
                    return Ok(failed);
                }
                let (after, _) = cache_mtime(ctx).await?;
                cache_updated = ctx.check_mode || after != cache_time;
                cache_time = after;
            }
            if nothing_else(&o) && !o.autoremove && !o.autoclean {
                let r = if cache_updated {
                    ModuleResult::changed()
                } else {
                    ModuleResult::ok()
                };
                return Ok(r
                    .with("cache_updated", cache_updated)
                    .with("cache_update_time", cache_time));
            }
        }
        let simulate = if ctx.check_mode { " --simulate" } else { "" };
        let force_yes = if o.force { " --force-yes" } else { "" };

        if o.upgrade != "no" {
            return upgrade(ctx, &o, simulate, force_yes).await;
        }
        if let Some(deb) = &o.deb {
            if o.state != "present" {
                return Err(a.fail("deb only supports state=present"));
            }
            return install_deb(ctx, &o, deb, simulate).await;
        }

        let all = o.packages.iter().any(|p| p == "*");
        let packages: Vec<String> = o
            .packages
            .iter()
            .filter(|p| *p != "*")
            .map(|p| p.trim().to_string())
            .collect();
        if all && o.state == "latest" {
            if !packages.is_empty() {
                return Ok(ModuleResult::failed(
                    "unable to install additional packages when upgrading all installed packages",
                ));
            }
            let o = Opts {
                upgrade: "yes",
                ..o
            };
            return upgrade(ctx, &o, simulate, force_yes).await;
        }
        if let Some(bad) = packages.iter().find(|p| p.matches('=').count() > 1) {
            return Ok(ModuleResult::failed(format!("invalid package spec: {bad}")));
        }
        if packages.is_empty() {
            // Ansible's `cleanup`: the first of autoclean and autoremove asked for, and the
            // module ends there.
            let op = match (o.autoclean, o.autoremove) {
                (true, _) => "autoclean",
                (false, true) => "autoremove",
                _ => {
                    return Ok(ModuleResult::ok()
                        .with("cache_updated", cache_updated)
                        .with("cache_update_time", cache_time));
                }
            };
            let purge = if o.purge { " --purge" } else { "" };
            let cmd = format!("apt-get -y{}{purge}{force_yes} {op}{simulate}", o.common());
            let out = apt_run(ctx, &o, &cmd).await?;
            if out.rc != 0 {
                return Ok(apt_failed(&format!("apt-get {op}"), &out));
            }
            let text = out.stdout_str();
            let marker = match op {
                "autoremove" => "The following packages will be REMOVED",
                _ => "Del ",
            };
            let mut r = match text.contains(marker) {
                true => ModuleResult::changed(),
                false => ModuleResult::ok(),
            };
            r.diff = prepared(ctx, &text);
            return Ok(with_output(r, &out));
        }

        let r = match o.state {
            "absent" => remove(ctx, &o, &packages, simulate, force_yes).await?,
            _ => install(ctx, &o, &packages, simulate, force_yes).await?,
        };
        Ok(r.with("cache_updated", cache_updated)
            .with("cache_update_time", cache_time))
    }
}

/// Asks the host for the facts of every package named by `specs` (wildcards expanded).
async fn probe(
    ctx: &ModuleCtx<'_>,
    o: &Opts,
    names: &[&str],
) -> Result<Result<Vec<PkgFacts>, String>, ModuleError> {
    let mut cmd = format!(
        "set -- {} ",
        sh_quote(o.default_release.as_deref().unwrap_or(""))
    );
    for n in names {
        cmd.push_str(&sh_quote(n));
        cmd.push(' ');
    }
    cmd.push_str(&format!("; LC_ALL=C; export LC_ALL; {PROBE}"));
    let out = remote::run(ctx, cmd).await?;
    Ok(parse_probe(&out.stdout_str()))
}

/// `a >= b` for every pair asked, by dpkg's version comparison on the host.
async fn compare_ge(
    ctx: &ModuleCtx<'_>,
    pairs: &[(String, String)],
) -> Result<Vec<bool>, ModuleError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let cmd: Vec<String> = pairs
        .iter()
        .map(|(x, y)| {
            format!(
                "if dpkg --compare-versions {} ge {}; then echo 1; else echo 0; fi",
                sh_quote(x),
                sh_quote(y)
            )
        })
        .collect();
    let out = remote::run(ctx, cmd.join("; ")).await?;
    Ok(out.stdout_str().lines().map(|l| l.trim() == "1").collect())
}

async fn install(
    ctx: &ModuleCtx<'_>,
    o: &Opts,
    specs: &[String],
    simulate: &str,
    force_yes: &str,
) -> Result<ModuleResult, ModuleError> {
    let build_dep = o.state == "build-dep";
    let mut pkg_list: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if build_dep {
        pkg_list = specs.to_vec();
    } else {
        let split: Vec<(&str, Option<&str>, Option<&str>)> =
            specs.iter().map(|s| split_spec(s)).collect();
        let probe_names: Vec<&str> = split.iter().map(|(n, _, _)| *n).collect();
        let facts = match probe(ctx, o, &probe_names).await? {
            Ok(f) => f,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        // dpkg's comparisons for `>=` specs, asked in one round trip.
        let mut pairs = Vec::new();
        for (n, cmp, v) in &split {
            if let (Some(">="), Some(v)) = (cmp, v) {
                for f in facts.iter().filter(|f| f.name == *n) {
                    for x in f.installed_version.iter().chain(f.candidate.iter()) {
                        pairs.push((x.clone(), v.to_string()));
                    }
                }
            }
        }
        let answers = compare_ge(ctx, &pairs).await?;
        let ge = |x: &str, y: &str| {
            pairs
                .iter()
                .position(|(a, b)| a == x && b == y)
                .and_then(|i| answers.get(i).copied())
                .unwrap_or(false)
        };
        for (spec, (n, cmp, v)) in specs.iter().zip(&split) {
            let matching: Vec<&PkgFacts> = if n.contains(['*', '?', '[', ']', '!']) {
                facts.iter().filter(|f| fnmatch(n, &f.name)).collect()
            } else {
                facts.iter().filter(|f| f.name == *n).collect()
            };
            for f in matching {
                if f.unknown && f.providers.is_empty() {
                    return Ok(ModuleResult::failed(format!(
                        "No package matching '{}' is available",
                        f.name
                    )));
                }
                names.push(f.name.clone());
                match plan_install(f, *cmp, *v, o.state == "latest", o.only_upgrade, &ge) {
                    Plan::Keep => {}
                    Plan::Install(p) => pkg_list.push(p),
                    Plan::NoCandidate => {
                        return Ok(ModuleResult::failed(format!(
                            "no available installation candidate for {spec}"
                        )));
                    }
                }
            }
        }
    }
    if pkg_list.is_empty() {
        return Ok(ModuleResult::ok());
    }
    let mut cmd = format!("apt-get -y{}", o.common());
    for (on, flag) in [
        (o.only_upgrade, " --only-upgrade"),
        (o.state == "fixed", " --fix-broken"),
        (o.autoremove && !build_dep, " --auto-remove"),
        (o.fail_on_autoremove, " --no-remove"),
    ] {
        if on {
            cmd.push_str(flag);
        }
    }
    cmd.push_str(force_yes);
    cmd.push_str(simulate);
    cmd.push_str(if build_dep { " build-dep" } else { " install" });
    for p in &pkg_list {
        cmd.push(' ');
        cmd.push_str(&sh_quote(p));
    }
    if let Some(rel) = &o.default_release {
        cmd.push_str(&format!(" -t {}", sh_quote(rel)));
    }
    match o.install_recommends {
        Some(false) => cmd.push_str(" -o APT::Install-Recommends=no"),
        Some(true) => cmd.push_str(" -o APT::Install-Recommends=yes"),
        None => {}
    }
    for (on, flag) in [
        (o.allow_unauthenticated, " --allow-unauthenticated"),
        (o.allow_downgrade, " --allow-downgrades"),
        (
            o.allow_change_held_packages,
            " --allow-change-held-packages",
        ),
    ] {
        if on {
            cmd.push_str(flag);
        }
    }
    let out = apt_run(ctx, o, &cmd).await?;
    if out.rc != 0 {
        return Ok(apt_failed(&cmd, &out));
    }
    if !ctx.check_mode && !build_dep && !names.is_empty() {
        let quoted: Vec<String> = names.iter().map(|n| sh_quote(n)).collect();
        let mark = remote::run(ctx, format!("apt-mark manual {}", quoted.join(" "))).await?;
        if mark.rc != 0 {
            return Ok(ModuleResult::failed(format!(
                "'apt-mark manual {}' failed: {}",
                quoted.join(" "),
                mark.stderr_str().trim()
            )));
        }
    }
    let text = out.stdout_str();
    let changed = !build_dep || !text.contains(APT_GET_ZERO);
    let mut r = if changed {
        ModuleResult::changed()
    } else {
        ModuleResult::ok()
    };
    r.diff = prepared(ctx, &text);
    Ok(with_output(r, &out))
}

async fn remove(
    ctx: &ModuleCtx<'_>,
    o: &Opts,
    specs: &[String],
    simulate: &str,
    force_yes: &str,
) -> Result<ModuleResult, ModuleError> {
    let names: Vec<&str> = specs.iter().map(|s| split_spec(s).0).collect();
    let facts = match probe(ctx, o, &names).await? {
        Ok(f) => f,
        Err(msg) => return Ok(ModuleResult::failed(msg)),
    };
    let mut pkg_list = Vec::new();
    for (spec, n) in specs.iter().zip(&names) {
        let (_, cmp, v) = split_spec(spec);
        for f in facts.iter().filter(|f| {
            if n.contains(['*', '?', '[', ']', '!']) {
                fnmatch(n, &f.name)
            } else {
                f.name == *n
            }
        }) {
            // Ansible's installed_version for removal: a version given must match.
            let version_ok = match (cmp, v, &f.installed_version) {
                (Some("="), Some(pat), Some(inst)) => fnmatch(pat, inst),
                (_, _, Some(_)) => true,
                _ => false,
            };
            if version_ok || (f.config_files && o.purge) {
                pkg_list.push(f.name.clone());
            }
        }
    }
    if pkg_list.is_empty() {
        return Ok(ModuleResult::ok());
    }
    let mut cmd = format!("apt-get -q -y{}", o.common());
    if o.purge {
        cmd.push_str(" --purge");
    }
    cmd.push_str(force_yes);
    if o.autoremove {
        cmd.push_str(" --auto-remove");
    }
    cmd.push_str(simulate);
    if o.allow_change_held_packages {
        cmd.push_str(" --allow-change-held-packages");
    }
    cmd.push_str(" remove");
    for p in &pkg_list {
        cmd.push(' ');
        cmd.push_str(&sh_quote(p));
    }
    let out = apt_run(ctx, o, &cmd).await?;
    if out.rc != 0 {
        return Ok(apt_failed(
            &format!("apt-get remove {}", pkg_list.join(" ")),
            &out,
        ));
    }
    let mut r = ModuleResult::changed();
    r.diff = prepared(ctx, &out.stdout_str());
    Ok(with_output(r, &out))
}

/// `upgrade: yes|safe|full|dist` (and `name: '*'` with `state: latest`), with apt-get as
/// Ansible runs it when aptitude is absent: `upgrade --with-new-pkgs` for yes and safe,
/// `dist-upgrade` for full and dist. Changed unless apt-get did nothing.
async fn upgrade(
    ctx: &ModuleCtx<'_>,
    o: &Opts,
    simulate: &str,
    force_yes: &str,
) -> Result<ModuleResult, ModuleError> {
    let what = match o.upgrade {
        "full" | "dist" => "dist-upgrade",
        _ => "upgrade --with-new-pkgs",
    };
    let mut cmd = format!("apt-get -y{}{force_yes}{simulate}", o.common());
    if o.autoremove {
        cmd.push_str(" --auto-remove");
    }
    if o.fail_on_autoremove {
        cmd.push_str(" --no-remove");
    }
    if o.allow_unauthenticated {
        cmd.push_str(" --allow-unauthenticated");
    }
    if o.allow_downgrade {
        cmd.push_str(" --allow-downgrades");
    }
    if let Some(rel) = &o.default_release {
        cmd.push_str(&format!(" -t {}", sh_quote(rel)));
    }
    cmd.push(' ');
    cmd.push_str(what);
    let out = apt_run(ctx, o, &cmd).await?;
    if out.rc != 0 {
        return Ok(apt_failed(&cmd, &out));
    }
    let text = out.stdout_str();
    let mut r = if text.contains(APT_GET_ZERO) {
        ModuleResult::ok()
    } else {
        let mut r = ModuleResult::changed();
        r.diff = prepared(ctx, &text);
        r
    };
    r.msg = Some(text.to_string());
    Ok(with_output(r, &out))
}

/// `deb:` a package file on the host (or a URL, fetched there first): installed with its
/// dependencies unless that very version is installed already.
async fn install_deb(
    ctx: &ModuleCtx<'_>,
    o: &Opts,
    deb: &str,
    simulate: &str,
) -> Result<ModuleResult, ModuleError> {
    let mut path = deb.to_string();
    if deb.contains("://") {
        let fetch = format!(
            "d=$(mktemp -d) && f=\"$d/$(basename {u})\" && \
             {{ curl -fsSL -o \"$f\" {u} 2>/dev/null || wget -q -O \"$f\" {u}; }} && echo \"$f\"",
            u = sh_quote(deb)
        );
        let out = remote::run(ctx, fetch).await?;
        if out.rc != 0 {
            return Ok(ModuleResult::failed(format!(
                "Failure downloading {deb}: {}",
                out.stderr_str().trim()
            )));
        }
        path = out.stdout_str().trim().to_string();
    }
    let q = sh_quote(&path);
    let check = format!(
        "p=$(dpkg-deb -f {q} Package) && v=$(dpkg-deb -f {q} Version) && \
         echo \"$p|$v|$(dpkg-query -W -f='${{db:Status-Abbrev}}|${{Version}}' \"$p\" 2>/dev/null)\""
    );
    let out = remote::run(ctx, check).await?;
    if out.rc != 0 {
        return Ok(ModuleResult::failed(format!(
            "Unable to install package: {}",
            out.stderr_str().trim()
        )));
    }
    let line = out.stdout_str().trim().to_string();
    let parts: Vec<&str> = line.split('|').collect();
    if let [_, version, status, installed] = parts[..]
        && status.trim().chars().nth(1) == Some('i')
        && installed == version
        && !o.force
    {
        return Ok(ModuleResult::ok());
    }
    let mut cmd = format!("apt-get -y{}{simulate} install {q}", o.common());
    if o.install_recommends == Some(false) {
        cmd.push_str(" -o APT::Install-Recommends=no");
    }
    if o.allow_downgrade {
        cmd.push_str(" --allow-downgrades");
    }
    let out = apt_run(ctx, o, &cmd).await?;
    if out.rc != 0 {
        return Ok(apt_failed(&cmd, &out));
    }
    let mut r = ModuleResult::changed();
    r.diff = prepared(ctx, &out.stdout_str());
    Ok(with_output(r, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY_HELLO: &str = "@pkg hello
@status un |
@policy hello:
@policy   Installed: (none)
@policy   Candidate: 2.10-3
@policy   Version table:
@policy      2.10-3 500
@policy         500 http://deb.debian.org/debian bookworm/main amd64 Packages
@policy      2.10-2 100
@policy         100 http://deb.debian.org/debian bullseye/main amd64 Packages
";

    fn never(_: &str, _: &str) -> bool {
        false
    }

    #[test]
    fn the_probe_is_read_as_dpkg_and_apt_see_the_package() {
        let f = &parse_probe(POLICY_HELLO).unwrap()[0];
        assert_eq!(f.name, "hello");
        assert!(!f.installed && !f.unknown);
        assert_eq!(f.candidate.as_deref(), Some("2.10-3"));
        assert_eq!(f.versions, ["2.10-3", "2.10-2"]);
        let installed = parse_probe(
            "@pkg hello\n@status ii |2.10-2\n@policy   Candidate: 2.10-3\n\
             @policy      2.10-3 500\n@policy  *** 2.10-2 100\n",
        )
        .unwrap();
        assert_eq!(installed[0].installed_version.as_deref(), Some("2.10-2"));
        assert_eq!(installed[0].versions, ["2.10-3", "2.10-2"]);
        let removed = parse_probe("@pkg hello\n@status rc |2.10-2\n").unwrap();
        assert!(removed[0].config_files && removed[0].installed_version.is_none());
        assert!(removed[0].unknown);
        assert_eq!(
            parse_probe("@nomatch hel*\n").unwrap_err(),
            "No package(s) matching 'hel*' available"
        );
    }

    #[test]
    fn installs_only_what_is_missing_or_older_than_asked() {
        let new = parse_probe(POLICY_HELLO).unwrap().remove(0);
        assert_eq!(
            plan_install(&new, None, None, false, false, &never),
            Plan::Install("hello=2.10-3".into())
        );
        // `=pattern` picks the highest version matching it.
        assert_eq!(
            plan_install(&new, Some("="), Some("2.10-2*"), false, false, &never),
            Plan::Install("hello=2.10-2".into())
        );
        assert_eq!(
            plan_install(&new, Some("="), Some("3.*"), false, false, &never),
            Plan::NoCandidate
        );
        assert_eq!(
            plan_install(&new, None, None, false, true, &never),
            Plan::Keep,
            "only_upgrade leaves a package that is not installed alone"
        );
        let mut old = new.clone();
        old.installed = true;
        old.installed_version = Some("2.10-2".into());
        assert_eq!(
            plan_install(&old, None, None, false, false, &never),
            Plan::Keep,
            "present: any installed version will do"
        );
        assert_eq!(
            plan_install(&old, None, None, true, false, &never),
            Plan::Install("hello=2.10-3".into()),
            "latest: the candidate"
        );
        let mut current = old.clone();
        current.installed_version = Some("2.10-3".into());
        assert_eq!(
            plan_install(&current, None, None, true, false, &never),
            Plan::Keep
        );
        let ge = |a: &str, b: &str| a >= b;
        assert_eq!(
            plan_install(&old, Some(">="), Some("2.10-3"), false, false, &ge),
            Plan::Install("hello=2.10-3".into())
        );
        assert_eq!(
            plan_install(&current, Some(">="), Some("2.10-3"), false, false, &ge),
            Plan::Keep
        );
    }

    #[test]
    fn virtual_packages_are_left_to_apt_unless_one_installed_package_provides_them() {
        let virt = PkgFacts {
            name: "mail-transport-agent".into(),
            providers: vec![("exim4".into(), false), ("postfix".into(), false)],
            ..Default::default()
        };
        assert_eq!(
            plan_install(&virt, None, None, false, false, &never),
            Plan::Install("mail-transport-agent".into())
        );
        let provided = PkgFacts {
            providers: vec![("postfix".into(), true)],
            ..virt
        };
        assert_eq!(
            plan_install(&provided, None, None, false, false, &never),
            Plan::Keep
        );
    }

    #[test]
    fn specs_and_plans_read_as_ansible_reads_them() {
        assert_eq!(split_spec("hello"), ("hello", None, None));
        assert_eq!(
            split_spec("hello=2.10*"),
            ("hello", Some("="), Some("2.10*"))
        );
        assert_eq!(
            split_spec("hello>=2.10"),
            ("hello", Some(">="), Some("2.10"))
        );
        assert_eq!(
            version_table_entry(" *** 2.10-2 100").as_deref(),
            Some("2.10-2")
        );
        assert_eq!(
            version_table_entry("        500 http://x bookworm/main"),
            None
        );
        let out = "Reading package lists...\nBuilding dependency tree...\n\
                   Reading state information...\nThe following NEW packages will be installed:\n  hello\n\
                   0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\nInst hello\n";
        assert_eq!(
            prepared_diff(out),
            "The following NEW packages will be installed:\n  hello\n\
             0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded."
        );
    }
}
