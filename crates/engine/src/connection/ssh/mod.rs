//! SSH connections with russh: one authenticated connection per host, persistent
//! shells for commands, known_hosts checking and jump hosts.
//!
//! - `transport`: TCP or tunnel, handshake, retries, failure reasons.
//! - `auth`: identity files, ssh-agent, default keys.
//! - `known_hosts`: host key policy.
//! - `shell`: the framed protocol that runs many commands in one remote `/bin/sh`.
//!
//! Channels per connection stay well under sshd's `MaxSessions` (10): at most
//! [`MAX_SHELLS`] persistent shells plus [`MAX_SIDE_CHANNELS`] short-lived exec channels
//! (large uploads, killing a timed-out command). Further requests wait for a free shell.

mod auth;
mod known_hosts;
mod shell;
mod transport;

pub use auth::PASSPHRASE_ENV;
pub use known_hosts::host_pattern;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use russh::client::Handle;
use tokio::sync::Semaphore;

use self::shell::{Shell, ShellError};
use self::transport::Client;
use super::{
    Become, ConnError, Connection, ConnectionSpec, ExecOutput, ExecRequest, Tunnel, Unreachable,
    sh_quote, wrap_command,
};

/// Persistent shells per connection: enough for a few concurrent tasks on one host.
pub const MAX_SHELLS: usize = 4;
/// One-off exec channels per connection (uploads, kills).
pub const MAX_SIDE_CHANNELS: usize = 2;
/// Stdin and uploads up to this size travel inline in the shell script (base64 here-doc);
/// larger ones stream through a side channel.
const INLINE_LIMIT: usize = 256 * 1024;
/// How long opening a channel may take before the connection is considered dead.
const CHANNEL_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens an SSH connection to `spec`, through `jump` when given.
pub async fn connect(
    spec: &ConnectionSpec,
    jump: Option<Arc<dyn Connection>>,
) -> Result<Arc<dyn Connection>, ConnError> {
    let handle = transport::establish(spec, jump.as_ref()).await?;
    Ok(Arc::new(SshConnection {
        name: spec.name.clone(),
        target: transport::target(spec),
        spec: spec.clone(),
        handle: tokio::sync::RwLock::new(Arc::new(handle)),
        idle: std::sync::Mutex::new(Vec::new()),
        shells: Semaphore::new(MAX_SHELLS),
        side: Semaphore::new(MAX_SIDE_CHANNELS),
        closed: AtomicBool::new(false),
        jump,
    }))
}

pub struct SshConnection {
    name: String,
    target: String,
    spec: ConnectionSpec,
    /// The current session; replaced when the host dropped it (e.g. after a reboot).
    handle: tokio::sync::RwLock<Arc<Handle<Client>>>,
    idle: std::sync::Mutex<Vec<Shell>>,
    shells: Semaphore,
    side: Semaphore,
    closed: AtomicBool,
    /// The jump host's connection, kept alive while this one tunnels through it.
    jump: Option<Arc<dyn Connection>>,
}

impl SshConnection {
    fn lost(&self, what: &str, e: impl std::fmt::Display) -> ConnError {
        ConnError::Unreachable {
            reason: Unreachable::Disconnected,
            detail: format!("{}: {what}: {e}", self.target),
        }
    }

    async fn open_channel(&self) -> Result<russh::Channel<russh::client::Msg>, ConnError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ConnError::Io(format!(
                "{}: connection already closed",
                self.name
            )));
        }
        // A session that died moments ago may only notice it while opening the channel;
        // the second attempt then reconnects.
        let mut retried = false;
        loop {
            let handle = self.session().await?;
            let failure =
                match tokio::time::timeout(CHANNEL_OPEN_TIMEOUT, handle.channel_open_session())
                    .await
                {
                    Ok(Ok(ch)) => return Ok(ch),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out".to_string(),
                };
            if retried || !handle.is_closed() {
                return Err(self.lost("cannot open a channel", failure));
            }
            retried = true;
        }
    }

    /// The live session, reconnecting once if the host closed the previous one: a reboot
    /// or an sshd restart must not make the host unusable for the rest of the run.
    async fn session(&self) -> Result<Arc<Handle<Client>>, ConnError> {
        {
            let h = self.handle.read().await;
            if !h.is_closed() {
                return Ok(h.clone());
            }
        }
        let mut h = self.handle.write().await;
        if h.is_closed() {
            tracing::info!("{}: connection lost, reconnecting", self.name);
            // Shells of the old session are dead; dropping them ends their reader tasks.
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
            *h = Arc::new(transport::establish(&self.spec, self.jump.as_ref()).await?);
        }
        Ok(h.clone())
    }

    async fn open_shell(&self) -> Result<Shell, ConnError> {
        let ch = self.open_channel().await?;
        ch.exec(false, "exec /bin/sh")
            .await
            .map_err(|e| self.lost("cannot start /bin/sh", e))?;
        Ok(Shell::new(ch))
    }

    fn take_idle(&self) -> Option<Shell> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// Runs a wrapped command on a free persistent shell. A shell found dead before the
    /// command started is replaced once; on timeout the command's process tree is killed
    /// and that shell is discarded.
    async fn run_in_shell(
        &self,
        cmd: &str,
        stdin: Option<&[u8]>,
        stdin_file: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, ConnError> {
        let _permit = self
            .shells
            .acquire()
            .await
            .map_err(|_| ConnError::Io(format!("{}: connection closed", self.name)))?;
        let mut retried = false;
        loop {
            let mut sh = match self.take_idle() {
                Some(sh) => sh,
                None => self.open_shell().await?,
            };
            let run = sh.run(cmd, stdin, stdin_file);
            let result = match timeout {
                Some(t) => match tokio::time::timeout(t, run).await {
                    Ok(r) => r,
                    Err(_) => {
                        self.kill(sh.pid).await;
                        sh.abandon().await;
                        return Err(ConnError::Io(format!(
                            "command timed out after {}s",
                            t.as_secs_f32()
                        )));
                    }
                },
                None => run.await,
            };
            match result {
                Ok(f) => {
                    if self.closed.load(Ordering::Acquire) {
                        sh.close().await;
                    } else {
                        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(sh);
                    }
                    return Ok(ExecOutput {
                        rc: f.rc,
                        stdout: f.stdout,
                        stderr: f.stderr,
                    });
                }
                Err(ShellError::NotStarted(why)) if !retried => {
                    tracing::debug!("{}: {why}; opening a new shell", self.name);
                    retried = true;
                }
                Err(ShellError::NotStarted(why) | ShellError::Died(why)) => {
                    return Err(self.lost("command interrupted", why));
                }
            }
        }
    }

    /// Kills a timed-out command's process tree through a side channel (best effort).
    async fn kill(&self, pid: Option<u32>) {
        let Some(pid) = pid else { return };
        let script = shell::kill_tree_script(pid);
        if let Err(e) = self.side_exec(&script, &[]).await {
            tracing::debug!("{}: cannot kill timed-out command: {e}", self.name);
        }
    }

    /// Runs `cmd` on its own exec channel, streaming `data` to its stdin; for payloads too
    /// large to inline. Returns the exit status and stderr.
    async fn side_exec(&self, cmd: &str, data: &[u8]) -> Result<(i32, Vec<u8>), ConnError> {
        let _permit = self
            .side
            .acquire()
            .await
            .map_err(|_| ConnError::Io(format!("{}: connection closed", self.name)))?;
        let ch = self.open_channel().await?;
        let (mut read, write) = ch.split();
        write
            .exec(false, cmd)
            .await
            .map_err(|e| self.lost("cannot run a command", e))?;
        let send = async {
            for chunk in data.chunks(1 << 20) {
                write.data_bytes(chunk.to_vec()).await?;
            }
            write.eof().await
        };
        let recv = async {
            let (mut rc, mut err) = (None, Vec::new());
            while let Some(msg) = read.wait().await {
                match msg {
                    russh::ChannelMsg::ExtendedData { data, .. } => err.extend_from_slice(&data),
                    russh::ChannelMsg::ExitStatus { exit_status } => rc = Some(exit_status as i32),
                    russh::ChannelMsg::ExitSignal { .. } => rc = Some(255),
                    russh::ChannelMsg::Close => break,
                    _ => {}
                }
            }
            (rc, err)
        };
        let (sent, (rc, err)) = tokio::join!(send, recv);
        let _ = write.close().await;
        match rc {
            Some(rc) => Ok((rc, err)),
            None => Err(self.lost(
                "command ended without an exit status",
                sent.err().map(|e| e.to_string()).unwrap_or_default(),
            )),
        }
    }

    /// Moves a large stdin to a private temporary file on the host.
    async fn stage(&self, data: &[u8]) -> Result<String, ConnError> {
        let path = format!("/tmp/.spark-openstack-in-{:016x}", rand::random::<u64>());
        let cmd = format!("umask 077 && cat > {}", sh_quote(&path));
        match self.side_exec(&cmd, data).await? {
            (0, _) => Ok(path),
            (_, err) => Err(ConnError::Io(format!(
                "cannot upload stdin to {path}: {}",
                String::from_utf8_lossy(&err).trim()
            ))),
        }
    }
}

/// The bytes a wrapped command reads: the sudo password line first (for `sudo -S`).
fn stdin_bytes(req: &ExecRequest) -> Option<Vec<u8>> {
    let password = req.become_.as_ref().and_then(|b| b.password.as_ref());
    if password.is_none() && req.stdin.is_none() {
        return None;
    }
    let mut input = Vec::new();
    if let Some(p) = password {
        input.extend_from_slice(p.as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(req.stdin.as_deref().unwrap_or_default());
    Some(input)
}

#[async_trait]
impl Connection for SshConnection {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnError> {
        let cmd = wrap_command(&req);
        let input = stdin_bytes(&req);
        match input {
            Some(data) if data.len() > INLINE_LIMIT => {
                let file = self.stage(&data).await?;
                let cleanup = format!("rm -f {}", sh_quote(&file));
                let out = self
                    .run_in_shell(&cmd, None, Some(&file), req.timeout)
                    .await;
                let _ = self.run_in_shell(&cleanup, None, None, None).await;
                out
            }
            data => {
                self.run_in_shell(&cmd, data.as_deref(), None, req.timeout)
                    .await
            }
        }
    }

    async fn get(&self, src: &str, become_: Option<&Become>) -> Result<Vec<u8>, ConnError> {
        let req = ExecRequest {
            cmd: format!("cat {}", sh_quote(src)),
            become_: become_.cloned(),
            ..Default::default()
        };
        let out = self.exec(req).await?;
        if out.rc != 0 {
            return Err(ConnError::Io(format!(
                "cannot read {src}: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(out.stdout)
    }

    async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let shells: Vec<Shell> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        futures::future::join_all(shells.into_iter().map(Shell::close)).await;
        self.shells.close();
        self.side.close();
        let _ = self
            .handle
            .read()
            .await
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    async fn open_tunnel(&self, host: &str, port: u16) -> Result<Box<dyn Tunnel>, ConnError> {
        // A host that never answers the open request would hang the caller (a jump host's
        // handshake, a forwarded connection) forever (russh#329), hence the timeout.
        let handle = self.session().await?;
        let open = handle.channel_open_direct_tcpip(host, port as u32, "127.0.0.1", 0);
        let to = format!("{host}:{port} through {}", self.name);
        match tokio::time::timeout(CHANNEL_OPEN_TIMEOUT, open).await {
            Ok(Ok(ch)) => Ok(Box::new(ch.into_stream())),
            Ok(Err(russh::Error::ChannelOpenFailure(f))) => {
                let (reason, why) = match f {
                    russh::ChannelOpenFailure::ConnectFailed => {
                        (Unreachable::Refused, "nothing answers there".to_string())
                    }
                    russh::ChannelOpenFailure::AdministrativelyProhibited => (
                        Unreachable::Other,
                        "its sshd does not allow forwarding (AllowTcpForwarding)".to_string(),
                    ),
                    f => (Unreachable::Other, format!("its sshd answered {f:?}")),
                };
                Err(ConnError::Unreachable {
                    reason,
                    detail: format!("cannot reach {to}: {why}"),
                })
            }
            Ok(Err(e)) => Err(self.lost(&format!("cannot reach {to}"), e)),
            Err(_) => Err(ConnError::Unreachable {
                reason: Unreachable::Timeout,
                detail: format!("cannot reach {to}: timed out"),
            }),
        }
    }
}
