//! The kernel side of one machine: its network namespace with veths into the bridges, and its
//! sshd started in fresh mount, UTS and PID namespaces, so everything an SSH session spawns
//! lives inside the machine (own network, hostname, /root, /tmp, /mnt, /etc/hosts, `ps`).

use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cmd::{render, run, run_tolerant};
use super::config::NetnsConfig;
use super::error::{NetnsError, Result};
use super::files::MachineFiles;
use super::network::disable_ipv6;

/// Runs as `sh -c BOOT_SCRIPT sh <machine dir> <sshd>` inside the new namespaces. It is a
/// constant (arguments come as `$1`/`$2`), so no value is ever spliced into shell code.
/// /tmp is bound last: the machine dir is outside /tmp, /root and /mnt (checked by the config),
/// so the binds never hide each other.
const BOOT_SCRIPT: &str = r#"set -e
dir=$1
mount --make-rprivate /
mount --bind "$dir/root" /root
mount --bind "$dir/hosts" /etc/hosts
if [ -e /etc/hostname ]; then mount --bind "$dir/hostname" /etc/hostname; fi
mount --bind "$dir/mnt" /mnt
mount --bind "$dir/tmp" /tmp
cat "$dir/hostname" > /proc/sys/kernel/hostname
exec "$2" -D -e -f "$dir/sshd_config"
"#;

/// How long sshd may take to write its pid file (it does so once it listens).
const SSHD_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Creates the namespace with loopback up, forwarding off and a veth named `eth0` on the tenant
/// bridge carrying `fixed_ip`. No default route: the machine reaches only its own networks.
pub fn create_netns(cfg: &NetnsConfig, short: &str, fixed_ip: Ipv4Addr) -> Result<()> {
    let ns = cfg.netns_name(short);
    run("ip", &["netns", "add", &ns])?;
    // Unknown keys (no IPv6 in the kernel) are ignored with -e.
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-q",
            "-e",
            "-w",
            "net.ipv4.ip_forward=0",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )?;
    run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
    let prefix = cfg.tenant.prefix_len();
    add_veth(
        &ns,
        &cfg.tenant_veth(short),
        "eth0",
        fixed_ip,
        prefix,
        &cfg.tenant_bridge(),
    )
}

/// Adds the `eth1` veth on the external bridge with the floating address.
pub fn attach_floating(cfg: &NetnsConfig, short: &str, ip: Ipv4Addr) -> Result<()> {
    let ns = cfg.netns_name(short);
    let prefix = cfg.floating.prefix_len();
    add_veth(
        &ns,
        &cfg.floating_veth(short),
        "eth1",
        ip,
        prefix,
        &cfg.ext_bridge(),
    )
}

/// Removes the floating veth (both ends go with the host end).
pub fn detach_floating(cfg: &NetnsConfig, short: &str) -> Result<()> {
    let veth = cfg.floating_veth(short);
    run_tolerant("ip", &["link", "del", &veth], &["Cannot find device"])
}

fn add_veth(
    ns: &str,
    host_end: &str,
    inside: &str,
    ip: Ipv4Addr,
    prefix: u8,
    bridge: &str,
) -> Result<()> {
    run(
        "ip",
        &[
            "link", "add", host_end, "type", "veth", "peer", "name", inside, "netns", ns,
        ],
    )?;
    disable_ipv6(host_end);
    run("ip", &["link", "set", host_end, "master", bridge])?;
    run("ip", &["link", "set", host_end, "up"])?;
    let addr = format!("{ip}/{prefix}");
    run("ip", &["-n", ns, "addr", "add", &addr, "dev", inside])?;
    run("ip", &["-n", ns, "link", "set", inside, "up"])?;
    Ok(())
}

/// Starts sshd inside the machine and waits until it listens (its pid file appears).
///
/// `setsid -f` forks, so sshd is detached from devcloud (it survives devcloud exiting, and
/// devcloud never has to reap it); `ip netns exec` and `unshare` exec in place, so sshd is the
/// first process of the machine's PID namespace.
pub fn start_sshd(cfg: &NetnsConfig, short: &str, files: &MachineFiles, id: &str) -> Result<()> {
    let ns = cfg.netns_name(short);
    // sshd refuses to start without its privilege separation directory (shared with the host).
    std::fs::create_dir_all("/run/sshd").map_err(|e| NetnsError::io("/run/sshd", e))?;
    let pid_file = files.pid_file();
    let _ = std::fs::remove_file(&pid_file);
    let log_path = files.log();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| NetnsError::io(&log_path, e))?;
    let err_log = log.try_clone().map_err(|e| NetnsError::io(&log_path, e))?;
    let dir = files.dir.display().to_string();
    let sshd = cfg.sshd.display().to_string();
    let args = [
        "-f",
        "ip",
        "netns",
        "exec",
        &ns,
        "unshare",
        "--mount",
        "--uts",
        "--pid",
        "--fork",
        "--mount-proc",
        "sh",
        "-c",
        BOOT_SCRIPT,
        "sh",
        &dir,
        &sshd,
    ];
    let status = Command::new("setsid")
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .status()
        .map_err(|e| NetnsError::Command {
            command: render("setsid", &args[..5]),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
    if !status.success() {
        return Err(NetnsError::SshdStart {
            id: id.into(),
            log_tail: files.log_tail(),
        });
    }
    let started = Instant::now();
    loop {
        let written = std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty());
        let alive = !pids(&ns)?.is_empty();
        if written && alive {
            return Ok(());
        }
        // After a grace second, an empty namespace means the boot script died (a mount failed).
        let died = !alive && started.elapsed() > Duration::from_secs(1);
        if died || started.elapsed() > SSHD_START_TIMEOUT {
            kill_all(&ns)?;
            return Err(NetnsError::SshdStart {
                id: id.into(),
                log_tail: files.log_tail(),
            });
        }
        sleep(Duration::from_millis(50));
    }
}

/// Host PIDs of every process in the namespace (sshd, sessions, whatever they started).
pub fn pids(ns: &str) -> Result<Vec<i32>> {
    let out = run_tolerant_output(ns)?;
    Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

fn run_tolerant_output(ns: &str) -> Result<String> {
    match run("ip", &["netns", "pids", ns]) {
        Ok(out) => Ok(out),
        // A namespace that does not exist has no processes.
        Err(NetnsError::Command { stderr, .. }) if stderr.contains("No such file") => {
            Ok(String::new())
        }
        Err(e) => Err(e),
    }
}

/// SIGKILLs every process of the namespace, again and again until none is left (a process
/// may fork while we kill its siblings). Like pulling the plug: nothing gets to clean up.
pub fn kill_all(ns: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = pids(ns)?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(NetnsError::Invalid(format!(
                "processes {left:?} of namespace {ns} survive SIGKILL"
            )));
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sleep(Duration::from_millis(20));
    }
}

/// Kills the machine's processes and removes its veths and namespace.
pub fn destroy(cfg: &NetnsConfig, short: &str) -> Result<()> {
    let ns = cfg.netns_name(short);
    kill_all(&ns)?;
    for veth in [cfg.tenant_veth(short), cfg.floating_veth(short)] {
        run_tolerant("ip", &["link", "del", &veth], &["Cannot find device"])?;
    }
    run_tolerant("ip", &["netns", "del", &ns], &["No such file"])
}

/// Names of existing namespaces that carry this setup's prefix (to catch ones the state file
/// lost track of, e.g. after a crash between `ip netns add` and saving the state).
pub fn our_namespaces(cfg: &NetnsConfig) -> Result<Vec<String>> {
    let head = format!("{}-", cfg.prefix);
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&head))
        .map(str::to_string)
        .collect())
}
