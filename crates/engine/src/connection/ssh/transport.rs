//! Getting an authenticated SSH session: TCP (or a jump host's tunnel), handshake with host
//! key checking, authentication, retries with backoff, and plain-words failure reasons.

use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PublicKeyOrCertificate};

use super::{auth, known_hosts};
use crate::connection::{ConnError, Connection, ConnectionSpec, Unreachable};

/// The russh event handler: checks the server's host key and remembers why it refused one.
pub struct Client {
    host: String,
    port: u16,
    spec: Arc<ConnectionSpec>,
}

/// Handler errors: russh's own, or a host key refusal already worded for the user.
#[derive(Debug)]
pub enum ClientError {
    Russh(russh::Error),
    HostKey(Unreachable, String),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Russh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(c) => {
                russh::keys::PublicKey::new(c.public_key().clone(), "")
            }
        };
        let (host, port, spec) = (self.host.clone(), self.port, self.spec.clone());
        // File I/O (and possibly a blocking lock) off the async runtime.
        tokio::task::spawn_blocking(move || {
            known_hosts::verify(
                &host,
                port,
                &key,
                spec.host_key_policy,
                &spec.known_hosts_files,
            )
        })
        .await
        .map_err(|e| ClientError::HostKey(Unreachable::Other, e.to_string()))?
        .map_err(|r| ClientError::HostKey(r.reason, r.detail))?;
        Ok(true)
    }
}

/// Keep-alives detect dead hosts during long tasks; the large window lets big outputs flow
/// without waiting for window adjustments.
fn config() -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        window_size: 16 * 1024 * 1024,
        channel_buffer_size: 256,
        nodelay: true,
        ..Default::default()
    })
}

/// `user@address:port`, the way failures name the target.
pub fn target(spec: &ConnectionSpec) -> String {
    format!("{}@{}:{}", spec.user, spec.address, spec.port)
}

/// Connects and authenticates, retrying transient failures (refused, timed out, reset:
/// a machine that is still booting) with exponential backoff.
pub async fn establish(
    spec: &ConnectionSpec,
    jump: Option<&Arc<dyn Connection>>,
) -> Result<Handle<Client>, ConnError> {
    let keys = auth::load_keys(&spec.identity_files).await?;
    let explicit = spec.identity_files.len();
    let spec = Arc::new(spec.clone());
    let attempts = spec.connect_retries.max(1);
    let mut delay = Duration::from_millis(250);
    let mut last = None;
    for attempt in 1..=attempts {
        let once = attempt_once(&spec, jump, &keys, explicit);
        let result = match tokio::time::timeout(spec.connect_timeout, once).await {
            Ok(r) => r,
            Err(_) => Err(unreachable(
                Unreachable::Timeout,
                format!(
                    "{}: timed out after {}s",
                    target(&spec),
                    spec.connect_timeout.as_secs_f32()
                ),
            )),
        };
        match result {
            Ok(h) => return Ok(h),
            Err(e) if is_transient(&e) && attempt < attempts => {
                tracing::debug!("{}: attempt {attempt} failed: {e}; retrying", spec.name);
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(with_attempts(e, attempt)),
        }
    }
    Err(with_attempts(
        last.unwrap_or_else(|| unreachable(Unreachable::Other, "no connection attempt".into())),
        attempts,
    ))
}

fn is_transient(e: &ConnError) -> bool {
    matches!(
        e,
        ConnError::Unreachable {
            reason: Unreachable::Refused | Unreachable::Timeout | Unreachable::Disconnected,
            ..
        }
    )
}

fn with_attempts(e: ConnError, attempts: u32) -> ConnError {
    match e {
        ConnError::Unreachable { reason, detail }
            if attempts > 1 && is_transient_reason(&reason) =>
        {
            ConnError::Unreachable {
                reason,
                detail: format!("{detail} (after {attempts} attempts)"),
            }
        }
        e => e,
    }
}

fn is_transient_reason(r: &Unreachable) -> bool {
    matches!(
        r,
        Unreachable::Refused | Unreachable::Timeout | Unreachable::Disconnected
    )
}

fn unreachable(reason: Unreachable, detail: String) -> ConnError {
    ConnError::Unreachable { reason, detail }
}

async fn attempt_once(
    spec: &Arc<ConnectionSpec>,
    jump: Option<&Arc<dyn Connection>>,
    keys: &[(String, Arc<PrivateKey>)],
    explicit: usize,
) -> Result<Handle<Client>, ConnError> {
    let handler = Client {
        host: spec.address.clone(),
        port: spec.port,
        spec: spec.clone(),
    };
    let who = target(spec);
    let handshake = match jump {
        Some(j) => {
            let tunnel = j.open_tunnel(&spec.address, spec.port).await?;
            client::connect_stream(config(), tunnel, handler).await
        }
        None => {
            let stream = tcp_connect(spec).await?;
            client::connect_stream(config(), stream, handler).await
        }
    };
    let mut session = handshake.map_err(|e| handshake_error(&who, e))?;
    auth::authenticate(&mut session, &spec.user, keys, explicit, &who).await?;
    Ok(session)
}

async fn tcp_connect(spec: &ConnectionSpec) -> Result<tokio::net::TcpStream, ConnError> {
    let who = target(spec);
    let addrs: Vec<_> = tokio::net::lookup_host((spec.address.as_str(), spec.port))
        .await
        .map_err(|e| {
            unreachable(
                Unreachable::Dns,
                format!("{who}: cannot resolve host name {}: {e}", spec.address),
            )
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("the name has no addresses"));
    Err(io_error(&who, &e))
}

/// Maps socket errors to the reasons users recognise.
fn io_error(who: &str, e: &std::io::Error) -> ConnError {
    use std::io::ErrorKind as K;
    let (reason, words) = match (e.kind(), e.raw_os_error()) {
        (K::ConnectionRefused, _) => (Unreachable::Refused, "connection refused"),
        (K::TimedOut, _) => (Unreachable::Timeout, "timed out"),
        (K::HostUnreachable | K::NetworkUnreachable, _)
        | (_, Some(libc::EHOSTUNREACH | libc::ENETUNREACH)) => {
            (Unreachable::NoRoute, "no route to host")
        }
        (K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe, _) => (
            Unreachable::Disconnected,
            "connection closed by the remote host",
        ),
        _ => (Unreachable::Other, ""),
    };
    let detail = if words.is_empty() {
        format!("{who}: {e}")
    } else {
        format!("{who}: {words}")
    };
    unreachable(reason, detail)
}

fn handshake_error(who: &str, e: ClientError) -> ConnError {
    match e {
        ClientError::HostKey(reason, detail) => unreachable(reason, format!("{who}: {detail}")),
        ClientError::Russh(russh::Error::IO(io)) => io_error(who, &io),
        ClientError::Russh(
            e @ (russh::Error::Disconnect | russh::Error::HUP | russh::Error::ConnectionTimeout),
        ) => unreachable(
            Unreachable::Disconnected,
            format!("{who}: connection closed during the SSH handshake ({e})"),
        ),
        ClientError::Russh(e) => unreachable(
            Unreachable::Other,
            format!("{who}: SSH handshake failed: {e}"),
        ),
    }
}
