//! Object storage: a real OpenStack Swift (the Debian packages) run by devcloud, as a cloud
//! with Swift, s3api and s3token has it.
//!
//! devcloud does not imitate Swift: object storage is too large an API to fake faithfully,
//! and the point is that S3 clients, `openstack container/object` and anything a cluster
//! does with objects meet the real thing. devcloud writes the configuration, builds the
//! rings (one device, one replica, data in the state dir) and runs the account, container
//! and object servers on 127.0.0.1 and the proxy on the address machines can reach. The
//! proxy's pipeline is the one Swift 2.30's s3api documentation gives for Keystone:
//! `authtoken` (keystonemiddleware, validating native Swift tokens against devcloud's
//! Keystone with the `swift` service user), `s3api` (S3 requests; SigV4 with region
//! `RegionOne`), `s3token` (asks devcloud's `/v3/s3tokens` who signed) and `keystoneauth`
//! (project members with role `member` own `AUTH_<project id>`).
//!
//! Every server runs in the foreground (`workers = 0`, one process) in a process group of
//! its own, its output in `DIR/swift/<server>.log` and its pid in `DIR/swift/pids`: dropping
//! [`Swift`] stops them all, and `devcloud down` stops what a killed devcloud left behind.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What Swift needs, and the package that brings each (Debian 12: Swift 2.30.1).
const PROGRAMS: [(&str, &str); 6] = [
    ("swift-ring-builder", "swift"),
    ("openssl", "openssl"),
    ("swift-proxy-server", "swift-proxy"),
    ("swift-account-server", "swift-account"),
    ("swift-container-server", "swift-container"),
    ("swift-object-server", "swift-object"),
];

pub const INSTALL_HINT: &str = "apt-get install swift swift-proxy swift-account \
     swift-container swift-object python3-keystonemiddleware";

/// How long the proxy may take to answer `/healthcheck` (Python start-up on a busy host).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Where Swift's files live in a devcloud state dir.
pub fn swift_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("swift")
}

fn pids_file(state_dir: &Path) -> PathBuf {
    swift_dir(state_dir).join("pids")
}

/// The Keystone service user the proxy's authtoken validates tokens with.
#[derive(Clone, Debug)]
pub struct ServiceUser {
    pub name: String,
    pub password: String,
    pub project: String,
}

/// What to run: where the proxy listens and where Keystone is.
#[derive(Clone, Debug)]
pub struct SwiftSpec {
    /// The proxy's address: the controller's on the external bridge (netns), else loopback.
    pub proxy_ip: Ipv4Addr,
    /// devcloud's Keystone (`http://host:port/identity`).
    pub keystone_url: String,
    pub service_user: ServiceUser,
}

/// The running servers; dropping it stops them.
pub struct Swift {
    /// `http://ip:port` of the proxy (the S3 endpoint; Swift's is under `/v1`).
    pub url: String,
    children: Vec<(String, Child)>,
    state_dir: PathBuf,
}

/// A free TCP port on `ip`, from the kernel (as devcloud's own `--listen 127.0.0.1:0`).
fn free_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0))
        .map_err(|e| anyhow::anyhow!("object storage: cannot find a free port on {ip}: {e}"))?;
    Ok(l.local_addr()?.port())
}

/// The first program Swift needs that is missing, as an error naming its package.
pub fn check_installed() -> anyhow::Result<()> {
    for (prog, pkg) in PROGRAMS {
        if which(prog).is_none() {
            anyhow::bail!(
                "object storage needs OpenStack Swift: `{prog}` not found (package {pkg}; \
                 {INSTALL_HINT})"
            );
        }
    }
    // The proxy's interpreter must have keystonemiddleware for authtoken.
    let python = swift_python();
    let ok = python_cmd(&python)
        .args(["-c", "import keystonemiddleware.auth_token"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        anyhow::bail!(
            "object storage needs keystonemiddleware for Swift's proxy: `{python}` cannot \
             import it (package python3-keystonemiddleware; {INSTALL_HINT})"
        );
    }
    Ok(())
}

/// The interpreter Swift's programs run with (their `#!` line), not whatever `python3`
/// comes first on PATH.
fn swift_python() -> String {
    which("swift-proxy-server")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| {
            t.lines()
                .next()
                .and_then(|l| l.strip_prefix("#!"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "python3".into())
}

fn python_cmd(python: &str) -> Command {
    let mut parts = python.split_whitespace();
    let mut cmd = Command::new(parts.next().unwrap_or("python3"));
    cmd.args(parts);
    cmd
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Swift keeps object metadata in extended attributes: a filesystem without them fails
/// every PUT, so it is refused up front.
fn check_xattrs(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"")?;
    let out = python_cmd(&swift_python())
        .arg("-c")
        .arg("import os, sys; os.setxattr(sys.argv[1], 'user.swift.probe', b'1')")
        .arg(&probe)
        .output();
    let _ = std::fs::remove_file(&probe);
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => anyhow::bail!(
            "object storage: the filesystem of {} does not support extended attributes, \
             which Swift needs ({}); use a state dir on ext4/xfs/btrfs",
            dir.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => anyhow::bail!("object storage: cannot run python3 to probe xattrs: {e}"),
    }
}

/// The hash path suffix makes object placement unguessable; it must never change for a
/// given data dir, so it is made once and kept.
fn hash_suffix(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("hash_suffix");
    if let Ok(s) = std::fs::read_to_string(&path)
        && !s.trim().is_empty()
    {
        return Ok(s.trim().to_string());
    }
    let s = crate::state::new_hex_id();
    std::fs::write(&path, &s)?;
    Ok(s)
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into())
}

/// The storage server's config (account, container or object).
fn storage_conf(kind: &str, port: u16, etc: &Path, data: &Path, user: &str) -> String {
    format!(
        "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\nuser = {user}\n\
         swift_dir = {etc}\ndevices = {data}\nmount_check = false\nlog_name = {kind}-server\n\n\
         [pipeline:main]\npipeline = {kind}-server\n\n\
         [app:{kind}-server]\nuse = egg:swift#{kind}\n",
        etc = etc.display(),
        data = data.display(),
    )
}

/// The proxy's config: Swift 2.30's pipeline for Keystone with s3api (docs: "When using
/// keystone"), without `cache` (no memcached: authtoken caches in process).
/// The proxy's configuration; it serves TLS with `tls` = (certificate, key).
fn proxy_conf(spec: &SwiftSpec, port: u16, etc: &Path, user: &str, tls: (&Path, &Path)) -> String {
    let ks = &spec.keystone_url;
    let su = &spec.service_user;
    format!(
        "[DEFAULT]\ncert_file = {cert}\nkey_file = {key}\n\
         bind_ip = {ip}\nbind_port = {port}\nworkers = 0\nuser = {user}\n\
         swift_dir = {etc}\nlog_name = proxy-server\n\n\
         [pipeline:main]\npipeline = catch_errors gatekeeper healthcheck proxy-logging \
         listing_formats authtoken s3api s3token keystoneauth copy slo dlo proxy-logging \
         proxy-server\n\n\
         [app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n\n\
         [filter:authtoken]\npaste.filter_factory = keystonemiddleware.auth_token:filter_factory\n\
         www_authenticate_uri = {ks}\nauth_url = {ks}\nauth_type = password\n\
         username = {name}\npassword = {password}\nproject_name = {project}\n\
         user_domain_id = default\nproject_domain_id = default\nregion_name = {region}\n\
         delay_auth_decision = True\n\n\
         [filter:s3api]\nuse = egg:swift#s3api\nlocation = {region}\n\n\
         [filter:s3token]\nuse = egg:swift#s3token\nauth_uri = {ks}/v3\n\n\
         [filter:keystoneauth]\nuse = egg:swift#keystoneauth\noperator_roles = admin, member\n\n\
         [filter:catch_errors]\nuse = egg:swift#catch_errors\n\n\
         [filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n\
         [filter:healthcheck]\nuse = egg:swift#healthcheck\n\n\
         [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n\
         [filter:listing_formats]\nuse = egg:swift#listing_formats\n\n\
         [filter:copy]\nuse = egg:swift#copy\n\n\
         [filter:slo]\nuse = egg:swift#slo\n\n\
         [filter:dlo]\nuse = egg:swift#dlo\n",
        ip = spec.proxy_ip,
        cert = tls.0.display(),
        key = tls.1.display(),
        etc = etc.display(),
        name = su.name,
        password = su.password,
        project = su.project,
        region = crate::keystone::REGION,
    )
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Builds `etc/<kind>.ring.gz` with one device on 127.0.0.1:`port`. Rebuilt at every start
/// (the ports change): with one device and one replica every partition is on it, so the
/// data stays where it is.
fn build_ring(etc: &Path, kind: &str, port: u16, log: &Path) -> anyhow::Result<()> {
    let builder = etc.join(format!("{kind}.builder"));
    let _ = std::fs::remove_file(&builder);
    let _ = std::fs::remove_dir_all(etc.join("backups"));
    let dev = format!("r1z1-127.0.0.1:{port}/d0");
    for args in [
        vec!["create", "10", "1", "1"],
        vec!["add", dev.as_str(), "100"],
        vec!["rebalance"],
    ] {
        let out = Command::new("swift-ring-builder")
            .arg(&builder)
            .args(&args)
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run swift-ring-builder: {e}"))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        f.write_all(&out.stdout)?;
        f.write_all(&out.stderr)?;
        // 1 is "finished with warnings" (the one-device ring is not balanced for failure).
        if !matches!(out.status.code(), Some(0 | 1)) {
            anyhow::bail!(
                "object storage: swift-ring-builder {kind} {} failed ({}); see {}",
                args.join(" "),
                out.status,
                log.display()
            );
        }
    }
    Ok(())
}

/// The CA devcloud's proxy certificate is signed with: clients trust it through
/// clouds.yaml's `cacert` (`devcloud up` writes it there), the cluster's JVMs through the
/// spark role's trust store.
pub fn ca_file(state_dir: &Path) -> PathBuf {
    swift_dir(state_dir).join("tls/ca.pem")
}

/// Why https: S3 clients (the AWS SDK v2 under Hadoop's S3A) sign uploads over plain http
/// with `aws-chunked` encoding, which Swift 2.30's s3api refuses (501 NotImplemented), while
/// over https they send `UNSIGNED-PAYLOAD`, which it takes. Real clouds serve S3 on https.
///
/// Makes (once) a CA and a certificate for `ip` and 127.0.0.1 signed by it, in
/// `DIR/swift/tls`; a certificate for another address is made again. Returns the proxy's
/// certificate and key.
fn ensure_tls(state_dir: &Path, ip: Ipv4Addr) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = swift_dir(state_dir).join("tls");
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let openssl = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .map_err(|e| anyhow::anyhow!("object storage: cannot run openssl: {e}"))?;
        if !out.status.success() {
            anyhow::bail!(
                "object storage: openssl {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    if !dir.join("ca.pem").is_file() || !dir.join("ca.key").is_file() {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=devcloud CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
        let _ = std::fs::remove_file(dir.join("proxy.pem"));
    }
    let for_ip = dir.join("proxy.ip");
    let current = std::fs::read_to_string(&for_ip).unwrap_or_default();
    if current.trim() != ip.to_string() || !dir.join("proxy.pem").is_file() {
        std::fs::write(
            dir.join("proxy.ext"),
            format!(
                "subjectAltName=IP:{ip},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "proxy.key",
            "-out",
            "proxy.csr",
            "-subj",
            "/CN=devcloud object storage",
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "proxy.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "proxy.pem",
            "-days",
            "3650",
            "-extfile",
            "proxy.ext",
        ])?;
        std::fs::write(&for_ip, ip.to_string())?;
    }
    Ok((dir.join("proxy.pem"), dir.join("proxy.key")))
}

impl Swift {
    /// Writes the configuration, builds the rings, starts the four servers and waits until
    /// the proxy answers `/healthcheck`.
    pub async fn start(state_dir: &Path, spec: &SwiftSpec) -> anyhow::Result<Swift> {
        check_installed()?;
        // Whatever a killed devcloud left running on this state dir goes first.
        stop_recorded(state_dir);
        let dir = swift_dir(state_dir);
        let etc = dir.join("etc");
        let data = dir.join("data");
        std::fs::create_dir_all(&etc)
            .and_then(|_| std::fs::create_dir_all(data.join("d0")))
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        check_xattrs(&data.join("d0"))?;
        let suffix = hash_suffix(&dir)?;
        write_private(
            &etc.join("swift.conf"),
            &format!(
                "[swift-hash]\nswift_hash_path_suffix = {suffix}\nswift_hash_path_prefix = \
                 devcloud\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
            ),
        )?;
        let user = user_name();
        let proxy_port = free_port(spec.proxy_ip)?;
        let ring_log = dir.join("rings.log");
        let _ = std::fs::remove_file(&ring_log);
        let mut confs = Vec::new();
        for kind in ["account", "container", "object"] {
            let port = free_port(Ipv4Addr::LOCALHOST)?;
            build_ring(&etc, kind, port, &ring_log)?;
            let conf = etc.join(format!("{kind}-server.conf"));
            write_private(&conf, &storage_conf(kind, port, &etc, &data, &user))?;
            confs.push((format!("{kind}-server"), conf));
        }
        let (cert, key) = ensure_tls(state_dir, spec.proxy_ip)?;
        let conf = etc.join("proxy-server.conf");
        write_private(
            &conf,
            &proxy_conf(spec, proxy_port, &etc, &user, (&cert, &key)),
        )?;
        confs.push(("proxy-server".into(), conf));

        let mut swift = Swift {
            url: format!("https://{}:{proxy_port}", spec.proxy_ip),
            children: Vec::new(),
            state_dir: state_dir.to_path_buf(),
        };
        for (name, conf) in confs {
            let child = spawn(&dir, &name, &conf)?;
            swift.children.push((name, child));
            swift.record_pids()?;
        }
        swift
            .wait_healthy(SocketAddr::from((spec.proxy_ip, proxy_port)))
            .await?;
        Ok(swift)
    }

    fn record_pids(&self) -> anyhow::Result<()> {
        let text: String = self
            .children
            .iter()
            .map(|(n, c)| format!("{} {n}\n", c.id()))
            .collect();
        std::fs::write(pids_file(&self.state_dir), text)?;
        Ok(())
    }

    async fn wait_healthy(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ca = ca_file(&self.state_dir);
            if tokio::task::spawn_blocking(move || healthcheck(addr, &ca))
                .await
                .unwrap_or(false)
            {
                return Ok(());
            }
            for (name, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = swift_dir(&self.state_dir).join(format!("{name}.log"));
                    anyhow::bail!(
                        "object storage: swift {name} exited ({status}); see {}:\n{}",
                        log.display(),
                        tail(&log)
                    );
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "object storage: Swift's proxy did not answer https://{addr}/healthcheck \
                     within {}s; see {}",
                    START_TIMEOUT.as_secs(),
                    swift_dir(&self.state_dir)
                        .join("proxy-server.log")
                        .display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops every server: SIGTERM to its process group, SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let pids: Vec<i32> = self.children.iter().map(|(_, c)| c.id() as i32).collect();
        stop_groups(&pids);
        for (_, c) in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
        let _ = std::fs::remove_file(pids_file(&self.state_dir));
    }
}

impl Drop for Swift {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts one server in its own session (so its group can be signalled as a whole), its
/// output appended to `DIR/swift/<name>.log`.
fn spawn(dir: &Path, name: &str, conf: &Path) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(format!("swift-{name}"));
    // --verbose: log to the console too (our log file), not only to syslog.
    cmd.arg(conf)
        .arg("--verbose")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
        .map_err(|e| anyhow::anyhow!("object storage: cannot start swift-{name}: {e}"))
}

/// `GET /healthcheck` over TLS, with the certificate checked against devcloud's CA (so a
/// wrong certificate fails here, not in the first client): through `openssl s_client`,
/// which making the certificates needs anyway.
fn healthcheck(addr: SocketAddr, ca: &Path) -> bool {
    use std::io::Write as _;
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        return false;
    }
    let Ok(mut child) = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"GET /healthcheck HTTP/1.0\r\nHost: devcloud\r\n\r\n");
    }
    // HTTP/1.0: the proxy closes after its answer and s_client ends; one that hangs is
    // killed rather than holding `up` forever.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
    // Not s_client's status: eventlet closes without TLS close_notify, which OpenSSL 3
    // reports as an error after the full answer. A certificate that fails verification
    // ends s_client before the request is sent, so no answer comes.
    child
        .wait_with_output()
        .is_ok_and(|o| o.stdout.starts_with(b"HTTP/1.1 200"))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn stop_groups(pids: &[i32]) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    for &p in pids {
        let _ = killpg(Pid::from_raw(p), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &p in pids {
        let _ = killpg(Pid::from_raw(p), Signal::SIGKILL);
    }
}

/// Stops the servers recorded in `DIR/swift/pids` that still run Swift (a devcloud killed
/// with SIGKILL leaves them behind; the check on the command line keeps a reused pid safe).
/// Returns how many there were.
pub fn stop_recorded(state_dir: &Path) -> usize {
    let text = std::fs::read_to_string(pids_file(state_dir)).unwrap_or_default();
    let pids: Vec<i32> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("swift-"))
        })
        .collect();
    stop_groups(&pids);
    let _ = std::fs::remove_file(pids_file(state_dir));
    pids.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_pipeline_is_swift_docs_keystone_order() {
        let spec = SwiftSpec {
            proxy_ip: Ipv4Addr::new(10, 9, 255, 1),
            keystone_url: "http://127.0.0.1:8790/identity".into(),
            service_user: ServiceUser {
                name: "swift".into(),
                password: "pw".into(),
                project: "service".into(),
            },
        };
        let conf = proxy_conf(
            &spec,
            8080,
            Path::new("/s/etc"),
            "root",
            (Path::new("/t/proxy.pem"), Path::new("/t/proxy.key")),
        );
        let pipeline = conf
            .lines()
            .find_map(|l| l.strip_prefix("pipeline = "))
            .unwrap();
        let at = |f: &str| pipeline.split(' ').position(|x| x == f).unwrap();
        assert!(at("authtoken") < at("s3api"));
        assert!(at("s3api") < at("s3token"));
        assert!(at("s3token") < at("keystoneauth"));
        assert!(at("keystoneauth") < at("slo"));
        assert_eq!(pipeline.split(' ').next_back(), Some("proxy-server"));
        assert!(conf.contains("bind_ip = 10.9.255.1\nbind_port = 8080\n"));
        assert!(conf.contains("cert_file = /t/proxy.pem\nkey_file = /t/proxy.key\n"));
        assert!(conf.contains("auth_uri = http://127.0.0.1:8790/identity/v3\n"));
        assert!(conf.contains("location = RegionOne\n"));
        // Every filter in the pipeline has its section.
        for f in pipeline.split(' ').filter(|f| *f != "proxy-server") {
            assert!(conf.contains(&format!("[filter:{f}]")), "{f}");
        }
        let acct = storage_conf("account", 6202, Path::new("/e"), Path::new("/d"), "root");
        assert!(acct.contains("mount_check = false\n"));
        assert!(acct.contains("bind_ip = 127.0.0.1\n"));
    }
}
