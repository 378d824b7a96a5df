//! `mount` (ansible.posix): an fstab entry and the mount itself. The fstab is edited the
//! way the collection edits it (fields escaped `\040`-style and joined by single spaces, a
//! matching entry rewritten whole, an entry removed only from six-field lines), and the
//! mount is changed with `mount`/`umount` only when the state asks for it, so a playbook
//! that manages a data disk converges in one run and changes nothing in the next.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::files::{TextFile, read_text};
use crate::modules::remote::{self, WriteOpts};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Mount;

const KNOWN: &[&str] = &[
    "path",
    "name",
    "src",
    "fstype",
    "opts",
    "dump",
    "passno",
    "state",
    "fstab",
    "boot",
    "backup",
    "opts_no_log",
];

const STATES: &[&str] = &[
    "absent",
    "absent_from_fstab",
    "mounted",
    "present",
    "unmounted",
    "remounted",
    "ephemeral",
];

/// An fstab field as the collection writes it.
pub fn escape(field: &str) -> String {
    field
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

/// The entry wanted, fields already escaped.
pub struct Entry {
    pub src: String,
    pub path: String,
    pub fstype: String,
    pub opts: String,
    pub dump: String,
    pub passno: String,
}

impl Entry {
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}\n",
            self.src, self.path, self.fstype, self.opts, self.dump, self.passno
        )
    }

    fn matches(&self, fields: &[&str]) -> bool {
        if fields[1] != self.path {
            return false;
        }
        // Several swap entries share the path `none`: only the same device is the same entry.
        if fields[1] == "none" && fields[2] == "swap" {
            return fields[0] == self.src;
        }
        true
    }
}

/// The fstab with `e` present: a matching entry rewritten when any field differs (and every
/// matching entry after a change), else appended. Returns the text and whether it changed.
pub fn set_entry(text: &str, e: &Entry) -> (String, bool) {
    let mut out = String::new();
    let (mut changed, mut found) = (false, false);
    for raw in text.split_inclusive('\n') {
        let line = if raw.ends_with('\n') {
            raw.to_string()
        } else {
            format!("{raw}\n")
        };
        let body = line.split('#').next().unwrap_or("");
        let fields: Vec<&str> = body.split_whitespace().collect();
        if line.trim().is_empty()
            || line.trim_start().starts_with('#')
            || !(4..=6).contains(&fields.len())
            || !e.matches(&fields)
        {
            out.push_str(&line);
            continue;
        }
        found = true;
        // A missing dump or passno is never equal to the wanted one: such a line is rewritten.
        let differs = fields[0] != e.src
            || fields[2] != e.fstype
            || fields[3] != e.opts
            || fields.get(4) != Some(&e.dump.as_str())
            || fields.get(5) != Some(&e.passno.as_str());
        if differs || changed {
            changed = true;
            out.push_str(&e.line());
        } else {
            out.push_str(&line);
        }
    }
    if !found {
        out.push_str(&e.line());
        changed = true;
    }
    (out, changed)
}

/// The fstab without entries for `path` (only six-field lines count, comments included).
pub fn unset_entry(text: &str, e: &Entry) -> (String, bool) {
    let mut out = String::new();
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.trim_start().starts_with('#') && fields.len() == 6 && e.matches(&fields) {
            changed = true;
            continue;
        }
        out.push_str(line);
    }
    (out, changed)
}

async fn write_fstab(ctx: &ModuleCtx<'_>, fstab: &str, text: &str) -> Result<(), ModuleError> {
    remote::write_file(ctx, fstab, text.as_bytes(), &WriteOpts::default()).await?;
    Ok(())
}

/// What is mounted at `path` (its source), per `/proc/self/mountinfo`.
async fn mounted_source(ctx: &ModuleCtx<'_>, path: &str) -> Result<Option<String>, ModuleError> {
    let out = remote::run(ctx, "cat /proc/self/mountinfo").await?;
    let want = escape(path);
    let found = out.stdout_str().lines().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&want.as_str())).then(|| {
            fields
                .get(dash + 2)
                .map(|s| s.to_string())
                .unwrap_or_default()
        })
    });
    Ok(found)
}

#[async_trait]
impl Module for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["path", "name"], &["state"]],
            choices: &[("state", STATES)],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("mount", args, KNOWN)?;
        let path = match a.opt_str("path")? {
            Some(p) => p,
            None => a.str("name")?,
        };
        let state = a.choice("state", STATES, "")?;
        if state.is_empty() {
            return Err(a.err("state", "is required"));
        }
        let (src, fstype) = (a.opt_str("src")?, a.opt_str("fstype")?);
        if matches!(state, "mounted" | "present" | "ephemeral") {
            let missing: Vec<&str> = [("src", &src), ("fstype", &fstype)]
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| *k)
                .collect();
            if !missing.is_empty() {
                return Err(a.fail(format!(
                    "state is {state} but all of the following are missing: {}",
                    missing.join(", ")
                )));
            }
        }
        let boot = a.bool_or("boot", true)?;
        let mut opts = a.str_or("opts", "defaults")?;
        if !boot {
            opts.push_str(",noauto");
        }
        let dump = a.str_or("dump", "0")?;
        let passno = a.str_or("passno", "0")?;
        let fstab = a.str_or("fstab", "/etc/fstab")?;
        let t_arg = if fstab == "/etc/fstab" {
            String::new()
        } else {
            format!("-T {} ", sh_quote(&fstab))
        };
        let p = sh_quote(&path);
        let entry = Entry {
            src: escape(src.as_deref().unwrap_or("")),
            path: escape(&path),
            fstype: escape(fstype.as_deref().unwrap_or("")),
            opts: escape(&opts),
            dump: escape(&dump),
            passno: escape(&passno),
        };
        let mut r = ModuleResult::ok()
            .with("name", path.as_str())
            .with("opts", opts.as_str())
            .with("dump", dump.as_str())
            .with("passno", passno.as_str())
            .with("fstab", fstab.as_str())
            .with("boot", if boot { "yes" } else { "no" })
            .with("backup_file", "");
        if let Some(s) = &src {
            r = r.with("src", s.as_str());
        }
        if let Some(f) = &fstype {
            r = r.with("fstype", f.as_str());
        }
        let fail = |msg: String, out: &crate::connection::ExecOutput| {
            Ok(ModuleResult::failed(format!(
                "{msg}: {}{}",
                out.stdout_str(),
                out.stderr_str()
            )))
        };
        let sh = |cmd: String| remote::run(ctx, cmd);

        if state == "ephemeral" {
            r.changed = true;
            if ctx.check_mode {
                return Ok(r);
            }
            let o = if opts == "defaults" {
                String::new()
            } else {
                format!("-o {} ", sh_quote(&opts))
            };
            let (s, t) = (
                sh_quote(src.as_deref().unwrap_or("")),
                sh_quote(fstype.as_deref().unwrap_or("")),
            );
            let cmd = match mounted_source(ctx, &path).await? {
                None => format!("mkdir -p {p} && mount -t {t} {o}{s} {p}"),
                Some(cur) if cur == src.clone().unwrap_or_default() => {
                    format!("mount -o remount -t {t} {o}{s} {p}")
                }
                Some(_) => {
                    return Ok(ModuleResult::failed(
                        "Ephemeral mount point is already mounted with a different source than \
                         the specified one. Failing in order to prevent an unwanted unmount or \
                         override operation. Try replacing this command with a \"state: \
                         unmounted\" followed by a \"state: ephemeral\", or use a different \
                         destination path.",
                    ));
                }
            };
            let out = sh(cmd).await?;
            if out.rc != 0 {
                return fail(format!("Error mounting {path}"), &out);
            }
            return Ok(r);
        }

        // The fstab (created when missing, as the collection does even in check mode).
        let mut file: TextFile = read_text(ctx, "mount", &fstab).await?;
        if file.stat.is_none() && !matches!(state, "unmounted" | "remounted") {
            let out = sh(format!(
                "mkdir -p \"$(dirname {f})\" && touch {f}",
                f = sh_quote(&fstab)
            ))
            .await?;
            if out.rc != 0 {
                return fail(format!("Failed to create {fstab}"), &out);
            }
            file = read_text(ctx, "mount", &fstab).await?;
        }
        let mounted = mounted_source(ctx, &path).await?.is_some();
        match state {
            "absent" | "absent_from_fstab" => {
                let (text, changed) = unset_entry(&file.text, &entry);
                r.changed = changed;
                if changed && !ctx.check_mode {
                    write_fstab(ctx, &fstab, &text).await?;
                    if state == "absent" {
                        if mounted {
                            let out = sh(format!("umount {p}")).await?;
                            if out.rc != 0 {
                                return fail(format!("Error unmounting {path}"), &out);
                            }
                        }
                        let out = sh(format!("if [ -d {p} ]; then rmdir {p}; fi")).await?;
                        if out.rc != 0 {
                            return fail(format!("Error rmdir {path}"), &out);
                        }
                    }
                }
            }
            "unmounted" => {
                if mounted {
                    r.changed = true;
                    if !ctx.check_mode {
                        let out = sh(format!("umount {p}")).await?;
                        if out.rc != 0 {
                            return fail(format!("Error unmounting {path}"), &out);
                        }
                    }
                }
            }
            "remounted" => {
                r.changed = true;
                if !ctx.check_mode {
                    let extra = if opts == "defaults" {
                        String::new()
                    } else {
                        format!(",{opts}")
                    };
                    let out = sh(format!(
                        "mount -o {} {t_arg}{p}",
                        sh_quote(&format!("remount{extra}"))
                    ))
                    .await?;
                    if out.rc != 0 {
                        if opts != "defaults" {
                            return Ok(ModuleResult::failed(
                                "Options were specified with remounted, but the remount command \
                                 failed. Failing in order to prevent an unexpected mount result. \
                                 Try replacing this command with a \"state: unmounted\" followed \
                                 by a \"state: mounted\" using the full desired mount options \
                                 instead.",
                            ));
                        }
                        let out = sh(format!("umount {p} && mount {t_arg}{p}")).await?;
                        if out.rc != 0 {
                            return fail(format!("Error remounting {path}"), &out);
                        }
                    }
                }
            }
            // present and mounted
            _ => {
                let (text, changed) = set_entry(&file.text, &entry);
                r.changed = changed;
                if changed && !ctx.check_mode {
                    write_fstab(ctx, &fstab, &text).await?;
                }
                if state == "mounted" {
                    let cmd = if !mounted {
                        r.changed = true;
                        Some(format!("mkdir -p {p} && mount {t_arg}{p}"))
                    } else if changed {
                        Some(format!(
                            "mount -o remount {t_arg}{p} || {{ umount {p} && mount {t_arg}{p}; }}"
                        ))
                    } else {
                        None
                    };
                    if let (Some(cmd), false) = (cmd, ctx.check_mode) {
                        let out = sh(cmd).await?;
                        if out.rc != 0 {
                            // Leave the fstab as it was, as the collection does.
                            if changed {
                                write_fstab(ctx, &fstab, &file.text).await?;
                            }
                            return fail(format!("Error mounting {path}"), &out);
                        }
                    }
                }
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(opts: &str) -> Entry {
        Entry {
            src: "/dev/vdb".into(),
            path: escape("/data disk"),
            fstype: "ext4".into(),
            opts: opts.into(),
            dump: "0".into(),
            passno: "2".into(),
        }
    }

    #[test]
    fn fields_are_escaped_and_entries_appended_then_kept() {
        assert_eq!(escape("a b&c\\"), "a\\040b\\046c\\134");
        let (t, changed) = set_entry("# fstab\nUUID=1 / ext4 defaults 0 1", &entry("defaults"));
        assert!(changed);
        assert_eq!(
            t,
            "# fstab\nUUID=1 / ext4 defaults 0 1\n/dev/vdb /data\\040disk ext4 defaults 0 2\n"
        );
        assert_eq!(set_entry(&t, &entry("defaults")), (t.clone(), false));
        let (t2, changed) = set_entry(&t, &entry("noatime"));
        assert!(changed);
        assert!(t2.ends_with("/dev/vdb /data\\040disk ext4 noatime 0 2\n"));
        let (t3, changed) = unset_entry(&t2, &entry("x"));
        assert!(changed);
        assert_eq!(t3, "# fstab\nUUID=1 / ext4 defaults 0 1\n");
    }

    #[test]
    fn a_four_field_entry_is_always_rewritten() {
        let (t, changed) = set_entry(
            "/dev/vdb /data\\040disk ext4 defaults\n",
            &entry("defaults"),
        );
        assert!(changed);
        assert_eq!(t, "/dev/vdb /data\\040disk ext4 defaults 0 2\n");
    }
}
