//! Public key authentication in OpenSSH's order: the configured identity files, then the
//! ssh-agent (`SSH_AUTH_SOCK`), then the default keys in `~/.ssh`.
//!
//! Explicitly configured keys that cannot be used (unreadable, readable by others,
//! encrypted without a passphrase) stop the connection with a [`ConnError::Setup`] naming
//! the file, because silently skipping them leads to baffling "authentication failed"
//! reports. Default keys with the same problems are skipped, as OpenSSH does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use russh::client::Handle;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use super::transport::Client;
use crate::connection::{ConnError, Unreachable};

/// Environment variable holding the passphrase of encrypted private keys.
pub const PASSPHRASE_ENV: &str = "SPARK_OPENSTACK_KEY_PASSPHRASE";

/// Decrypted keys by path and modification time: decrypting a bcrypt-protected key takes
/// about a second, and a run connects to many hosts with the same key.
type KeyMap = HashMap<(PathBuf, Option<SystemTime>), Arc<PrivateKey>>;
type KeyCache = Mutex<KeyMap>;
static KEY_CACHE: std::sync::LazyLock<KeyCache> = std::sync::LazyLock::new(Default::default);

/// Loads the keys to offer, in order, before connecting (so local problems are reported
/// without touching the network). Returns `(label, key)` pairs.
pub async fn load_keys(
    identity_files: &[PathBuf],
) -> Result<Vec<(String, Arc<PrivateKey>)>, ConnError> {
    let mut keys = Vec::new();
    for path in identity_files {
        let key = load_key(path).await.map_err(ConnError::Setup)?;
        keys.push((path.display().to_string(), key));
    }
    if let Some(home) = dirs::home_dir() {
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let path = home.join(".ssh").join(name);
            if identity_files.contains(&path) || !path.exists() {
                continue;
            }
            match load_key(&path).await {
                Ok(key) => keys.push((path.display().to_string(), key)),
                Err(e) => tracing::debug!("skipping default key: {e}"),
            }
        }
    }
    Ok(keys)
}

/// Reads one private key, refusing group/other-readable files like OpenSSH does.
async fn load_key(path: &Path) -> Result<Arc<PrivateKey>, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read private key {}: {e}", path.display()))?;
    check_permissions(path, &meta)?;
    let cache_key = (path.to_path_buf(), meta.modified().ok());
    if let Some(k) = lock_cache().get(&cache_key) {
        return Ok(k.clone());
    }
    let passphrase = std::env::var(PASSPHRASE_ENV).ok();
    let owned = path.to_path_buf();
    let key = tokio::task::spawn_blocking(move || {
        russh::keys::load_secret_key(&owned, passphrase.as_deref())
    })
    .await
    .map_err(|e| format!("loading {}: {e}", path.display()))?
    .map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => format!(
            "private key {} is encrypted: set {PASSPHRASE_ENV} to its passphrase, or load it into ssh-agent",
            path.display()
        ),
        e if std::env::var_os(PASSPHRASE_ENV).is_some() && is_decrypt_error(&e) => format!(
            "cannot decrypt private key {}: wrong passphrase in {PASSPHRASE_ENV}? ({e})",
            path.display()
        ),
        e => format!("cannot load private key {}: {e}", path.display()),
    })?;
    let key = Arc::new(key);
    lock_cache().insert(cache_key, key.clone());
    Ok(key)
}

fn is_decrypt_error(e: &russh::keys::Error) -> bool {
    let s = e.to_string().to_lowercase();
    s.contains("decrypt") || s.contains("crypto") || s.contains("padding")
}

fn lock_cache() -> std::sync::MutexGuard<'static, KeyMap> {
    KEY_CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o777;
    if meta.uid() == nix::unistd::getuid().as_raw() && mode & 0o077 != 0 {
        return Err(format!(
            "permissions {mode:04o} for private key {} are too open: it must not be readable by \
             others (run: chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path, _: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Authenticates `user`, trying file keys in order and the agent between explicit and
/// default keys. `keys` comes from [`load_keys`]; `explicit` is how many of them were
/// configured (the rest are defaults).
pub async fn authenticate(
    session: &mut Handle<Client>,
    user: &str,
    keys: &[(String, Arc<PrivateKey>)],
    explicit: usize,
    target: &str,
) -> Result<(), ConnError> {
    let rsa_hash = session
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();
    let mut tried: Vec<String> = Vec::new();
    for (i, (label, key)) in keys.iter().enumerate() {
        if i == explicit && try_agent(session, user, rsa_hash, &mut tried).await {
            return Ok(());
        }
        let with_hash = PrivateKeyWithHashAlg::new(key.clone(), rsa_hash);
        match session.authenticate_publickey(user, with_hash).await {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => tried.push(label.clone()),
            Err(e) => return Err(lost(target, e)),
        }
    }
    if explicit >= keys.len() && try_agent(session, user, rsa_hash, &mut tried).await {
        return Ok(());
    }
    let offered = if tried.is_empty() {
        "no keys (none configured, no ssh-agent, no ~/.ssh/id_* files)".to_string()
    } else {
        format!("keys {}", tried.join(", "))
    };
    Err(ConnError::Unreachable {
        reason: Unreachable::AuthFailed,
        detail: format!("{target}: authentication failed for user {user} with {offered}"),
    })
}

/// Offers every agent identity; true once one is accepted. Refusals are noted in `tried`.
async fn try_agent(
    session: &mut Handle<Client>,
    user: &str,
    rsa_hash: Option<russh::keys::HashAlg>,
    tried: &mut Vec<String>,
) -> bool {
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        return false;
    }
    let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await else {
        tracing::debug!("SSH_AUTH_SOCK is set but the agent cannot be reached");
        return false;
    };
    let identities = agent.request_identities().await.unwrap_or_default();
    for id in &identities {
        let key = id.public_key().into_owned();
        match session
            .authenticate_publickey_with(user, key, rsa_hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return true,
            Ok(_) => {}
            Err(e) => tracing::debug!("agent key refused: {e:?}"),
        }
    }
    if !identities.is_empty() {
        tried.push(format!("ssh-agent ({} keys)", identities.len()));
    }
    false
}

fn lost(target: &str, e: russh::Error) -> ConnError {
    ConnError::Unreachable {
        reason: Unreachable::Disconnected,
        detail: format!("{target}: connection lost during authentication: {e}"),
    }
}
