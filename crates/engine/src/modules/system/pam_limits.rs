//! `pam_limits` (community.general): one `domain type item value` line of
//! `/etc/security/limits.conf`, written as the collection writes it (tab separated, an
//! optional `#comment`), with `use_max`/`use_min` to keep a larger or smaller limit that is
//! already there. Lines that are not the one managed stay byte for byte.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::modules::args::Args;
use crate::modules::files::{TextFile, read_text, text_diff};
use crate::modules::remote::{self, WriteOpts};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct PamLimits;

const KNOWN: &[&str] = &[
    "domain",
    "limit_type",
    "limit_item",
    "value",
    "use_max",
    "use_min",
    "backup",
    "create",
    "dest",
    "comment",
];

const TYPES: &[&str] = &["hard", "soft", "-"];
const ITEMS: &[&str] = &[
    "core",
    "data",
    "fsize",
    "memlock",
    "nofile",
    "rss",
    "stack",
    "cpu",
    "nproc",
    "as",
    "maxlogins",
    "maxsyslogins",
    "priority",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "chroot",
];

fn unlimited(v: &str) -> bool {
    matches!(v, "unlimited" | "infinity" | "-1")
}

/// Why `value` is not a valid limit for `item`, in the collection's words.
pub fn invalid(item: &str, value: &str) -> Option<String> {
    if matches!(item, "nice" | "priority") {
        let ok = value
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .is_ok_and(|n| (-20..=19).contains(&n));
        return (!ok).then(|| {
            format!(
                " Value of '{value}' for item '{item}' is invalid. Value must be a number in the \
                 range -20 to 19 inclusive. Refer to the limits.conf(5) manual pages for more details."
            )
        });
    }
    let ok = unlimited(value) || (!value.is_empty() && value.chars().all(|c| c.is_ascii_digit()));
    (!ok).then(|| {
        format!(
            " Value of '{value}' for item '{item}' is invalid. Value must either be 'unlimited', \
             'infinity' or -1, all of which indicate no limit, or a limit of 0 or larger. Refer \
             to the limits.conf(5) manual pages for more details."
        )
    })
}

/// The value to keep when `old` is already set and `new` is asked with `use_max`/`use_min`.
fn pick(old: &str, new: &str, use_max: bool, use_min: bool) -> String {
    let num = |v: &str| v.parse::<i64>().unwrap_or(0);
    if use_max {
        if unlimited(old) {
            old.into()
        } else if unlimited(new) {
            new.into()
        } else {
            num(old).max(num(new)).to_string()
        }
    } else if use_min {
        match (unlimited(old), unlimited(new)) {
            (true, true) => old.into(),
            (true, false) => new.into(),
            (false, true) => old.into(),
            (false, false) => num(old).min(num(new)).to_string(),
        }
    } else {
        new.into()
    }
}

pub struct Want<'a> {
    pub domain: &'a str,
    pub kind: &'a str,
    pub item: &'a str,
    pub value: &'a str,
    pub use_max: bool,
    pub use_min: bool,
    pub comment: &'a str,
}

/// The file with the limit set, and the managed line (Ansible's `msg`); `Err` names an
/// invalid limit already in the file.
pub fn apply(text: &str, dest: &str, w: &Want) -> Result<(String, String), String> {
    let mut out = String::new();
    let mut comment = w.comment.to_string();
    let mut line_msg = None;
    let format = |value: &str, comment: &str| {
        let c = if comment.is_empty() {
            String::new()
        } else {
            format!("\t#{comment}")
        };
        format!("{}\t{}\t{}\t{value}{c}\n", w.domain, w.kind, w.item)
    };
    for line in text.split_inclusive('\n') {
        if line.starts_with('#') {
            out.push_str(line);
            continue;
        }
        let squeezed = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if squeezed.is_empty() {
            out.push_str(line);
            continue;
        }
        let (body, tail) = match line.split_once('#') {
            Some((_, t)) => (squeezed.split('#').next().unwrap_or("").trim_end(), Some(t)),
            None => (squeezed.as_str(), None),
        };
        if comment.is_empty()
            && let Some(t) = tail
            && !t.is_empty()
        {
            comment = t.to_string();
        }
        let f: Vec<&str> = body.split(' ').collect();
        if f.len() != 4 {
            out.push_str(line);
            continue;
        }
        if let Some(why) = invalid(f[2], f[3]) {
            return Err(format!("Invalid configuration found in '{dest}'.{why}"));
        }
        if f[0] != w.domain || f[1] != w.kind || f[2] != w.item {
            out.push_str(line);
            continue;
        }
        let value = if f[3] == w.value {
            f[3].to_string()
        } else {
            pick(f[3], w.value, w.use_max, w.use_min)
        };
        if value != f[3] {
            let new = format(&value, &comment);
            out.push_str(&new);
            line_msg = Some(new);
        } else {
            out.push_str(line);
            line_msg = Some(line.to_string());
        }
    }
    let msg = match line_msg {
        Some(m) => m,
        None => {
            let new = format(w.value, &comment);
            out.push_str(&new);
            new
        }
    };
    Ok((out, msg))
}

#[async_trait]
impl Module for PamLimits {
    fn name(&self) -> &'static str {
        "pam_limits"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["domain"], &["limit_type"], &["limit_item"], &["value"]],
            choices: &[("limit_type", TYPES), ("limit_item", ITEMS)],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("pam_limits", args, KNOWN)?;
        let domain = a.str("domain")?;
        let kind = a.choice("limit_type", TYPES, "")?;
        if kind.is_empty() {
            return Err(a.err("limit_type", "is required"));
        }
        let item = a.choice("limit_item", ITEMS, "")?;
        if item.is_empty() {
            return Err(a.err("limit_item", "is required"));
        }
        let value = a.str("value")?;
        let use_max = a.bool_or("use_max", false)?;
        let use_min = a.bool_or("use_min", false)?;
        let dest = a.str_or("dest", "/etc/security/limits.conf")?;
        let comment = a.str_or("comment", "")?;
        if use_max && use_min {
            return Err(a.fail("Cannot use use_min and use_max at the same time."));
        }
        if let Some(why) = invalid(item, &value) {
            return Ok(ModuleResult::failed(why));
        }
        let file: TextFile = read_text(ctx, "pam_limits", &dest).await?;
        let want = Want {
            domain: &domain,
            kind,
            item,
            value: &value,
            use_max,
            use_min,
            comment: &comment,
        };
        let (after, msg) = match apply(&file.text, &dest, &want) {
            Ok(x) => x,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        let changed = file.stat.is_none() || after != file.text;
        let mut r = if changed {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        }
        .with_msg(msg);
        if ctx.diff {
            r.diff = text_diff(&dest, Some(file.text.as_bytes()), after.as_bytes());
        }
        if ctx.check_mode || !changed {
            return Ok(r);
        }
        let opts = WriteOpts {
            backup: a.bool_or("backup", false)? && file.stat.is_some(),
            ..Default::default()
        };
        if let Some(backup) = remote::write_file(ctx, &dest, after.as_bytes(), &opts).await? {
            r = r.with("backup_file", backup);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want<'a>(value: &'a str, comment: &'a str) -> Want<'a> {
        Want {
            domain: "spark",
            kind: "soft",
            item: "nofile",
            value,
            use_max: false,
            use_min: false,
            comment,
        }
    }

    #[test]
    fn lines_are_added_replaced_and_kept_as_the_collection_writes_them() {
        let (t, msg) = apply("# limits\n", "/x", &want("65536", "")).unwrap();
        assert_eq!(t, "# limits\nspark\tsoft\tnofile\t65536\n");
        assert_eq!(msg, "spark\tsoft\tnofile\t65536\n");
        let (t2, _) = apply(&t, "/x", &want("65536", "")).unwrap();
        assert_eq!(t2, t);
        let (t3, _) = apply("spark  soft nofile 1024\n", "/x", &want("4096", "big")).unwrap();
        assert_eq!(t3, "spark\tsoft\tnofile\t4096\t#big\n");
    }

    #[test]
    fn use_max_keeps_a_larger_limit_and_bad_values_are_named() {
        let mut w = want("1024", "");
        w.use_max = true;
        let (t, _) = apply("spark soft nofile 4096\n", "/x", &w).unwrap();
        assert_eq!(t, "spark soft nofile 4096\n");
        assert!(invalid("nofile", "lots").unwrap().contains("'lots'"));
        assert!(invalid("nice", "-20").is_none());
        assert!(invalid("nice", "25").is_some());
        assert!(
            apply("x soft nofile lots\n", "/x", &want("1", ""))
                .unwrap_err()
                .starts_with("Invalid configuration found in '/x'. Value of 'lots'")
        );
    }
}
