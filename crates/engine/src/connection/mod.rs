//! How the engine reaches a host: the [`Connection`] trait and the spec it is built from.
//!
//! Modules never know whether they talk to sshd or to the controller itself; they ask a
//! `Connection` to run a shell snippet or read a file. Files are written by a shell snippet
//! that reads its stdin (`modules::remote::write_file`), the one write path, so the
//! atomic rename, backups, attributes and `~/` paths work the same on every connection. The SSH implementation
//! (`ssh/`) keeps one authenticated connection per host for the whole run and runs
//! commands over persistent channels, so a task costs about one round trip. The local
//! implementation (`local.rs`) serves `ansible_connection: local` and `delegate_to: localhost`.

pub mod local;
pub mod manager;
pub mod ssh;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

/// Everything needed to open a connection to one host, resolved from inventory variables
/// (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
/// `ansible_connection`, `ansible_ssh_common_args` ProxyJump or our `spark_openstack_jump_host`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionSpec {
    /// The inventory name, used in messages and as the cache key.
    pub name: String,
    pub kind: ConnectionKind,
    /// Address to connect to (`ansible_host`, else the inventory name).
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key files to try, in order (`ansible_ssh_private_key_file`, `-i`).
    pub identity_files: Vec<PathBuf>,
    /// Reach this host through another one (direct-tcpip on the jump host's own connection).
    pub jump: Option<Box<ConnectionSpec>>,
    pub host_key_policy: HostKeyPolicy,
    /// Extra known_hosts files consulted (and written by `accept-new`) besides `~/.ssh/known_hosts`.
    pub known_hosts_files: Vec<PathBuf>,
    pub connect_timeout: Duration,
    /// Attempts for the TCP connect + handshake before the host is declared unreachable.
    pub connect_retries: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionKind {
    Ssh,
    Local,
}

/// What to do with a host key that is not in any known_hosts file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HostKeyPolicy {
    /// Unknown keys are refused.
    Strict,
    /// Trust on first use: learn unknown keys, refuse changed keys loudly.
    #[default]
    AcceptNew,
    /// No checking at all (explicit flag; a warning is printed).
    Off,
}

/// Privilege escalation for one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Become {
    /// Target user (`become_user`, default `root`).
    pub user: String,
    /// `sudo` is the only method implemented; the field exists so others can be added.
    pub method: String,
    /// `ansible_become_password`; never printed.
    pub password: Option<String>,
}

/// One command to run on a host. `cmd` is a POSIX shell snippet.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub cmd: String,
    pub stdin: Option<Vec<u8>>,
    pub env: Vec<(String, String)>,
    pub chdir: Option<String>,
    pub become_: Option<Become>,
    pub timeout: Option<Duration>,
}

impl ExecRequest {
    pub fn new(cmd: impl Into<String>) -> Self {
        ExecRequest {
            cmd: cmd.into(),
            ..Default::default()
        }
    }
}

/// The result of a command: exit status and both streams, kept separate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a host could not be reached, in words a user acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreachable {
    Refused,
    Timeout,
    Dns,
    NoRoute,
    AuthFailed,
    HostKeyMismatch { known_hosts: PathBuf, line: usize },
    HostKeyUnknown,
    Disconnected,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The host cannot be reached; the play reports it as UNREACHABLE.
    #[error("{detail}")]
    Unreachable { reason: Unreachable, detail: String },
    /// A local problem: unreadable key, bad permissions, encrypted key without passphrase.
    #[error("{0}")]
    Setup(String),
    /// Reading or writing a file on the host failed.
    #[error("{0}")]
    Io(String),
}

impl ConnError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ConnError::Unreachable { .. })
    }
}

/// An open connection to one host. Implementations are cheap to share (`Arc<dyn Connection>`)
/// and safe to call from several tasks at once.
#[async_trait]
pub trait Connection: Send + Sync {
    /// The inventory name of the host.
    fn name(&self) -> &str;

    /// Runs `req.cmd` with `/bin/sh` and returns its status and output.
    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnError>;

    /// Reads a whole file from the host.
    async fn get(&self, src: &str, become_: Option<&Become>) -> Result<Vec<u8>, ConnError>;

    /// Closes every channel and the connection itself.
    async fn close(&self);

    /// Opens a byte stream to `host:port` as seen from this host (SSH `direct-tcpip`): a
    /// host behind this one is reached through it (jump host), and `tunnel` forwards local
    /// ports to the master's services with it. A service that refuses the connection gives
    /// `Unreachable::Refused`. Connections that cannot forward keep this default, which
    /// says so.
    async fn open_tunnel(&self, host: &str, port: u16) -> Result<Box<dyn Tunnel>, ConnError> {
        Err(ConnError::Setup(format!(
            "{} cannot forward connections to {host}:{port}",
            self.name()
        )))
    }
}

/// A bidirectional byte stream through another host (see [`Connection::open_tunnel`]).
pub trait Tunnel: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Tunnel for T {}

/// Expands `~/` at the start of a controller-side path (identity and known_hosts files
/// from the inventory, `fetch` and `synchronize` destinations). Remote paths are expanded
/// on the host instead (`modules::remote::qpath`), where the home may differ.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// Quotes a string for POSIX sh (single quotes, `'` escaped).
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Wraps a command in the environment, directory and privilege escalation of `req`, so every
/// connection type builds the exact same shell line.
pub fn wrap_command(req: &ExecRequest) -> String {
    let mut script = String::new();
    // `|| exit 1;`, not `&&`: with `cd X && export A; cmd` a failed cd skipped only the
    // export, and the command ran in the wrong directory.
    if let Some(dir) = &req.chdir {
        script.push_str(&format!("cd {} || exit 1; ", sh_quote(dir)));
    }
    for (k, v) in &req.env {
        script.push_str(&format!("export {}={}; ", k, sh_quote(v)));
    }
    script.push_str(&req.cmd);
    match &req.become_ {
        None => script,
        Some(b) => {
            let prompt_flag = if b.password.is_some() {
                "-S -p ''"
            } else {
                "-n"
            };
            format!(
                "sudo {prompt_flag} -H -u {} -- /bin/sh -c {}",
                sh_quote(&b.user),
                sh_quote(&script)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("abc"), "abc");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn wrapping_adds_dir_env_and_sudo() {
        let mut req = ExecRequest::new("echo $X");
        req.chdir = Some("/tmp".into());
        req.env = vec![("X".into(), "a b".into())];
        assert_eq!(
            wrap_command(&req),
            "cd /tmp || exit 1; export X='a b'; echo $X"
        );
        req.become_ = Some(Become {
            user: "root".into(),
            method: "sudo".into(),
            password: None,
        });
        assert!(wrap_command(&req).starts_with("sudo -n -H -u root -- /bin/sh -c 'cd /tmp"));
    }
}
