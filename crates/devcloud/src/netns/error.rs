//! One error type for the netns backend, so every failure names what failed: the command line
//! and its stderr, the file, or the machine/option at fault.

use std::path::PathBuf;

/// Everything that can go wrong while building or tearing down netns machines.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Namespaces, bridges and mounts need CAP_SYS_ADMIN/CAP_NET_ADMIN; say how to avoid them.
    #[error("the netns backend needs root; run devcloud with --backend records or as root")]
    NotRoot,
    /// A helper program (`ip`, `ssh-keygen`, ...) failed: show exactly what ran and what it said.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// A file or directory under the state dir could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A setting in [`super::NetnsConfig`] or an argument is unusable (bad range, name too long...).
    #[error("invalid netns setting: {0}")]
    Invalid(String),
    /// The state file exists but cannot be understood.
    #[error("netns state file {path}: {message}")]
    State { path: PathBuf, message: String },
    /// No machine with this id was created (or it was deleted).
    #[error("no netns machine with id `{0}`")]
    UnknownMachine(String),
    /// sshd did not come up; the tail of its log says why.
    #[error("sshd of machine `{id}` did not start: {log_tail}")]
    SshdStart { id: String, log_tail: String },
    /// Several clean-up steps failed; every one is listed.
    #[error("teardown left things behind:\n  {}", .0.join("\n  "))]
    Teardown(Vec<String>),
}

impl NetnsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetnsError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = NetnsError> = std::result::Result<T, E>;
