//! The kernel side of one machine: its network namespace with veths into the bridges, and its
//! sshd started in fresh mount, UTS and PID namespaces, so everything an SSH session spawns
//! lives inside the machine (own network, hostname, /root, /tmp, /mnt, /etc/hosts, `ps`).

use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cmd::{render, run, run_tolerant};
use super::config::NetnsConfig;
use super::error::{NetnsError, Result};
use super::files::MachineFiles;
use super::link::LinkShape;
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
: > "$dir/status/mounted"
sleep "$3"
cat "$dir/status/console.boot" >> "$dir/console.log"
exec "$2" -D -e -f "$dir/sshd_config"
"#;

/// The boot of a machine with its own root filesystem: `sh -c IMAGE_BOOT_SCRIPT sh <machine
/// dir> <image rootfs> <boot delay in s> <plug script>`, run as PID 1 of fresh mount, UTS, IPC and PID
/// namespaces (the network namespace is the machine's). A constant, like [`BOOT_SCRIPT`].
///
/// 1. The root is an overlay: the image read-only below, the machine's `upper/` (its root
///    disk, kept across stop/start) above. Only the kernel is shared with the host.
/// 2. First boot of the instance (no `/var/lib/devcloud/instance-id` yet), what cloud-init
///    does: hostname, /etc/hosts, the login user (made if the image lacks it) with
///    passwordless sudo and the key pair's key. Every boot: the host key and the apt proxy
///    (the file cloud-init's `apt: proxy:` writes), and an empty resolv.conf (no DNS: the
///    proxy resolves names).
/// 3. Its own /proc (this PID namespace), with /proc/sys read-only except /proc/sys/net (the
///    network namespace's own settings): kernel-wide settings such as `vm.swappiness` cannot
///    be changed from a machine, so a role trying fails instead of changing the host. A
///    private /dev with the harmless devices, ptys and shm; /run on tmpfs; the machine's
///    status directory (sshd's pid file, boot markers) at /run/devcloud. The disks of
///    `disks.list` (see [`super::disks`]) get their device nodes and `/dev/disk/...` links
///    (`$4` is [`super::disks::PLUG`]), and the ephemeral disk is mounted on /mnt, as
///    cloud-init's default `mounts` does.
/// 4. `pivot_root` into the overlay and detach the old root: from here the host's files are
///    out of reach. The image's sshd checks its configuration (a broken one fails the boot
///    with its message), the boot delay passes, and sshd becomes PID 1.
const IMAGE_BOOT_SCRIPT: &str = r#"set -e
dir=$1 img=$2 delay=$3 plug=$4 r=$1/rootfs
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$img,upperdir=$dir/upper,workdir=$dir/work" "$r"
s=$dir/seed
user=$(cat "$s/user")
if [ ! -e "$r/var/lib/devcloud/instance-id" ]; then
  cp "$s/hostname" "$r/etc/hostname"
  cp "$s/hosts" "$r/etc/hosts"
  if ! chroot "$r" id -u "$user" >/dev/null 2>&1; then
    chroot "$r" useradd -m -U -G sudo -s /bin/bash "$user"
    chroot "$r" usermod -p '*' "$user"
  fi
  if [ "$user" != root ]; then
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > "$r/etc/sudoers.d/90-cloud-init-users"
    chmod 0440 "$r/etc/sudoers.d/90-cloud-init-users"
  fi
  home=$(chroot "$r" getent passwd "$user" | cut -d: -f6)
  install -d -m 0700 "$r$home/.ssh"
  cat "$s/authorized_keys" >> "$r$home/.ssh/authorized_keys"
  chmod 0600 "$r$home/.ssh/authorized_keys"
  chroot "$r" chown -R "$user:" "$home/.ssh"
  mkdir -p "$r/var/lib/devcloud"
  cp "$s/instance-id" "$r/var/lib/devcloud/instance-id"
fi
install -m 0600 "$dir/ssh_host_ed25519_key" "$r/etc/ssh/ssh_host_ed25519_key"
install -m 0644 "$dir/ssh_host_ed25519_key.pub" "$r/etc/ssh/ssh_host_ed25519_key.pub"
install -m 0644 "$s/apt-proxy" "$r/etc/apt/apt.conf.d/90cloud-init-aptproxy"
printf '# devcloud: no DNS; packages come through the apt proxy\n' > "$r/etc/resolv.conf"
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
cat "$r/etc/hostname" > "$r/proc/sys/kernel/hostname"
mount --bind "$r/proc/sys" "$r/proc/sys"
mount -o remount,bind,ro "$r/proc/sys"
mount --bind "$r/proc/sys/net" "$r/proc/sys/net"
mount -o remount,bind,rw "$r/proc/sys/net"
for p in sysrq-trigger kcore; do
  if [ -e "$r/proc/$p" ]; then mount --bind /dev/null "$r/proc/$p"; fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t tmpfs -o nosuid,mode=755,size=1m dev "$r/dev"
for n in null zero full random urandom tty; do
  touch "$r/dev/$n"
  mount --bind "/dev/$n" "$r/dev/$n"
done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s fd/0 "$r/dev/stdin"
ln -s fd/1 "$r/dev/stdout"
ln -s fd/2 "$r/dev/stderr"
if [ -s "$dir/disks.list" ]; then
  while read -r n maj min link; do
    r=$r sh -c "$plug" sh "$n" "$maj" "$min" "$link"
  done < "$dir/disks.list"
fi
e=$(awk '$4 == "disk/by-label/ephemeral0" { print $1 }' "$dir/disks.list" 2>/dev/null || true)
if [ -n "$e" ]; then
  # The host's node, so the mount table names it /dev/loopN, as the machine's node is named.
  mount -o defaults,noatime "/dev/$e" "$r/mnt"
fi
mount -t tmpfs -o nosuid,nodev,mode=755 run "$r/run"
mkdir -p "$r/run/sshd" "$r/run/lock" "$r/run/devcloud"
mount --bind "$dir/status" "$r/run/devcloud"
exec 3>>"$dir/console.log"
cd "$r"
pivot_root . .
umount -l .
cd /
/usr/sbin/sshd -t
: > /run/devcloud/mounted
sleep "$delay"
cat /run/devcloud/console.boot >&3
exec 3>&-
exec /usr/sbin/sshd -D -e -o PidFile=/run/devcloud/sshd.pid
"#;

/// How long sshd may take to write its pid file (it does so once it listens).
const SSHD_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Creates the namespace with loopback up, forwarding off and a veth named `eth0` on the tenant
/// bridge carrying `fixed_ip`, with the default route through the tenant network's router (see
/// `network`), which leads to the external network and no further.
/// With `link`, both ends of the veth are shaped (see `link`).
pub fn create_netns(
    cfg: &NetnsConfig,
    short: &str,
    fixed_ip: Ipv4Addr,
    link: Option<&LinkShape>,
) -> Result<()> {
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
    if let Some(l) = link {
        super::link::shape(&ns, "eth0", &cfg.tenant_veth(short), l)?;
    }
    let gateway = cfg.tenant_gateway().to_string();
    run(
        "ip",
        &[
            "-n", &ns, "route", "add", "default", "via", &gateway, "dev", "eth0",
        ],
    )
    .map(|_| ())
}

/// Adds the `eth1` veth on the external bridge with the floating address, shaped like
/// `eth0` when `link` is given (the controller's uploads to the master cross it).
pub fn attach_floating(
    cfg: &NetnsConfig,
    short: &str,
    ip: Ipv4Addr,
    link: Option<&LinkShape>,
) -> Result<()> {
    let ns = cfg.netns_name(short);
    let prefix = cfg.floating.prefix_len();
    let host_end = cfg.floating_veth(short);
    add_veth(&ns, &host_end, "eth1", ip, prefix, &cfg.ext_bridge())?;
    match link {
        Some(l) => super::link::shape(&ns, "eth1", &host_end, l),
        None => Ok(()),
    }
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
    image: Option<&Path>,
) -> Result<()> {
    let ns = cfg.netns_name(short);
    if image.is_none() {
        // sshd refuses to start without its privilege separation directory (shared with
        // the host).
        std::fs::create_dir_all("/run/sshd").map_err(|e| NetnsError::io("/run/sshd", e))?;
        let config = files.sshd_config().display().to_string();
        let sshd_bin = cfg.sshd.display().to_string();
        if let Err(e) = run(&sshd_bin, &["-t", "-f", &config]) {
            return Err(NetnsError::SshdStart {
                id: id.into(),
                log_tail: e.to_string(),
            });
        }
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
    let rootfs = image.map(|p| p.display().to_string()).unwrap_or_default();
    let netns = ["-f", "ip", "netns", "exec", &ns];
    let args: Vec<&str> = match image {
        // `env -i`: nothing of devcloud's environment leaks into the machine.
        Some(_) => [
            &netns[..],
            &[
                "env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "unshare",
                "--mount",
                "--uts",
                "--ipc",
                "--pid",
                "--fork",
                "--propagation",
                "private",
                "sh",
                "-c",
                IMAGE_BOOT_SCRIPT,
                "sh",
                &dir,
                &rootfs,
                &delay_s,
                super::disks::PLUG,
            ],
        ]
        .concat(),
        None => [
            &netns[..],
            &[
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
            ],
        ]
        .concat(),
    };
    let status = Command::new("setsid")
        .args(&args)
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
