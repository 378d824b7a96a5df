//! Host key checking against OpenSSH `known_hosts` files.
//!
//! russh ships `known_hosts` helpers, but they miscount line numbers after comment lines,
//! stop at the first malformed line and ignore wildcard patterns; a "host key changed"
//! message that points at the wrong line sends users to delete the wrong entry. So the
//! lookup here reads each file itself (russh still parses the keys), reports the exact
//! `file:line`, and learns new keys in OpenSSH's own `[host]:port` format.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use russh::keys::{HashAlg, PublicKey};
use sha1::{Digest, Sha1};

use crate::connection::{HostKeyPolicy, Unreachable};

/// The name a host's keys are recorded under: `host` on port 22, `[host]:port` otherwise.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// One recorded key that applies to the host being checked.
struct Entry {
    file: PathBuf,
    line: usize,
    key: PublicKey,
}

/// The outcome of looking a key up.
enum Lookup {
    Known,
    Changed(Entry),
    Unknown,
}

/// A refusal, already worded for the user.
pub struct Refusal {
    pub reason: Unreachable,
    pub detail: String,
}

/// Serialises appends so that many hosts learning keys at once do not interleave lines.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// The files consulted, in order: `~/.ssh/known_hosts` first, then the spec's own.
pub fn files_to_check(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dirs::home_dir()
        .map(|h| h.join(".ssh").join("known_hosts"))
        .into_iter()
        .collect();
    for f in extra {
        if !files.contains(f) {
            files.push(f.clone());
        }
    }
    files
}

/// Checks `key` for `host:port` under `policy`; learns it under `AcceptNew`.
pub fn verify(
    host: &str,
    port: u16,
    key: &PublicKey,
    policy: HostKeyPolicy,
    extra_files: &[PathBuf],
) -> Result<(), Refusal> {
    if policy == HostKeyPolicy::Off {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "host key checking is off: connections are not protected against man-in-the-middle attacks"
            )
        });
        return Ok(());
    }
    let pattern = host_pattern(host, port);
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    let files = files_to_check(extra_files);
    match lookup(&pattern, key, &files) {
        Lookup::Known => Ok(()),
        Lookup::Changed(e) => Err(Refusal {
            reason: Unreachable::HostKeyMismatch {
                known_hosts: e.file.clone(),
                line: e.line,
            },
            detail: format!(
                "host key for {pattern} has CHANGED: the server offers {} {fingerprint}, but {}:{} \
                 records {}. Someone may be intercepting the connection, or the host was \
                 reinstalled; if you are sure it was reinstalled, remove that line \
                 (ssh-keygen -R '{pattern}' -f {})",
                key.algorithm(),
                e.file.display(),
                e.line,
                e.key.fingerprint(HashAlg::Sha256),
                e.file.display()
            ),
        }),
        Lookup::Unknown if policy == HostKeyPolicy::Strict => Err(Refusal {
            reason: Unreachable::HostKeyUnknown,
            detail: format!(
                "host key for {pattern} ({} {fingerprint}) is unknown and strict host key \
                 checking is on; add it to one of: {}",
                key.algorithm(),
                display_list(&files)
            ),
        }),
        Lookup::Unknown => learn(&pattern, key, extra_files).map_err(|detail| Refusal {
            reason: Unreachable::Other,
            detail,
        }),
    }
}

fn display_list(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Looks `key` up in every file. A match anywhere wins; otherwise a recorded key of the same
/// algorithm means the key changed (a different algorithm is a new key, as in OpenSSH).
fn lookup(pattern: &str, key: &PublicKey, files: &[PathBuf]) -> Lookup {
    let mut changed = None;
    for file in files {
        for entry in entries_for(pattern, file) {
            if entry.key.key_data() == key.key_data() {
                return Lookup::Known;
            }
            if changed.is_none() && entry.key.algorithm() == key.algorithm() {
                changed = Some(entry);
            }
        }
    }
    changed.map_or(Lookup::Unknown, Lookup::Changed)
}

/// Every key in `file` recorded for `pattern`. Missing files and malformed lines are skipped,
/// as OpenSSH does; `@cert-authority` lines do not apply to plain host keys.
fn entries_for(pattern: &str, file: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut hosts = fields.next().unwrap_or_default();
        if hosts.starts_with('@') {
            if hosts != "@revoked" {
                continue;
            }
            hosts = fields.next().unwrap_or_default();
        }
        let (Some(_algo), Some(b64)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(pattern, hosts) {
            continue;
        }
        if let Ok(key) = russh::keys::parse_public_key_base64(b64) {
            out.push(Entry {
                file: file.to_path_buf(),
                line: idx + 1,
                key,
            });
        }
    }
    out
}

/// OpenSSH host list matching: comma-separated patterns with `*`/`?` wildcards, `!` negation
/// and hashed `|1|salt|hash` entries.
fn hosts_match(host: &str, list: &str) -> bool {
    let mut matched = false;
    for pat in list.split(',') {
        if let Some(hashed) = pat.strip_prefix("|1|") {
            if hashed_match(host, hashed) {
                matched = true;
            }
        } else if let Some(neg) = pat.strip_prefix('!') {
            if glob_match(neg, host) {
                return false;
            }
        } else if glob_match(pat, host) {
            matched = true;
        }
    }
    matched
}

fn hashed_match(host: &str, salt_and_hash: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = salt_and_hash.split('|');
    let (Some(Ok(salt)), Some(Ok(hash))) = (
        parts.next().map(|s| b64.decode(s)),
        parts.next().map(|s| b64.decode(s)),
    ) else {
        return false;
    };
    hmac_sha1(&salt, host.as_bytes()).as_slice() == hash.as_slice()
}

/// HMAC-SHA1 (RFC 2104), the hash OpenSSH uses for `HashKnownHosts`.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha1::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha1::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn glob_match(pat: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some((b'?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => {
                s.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(rest, &s[1..])
            }
        }
    }
    go(pat.as_bytes(), s.as_bytes())
}

/// Records a new key in the first writable file among `extra_files`, else
/// `~/.ssh/known_hosts`, as one appended line.
fn learn(pattern: &str, key: &PublicKey, extra_files: &[PathBuf]) -> Result<(), String> {
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("cannot encode the host key of {pattern}: {e}"))?;
    let _guard = LEARN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let home = dirs::home_dir().map(|h| h.join(".ssh").join("known_hosts"));
    let mut tried = Vec::new();
    for file in extra_files.iter().chain(home.iter()) {
        match append_line(file, &format!("{pattern} {openssh}")) {
            Ok(()) => {
                tracing::info!("learned host key for {pattern} into {}", file.display());
                return Ok(());
            }
            Err(e) => tried.push(format!("{}: {e}", file.display())),
        }
    }
    Err(format!(
        "cannot record the new host key of {pattern}: no writable known_hosts file ({})",
        tried.join("; ")
    ))
}

fn append_line(file: &Path, line: &str) -> std::io::Result<()> {
    if let Some(parent) = file.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(file)?;
    let mut text = String::new();
    if f.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(line);
    text.push('\n');
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn patterns() {
        assert_eq!(host_pattern("h", 22), "h");
        assert_eq!(host_pattern("h", 2222), "[h]:2222");
        assert!(hosts_match("[10.0.0.1]:2222", "a,[10.0.0.1]:2222"));
        assert!(hosts_match("web3", "web*"));
        assert!(!hosts_match("web3", "web*,!web3"));
        assert!(!hosts_match("db", "web?"));
        // Hashed entry for "pijul.org" made by `ssh-keygen -H`.
        let hashed = "mCRzzzZ9gBxzRnkkpRgOS+/XtvY=|gHzZPMlHsV84/uCawW9IOeYVqmE=";
        assert!(hashed_match("pijul.org", hashed));
        assert!(!hashed_match("pijul.com", hashed));
    }

    #[test]
    fn reports_the_right_line_after_comments_and_learns_new_keys() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("kh");
        std::fs::write(
            &kh,
            format!("# comment\n\nbroken line\n[h]:2222 ssh-ed25519 {KEY_A}\n"),
        )
        .unwrap();
        let files = vec![kh.clone()];
        let strict = HostKeyPolicy::Strict;
        assert!(verify("h", 2222, &key(KEY_A), strict, &files).is_ok());
        let err = verify("h", 2222, &key(KEY_B), strict, &files)
            .err()
            .unwrap();
        assert_eq!(
            err.reason,
            Unreachable::HostKeyMismatch {
                known_hosts: kh.clone(),
                line: 4
            }
        );
        assert!(err.detail.contains(&format!("{}:4", kh.display())));
        let err = verify("other", 2222, &key(KEY_B), strict, &files)
            .err()
            .unwrap();
        assert_eq!(err.reason, Unreachable::HostKeyUnknown);
        verify("other", 2222, &key(KEY_B), HostKeyPolicy::AcceptNew, &files)
            .ok()
            .unwrap();
        assert!(
            std::fs::read_to_string(&kh)
                .unwrap()
                .contains("[other]:2222 ssh-ed25519")
        );
        assert!(verify("other", 2222, &key(KEY_B), strict, &files).is_ok());
    }
}
