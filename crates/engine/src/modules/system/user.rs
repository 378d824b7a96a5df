//! `user`: a local account, with `useradd`, `usermod`, `userdel` and `chage`, making the
//! decisions ansible-core's generic Linux `User` class makes: which options each command
//! gets, what counts as a change (a uid, primary gid, group set, GECOS, home, shell, expiry,
//! lock or password hash that differs), and the keys of the result. Check mode decides the
//! same way and runs nothing.
//!
//! The account state is read with `getent` (see [`super::accounts`]), so nothing but the
//! shadow tools is needed on the host; `local: true` (the `luseradd` family, absent from
//! Debian) is refused.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::accounts::{self, Accounts, Passwd};
use crate::connection::sh_quote;
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult, remote};

pub struct User;

const KNOWN: &[&str] = &[
    "name",
    "user",
    "state",
    "uid",
    "non_unique",
    "group",
    "groups",
    "append",
    "comment",
    "home",
    "shell",
    "password",
    "update_password",
    "create_home",
    "createhome",
    "move_home",
    "system",
    "force",
    "remove",
    "expires",
    "password_lock",
    "skeleton",
    "umask",
    "seuser",
    "local",
    "generate_ssh_key",
    "ssh_key_type",
    "ssh_key_bits",
    "ssh_key_comment",
    "ssh_key_file",
    "ssh_key_passphrase",
    "password_expire_min",
    "password_expire_max",
    "password_expire_warn",
    "password_expire_account_disable",
    "uid_min",
    "uid_max",
    // Accepted for the BSDs, macOS and Solaris; they mean nothing on Linux.
    "hidden",
    "login_class",
    "profile",
    "authorization",
    "role",
];

/// The arguments, read once.
struct Opts {
    name: String,
    present: bool,
    uid: Option<i64>,
    non_unique: bool,
    group: Option<String>,
    /// `None` when not given; `Some(vec![])` for `groups: ''` / `[]`.
    groups: Option<Vec<String>>,
    append: bool,
    comment: Option<String>,
    home: Option<String>,
    shell: Option<String>,
    password: Option<String>,
    update_always: bool,
    create_home: bool,
    move_home: bool,
    system: bool,
    force: bool,
    remove: bool,
    expires: Option<f64>,
    password_lock: Option<bool>,
    skeleton: Option<String>,
    umask: Option<String>,
    seuser: Option<String>,
    expire_min: Option<i64>,
    expire_max: Option<i64>,
    expire_warn: Option<i64>,
    account_disable: Option<i64>,
    uid_min: Option<i64>,
    uid_max: Option<i64>,
    ssh: Option<SshKey>,
}

struct SshKey {
    kind: String,
    bits: i64,
    comment: Option<String>,
    file: Option<String>,
    passphrase: Option<String>,
}

impl Opts {
    fn parse(a: &Args) -> Result<Self, ModuleError> {
        let name = match a.opt_str("name")? {
            Some(n) => n,
            None => a
                .opt_str("user")?
                .ok_or_else(|| a.err("name", "is required"))?,
        };
        if a.bool_or("local", false)? {
            return Err(a.err(
                "local",
                "needs the luseradd family of commands, which Debian does not ship and \
                 this engine does not run; drop 'local: true'",
            ));
        }
        let groups = if a.has("groups") {
            Some(a.str_list("groups")?)
        } else {
            None
        };
        let expires = match a.value("expires") {
            None => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => Some(
                s.trim()
                    .parse::<f64>()
                    .map_err(|e| a.fail(format!("Invalid value for 'expires' {s}: {e}")))?,
            ),
            Some(other) => return Err(a.err("expires", format!("must be a number, got {other}"))),
        };
        let create_home = match a.opt_bool("create_home")? {
            Some(b) => b,
            None => a.bool_or("createhome", true)?,
        };
        let ssh = if a.bool_or("generate_ssh_key", false)? {
            Some(SshKey {
                kind: a.str_or("ssh_key_type", "rsa")?,
                bits: a.int_or("ssh_key_bits", 0)?,
                comment: a.opt_str("ssh_key_comment")?,
                file: a.opt_str("ssh_key_file")?,
                passphrase: a.opt_str("ssh_key_passphrase")?,
            })
        } else {
            None
        };
        Ok(Opts {
            present: a.choice("state", &["present", "absent"], "present")? == "present",
            uid: a.opt_int("uid")?,
            non_unique: a.bool_or("non_unique", false)?,
            group: a.opt_str("group")?,
            groups,
            append: a.bool_or("append", false)?,
            comment: a.opt_str("comment")?,
            home: a.opt_str("home")?,
            shell: a.opt_str("shell")?,
            password: a.opt_str("password")?,
            update_always: a.choice("update_password", &["always", "on_create"], "always")?
                == "always",
            create_home,
            move_home: a.bool_or("move_home", false)?,
            system: a.bool_or("system", false)?,
            force: a.bool_or("force", false)?,
            remove: a.bool_or("remove", false)?,
            expires,
            password_lock: a.opt_bool("password_lock")?,
            skeleton: a.opt_str("skeleton")?,
            umask: a.opt_str("umask")?,
            seuser: a.opt_str("seuser")?,
            expire_min: a.opt_int("password_expire_min")?,
            expire_max: a.opt_int("password_expire_max")?,
            expire_warn: a.opt_int("password_expire_warn")?,
            account_disable: a.opt_int("password_expire_account_disable")?,
            uid_min: a.opt_int("uid_min")?,
            uid_max: a.opt_int("uid_max")?,
            ssh,
            name,
        })
    }
}

/// `YYYY-MM-DD` of an expiry given in seconds since the epoch, in UTC, as `useradd -e`
/// takes it.
fn expiry_date(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs.floor() as i64, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The group names of `wanted` as `-G` takes them, or the first that does not exist.
fn resolve_groups(acc: &Accounts, wanted: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for g in wanted {
        let g = acc
            .group(g)
            .ok_or_else(|| format!("Group {g} does not exist"))?;
        if !out.contains(&g.name) {
            out.push(g.name.clone());
        }
    }
    Ok(out)
}

/// `useradd`'s command line for a user that does not exist.
fn useradd(o: &Opts, acc: &Accounts) -> Result<Vec<String>, String> {
    let mut cmd = vec!["useradd".to_string()];
    if let Some(uid) = o.uid {
        cmd.extend(["-u".into(), uid.to_string()]);
    }
    if o.uid.is_some() && o.non_unique {
        cmd.push("-o".into());
    }
    if let Some(se) = &o.seuser {
        cmd.extend(["-Z".into(), se.clone()]);
    }
    match &o.group {
        Some(g) => {
            if acc.group(g).is_none() {
                return Err(format!("Group {g} does not exist"));
            }
            cmd.extend(["-g".into(), g.clone()]);
        }
        // A group named as the user exists: -N, or useradd would try to create it.
        None if acc.group(&o.name).is_some() => cmd.push("-N".into()),
        None => {}
    }
    if let Some(groups) = &o.groups
        && !groups.is_empty()
    {
        for g in groups {
            if acc.group(g).is_none() {
                return Err(format!("Group {g} does not exist"));
            }
        }
        let mut seen: Vec<&String> = Vec::new();
        for g in groups {
            if !seen.contains(&g) {
                seen.push(g);
            }
        }
        let joined: Vec<&str> = seen.iter().map(|s| s.as_str()).collect();
        cmd.extend(["-G".into(), joined.join(",")]);
    }
    if let Some(c) = &o.comment {
        cmd.extend(["-c".into(), c.clone()]);
    }
    if let Some(h) = &o.home {
        cmd.extend(["-d".into(), h.clone()]);
    }
    if let Some(s) = &o.shell {
        cmd.extend(["-s".into(), s.clone()]);
    }
    if let Some(e) = o.expires {
        let v = if e < 0.0 {
            String::new()
        } else {
            expiry_date(e)
        };
        cmd.extend(["-e".into(), v]);
    }
    if let Some(f) = o.account_disable {
        cmd.extend(["-f".into(), f.to_string()]);
    }
    if let Some(p) = &o.password {
        let p = if o.password_lock == Some(true) {
            format!("!{p}")
        } else {
            p.clone()
        };
        cmd.extend(["-p".into(), p]);
    }
    if o.create_home {
        cmd.push("-m".into());
        if let Some(k) = &o.skeleton {
            cmd.extend(["-k".into(), k.clone()]);
        }
        if let Some(u) = &o.umask {
            cmd.extend(["-K".into(), format!("UMASK={u}")]);
        }
    } else {
        cmd.push("-M".into());
    }
    if o.system {
        cmd.push("-r".into());
    }
    if let Some(n) = o.uid_min {
        cmd.extend(["-K".into(), format!("UID_MIN={n}")]);
    }
    if let Some(n) = o.uid_max {
        cmd.extend(["-K".into(), format!("UID_MAX={n}")]);
    }
    cmd.push(o.name.clone());
    Ok(cmd)
}

/// The current password hash: passwd's field unless it is a placeholder (`x`), then shadow's.
fn current_hash(pw: &Passwd, acc: &Accounts) -> String {
    if pw.passwd.len() > 1 {
        pw.passwd.clone()
    } else {
        acc.shadow
            .as_ref()
            .map(|s| s.hash.clone())
            .unwrap_or_default()
    }
}

/// `usermod`'s command line for an existing user, or `None` when nothing differs.
fn usermod(o: &Opts, pw: &Passwd, acc: &Accounts) -> Result<Option<Vec<String>>, String> {
    let mut opts: Vec<String> = Vec::new();
    if let Some(uid) = o.uid
        && i64::from(pw.uid) != uid
    {
        opts.extend(["-u".into(), uid.to_string()]);
        if o.non_unique {
            opts.push("-o".into());
        }
    }
    if let Some(g) = &o.group {
        let g = acc
            .group(g)
            .ok_or_else(|| format!("Group {g} does not exist"))?;
        if pw.gid != g.gid {
            opts.extend(["-g".into(), g.gid.to_string()]);
        }
    }
    if let Some(groups) = &o.groups {
        let current = acc.membership(&o.name);
        if groups.is_empty() {
            if !current.is_empty() && !o.append {
                opts.extend(["-G".into(), String::new()]);
            }
        } else {
            let wanted = resolve_groups(acc, groups)?;
            let missing = wanted.iter().any(|g| !current.contains(g));
            let extra = current.iter().any(|g| !wanted.contains(g));
            if o.append && missing {
                opts.push("-a".into());
                opts.extend(["-G".into(), wanted.join(",")]);
            } else if !o.append && (missing || extra) {
                opts.extend(["-G".into(), wanted.join(",")]);
            }
        }
    }
    if let Some(c) = &o.comment
        && &pw.gecos != c
    {
        opts.extend(["-c".into(), c.clone()]);
    }
    if let Some(h) = &o.home
        && &pw.home != h
    {
        if o.move_home {
            opts.push("-m".into());
        }
        opts.extend(["-d".into(), h.clone()]);
    }
    if let Some(s) = &o.shell
        && &pw.shell != s
    {
        opts.extend(["-s".into(), s.clone()]);
    }
    if let Some(e) = o.expires {
        // An empty shadow field is "never", which getspnam reports as -1.
        let current = acc.shadow.as_ref().and_then(|s| s.expire).unwrap_or(-1);
        if e < 0.0 {
            if current >= 0 {
                opts.extend(["-e".into(), String::new()]);
            }
        } else if current < 0 || expiry_date((current * 86400) as f64) != expiry_date(e) {
            opts.extend(["-e".into(), expiry_date(e)]);
        }
    }
    if let Some(f) = o.account_disable {
        opts.extend(["-f".into(), f.to_string()]);
    }
    let hash = current_hash(pw, acc);
    match o.password_lock {
        Some(true) if !hash.starts_with('!') => opts.push("-L".into()),
        Some(false) if hash.starts_with('!') => opts.push("-U".into()),
        _ => {}
    }
    if let Some(p) = &o.password
        && o.update_always
        && hash.trim_start_matches('!') != p.trim_start_matches('!')
    {
        opts.retain(|x| x != "-L" && x != "-U");
        let p = if o.password_lock == Some(true) {
            format!("!{p}")
        } else {
            p.clone()
        };
        opts.extend(["-p".into(), p]);
    }
    if opts.is_empty() {
        return Ok(None);
    }
    let mut cmd = vec!["usermod".to_string()];
    cmd.extend(opts);
    cmd.push(o.name.clone());
    Ok(Some(cmd))
}

/// `chage`'s options for the ageing fields that differ from shadow's.
fn chage(o: &Opts, acc: &Accounts) -> Option<Vec<String>> {
    let sh = acc.shadow.as_ref()?;
    let mut cmd = vec!["chage".to_string()];
    for (flag, want, have) in [
        ("-m", o.expire_min, sh.min),
        ("-M", o.expire_max, sh.max),
        ("-W", o.expire_warn, sh.warn),
    ] {
        if let Some(w) = want
            && Some(w) != have
        {
            cmd.extend([flag.to_string(), w.to_string()]);
        }
    }
    (cmd.len() > 1).then(|| {
        cmd.push(o.name.clone());
        cmd
    })
}

/// Runs a command line; on failure replaces `r` with Ansible's failure result.
async fn exec(
    ctx: &ModuleCtx<'_>,
    name: &str,
    cmd: &[String],
    r: &mut ModuleResult,
) -> Result<bool, ModuleError> {
    let out = accounts::run_tool(ctx, cmd).await?;
    if out.rc != 0 {
        *r = ModuleResult::failed(out.stderr_str().trim_end().to_string())
            .with("name", name)
            .with("rc", out.rc);
        return Ok(false);
    }
    accounts::add_output(r, &out);
    Ok(true)
}

/// Creates a missing home directory as Ansible does: a copy of the skeleton (else an empty
/// directory), its mode from the umask, owned by the user throughout.
fn create_home_script(o: &Opts, home: &str, pw: &Passwd, login_umask: u32) -> String {
    let umask = o
        .umask
        .as_deref()
        .and_then(|u| u32::from_str_radix(u, 8).ok())
        .unwrap_or(login_umask);
    let skel = o.skeleton.as_deref().unwrap_or("/etc/skel");
    let (h, k) = (sh_quote(home), sh_quote(skel));
    format!(
        "set -e; if [ -d {k} ]; then mkdir -p \"$(dirname {h})\"; cp -a {k} {h}; \
         else mkdir -p {h}; fi; chmod {mode:o} {h}; chown -R {uid}:{gid} {h}",
        mode = 0o777 & !umask,
        uid = pw.uid,
        gid = pw.gid
    )
}

/// `generate_ssh_key`: a key pair in the user's home unless one is there; its fingerprint
/// and public half go into the result.
async fn ssh_key(
    ctx: &ModuleCtx<'_>,
    key: &SshKey,
    pw: &Passwd,
    r: &mut ModuleResult,
) -> Result<(), ModuleError> {
    let rel = key
        .file
        .clone()
        .unwrap_or_else(|| format!(".ssh/id_{}", key.kind));
    let file = if rel.starts_with('/') {
        rel
    } else {
        format!("{}/{rel}", pw.home.trim_end_matches('/'))
    };
    let f = sh_quote(&file);
    let probe = remote::run(
        ctx,
        format!("[ -e {f} ] && echo private; [ -e {f}.pub ] && echo public; true"),
    )
    .await?;
    let exists = !probe.stdout_str().trim().is_empty();
    if !exists {
        r.changed = true;
        if !ctx.check_mode {
            let comment = key
                .comment
                .clone()
                .unwrap_or_else(|| "ansible-generated on $(hostname)".to_string());
            let comment = if key.comment.is_some() {
                sh_quote(&comment)
            } else {
                format!("\"{comment}\"")
            };
            let bits = if key.bits > 0 {
                format!("-b {} ", key.bits)
            } else {
                String::new()
            };
            let pass = sh_quote(key.passphrase.as_deref().unwrap_or(""));
            let script = format!(
                "set -e; d=$(dirname {f}); if [ ! -d \"$d\" ]; then mkdir -m 700 \"$d\"; \
                 chown {u}:{g} \"$d\"; fi; ssh-keygen -q -t {t} {bits}-C {comment} -f {f} -N {pass}; \
                 chown {u}:{g} {f} {f}.pub",
                t = sh_quote(&key.kind),
                u = pw.uid,
                g = pw.gid
            );
            let out = remote::run(ctx, script).await?;
            if out.rc != 0 {
                *r = ModuleResult::failed(format!(
                    "Failed to generate ssh key: {}",
                    out.stderr_str().trim()
                ))
                .with("name", pw.name.as_str());
                return Ok(());
            }
        }
    }
    let info = remote::run(
        ctx,
        format!("ssh-keygen -l -f {f} 2>&1; echo '--'; cat {f}.pub 2>/dev/null"),
    )
    .await?;
    let text = info.stdout_str();
    let (fp, public) = text.split_once("--\n").unwrap_or((&text, ""));
    let fp = if fp.contains("No such file") {
        ""
    } else {
        fp.trim()
    };
    r.data.insert("ssh_fingerprint".into(), json!(fp));
    r.data.insert("ssh_key_file".into(), json!(file));
    let public = public.trim();
    r.data.insert(
        "ssh_public_key".into(),
        if public.is_empty() {
            Value::Null
        } else {
            json!(public)
        },
    );
    Ok(())
}

#[async_trait]
impl Module for User {
    fn name(&self) -> &'static str {
        "user"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["name", "user"]],
            choices: &[
                ("state", &["present", "absent"]),
                ("update_password", &["always", "on_create"]),
            ],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("user", args, KNOWN)?;
        let o = Opts::parse(&a)?;
        let acc = accounts::read(ctx, Some(&o.name), o.home.as_deref()).await?;
        let state = if o.present { "present" } else { "absent" };
        let mut r = ModuleResult::ok()
            .with("name", o.name.as_str())
            .with("state", state);

        if !o.present {
            if acc.user.is_none() {
                return Ok(r);
            }
            if ctx.check_mode {
                return Ok(ModuleResult::changed());
            }
            let mut cmd = vec!["userdel".to_string()];
            if o.force {
                cmd.push("-f".into());
            }
            if o.remove {
                cmd.push("-r".into());
            }
            cmd.push(o.name.clone());
            if exec(ctx, &o.name, &cmd, &mut r).await? {
                r.changed = true;
                r.data.insert("force".into(), json!(o.force));
                r.data.insert("remove".into(), json!(o.remove));
            }
            return Ok(r);
        }

        // Present: create or modify.
        let cmd = match &acc.user {
            None => {
                if ctx.check_mode {
                    return Ok(ModuleResult::changed());
                }
                r.data.insert("system".into(), json!(o.system));
                r.data.insert("create_home".into(), json!(o.create_home));
                Some(useradd(&o, &acc).map_err(ModuleError::Failed)?)
            }
            Some(pw) => {
                r.data.insert("append".into(), json!(o.append));
                r.data.insert("move_home".into(), json!(o.move_home));
                usermod(&o, pw, &acc).map_err(ModuleError::Failed)?
            }
        };
        if let Some(cmd) = &cmd {
            r.changed = true;
            if !ctx.check_mode && !exec(ctx, &o.name, cmd, &mut r).await? {
                return Ok(r);
            }
        }
        if o.password.is_some() {
            r.data
                .insert("password".into(), json!("NOT_LOGGING_PASSWORD"));
        }
        // What the account is now (re-read after a change, so the result tells the truth).
        let acc = if cmd.is_some() && !ctx.check_mode {
            accounts::read(ctx, Some(&o.name), o.home.as_deref()).await?
        } else {
            acc
        };
        let Some(pw) = acc.user.clone() else {
            return Ok(r);
        };
        r.data.insert("uid".into(), json!(pw.uid));
        r.data.insert("group".into(), json!(pw.gid));
        r.data.insert("comment".into(), json!(pw.gecos));
        r.data.insert("home".into(), json!(pw.home));
        r.data.insert("shell".into(), json!(pw.shell));
        if let Some(g) = &o.groups {
            r.data.insert("groups".into(), json!(g.join(",")));
        }
        if !acc.home_exists && o.create_home {
            r.changed = true;
            if !ctx.check_mode {
                let home = o.home.clone().unwrap_or_else(|| pw.home.clone());
                let out =
                    remote::run(ctx, create_home_script(&o, &home, &pw, acc.login_umask)).await?;
                if out.rc != 0 {
                    return Ok(ModuleResult::failed(format!(
                        "failed to create the home directory {home}: {}",
                        out.stderr_str().trim()
                    ))
                    .with("name", o.name.as_str()));
                }
            }
        }
        if let Some(key) = &o.ssh {
            ssh_key(ctx, key, &pw, &mut r).await?;
            if r.failed {
                return Ok(r);
            }
        }
        if let Some(cmd) = chage(&o, &acc) {
            r.changed = true;
            if !ctx.check_mode {
                let mut scratch = ModuleResult::ok();
                if !exec(ctx, &o.name, &cmd, &mut scratch).await? {
                    return Ok(scratch);
                }
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::accounts::{parse_group, parse_passwd, parse_shadow};

    fn opts(extra: Value) -> Opts {
        let mut m = json!({"name": "spark"});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let map = m.as_object().unwrap().clone();
        let a = Args::new("user", &map, KNOWN).unwrap();
        Opts::parse(&a).unwrap()
    }

    fn accounts() -> Accounts {
        Accounts {
            user: parse_passwd("spark:x:1001:1001::/home/spark:/bin/sh"),
            shadow: parse_shadow("spark:!:20000:0:99999:7:::"),
            groups: [
                "spark:x:1001:",
                "hadoop:x:1002:spark",
                "users:x:100:",
                "sudo:x:27:",
            ]
            .iter()
            .filter_map(|l| parse_group(l))
            .collect(),
            login_umask: 0o022,
            home_exists: true,
        }
    }

    #[test]
    fn useradd_gets_ansibles_options_in_ansibles_order() {
        let mut acc = accounts();
        acc.user = None;
        let o = opts(
            json!({"uid": 1500, "groups": ["hadoop", "users"], "shell": "/bin/bash", "system": true}),
        );
        assert_eq!(
            useradd(&o, &acc).unwrap().join(" "),
            "useradd -u 1500 -N -G hadoop,users -s /bin/bash -m -r spark"
        );
        let o = opts(json!({"group": "nope"}));
        assert_eq!(useradd(&o, &acc).unwrap_err(), "Group nope does not exist");
        let o = opts(json!({"create_home": false, "expires": 86400 * 365}));
        assert_eq!(
            useradd(&o, &acc).unwrap().join(" "),
            "useradd -N -e 1971-01-01 -M spark"
        );
    }

    #[test]
    fn usermod_changes_only_what_differs() {
        let acc = accounts();
        let pw = acc.user.clone().unwrap();
        assert_eq!(
            usermod(&opts(json!({"uid": 1001})), &pw, &acc).unwrap(),
            None
        );
        // Already in hadoop: appending it changes nothing; adding users does.
        let o = opts(json!({"groups": "hadoop", "append": true}));
        assert_eq!(usermod(&o, &pw, &acc).unwrap(), None);
        let o = opts(json!({"groups": ["users"], "append": true}));
        assert_eq!(
            usermod(&o, &pw, &acc).unwrap().unwrap().join(" "),
            "usermod -a -G users spark"
        );
        // Without append, the set must be exactly the one given.
        let o = opts(json!({"groups": ["users"]}));
        assert_eq!(
            usermod(&o, &pw, &acc).unwrap().unwrap().join(" "),
            "usermod -G users spark"
        );
        let o = opts(json!({"groups": ""}));
        assert_eq!(
            usermod(&o, &pw, &acc).unwrap().unwrap(),
            ["usermod", "-G", "", "spark"]
        );
        // The primary group is compared by gid; a password replaces the lock flag.
        let o = opts(json!({"group": "hadoop", "shell": "/bin/sh"}));
        assert_eq!(
            usermod(&o, &pw, &acc).unwrap().unwrap().join(" "),
            "usermod -g 1002 spark"
        );
        let o = opts(json!({"password_lock": true}));
        assert_eq!(usermod(&o, &pw, &acc).unwrap(), None);
        let o = opts(json!({"password_lock": false, "password": "$6$x"}));
        assert_eq!(
            usermod(&o, &pw, &acc).unwrap().unwrap().join(" "),
            "usermod -p $6$x spark"
        );
    }

    #[test]
    fn chage_runs_for_the_ageing_fields_that_differ() {
        let acc = accounts();
        let o = opts(json!({"password_expire_max": 99999, "password_expire_min": 1}));
        assert_eq!(chage(&o, &acc).unwrap().join(" "), "chage -m 1 spark");
        let o = opts(json!({"password_expire_warn": 7}));
        assert_eq!(chage(&o, &acc), None);
    }
}
