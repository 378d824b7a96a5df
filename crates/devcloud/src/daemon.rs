//! devcloud as a background daemon: started detached from the caller's terminal, found
//! again through its pid and endpoint files, stopped by pid with escalation.
//!
//! The caller supplies the command that serves (its own binary's `devcloud serve ...`), so
//! this crate does not need to know which program embeds it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::state::Store;
use crate::{endpoint_file, log_file, pid_file, seed};

const START_TIMEOUT: Duration = Duration::from_secs(120);

/// The pid in the pid file, if that process is still alive.
pub fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).ok()?;
    Some(pid)
}

/// The base URL recorded by the running server, if it answers on it.
pub fn answering_endpoint(dir: &Path) -> Option<String> {
    let url = std::fs::read_to_string(endpoint_file(dir))
        .ok()?
        .trim()
        .to_string();
    let addr: SocketAddr = url.strip_prefix("http://")?.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /identity/v3 HTTP/1.0\r\nHost: devcloud\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    (&head[9..12] == b"200").then_some(url)
}

/// Runs `serve` (a command that serves devcloud on `dir`) detached in its own session,
/// with its output appended to the log file and its pid in the pid file, and waits until
/// it answers. Returns its base URL.
pub fn start_detached(mut serve: Command, dir: &Path) -> anyhow::Result<String> {
    use std::os::unix::process::CommandExt;
    let _ = std::fs::remove_file(endpoint_file(dir));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(dir))
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", log_file(dir).display()))?;
    serve
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal session
    // so it survives this command and ignores the terminal's Ctrl-C.
    unsafe {
        serve.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = serve
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start devcloud serve: {e}"))?;
    std::fs::write(pid_file(dir), format!("{}\n", child.id()))?;
    // Generous: with object storage the server answers only once Swift's four Python
    // servers are up, which takes a while on a busy host; a server that fails exits, and
    // that is noticed at once below.
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(url) = answering_endpoint(dir) {
            return Ok(url);
        }
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(pid_file(dir));
            anyhow::bail!(
                "devcloud serve exited ({status}); see {}:\n{}",
                log_file(dir).display(),
                log_tail(dir)
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "devcloud did not answer within {}s; see {}",
                START_TIMEOUT.as_secs(),
                log_file(dir).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last lines of the log, for an error message.
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(log_file(dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Stops the running server: SIGTERM, then SIGKILL after 10 s. Returns the pid it stopped,
/// or `None` when none was running.
pub fn stop(dir: &Path) -> anyhow::Result<Option<i32>> {
    let Some(pid) = running_pid(dir) else {
        let _ = std::fs::remove_file(pid_file(dir));
        return Ok(None);
    };
    use nix::sys::signal::{Signal, kill};
    let target = nix::unistd::Pid::from_raw(pid);
    kill(target, Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while kill(target, None).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if kill(target, None).is_ok() {
        let _ = kill(target, Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(pid_file(dir));
    let _ = std::fs::remove_file(endpoint_file(dir));
    Ok(Some(pid))
}

/// The clouds.yaml entry for the seeded `demo` user and project.
pub fn cloud_entry(dir: &Path, url: &str) -> anyhow::Result<Value> {
    let st = Store::peek(dir)?;
    let user = st
        .users
        .iter()
        .find(|u| u.name == seed::DEMO_USER)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "state in {} has no `{}` user",
                dir.display(),
                seed::DEMO_USER
            )
        })?;
    let mut entry = json!({
        "auth": {
            "auth_url": format!("{url}/identity"),
            "username": user.name,
            "password": user.password,
            "project_name": seed::DEMO_PROJECT,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "interface": "public",
        "identity_api_version": 3,
    });
    // Object storage serves https with devcloud's own CA, as a private cloud does: the
    // client (and the openstack CLI) trust it through `cacert`.
    let ca = crate::swift::ca_file(dir);
    if ca.is_file() {
        entry["cacert"] = json!(ca.display().to_string());
    }
    Ok(entry)
}

/// Adds or replaces `clouds.devcloud` in the clouds.yaml at `path`, keeping every other
/// cloud in the file; the file is replaced atomically and readable by its owner only,
/// since it holds a password.
pub fn write_clouds_yaml(path: &Path, entry: &Value) -> anyhow::Result<()> {
    let mut doc: Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("cannot parse {}: {e}", path.display()))?,
        Ok(_) => json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let Some(root) = doc.as_object_mut() else {
        anyhow::bail!("{}: the top level is not a mapping", path.display());
    };
    let clouds = root.entry("clouds").or_insert_with(|| json!({}));
    let Some(clouds) = clouds.as_object_mut() else {
        anyhow::bail!("{}: `clouds` is not a mapping", path.display());
    };
    clouds.insert("devcloud".into(), entry.clone());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, serde_saphyr::to_string(&doc)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot replace {}: {e}", path.display()))?;
    Ok(())
}
