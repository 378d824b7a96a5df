//! What `user` and `group` read of the host's account databases, in one round trip.
//!
//! Both modules decide from the same facts Ansible's Python reads through `pwd`, `spwd`
//! and `grp`: the user's passwd and shadow entries and every group with its members.
//! `getent` answers from the same NSS sources those functions use, so an account from
//! LDAP is seen as it is seen by Ansible.

use serde_json::json;

use crate::connection::{ExecOutput, sh_quote};
use crate::modules::{ModuleCtx, ModuleError, ModuleResult, remote};

/// A passwd entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Passwd {
    pub name: String,
    pub passwd: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// The shadow fields `user` compares (`None` when the field is empty).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shadow {
    pub hash: String,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub warn: Option<i64>,
    pub expire: Option<i64>,
}

/// A group entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The account databases as one module run sees them.
#[derive(Debug, Default)]
pub struct Accounts {
    pub user: Option<Passwd>,
    pub shadow: Option<Shadow>,
    pub groups: Vec<Group>,
    /// `UMASK` of `/etc/login.defs` (what a created home directory's mode derives from).
    pub login_umask: u32,
    /// Whether the home directory asked about exists.
    pub home_exists: bool,
}

const SEP: &str = "--spark-openstack-accounts--";

/// Reads `user`'s entries (when given), every group, and whether `home` (else the user's
/// own home) exists.
pub async fn read(
    ctx: &ModuleCtx<'_>,
    user: Option<&str>,
    home: Option<&str>,
) -> Result<Accounts, ModuleError> {
    let q = user.map(sh_quote).unwrap_or_else(|| "''".into());
    let home_test = match home {
        Some(h) => format!("h={}", sh_quote(h)),
        None => format!("h=$(getent passwd {q} | cut -d: -f6)"),
    };
    let script = format!(
        "[ -n {q} ] && getent passwd {q}; echo {SEP}; [ -n {q} ] && getent shadow {q}; \
         echo {SEP}; getent group; echo {SEP}; \
         sed -n 's/^UMASK[[:space:]]\\{{1,\\}}\\([0-7]\\{{1,\\}}\\)[[:space:]]*$/\\1/p' /etc/login.defs 2>/dev/null; \
         echo {SEP}; {home_test}; [ -n \"$h\" ] && [ -e \"$h\" ] && echo yes; true"
    );
    let out = remote::run(ctx, script).await?;
    let text = out.stdout_str();
    let parts: Vec<&str> = text.split(&format!("{SEP}\n")).collect();
    if parts.len() < 5 {
        return Err(ModuleError::Failed(format!(
            "could not read the account databases: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(Accounts {
        user: parts[0].lines().find_map(parse_passwd),
        shadow: parts[1].lines().find_map(parse_shadow),
        groups: parts[2].lines().filter_map(parse_group).collect(),
        login_umask: parts[3]
            .lines()
            .next()
            .and_then(|u| u32::from_str_radix(u, 8).ok())
            .unwrap_or(0o022),
        home_exists: parts[4].trim() == "yes",
    })
}

/// Runs one of the shadow tools (`useradd`, `groupmod`, ...) given as its argument list.
pub async fn run_tool(ctx: &ModuleCtx<'_>, cmd: &[String]) -> Result<ExecOutput, ModuleError> {
    remote::run(ctx, remote::argv_line(cmd)).await
}

/// Puts a tool's output into the result as Ansible's account modules do: each stream only
/// when it is not empty.
pub fn add_output(r: &mut ModuleResult, out: &ExecOutput) {
    for (key, text) in [("stdout", out.stdout_str()), ("stderr", out.stderr_str())] {
        if !text.is_empty() {
            r.data.insert(key.into(), json!(text));
        }
    }
}

pub fn parse_passwd(line: &str) -> Option<Passwd> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    Some(Passwd {
        name: f[0].into(),
        passwd: f[1].into(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        gecos: f[4].into(),
        home: f[5].into(),
        shell: f[6].into(),
    })
}

pub fn parse_shadow(line: &str) -> Option<Shadow> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 8 {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    Some(Shadow {
        hash: f[1].into(),
        min: num(f[3]),
        max: num(f[4]),
        warn: num(f[5]),
        expire: num(f[7]),
    })
}

pub fn parse_group(line: &str) -> Option<Group> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 4 {
        return None;
    }
    Some(Group {
        name: f[0].into(),
        gid: f[2].parse().ok()?,
        members: f[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

impl Accounts {
    /// A group by gid when `g` is a number, else by name: the order of Ansible's lookup.
    pub fn group(&self, g: &str) -> Option<&Group> {
        if let Ok(gid) = g.parse::<u32>()
            && let Some(found) = self.groups.iter().find(|x| x.gid == gid)
        {
            return Some(found);
        }
        self.groups.iter().find(|x| x.name == g)
    }

    /// The groups that list `user` as a member (a primary group only when listed).
    pub fn membership(&self, user: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user))
            .map(|g| g.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_getent_prints_them() {
        let p = parse_passwd("spark:x:1001:1001:Spark,,,:/home/spark:/bin/bash").unwrap();
        assert_eq!((p.uid, p.gid, p.home.as_str()), (1001, 1001, "/home/spark"));
        let s = parse_shadow("spark:!:20000:0:99999:7:::").unwrap();
        assert_eq!(
            (s.min, s.max, s.warn, s.expire),
            (Some(0), Some(99999), Some(7), None)
        );
        let g = parse_group("hadoop:x:1002:spark,hdfs").unwrap();
        assert_eq!(g.members, ["spark", "hdfs"]);
        assert!(parse_group("users:x:100:").unwrap().members.is_empty());
        assert_eq!(parse_passwd("broken"), None);
    }

    #[test]
    fn groups_are_found_by_gid_first_then_by_name() {
        let a = Accounts {
            groups: vec![
                parse_group("100:x:5000:").unwrap(),
                parse_group("users:x:100:spark").unwrap(),
            ],
            ..Default::default()
        };
        assert_eq!(a.group("100").unwrap().name, "users");
        assert_eq!(a.group("users").unwrap().gid, 100);
        assert!(a.group("nope").is_none());
        assert_eq!(a.membership("spark"), ["users"]);
    }
}
