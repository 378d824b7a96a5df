//! `group`: a local group, with `groupadd`, `groupmod` and `groupdel`, deciding as
//! ansible-core's Linux `Group` class does: only the gid of an existing group is ever
//! compared (`system` applies at creation), and the result carries the actual gid.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::accounts;
use crate::modules::args::Args;
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct Group;

const KNOWN: &[&str] = &[
    "name",
    "state",
    "gid",
    "system",
    "local",
    "non_unique",
    "force",
    "gid_min",
    "gid_max",
];

#[async_trait]
impl Module for Group {
    fn name(&self) -> &'static str {
        "group"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["name"]],
            choices: &[("state", &["present", "absent"])],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("group", args, KNOWN)?;
        let name = a.str("name")?;
        let present = a.choice("state", &["present", "absent"], "present")? == "present";
        let gid = a.opt_int("gid")?;
        let system = a.bool_or("system", false)?;
        let non_unique = a.bool_or("non_unique", false)?;
        if non_unique && gid.is_none() {
            return Err(a.fail("non_unique is True but all of the following are missing: gid"));
        }
        if a.bool_or("local", false)? {
            return Err(a.err(
                "local",
                "needs lgroupadd, which Debian does not ship and this engine does not run; \
                 drop 'local: true'",
            ));
        }
        let acc = accounts::read(ctx, None, None).await?;
        let current = acc.groups.iter().find(|g| g.name == name);
        let mut r = ModuleResult::ok()
            .with("name", name.as_str())
            .with("state", if present { "present" } else { "absent" });

        let cmd: Option<Vec<String>> = match (present, current) {
            (false, None) => None,
            (false, Some(_)) => {
                let mut c = vec!["groupdel".to_string()];
                if a.bool_or("force", false)? {
                    c.push("-f".into());
                }
                c.push(name.clone());
                Some(c)
            }
            (true, None) => {
                let mut c = vec!["groupadd".to_string()];
                if let Some(g) = gid {
                    c.extend(["-g".into(), g.to_string()]);
                    if non_unique {
                        c.push("-o".into());
                    }
                }
                if system {
                    c.push("-r".into());
                }
                for (key, def) in [("gid_min", "GID_MIN"), ("gid_max", "GID_MAX")] {
                    if let Some(n) = a.opt_int(key)? {
                        c.extend(["-K".into(), format!("{def}={n}")]);
                    }
                }
                c.push(name.clone());
                Some(c)
            }
            (true, Some(g)) => match gid {
                Some(want) if i64::from(g.gid) != want => {
                    let mut c = vec!["groupmod".to_string(), "-g".into(), want.to_string()];
                    if non_unique {
                        c.push("-o".into());
                    }
                    c.push(name.clone());
                    Some(c)
                }
                _ => None,
            },
        };
        let Some(cmd) = cmd else {
            if let Some(g) = current {
                r.data.insert("system".into(), json!(system));
                r.data.insert("gid".into(), json!(g.gid));
            }
            return Ok(r);
        };
        // Check mode: a creation or removal says only that it would change, as Ansible's does.
        if ctx.check_mode {
            return Ok(if current.is_none() || !present {
                ModuleResult::changed()
            } else {
                let g = current.map(|g| g.gid).unwrap_or_default();
                let mut r = r.with("system", system).with("gid", g);
                r.changed = true;
                r
            });
        }
        let out = accounts::run_tool(ctx, &cmd).await?;
        if out.rc != 0 {
            return Ok(
                ModuleResult::failed(out.stderr_str().trim_end().to_string())
                    .with("name", name.as_str()),
            );
        }
        r.changed = true;
        accounts::add_output(&mut r, &out);
        if present {
            let now = accounts::read(ctx, None, None).await?;
            if let Some(g) = now.groups.iter().find(|g| g.name == name) {
                r.data.insert("system".into(), json!(system));
                r.data.insert("gid".into(), json!(g.gid));
            }
        }
        Ok(r)
    }
}
