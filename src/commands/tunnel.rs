//! `tunnel NAME`: the master's web UIs (and Spark Connect) on local ports, carried by one
//! SSH connection to the master.
//!
//! Why: a cluster's security groups open only SSH to the world (see [`crate::cluster::secgroups`]);
//! the Spark master UI, the NameNode UIs, Ganglia, the application UI and Spark Connect
//! answer only inside the cluster network unless `--authorized-address` opened them to
//! someone. SSH is the one way in that always exists, so `tunnel` opens one connection to
//! the master with the engine's connection layer (same key, user and per-cluster
//! known_hosts as `login` and `run-command`), asks the master through it which services
//! answer (an SSH `direct-tcpip` open that succeeds: the list printed is what runs, not
//! what should), listens on 127.0.0.1 for each of those, and carries every accepted
//! connection to the service as the master sees it. The target is the master's fixed IP,
//! not loopback: the daemons bind to the master's hostname (which `/etc/hosts` maps to
//! the fixed IP) or to every address.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::Failure;
use super::connect::{self, TokenShown};
use super::ctx::{CmdResult, Ctx};
use super::ssh::{master_access, node_specs};
use crate::cluster::describe::WEB_UIS;
use playbook_engine::connection::{ConnError, Connection, Unreachable};

/// How a client talks to a service, which decides the URL printed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// A web UI, opened at `path`.
    Http { path: &'static str },
    /// Spark Connect's gRPC endpoint, for `SparkSession.builder.remote(url)`.
    SparkConnect,
}

/// One service on the master that `tunnel` may forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// The name printed and accepted by `--port NAME=PORT`.
    pub name: &'static str,
    /// Its port on the master.
    pub port: u16,
    pub protocol: Protocol,
}

impl Service {
    /// The URL a local client uses to reach this service on `localhost:port`; Spark
    /// Connect's carries the token as `token` says (see [`connect::connect_url`]).
    pub fn url(&self, port: u16, token: &TokenShown) -> String {
        match self.protocol {
            Protocol::Http { path } => format!("http://localhost:{port}{path}"),
            Protocol::SparkConnect => connect::connect_url(port, token),
        }
    }
}

/// The services on the master beyond `describe`'s web UIs: Spark Connect (the spark role
/// starts it on Spark 4.0 and later, with a token).
const MORE_SERVICES: &[Service] = &[Service {
    name: "spark_connect",
    port: 15002,
    protocol: Protocol::SparkConnect,
}];

/// Every service `tunnel` probes, in the order it prints them.
pub fn services() -> Vec<Service> {
    WEB_UIS
        .iter()
        .map(|&(name, port, path)| Service {
            name,
            port,
            protocol: Protocol::Http { path },
        })
        .chain(MORE_SERVICES.iter().copied())
        .collect()
}

/// Parses `--port NAME=PORT` arguments: each name must be a service, each port given once.
pub fn parse_ports(args: &[String]) -> Result<BTreeMap<String, u16>, String> {
    let known = services();
    let mut ports = BTreeMap::new();
    for a in args {
        let (name, port) = a
            .split_once('=')
            .ok_or_else(|| format!("--port {a}: expected NAME=PORT, e.g. spark_master=28080"))?;
        if !known.iter().any(|s| s.name == name) {
            let names: Vec<&str> = known.iter().map(|s| s.name).collect();
            return Err(format!(
                "--port {a}: no service '{name}' (the services are {})",
                names.join(", ")
            ));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("--port {a}: '{port}' is not a port number (1-65535)"))?;
        if let Some((other, _)) = ports.iter().find(|(_, p)| **p == port) {
            return Err(format!(
                "--port {a}: port {port} is already asked for {other}"
            ));
        }
        ports.insert(name.to_string(), port);
    }
    Ok(ports)
}

/// What the user asked for besides the cluster.
#[derive(Clone, Debug, Default)]
pub struct TunnelOptions {
    /// Local ports asked for by service name; the others get a free port.
    pub ports: BTreeMap<String, u16>,
    /// One JSON object line instead of a line per service.
    pub json: bool,
    /// Print Spark Connect's token itself instead of a `$(cat FILE)` reading it.
    pub show_token: bool,
    /// Also write the token to this file (owner-only), and refer to it in the output.
    pub token_file: Option<std::path::PathBuf>,
}

/// A service that answered, with its local listener.
struct Forward {
    service: Service,
    listener: TcpListener,
    local_port: u16,
}

/// `tunnel`: forwards every service that answers on the master until SIGINT or SIGTERM.
pub async fn tunnel(ctx: &Ctx, opts: &TunnelOptions) -> CmdResult {
    let (conn, acc, c) = master_access(ctx).await?;
    let Some(spec) = node_specs(&c, &conn, &acc, true).into_iter().next() else {
        return Err((
            Failure::Error,
            format!("cluster '{}' has no master", ctx.cluster),
        ));
    };
    // As the master sees itself (see the module doc); its hostname if Nova shows no fixed IP.
    let target = c
        .master()
        .and_then(|m| m.fixed_ip())
        .unwrap_or(&spec.name)
        .to_string();
    let ssh = playbook_engine::connection::ssh::connect(&spec, None)
        .await
        .map_err(|e| {
            (
                Failure::Unreachable,
                format!("cannot reach the master of cluster '{}': {e}", ctx.cluster),
            )
        })?;
    let via = format!("{}@{} ({})", spec.user, spec.address, spec.name);
    let result = forward(ctx, opts, ssh.clone(), &target, &via).await;
    ssh.close().await;
    result
}

async fn forward(
    ctx: &Ctx,
    opts: &TunnelOptions,
    ssh: Arc<dyn Connection>,
    target: &str,
    via: &str,
) -> CmdResult {
    let candidates = services();
    let running = probe(ctx, ssh.as_ref(), target, &candidates).await?;
    if running.is_empty() {
        return Err((
            Failure::Error,
            format!(
                "nothing to forward: none of the services answers on the master of cluster '{}' \
                 ({target}, ports {}); is Spark running there? (`launch` configures it)",
                ctx.cluster,
                candidates
                    .iter()
                    .map(|s| s.port.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let token = if running.iter().any(|s| s.protocol == Protocol::SparkConnect) {
        token_shown(ctx, opts, ssh.as_ref()).await?
    } else {
        TokenShown::None
    };
    let forwards = listen(&running, opts).await?;
    print_mapping(&forwards, target, opts.json, &token);
    eprintln!("forwarding through {via}; press Ctrl-C to stop");
    let servers: Vec<_> = forwards
        .into_iter()
        .map(|f| tokio::spawn(serve(ssh.clone(), f, target.to_string())))
        .collect();
    let stopped = until_stopped().await;
    for s in servers {
        s.abort();
    }
    stopped.map_err(|e| (Failure::Error, format!("cannot wait for Ctrl-C: {e}")))
}

/// How the Spark Connect line shows the cluster's token: read from the master each time
/// (see [`connect`]), written to the controller's copy and to `--token-file`, and shown
/// only with `--show-token`.
async fn token_shown(
    ctx: &Ctx,
    opts: &TunnelOptions,
    ssh: &dyn Connection,
) -> Result<TokenShown, (Failure, String)> {
    let Some((token, kept)) = connect::refresh_token(ctx, ssh).await? else {
        return Ok(TokenShown::None);
    };
    if let Some(file) = &opts.token_file {
        connect::keep_token(file, &token).map_err(|e| (Failure::Error, e))?;
    }
    Ok(if opts.show_token {
        TokenShown::Literal(token)
    } else {
        TokenShown::File(opts.token_file.clone().unwrap_or(kept))
    })
}

/// The services whose port accepts a connection from the master. A refused or silent port
/// is skipped (said with `-v`); any other failure (the connection lost, the master's sshd
/// refusing to forward) ends the command, since no service could be forwarded either.
async fn probe(
    ctx: &Ctx,
    ssh: &dyn Connection,
    target: &str,
    candidates: &[Service],
) -> Result<Vec<Service>, (Failure, String)> {
    let opens = join_all(candidates.iter().map(|s| ssh.open_tunnel(target, s.port))).await;
    let mut running = Vec::new();
    for (s, open) in candidates.iter().zip(opens) {
        match open {
            Ok(mut stream) => {
                let _ = stream.shutdown().await;
                running.push(*s);
            }
            Err(ConnError::Unreachable {
                reason: Unreachable::Refused | Unreachable::Timeout,
                ..
            }) => {
                if ctx.verbose > 0 {
                    eprintln!(
                        "skipped {}: nothing answers on {target}:{} on the master",
                        s.name, s.port
                    );
                }
            }
            Err(e) => {
                return Err((
                    Failure::Unreachable,
                    format!(
                        "cannot forward {} of cluster '{}': {e}",
                        s.name, ctx.cluster
                    ),
                ));
            }
        }
    }
    Ok(running)
}

/// A listener on 127.0.0.1 for each running service: the port asked for, else a free one.
async fn listen(
    running: &[Service],
    opts: &TunnelOptions,
) -> Result<Vec<Forward>, (Failure, String)> {
    let mut forwards = Vec::new();
    for s in running {
        let asked = opts.ports.get(s.name).copied().unwrap_or(0);
        let listener = TcpListener::bind(("127.0.0.1", asked)).await.map_err(|e| {
            (
                Failure::Error,
                format!("cannot listen on 127.0.0.1:{asked} for {}: {e}", s.name),
            )
        })?;
        let local_port = listener
            .local_addr()
            .map_err(|e| (Failure::Error, format!("{}: {e}", s.name)))?
            .port();
        forwards.push(Forward {
            service: *s,
            listener,
            local_port,
        });
    }
    for (name, port) in &opts.ports {
        if !running.iter().any(|s| s.name == name) {
            eprintln!(
                "not forwarding {name} (asked for port {port}): it does not answer on the master"
            );
        }
    }
    Ok(forwards)
}

/// One line per service (`name  url`), or with `json` one object line:
/// `{"spark_master": {"url": ..., "local_port": ..., "remote": "10.0.0.5:8080"}, ...}`.
/// In JSON, Spark Connect's `url` has the token only with `--show-token`; `token_file`
/// names the file holding it.
fn print_mapping(forwards: &[Forward], target: &str, json_out: bool, token: &TokenShown) {
    if json_out {
        let doc: serde_json::Map<String, Value> = forwards
            .iter()
            .map(|f| {
                let mut entry = json!({
                    "url": f.service.url(f.local_port, &match token {
                        TokenShown::Literal(_) => token.clone(),
                        _ => TokenShown::None,
                    }),
                    "local_port": f.local_port,
                    "remote": format!("{target}:{}", f.service.port),
                });
                if let (Protocol::SparkConnect, TokenShown::File(file)) =
                    (f.service.protocol, token)
                {
                    entry["token_file"] = json!(file.display().to_string());
                }
                (f.service.name.to_string(), entry)
            })
            .collect();
        println!("{}", Value::Object(doc));
        return;
    }
    let width = forwards
        .iter()
        .map(|f| f.service.name.len())
        .max()
        .unwrap_or(0);
    for f in forwards {
        println!(
            "{:<width$}  {}",
            f.service.name,
            f.service.url(f.local_port, token)
        );
    }
}

/// Accepts local connections for one service forever, each carried by its own
/// `direct-tcpip` channel on the shared connection (which reconnects if the master dropped it).
async fn serve(ssh: Arc<dyn Connection>, f: Forward, target: String) {
    let (name, port) = (f.service.name, f.service.port);
    loop {
        let local = match f.listener.accept().await {
            Ok((local, _)) => local,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("{name}: cannot accept a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
        };
        let ssh = ssh.clone();
        let target = target.clone();
        tokio::spawn(async move { carry(ssh.as_ref(), local, &target, port, name).await });
    }
}

async fn carry(ssh: &dyn Connection, mut local: TcpStream, target: &str, port: u16, name: &str) {
    let _ = local.set_nodelay(true);
    match ssh.open_tunnel(target, port).await {
        Ok(mut remote) => {
            if let Err(e) = tokio::io::copy_bidirectional(&mut local, &mut remote).await {
                tracing::debug!("{name}: a forwarded connection ended: {e}");
            }
        }
        Err(e) => tracing::warn!("{name}: {e}"),
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
async fn until_stopped() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_its_own_name_and_port() {
        let s = services();
        let mut names: Vec<_> = s.iter().map(|s| s.name).collect();
        let mut ports: Vec<_> = s.iter().map(|s| s.port).collect();
        names.sort();
        names.dedup();
        ports.sort();
        ports.dedup();
        assert_eq!(names.len(), s.len());
        assert_eq!(ports.len(), s.len());
        assert!(s.iter().any(|s| s.name == "spark_master" && s.port == 8080));
    }

    #[test]
    fn urls_by_protocol() {
        let s = services();
        let by = |n: &str| *s.iter().find(|s| s.name == n).unwrap();
        assert_eq!(
            by("spark_master").url(41234, &TokenShown::None),
            "http://localhost:41234/"
        );
        assert_eq!(
            by("spark_connect").url(41236, &TokenShown::None),
            "sc://localhost:41236/"
        );
        assert_eq!(
            by("spark_connect").url(41236, &TokenShown::Literal("ab".into())),
            "sc://localhost:41236/;token=ab"
        );
    }

    #[test]
    fn port_requests_are_checked() {
        let ok = parse_ports(&["spark_master=28080".into(), "spark_connect=15002".into()]).unwrap();
        assert_eq!(ok["spark_master"], 28080);
        assert_eq!(ok["spark_connect"], 15002);
        for (bad, says) in [
            ("spark_master", "NAME=PORT"),
            ("nope=1", "no service 'nope'"),
            ("spark_master=0", "not a port"),
            ("spark_master=x", "not a port"),
            ("spark_master=70000", "not a port"),
        ] {
            let e = parse_ports(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = parse_ports(&["spark_master=1".into(), "ganglia=1".into()]).unwrap_err();
        assert!(e.contains("already asked for spark_master"), "{e}");
    }
}
