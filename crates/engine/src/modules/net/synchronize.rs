//! `synchronize`: runs `rsync` ON THE CONTROLLER between a controller path and the host.
//!
//! The `ssh` command rsync uses is built from the task's [`ConnectionSpec`], so rsync
//! reaches the host exactly as the engine does: same user, port, identity files,
//! known_hosts files and host-key policy, and through the same jump host (as a
//! `ProxyCommand` that carries the same options). `changed` comes from rsync's itemized
//! output (`--out-format=<<CHANGED>>%i %n%L`), as in Ansible.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::{ConnectionKind, ConnectionSpec, HostKeyPolicy, expand_home, sh_quote};
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Synchronize;

const KNOWN: &[&str] = &[
    "src",
    "dest",
    "mode",
    "delete",
    "rsync_opts",
    "archive",
    "checksum",
    "compress",
    "recursive",
    "links",
    "copy_links",
    "perms",
    "times",
    "owner",
    "group",
    "dirs",
    "existing_only",
    "rsync_path",
    "rsync_timeout",
    "partial",
    "verify_host",
    "private_key",
    "dest_port",
    "use_ssh_args",
    "delay_updates",
];

const MARKER: &str = "<<CHANGED>>";

/// The OpenSSH options shared by the host and its jump host.
fn ssh_options(spec: &ConnectionSpec) -> Vec<String> {
    let mut o = vec!["-o".to_string(), "BatchMode=yes".to_string()];
    o.push("-o".into());
    o.push(format!(
        "ConnectTimeout={}",
        spec.connect_timeout.as_secs().max(1)
    ));
    o.push("-o".into());
    o.push(format!(
        "StrictHostKeyChecking={}",
        match spec.host_key_policy {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "no",
        }
    ));
    if !spec.known_hosts_files.is_empty() {
        // UserKnownHostsFile replaces the default list and ssh records new keys in the first
        // file, so the engine's own files come first and the user's file is still consulted.
        let mut files: Vec<String> = spec
            .known_hosts_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        files.extend(dirs::home_dir().map(|h| h.join(".ssh/known_hosts").display().to_string()));
        o.push("-o".into());
        o.push(format!("UserKnownHostsFile={}", files.join(" ")));
    }
    for key in &spec.identity_files {
        o.push("-i".into());
        o.push(key.display().to_string());
    }
    if !spec.identity_files.is_empty() {
        o.push("-o".into());
        o.push("IdentitiesOnly=yes".into());
    }
    o
}

fn user_host(spec: &ConnectionSpec) -> String {
    let addr = if spec.address.contains(':') {
        format!("[{}]", spec.address)
    } else {
        spec.address.clone()
    };
    if spec.user.is_empty() {
        addr
    } else {
        format!("{}@{addr}", spec.user)
    }
}

/// The `ssh` command line for rsync's `-e`, as words. The jump host becomes a
/// `ProxyCommand` running `ssh -W %h:%p` with the jump host's own options.
pub fn ssh_words(spec: &ConnectionSpec) -> Vec<String> {
    let mut w = vec!["ssh".to_string(), "-p".to_string(), spec.port.to_string()];
    w.extend(ssh_options(spec));
    if let Some(jump) = &spec.jump {
        let mut j = ssh_words(jump);
        j.extend(["-W".to_string(), "%h:%p".to_string(), user_host(jump)]);
        let proxy: Vec<String> = j.iter().map(|x| sh_quote(x)).collect();
        w.push("-o".into());
        w.push(format!("ProxyCommand={}", proxy.join(" ")));
    }
    w
}

/// Joins words for rsync's `-e`, which splits on spaces and honours double quotes.
fn rsync_e(words: &[String]) -> Result<String, String> {
    words
        .iter()
        .map(|w| {
            if w.contains('"') {
                Err(format!(
                    "cannot pass {w} to rsync -e: it contains a double quote"
                ))
            } else if w.contains(' ') || w.contains('\'') {
                Ok(format!("\"{w}\""))
            } else {
                Ok(w.clone())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(" "))
}

/// Everything `synchronize` needs to build the rsync command.
pub struct SyncOpts {
    pub src: String,
    pub dest: String,
    pub pull: bool,
    pub flags: Vec<String>,
    pub rsync_path: Option<String>,
}

/// The rsync argument vector (without the program name).
pub fn rsync_args(o: &SyncOpts, spec: &ConnectionSpec) -> Result<Vec<String>, String> {
    let mut args = o.flags.clone();
    args.push(format!("--out-format={MARKER}%i %n%L"));
    if let Some(p) = &o.rsync_path {
        args.push(format!("--rsync-path={p}"));
    }
    let (src, dest) = if spec.kind == ConnectionKind::Local {
        (o.src.clone(), o.dest.clone())
    } else {
        args.push("-e".into());
        args.push(rsync_e(&ssh_words(spec))?);
        let remote = |p: &str| format!("{}:{p}", user_host(spec));
        if o.pull {
            (remote(&o.src), o.dest.clone())
        } else {
            (o.src.clone(), remote(&o.dest))
        }
    };
    args.push(src);
    args.push(dest);
    Ok(args)
}

#[async_trait]
impl Module for Synchronize {
    fn name(&self) -> &'static str {
        "synchronize"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["src"], &["dest"]],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("synchronize", args, KNOWN)?;
        let pull = a.choice("mode", &["push", "pull"], "push")? == "pull";
        let mut src = a.str("src")?;
        let mut dest = a.str("dest")?;
        // The controller side may be relative to the role's files/ or the playbook.
        if pull {
            dest = expand_home(&dest).display().to_string();
        } else {
            let trailing = src.ends_with('/');
            let found = ctx
                .find_file("files", &src)
                .ok_or_else(|| a.err("src", format!("'{src}' was not found on the controller")))?;
            src = found.display().to_string();
            if trailing && !src.ends_with('/') {
                src.push('/');
            }
        }
        let mut flags = vec!["--delay-updates".to_string(), "-F".to_string()];
        let flag = |name: &str,
                    default: bool,
                    on: &str,
                    flags: &mut Vec<String>|
         -> Result<(), ModuleError> {
            if a.bool_or(name, default)? {
                flags.push(on.to_string());
            }
            Ok(())
        };
        flag("compress", true, "--compress", &mut flags)?;
        let archive = a.bool_or("archive", true)?;
        if archive {
            flags.push("--archive".into());
        }
        // Explicit settings refine --archive, as in Ansible.
        for (name, on, off) in [
            ("recursive", "--recursive", "--no-recursive"),
            ("links", "--links", "--no-links"),
            ("perms", "--perms", "--no-perms"),
            ("times", "--times", "--no-times"),
            ("owner", "--owner", "--no-owner"),
            ("group", "--group", "--no-group"),
        ] {
            match a.opt_bool(name)? {
                Some(true) if !archive => flags.push(on.into()),
                Some(false) if archive => flags.push(off.into()),
                _ => {}
            }
        }
        flag("checksum", false, "--checksum", &mut flags)?;
        flag("delete", false, "--delete-after", &mut flags)?;
        flag("copy_links", false, "--copy-links", &mut flags)?;
        flag("dirs", false, "--dirs", &mut flags)?;
        flag("existing_only", false, "--existing", &mut flags)?;
        flag("partial", false, "--partial", &mut flags)?;
        if let Some(t) = a.opt_int("rsync_timeout")?.filter(|t| *t > 0) {
            flags.push(format!("--timeout={t}"));
        }
        if ctx.check_mode {
            flags.push("--dry-run".into());
        }
        flags.extend(a.str_list("rsync_opts")?);
        let mut spec = ctx.conn_spec.clone();
        if let Some(port) = a.opt_int("dest_port")? {
            spec.port = u16::try_from(port)
                .map_err(|_| a.err("dest_port", "must be between 1 and 65535"))?;
        }
        if let Some(key) = a.opt_str("private_key")? {
            spec.identity_files.insert(0, expand_home(&key));
        }
        let rsync_path = match (a.opt_str("rsync_path")?, &ctx.become_) {
            (Some(p), _) => Some(p),
            (None, Some(b)) if !pull || spec.kind == ConnectionKind::Ssh => {
                Some(format!("sudo -n -u {} rsync", sh_quote(&b.user)))
            }
            _ => None,
        };
        let opts = SyncOpts {
            src,
            dest,
            pull,
            flags,
            rsync_path,
        };
        let argv = rsync_args(&opts, &spec).map_err(|e| a.fail(e))?;
        let cmdline = format!(
            "rsync {}",
            argv.iter()
                .map(|w| sh_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let out = tokio::process::Command::new("rsync")
            .args(&argv)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| {
                ModuleError::Failed(format!(
                    "synchronize: cannot run rsync on the controller ({e}); install rsync"
                ))
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let changed_lines: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(MARKER))
            .map(str::to_string)
            .collect();
        let rc = out.status.code().unwrap_or(-1);
        let mut r = if rc != 0 {
            ModuleResult::failed(format!(
                "rsync exited with {rc}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        } else if changed_lines.is_empty() {
            ModuleResult::ok()
        } else {
            ModuleResult::changed()
        };
        r = r
            .with("rc", rc)
            .with("cmd", cmdline)
            .with("stdout_lines", changed_lines);
        Ok(r)
    }
}
