//! Starting and stopping one sshd: keys, config, namespace isolation, readiness.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{HostOptions, TestHost};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Started {
    pub host: TestHost,
    pub child: Child,
    pub host_key_pub: String,
}

/// Creates an unencrypted ed25519 key at `path` unless one exists.
pub fn ensure_key(path: &Path, comment: &str) -> Result<()> {
    if path.exists() && path.with_extension("pub").exists() {
        return Ok(());
    }
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .context("cannot run ssh-keygen (install openssh-client)")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed for {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

/// Whether each sshd can get a private mount namespace (root with `unshare` available).
pub fn can_isolate() -> bool {
    is_root()
        && Command::new("unshare")
            .args(["-m", "--", "true"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// A port that is free right now on `ip` (the kernel picks it).
pub fn free_port(ip: IpAddr) -> Result<u16> {
    let l = TcpListener::bind(SocketAddr::new(ip, 0))
        .with_context(|| format!("cannot find a free port on {ip}"))?;
    Ok(l.local_addr()?.port())
}

/// Writes the host's files and starts its sshd in the background.
pub fn start(
    dir: &Path,
    h: &HostOptions,
    port: u16,
    client_pub: &str,
    isolate: bool,
) -> Result<Started> {
    let hdir = dir.join(&h.name);
    let root = hdir.join("root");
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    set_mode(&root, 0o700)?;
    let host_key = hdir.join("ssh_host_ed25519_key");
    ensure_key(&host_key, &h.name)?;
    let host_key_pub = std::fs::read_to_string(host_key.with_extension("pub"))
        .with_context(|| format!("cannot read {}.pub", host_key.display()))?;
    let authorized = hdir.join("authorized_keys");
    std::fs::write(&authorized, client_pub)
        .with_context(|| format!("cannot write {}", authorized.display()))?;
    let config = hdir.join("sshd_config");
    std::fs::write(
        &config,
        sshd_config(h, port, &hdir, &root, &host_key, isolate),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    if is_root() {
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").context("cannot create /run/sshd")?;
    }
    let log = hdir.join("sshd.log");
    let logfile = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut cmd = if isolate {
        let script = format!(
            "mount --make-rprivate / && mount --bind \"$1\" /root && exec {SSHD} -D -e -f \"$2\""
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "--", "/bin/sh", "-c", &script, "sh"])
            .arg(&root)
            .arg(&config);
        c
    } else {
        let mut c = Command::new(SSHD);
        c.args(["-D", "-e", "-f"]).arg(&config);
        c
    };
    cmd.stdin(Stdio::null())
        .stdout(logfile.try_clone()?)
        .stderr(logfile);
    // Its own session: the sshd outlives `testbed up` and is not hit by the terminal's ^C.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {SSHD} (install openssh-server)"))?;
    // unshare and sh exec into sshd, so the child's pid is sshd's.
    std::fs::write(hdir.join("pid"), child.id().to_string())
        .with_context(|| format!("cannot write {}", hdir.join("pid").display()))?;
    Ok(Started {
        host: TestHost {
            name: h.name.clone(),
            address: h.listen.to_string(),
            port,
            root,
            log,
            pid: child.id(),
        },
        child,
        host_key_pub,
    })
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", p.display()))
}

fn sshd_config(
    h: &HostOptions,
    port: u16,
    hdir: &Path,
    root: &Path,
    host_key: &Path,
    isolate: bool,
) -> String {
    let mut c = format!(
        "# spark-openstack testbed host {name}\n\
         Port {port}\n\
         ListenAddress {listen}\n\
         HostKey {key}\n\
         AuthorizedKeysFile {auth}\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PidFile {pid}\n\
         MaxSessions 10\n\
         MaxStartups 100:30:200\n\
         UseDNS no\n\
         PrintMotd no\n\
         AllowTcpForwarding yes\n\
         LogLevel {level}\n",
        name = h.name,
        listen = h.listen,
        key = host_key.display(),
        auth = hdir.join("authorized_keys").display(),
        pid = hdir.join("sshd.pid").display(),
        level = h.log_level,
    );
    if Path::new("/usr/lib/openssh/sftp-server").exists() {
        c.push_str("Subsystem sftp /usr/lib/openssh/sftp-server\n");
    }
    if !isolate {
        // Without a mount namespace, a private HOME is the next best separation.
        c.push_str(&format!("SetEnv HOME={}\n", root.display()));
    }
    for line in &h.extra_config {
        c.push_str(line);
        c.push('\n');
    }
    c
}

/// Waits until the host answers with an SSH banner; names its log on failure.
pub fn wait_for_banner(h: &TestHost, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let addr: SocketAddr = format!("{}:{}", h.address, h.port)
        .parse()
        .with_context(|| format!("bad address {}:{}", h.address, h.port))?;
    loop {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-") {
                return Ok(());
            }
        }
        if !pid_alive(h.pid) || Instant::now() > deadline {
            let log = std::fs::read_to_string(&h.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            bail!(
                "sshd for {} did not come up on {addr} (log {}): {}",
                h.name,
                h.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) counts as dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Stops one sshd: SIGTERM, then SIGKILL if it lingers.
pub fn terminate(pid: u32) {
    use nix::sys::signal::{Signal, kill};
    let p = nix::unistd::Pid::from_raw(pid as i32);
    let _ = kill(p, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if pid_alive(pid) {
        let _ = kill(p, Signal::SIGKILL);
    }
}

/// Stops every sshd whose pid file lies in a subdirectory of `dir`, checking that the pid
/// still belongs to an sshd started with that directory's config (pids get reused).
pub fn stop_all(dir: &Path) -> Result<usize> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut stopped = 0;
    for e in entries.flatten() {
        let pidfile: PathBuf = e.path().join("pid");
        let Ok(text) = std::fs::read_to_string(&pidfile) else {
            continue;
        };
        let Ok(pid) = text.trim().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let config = e.path().join("sshd_config");
        let ours = String::from_utf8_lossy(&cmdline).contains(&*config.to_string_lossy());
        if ours && pid_alive(pid) {
            terminate(pid);
            stopped += 1;
        }
        let _ = std::fs::remove_file(&pidfile);
    }
    Ok(stopped)
}
