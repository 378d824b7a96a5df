//! The package mirror devcloud's image-booted machines use: Debian's `apt-cacher-ng`, a real
//! caching proxy, on the host's loopback, and per devcloud a relay from the controller's
//! address (which every machine reaches, through the tenant router when it has no floating
//! IP) to it. A cloud gives its VMs a mirror or proxy the same way (cloud-init's `apt: proxy:`
//! setting, which the machines' seed writes to the file cloud-init uses).
//!
//! One cache serves every devcloud on the host (tests run several at once): it listens on
//! loopback only, never on a machine-facing address, and each devcloud's relay is the one way
//! its machines reach it. Machines have no DNS and no route past the controller's range, so
//! the proxy is their only way to the package archive. The cache directory is kept across
//! runs (`SPARK_OPENSTACK_APT_CACHE`; CI puts it in its cache), so a second launch downloads
//! nothing. devcloud starts the cache when nothing answers on its port and leaves it running
//! for the next devcloud, like the system service it is on Debian; `.ci/run` starts it first
//! and stops it at the end.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The cache's port on 127.0.0.1: not apt-cacher-ng's default 3142, so a system
/// apt-cacher-ng (started by its package where services start on install) never clashes.
pub const CACHE_PORT: u16 = 3149;

/// The port of the relay on the controller's address, apt-cacher-ng's well-known one.
pub const RELAY_PORT: u16 = 3142;

/// The cache directory when `SPARK_OPENSTACK_APT_CACHE` does not name one.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/spark-openstack/apt-cacher-ng";

/// `SPARK_OPENSTACK_APT_CACHE`, else [`DEFAULT_CACHE_DIR`].
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("SPARK_OPENSTACK_APT_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
}

/// The cache's proxy URL for processes on the host (the image build).
pub fn cache_url() -> String {
    format!("http://127.0.0.1:{CACHE_PORT}/")
}

/// The proxy URL machines are given: the relay on the controller's address.
pub fn machine_url(controller_ip: Ipv4Addr) -> String {
    format!("http://{controller_ip}:{RELAY_PORT}/")
}

fn answers() -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, CACHE_PORT));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Makes sure the cache answers on 127.0.0.1:[`CACHE_PORT`], starting apt-cacher-ng with its
/// cache in `dir` when nothing does. The configuration is ours (written to `dir/conf`), not
/// the system's: no remapping of archive names to mirror lists, since the system's list
/// names mirrors this host may not reach; files are cached under the host name apt asked for.
/// Returns the pid of the apt-cacher-ng it started, `None` when one was answering already.
pub fn ensure_cache(dir: &Path) -> anyhow::Result<Option<u32>> {
    if answers() {
        return Ok(None);
    }
    let bin = Path::new("/usr/sbin/apt-cacher-ng");
    if !bin.exists() {
        bail!(
            "image-booted machines need the apt cache, but {} is missing (apt-get install \
             apt-cacher-ng), or give devcloud `netns: {{machine_fs: host}}` for machines that \
             share the host's filesystem",
            bin.display()
        );
    }
    let conf = dir.join("conf");
    for d in [dir.join("cache"), dir.join("log"), conf.clone()] {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    std::fs::write(
        conf.join("acng.conf"),
        "# Written by devcloud: a plain caching proxy, no archive remapping.\n\
         SupportDir: /usr/lib/apt-cacher-ng\n\
         ReportPage: acng-report.html\n\
         ExThreshold: 4\n",
    )
    .with_context(|| format!("cannot write {}", conf.join("acng.conf").display()))?;
    let out = std::fs::File::create(dir.join("acng.out"))
        .with_context(|| format!("cannot write {}", dir.join("acng.out").display()))?;
    let err = out.try_clone()?;
    let arg = |k: &str, v: &Path| format!("{k}={}", v.display());
    let status = Command::new("setsid")
        .arg("-f")
        .arg(bin)
        .arg("-c")
        .arg(&conf)
        .args(["ForeGround=1", "BindAddress=127.0.0.1"])
        .arg(format!("Port={CACHE_PORT}"))
        .arg(arg("CacheDir", &dir.join("cache")))
        .arg(arg("LogDir", &dir.join("log")))
        .arg(arg("PidFile", &dir.join("pid")))
        .arg(arg("SocketPath", &dir.join("socket")))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .context("cannot start apt-cacher-ng")?;
    if !status.success() {
        bail!("setsid apt-cacher-ng failed: {status}");
    }
    let started = Instant::now();
    while !answers() {
        if started.elapsed() > Duration::from_secs(15) {
            let log = std::fs::read_to_string(dir.join("acng.out")).unwrap_or_default();
            bail!(
                "apt-cacher-ng did not answer on 127.0.0.1:{CACHE_PORT} within 15 s; its \
                 output ({}): {}",
                dir.join("acng.out").display(),
                log.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
    Ok(pid.trim().parse().ok())
}

/// Relays `listen` to the cache while it lives (dropping it stops accepting).
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Listens on `listen` and forwards every connection to the cache, byte for byte.
    pub async fn start(listen: SocketAddr) -> anyhow::Result<Relay> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("apt proxy relay: cannot listen on {listen}"))?;
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, CACHE_PORT));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    // A cache that went away closes the client's connection; apt retries and
                    // reports the proxy by name.
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                });
            }
        });
        Ok(Relay { task })
    }
}
