//! What a run leaves behind: every path under each host's root and under the controller
//! scratch directory, with its kind, permission bits and content.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Path (`host1/etc/x`, `controller/out`) → description (`file 0644 <content>`).
pub type Snapshot = BTreeMap<String, String>;

/// Backup files carry the writer's pid and a timestamp in their names, Ansible's pattern
/// being `f.<pid>.2026-01-01@10:00:00~`; the comparison replaces those two parts (and
/// numbers several backups of one file, in name order, so their count still counts).
fn normalize(rel: &str, snap: &Snapshot, label: &str) -> String {
    let re = regex::Regex::new(r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$").expect("valid regex");
    if !re.is_match(rel) {
        return rel.to_string();
    }
    let base = re.replace(rel, ".<pid>.<time>~").into_owned();
    let n = (1..)
        .find(|n| !snap.contains_key(&format!("{label}/{base}#{n}")))
        .unwrap_or(1);
    format!("{base}#{n}")
}

/// Adds everything under `root` to `snap`, keyed `label/relative`, skipping `ignore`d paths.
pub fn add(snap: &mut Snapshot, label: &str, root: &Path, ignore: &globset::GlobSet) {
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = format!("{label}/{}", normalize(&rel.to_string_lossy(), snap, label));
        if ignore.is_match(&rel) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            format!("link -> {}", target.display())
        } else if meta.is_dir() {
            format!("dir {mode:04o}")
        } else {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let text = match String::from_utf8(bytes) {
                Ok(s) if s.len() <= 4096 => format!("{s:?}"),
                Ok(s) => format!("{} bytes sha256 {}", s.len(), sha(s.as_bytes())),
                Err(e) => format!(
                    "{} binary bytes sha256 {}",
                    e.as_bytes().len(),
                    sha(e.as_bytes())
                ),
            };
            format!("file {mode:04o} {text}")
        };
        snap.insert(rel, what);
    }
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Removes everything inside `root` (not `root` itself: it is a host's bind-mounted /root).
pub fn clear(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let _ = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// Human-readable differences between two snapshots (`a` = Ansible, `b` = ours).
pub fn diff(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => out.push(format!("{k}: only ansible left it ({})", short(va))),
            Some(vb) if vb != va => {
                let (sa, sb) = around_difference(va, vb);
                out.push(format!("{k}: ansible {sa} / spark {sb}"))
            }
            _ => {}
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            out.push(format!("{k}: only spark left it ({})", short(vb)));
        }
    }
    out
}

/// Both descriptions from a little before their first difference, so long files show
/// what differs.
fn around_difference(a: &str, b: &str) -> (String, String) {
    let common = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    if common < 60 {
        return (short(a), short(b));
    }
    let start = (0..=common - 40)
        .rev()
        .find(|i| a.is_char_boundary(*i) && b.is_char_boundary(*i))
        .unwrap_or(0);
    (
        format!("...{}", short(&a[start..])),
        format!("...{}", short(&b[start..])),
    )
}

fn short(s: &str) -> String {
    if s.len() > 160 {
        let cut = (0..=160)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s.to_string()
    }
}
