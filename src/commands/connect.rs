//! The cluster's Spark Connect token on the controller, and `connect-url`.
//!
//! Why a token: Spark Connect executes whatever plan a client sends, as the login user of
//! the master, so anyone who reaches its port owns the cluster. The spark role makes a
//! random token once per cluster on the master (`~/spark-openstack/secrets/connect-token`,
//! owner-only; the role's `spark_secrets_dir`) and starts the server with it; a client
//! must present it (`sc://localhost:PORT/;token=...`). The master's copy is the one that
//! counts: a cluster launched again under the same name has a new one. So `tunnel` and
//! `connect-url` read it from the master over their SSH connection each time and keep a
//! copy on the controller, in an owner-only directory of the state directory, which the
//! printed lines refer to (`token=$(cat FILE)`) instead of showing the token itself.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Failure;
use super::ctx::{CmdResult, Ctx};
use super::ssh::{master_access, node_specs};
use crate::cluster::inventory;
use playbook_engine::connection::{Connection, ExecRequest};

/// Where the spark role keeps the token on the master, relative to the login user's home
/// (the default of its `spark_secrets_dir`).
pub const MASTER_TOKEN_PATH: &str = "spark-openstack/secrets/connect-token";

/// The controller's copy of one cluster's token:
/// `~/.local/state/spark-openstack/secrets/<cloud>-<cluster>/connect-token`.
pub fn token_file(cloud: Option<&str>, cluster: &str) -> Option<PathBuf> {
    inventory::cluster_state_path("secrets", cloud, cluster).map(|d| d.join("connect-token"))
}

/// A token as the role writes it: hex digits, nothing else. Anything else (an empty file,
/// an error message) is refused rather than put in a URL.
fn check_token(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.len() >= 16 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_string())
    } else {
        Err(format!(
            "~/{MASTER_TOKEN_PATH} on the master does not hold a token (launch makes it)"
        ))
    }
}

/// Reads the token from the master over `ssh`. `Ok(None)` when the master has none (a
/// cluster launched before Spark Connect was set up, or with it off).
pub async fn read_master_token(ssh: &dyn Connection) -> Result<Option<String>, String> {
    let out = ssh
        .exec(ExecRequest::new(format!(
            "if [ -f {MASTER_TOKEN_PATH} ]; then cat {MASTER_TOKEN_PATH}; else echo absent >&2; exit 3; fi"
        )))
        .await
        .map_err(|e| format!("cannot read the Spark Connect token on the master: {e}"))?;
    match out.rc {
        0 => check_token(&out.stdout_str()).map(Some),
        3 => Ok(None),
        rc => Err(format!(
            "cannot read ~/{MASTER_TOKEN_PATH} on the master (exit {rc}): {}",
            out.stderr_str().trim()
        )),
    }
}

/// Writes `token` to `path`, readable by the user only: the directory is made 0700 first,
/// and the file is written under a temporary name with mode 0600 and renamed, so no reader
/// ever sees it with wider permissions or half written.
pub fn keep_token(path: &Path, token: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no directory", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    let tmp = dir.join(format!(".connect-token.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(format!("{token}\n").as_bytes()).map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(fail)
}

/// How a printed Spark Connect URL carries the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenShown {
    /// No token: the server has none (or the master keeps none).
    None,
    /// The token itself (`--show-token`, `connect-url`).
    Literal(String),
    /// A shell substitution reading the controller's copy, so the line works when pasted
    /// into a shell and shows no secret: `token=$(cat FILE)`.
    File(PathBuf),
}

/// The URL a Spark Connect client uses for a server on `localhost:port`. The host must be
/// `localhost`: PySpark sends a token over a plain (not TLS) channel only to `localhost`.
pub fn connect_url(port: u16, token: &TokenShown) -> String {
    let base = format!("sc://localhost:{port}/");
    match token {
        TokenShown::None => base,
        TokenShown::Literal(t) => format!("{base};token={t}"),
        TokenShown::File(f) => format!(
            "{base};token=$(cat {})",
            playbook_engine::connection::sh_quote(&f.display().to_string())
        ),
    }
}

/// Reads the token from the master (over `ssh`) and keeps the controller's copy. Returns
/// the token and the copy's path; `None` when the master has no token.
pub async fn refresh_token(
    ctx: &Ctx,
    ssh: &dyn Connection,
) -> Result<Option<(String, PathBuf)>, (Failure, String)> {
    let Some(token) = read_master_token(ssh)
        .await
        .map_err(|e| (Failure::Error, format!("cluster '{}': {e}", ctx.cluster)))?
    else {
        return Ok(None);
    };
    let file = token_file(ctx.os_cloud.as_deref(), &ctx.cluster).ok_or_else(|| {
        (
            Failure::Error,
            "no state directory to keep the Spark Connect token in (is HOME set?)".to_string(),
        )
    })?;
    keep_token(&file, &token).map_err(|e| (Failure::Error, e))?;
    Ok(Some((token, file)))
}

/// `connect-url NAME`: the Spark Connect URL, token included, for a `tunnel` whose
/// `spark_connect` listens on `port` (`tunnel NAME --port spark_connect=PORT`). Printing
/// the token is what this command is for: a script passes the line to
/// `SparkSession.builder.remote(...)`.
pub async fn connect_url_cmd(ctx: &Ctx, port: u16) -> CmdResult {
    let (conn, acc, c) = master_access(ctx).await?;
    let Some(spec) = node_specs(&c, &conn, &acc, true).into_iter().next() else {
        return Err((
            Failure::Error,
            format!("cluster '{}' has no master", ctx.cluster),
        ));
    };
    let ssh = playbook_engine::connection::ssh::connect(&spec, None)
        .await
        .map_err(|e| {
            (
                Failure::Unreachable,
                format!("cannot reach the master of cluster '{}': {e}", ctx.cluster),
            )
        })?;
    let token = refresh_token(ctx, ssh.as_ref()).await;
    ssh.close().await;
    match token? {
        Some((token, _)) => {
            println!("{}", connect_url(port, &TokenShown::Literal(token)));
            Ok(())
        }
        None => Err((
            Failure::Error,
            format!(
                "cluster '{}' has no Spark Connect token (~/{MASTER_TOKEN_PATH} on the master): \
                 it runs a Spark without Spark Connect, or with spark_connect_enabled=false",
                ctx.cluster
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_token_as_asked() {
        assert_eq!(
            connect_url(15002, &TokenShown::None),
            "sc://localhost:15002/"
        );
        assert_eq!(
            connect_url(15002, &TokenShown::Literal("ab12".into())),
            "sc://localhost:15002/;token=ab12"
        );
        assert_eq!(
            connect_url(4000, &TokenShown::File("/home/u/x y/connect-token".into())),
            "sc://localhost:4000/;token=$(cat '/home/u/x y/connect-token')"
        );
    }

    #[test]
    fn only_hex_tokens_are_accepted() {
        let t = "0123456789abcdef0123456789abcdef";
        assert_eq!(check_token(&format!("{t}\n")).unwrap(), t);
        for bad in ["", "short", "cat: no such file", &format!("{t} x")] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_kept_copy_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets/devcloud-demo/connect-token");
        keep_token(&file, "abcdef0123456789").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "abcdef0123456789\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        // Rewritten in place for a relaunched cluster; no temporary file left behind.
        keep_token(&file, "fedcba9876543210").unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "fedcba9876543210\n"
        );
        assert_eq!(
            std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
