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

/// Runs as `sh -c BOOT_SCRIPT sh <machine dir> <sshd> <boot delay in s>` inside the new
/// namespaces. It is a constant (arguments come as `$1`..`$3`), so no value is ever spliced
/// into shell code. /tmp is bound last: the machine dir is outside /tmp, /root, /mnt and /home
/// (checked by the config), so the binds never hide each other.
///
/// After the mounts the machine "boots" for `$3` seconds (sshd is not there yet, so port 22
/// refuses connections, as on a booting VM), then the console gets its host keys and sshd
/// replaces the script as the machine's PID 1. Killing the machine during the delay kills the
/// script, so no sshd ever starts for a stopped or deleted machine.
const BOOT_SCRIPT: &str = r#"set -e
dir=$1
mount --make-rprivate /
mount --bind "$dir/root" /root
mount --bind "$dir/home" /home
mount --bind "$dir/hosts" /etc/hosts
if [ -e /etc/hostname ]; then mount --bind "$dir/hostname" /etc/hostname; fi
for f in passwd group shadow gshadow; do
  if [ -e "$dir/etc/$f" ] && [ -e "/etc/$f" ]; then mount --bind "$dir/etc/$f" "/etc/$f"; fi
done
if [ -d "$dir/etc/sudoers.d" ] && [ -d /etc/sudoers.d ]; then
  mount --bind "$dir/etc/sudoers.d" /etc/sudoers.d
fi
mount --bind "$dir/mnt" /mnt
mount --bind "$dir/tmp" /tmp
cat "$dir/hostname" > /proc/sys/kernel/hostname
: > "$dir/mounted"
sleep "$3"
cat "$dir/console.boot" >> "$dir/console.log"
exec "$2" -D -e -f "$dir/sshd_config"
"#;

/// How long sshd may take to write its pid file (it does so once it listens).
const SSHD_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Creates the namespace with loopback up, forwarding off and a veth named `eth0` on the tenant
/// bridge carrying `fixed_ip`, with the default route through the tenant network's router (see
/// `network`), which leads to the external network and no further.
pub fn create_netns(cfg: &NetnsConfig, short: &str, fixed_ip: Ipv4Addr) -> Result<()> {
    let ns = cfg.netns_name(short);
    run("ip", &["netns", "add", &ns])?;
    sysctl_in(
        &ns,
        &[
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
    )?;
    let gateway = cfg.tenant_gateway().to_string();
    run(
        "ip",
        &[
            "-n", &ns, "route", "add", "default", "via", &gateway, "dev", "eth0",
        ],
    )
    .map(|_| ())
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

/// Sets kernel settings inside namespace `ns`; unknown keys (no IPv6 in the kernel) are
/// ignored.
pub(super) fn sysctl_in(ns: &str, settings: &[&str]) -> Result<()> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-q", "-e", "-w"];
    args.extend_from_slice(settings);
    run("ip", &args).map(|_| ())
}

/// A veth pair: `host_end` on `bridge` in the host, `inside` with `ip/prefix` in `ns`.
pub(super) fn add_veth(
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

/// Boots the machine: its namespaces and mounts at once, sshd after `delay`. Without a delay
/// it waits until sshd listens (its pid file appears); with one, until the mounts are in place
/// (sshd's configuration is checked with `sshd -t` first, so a broken sshd still fails here).
///
/// `setsid -f` forks, so the machine is detached from devcloud (it survives devcloud exiting,
/// and devcloud never has to reap it); `ip netns exec` and `unshare` exec in place, so the boot
/// script, and then sshd, is the first process of the machine's PID namespace.
pub fn start_sshd(
    cfg: &NetnsConfig,
    short: &str,
    files: &MachineFiles,
    id: &str,
    delay: Duration,
) -> Result<()> {
    let ns = cfg.netns_name(short);
    // sshd refuses to start without its privilege separation directory (shared with the host).
    std::fs::create_dir_all("/run/sshd").map_err(|e| NetnsError::io("/run/sshd", e))?;
    let config = files.sshd_config().display().to_string();
    let sshd_bin = cfg.sshd.display().to_string();
    if let Err(e) = run(&sshd_bin, &["-t", "-f", &config]) {
        return Err(NetnsError::SshdStart {
            id: id.into(),
            log_tail: e.to_string(),
        });
    }
    let pid_file = files.pid_file();
    let _ = std::fs::remove_file(&pid_file);
    let marker = files.mounted_marker();
    let _ = std::fs::remove_file(&marker);
    let delay_s = format!("{:.3}", delay.as_secs_f64());
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
        &delay_s,
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
        let written = if delay.is_zero() {
            std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty())
        } else {
            marker.exists()
        };
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

/// SIGKILLs every process of the machine, again and again until none is left (a process may
/// fork while we kill its siblings). Like pulling the plug: nothing gets to clean up. "The
/// machine" is every process in its network namespace and every process in a PID namespace
/// one of those is in (so a process that moved to another network namespace dies too).
/// Zombies count as gone: they run nothing, and their parent (or init) reaps them.
pub fn kill_all(ns: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pid_namespaces = std::collections::BTreeSet::new();
    loop {
        let mut left: Vec<i32> = pids(ns)?.into_iter().filter(|p| !is_zombie(*p)).collect();
        for p in &left {
            if let Some(pidns) = pid_namespace(*p) {
                pid_namespaces.insert(pidns);
            }
        }
        for p in procs_in_pid_namespaces(&pid_namespaces) {
            if !left.contains(&p) {
                left.push(p);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let named: Vec<String> = left
                .iter()
                .map(|p| {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                    format!("{p} ({})", comm.trim())
                })
                .collect();
            return Err(NetnsError::Invalid(format!(
                "processes of machine {ns} survive SIGKILL: {}",
                named.join(", ")
            )));
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sleep(Duration::from_millis(20));
    }
}

fn is_zombie(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A process that is gone already counts as a zombie here: nothing to kill.
    stat.is_empty()
        || stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.starts_with(" Z") || r.starts_with(" X"))
}

/// The PID namespace of a process (`pid:[4026532...]`); `None` once it is gone.
fn pid_namespace(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|l| l.display().to_string())
}

/// Live (non-zombie) processes whose PID namespace is one of `namespaces`.
fn procs_in_pid_namespaces(namespaces: &std::collections::BTreeSet<String>) -> Vec<i32> {
    if namespaces.is_empty() {
        return Vec::new();
    }
    let me = pid_namespace(std::process::id() as i32);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            pid_namespace(*p).is_some_and(|n| namespaces.contains(&n) && Some(&n) != me.as_ref())
        })
        .filter(|p| !is_zombie(*p))
        .collect()
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
