//! The on-disk side of one machine: its directory under the state dir, holding the private
//! /root, /tmp, /mnt and /home, its own /etc/hosts, /etc/hostname, user database (`passwd`,
//! `group`, `shadow`, `gshadow`) and /etc/sudoers.d, sshd's configuration and host key, and
//! its console log (the cloud-init style lines devcloud shows as console output).
//!
//! Like a stock cloud image, a machine has one login user (the image's `os_admin_user`, e.g.
//! `debian`) with passwordless sudo and the key pair's key in `~/.ssh/authorized_keys`; root
//! cannot log in. The user exists only inside the machine (the host's user files are copied,
//! the user added to the copies, which the boot script bind-mounts over the host's).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::cmd::run;
use super::config::NetnsConfig;
use super::error::{NetnsError, Result};
use super::state::MachineRecord;

/// Paths inside one machine's directory.
#[derive(Debug, Clone)]
pub struct MachineFiles {
    pub dir: PathBuf,
}

impl MachineFiles {
    pub fn new(cfg: &NetnsConfig, short: &str) -> Self {
        MachineFiles {
            dir: cfg.machines_dir().join(short),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn host_key(&self) -> PathBuf {
        self.path("ssh_host_ed25519_key")
    }

    pub fn host_pubkey(&self) -> PathBuf {
        self.path("ssh_host_ed25519_key.pub")
    }

    pub fn sshd_config(&self) -> PathBuf {
        self.path("sshd_config")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.path("status/sshd.pid")
    }

    pub fn log(&self) -> PathBuf {
        self.path("sshd.log")
    }

    pub fn console(&self) -> PathBuf {
        self.path("console.log")
    }

    /// What the boot script appends to the console log once the boot delay is over (the host
    /// keys and "Cloud-init finished", which a real cloud prints late in the boot, too).
    pub fn console_boot(&self) -> PathBuf {
        self.path("status/console.boot")
    }

    /// Written by the boot script once its mounts are in place (before the boot delay).
    pub fn mounted_marker(&self) -> PathBuf {
        self.path("status/mounted")
    }

    /// The nftables ruleset last applied inside the machine (see [`super::Firewall`]).
    pub fn firewall(&self) -> PathBuf {
        self.path("firewall.nft")
    }

    /// Creates the directory tree, the private /etc files, the login user `user` (authorized
    /// for `authorized_keys`), the sshd configuration and (once) the host key. Re-running keeps
    /// an existing host key and /root contents. `user` may be `root`: then root logs in with
    /// the key and no other user is made (an image without a default user).
    pub fn prepare(&self, rec: &MachineRecord, user: &str, authorized_keys: &str) -> Result<()> {
        check_user_name(user)?;
        self.make_dirs(&[
            ("", 0o755),
            ("root", 0o700),
            ("mnt", 0o755),
            ("tmp", 0o1777),
            ("home", 0o755),
            ("etc", 0o755),
            ("status", 0o755),
        ])?;
        let hosts = hosts_file(rec);
        write(&self.path("hosts"), &hosts, 0o644)?;
        write(
            &self.path("hostname"),
            &format!("{}\n", rec.hostname),
            0o644,
        )?;
        let mut keys = authorized_keys.trim_end().to_string();
        keys.push('\n');
        let (uid, gid, home) = self.write_user_db(user)?;
        self.write_sudoers(user)?;
        // As cloud-init does on first boot: the key pair's key in the login user's
        // ~/.ssh/authorized_keys, where the user (and spark-openstack's cluster key) can add
        // more. Kept when it exists (a re-prepared machine keeps its home).
        let home_dir = if user == "root" {
            self.path("root")
        } else {
            self.dir.join(home.trim_start_matches('/'))
        };
        let ssh_dir = home_dir.join(".ssh");
        if !ssh_dir.join("authorized_keys").exists() {
            fs::create_dir_all(&ssh_dir).map_err(|e| NetnsError::io(&ssh_dir, e))?;
            write(&ssh_dir.join("authorized_keys"), &keys, 0o600)?;
            fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| NetnsError::io(&ssh_dir, e))?;
            if user != "root" {
                fs::set_permissions(&home_dir, fs::Permissions::from_mode(0o755))
                    .map_err(|e| NetnsError::io(&home_dir, e))?;
                for p in [
                    home_dir.clone(),
                    ssh_dir.clone(),
                    ssh_dir.join("authorized_keys"),
                ] {
                    std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                        .map_err(|e| NetnsError::io(&p, e))?;
                }
            }
        }
        write(&self.sshd_config(), &self.sshd_config_text(user), 0o644)?;
        self.ensure_host_key(&rec.hostname)
    }

    /// For a machine booting from an image (see `IMAGE_BOOT_SCRIPT` in `machine`): the
    /// directories of its overlay (`upper/` is its root disk), its status directory, and the
    /// seed the boot applies as cloud-init would: hostname, /etc/hosts, login user, the key
    /// pair's keys, the apt proxy (`apt_proxy`, a URL). The host key is made once, like
    /// [`Self::prepare`] does; re-running keeps the root disk.
    pub fn prepare_image(
        &self,
        rec: &MachineRecord,
        user: &str,
        authorized_keys: &str,
        apt_proxy: &str,
    ) -> Result<()> {
        check_user_name(user)?;
        self.make_dirs(&[
            ("", 0o755),
            ("upper", 0o755),
            ("work", 0o700),
            ("rootfs", 0o755),
            ("seed", 0o700),
            ("status", 0o755),
        ])?;
        let hosts = hosts_file(rec);
        let mut keys = authorized_keys.trim_end().to_string();
        keys.push('\n');
        for (name, text) in [
            ("hosts", hosts),
            ("hostname", format!("{}\n", rec.hostname)),
            ("user", format!("{user}\n")),
            ("authorized_keys", keys),
            ("instance-id", format!("{}\n", rec.id)),
            (
                "apt-proxy",
                format!(
                    "# Written by devcloud, as cloud-init writes its `apt: proxy:` setting\n\
                     Acquire::http::Proxy \"{apt_proxy}\";\n"
                ),
            ),
        ] {
            write(&self.path(&format!("seed/{name}")), &text, 0o600)?;
        }
        self.ensure_host_key(&rec.hostname)
    }

    /// Creates the machine's subdirectories (`""`: the machine dir) with their modes.
    fn make_dirs(&self, dirs: &[(&str, u32)]) -> Result<()> {
        for (sub, mode) in dirs {
            let d = self.path(sub);
            fs::create_dir_all(&d).map_err(|e| NetnsError::io(&d, e))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(*mode))
                .map_err(|e| NetnsError::io(&d, e))?;
        }
        Ok(())
    }

    /// Makes the machine's sshd host key once: it stays across stop/start, as a VM's does.
    fn ensure_host_key(&self, hostname: &str) -> Result<()> {
        if self.host_key().exists() {
            return Ok(());
        }
        let key = self.host_key().display().to_string();
        let comment = format!("root@{hostname}");
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f", &key],
        )
        .map(|_| ())
    }

    /// Copies the host's `passwd`, `group`, `shadow` and `gshadow` into `etc/` with `user`
    /// added (its own group, the first id from 1000 free in both files, home `/home/<user>`,
    /// no password: key login and sudo only). Returns the user's uid, gid and home.
    fn write_user_db(&self, user: &str) -> Result<(u32, u32, String)> {
        let read = |name: &str| -> Result<Option<String>> {
            let p = Path::new("/etc").join(name);
            match fs::read_to_string(&p) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(NetnsError::io(&p, e)),
            }
        };
        let passwd = read("passwd")?.unwrap_or_default();
        let group = read("group")?.unwrap_or_default();
        if user == "root" {
            for (name, text, mode) in [("passwd", &passwd, 0o644), ("group", &group, 0o644)] {
                write(&self.path(&format!("etc/{name}")), text, mode)?;
            }
            for name in ["shadow", "gshadow"] {
                if let Some(text) = read(name)? {
                    write(&self.path(&format!("etc/{name}")), &text, 0o640)?;
                }
            }
            return Ok((0, 0, "/root".into()));
        }
        // A host user of the same name is replaced: inside the machine the name is ours.
        let others = |text: &str| -> String {
            text.lines()
                .filter(|l| l.split(':').next() != Some(user))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let ids = |text: &str, col: usize| -> Vec<u32> {
            text.lines()
                .filter_map(|l| l.split(':').nth(col)?.parse().ok())
                .collect()
        };
        let (uids, gids) = (ids(&others(&passwd), 2), ids(&others(&group), 2));
        let id = (1000u32..60000)
            .find(|i| !uids.contains(i) && !gids.contains(i))
            .ok_or_else(|| NetnsError::Invalid("no free user id from 1000".into()))?;
        let home = format!("/home/{user}");
        let shell = if Path::new("/bin/bash").exists() {
            "/bin/bash"
        } else {
            "/bin/sh"
        };
        let sudo_group = group
            .lines()
            .any(|l| l.starts_with("sudo:"))
            .then_some("sudo");
        let add_member = |text: &str| -> String {
            others(text)
                .lines()
                .map(|l| match sudo_group {
                    Some(g) if l.starts_with(&format!("{g}:")) => {
                        let sep = if l.ends_with(':') { "" } else { "," };
                        format!("{l}{sep}{user}\n")
                    }
                    _ => format!("{l}\n"),
                })
                .collect()
        };
        write(
            &self.path("etc/passwd"),
            &format!(
                "{}{user}:x:{id}:{id}:{user}:{home}:{shell}\n",
                others(&passwd)
            ),
            0o644,
        )?;
        write(
            &self.path("etc/group"),
            &format!("{}{user}:x:{id}:\n", add_member(&group)),
            0o644,
        )?;
        // `*`, not `!`: sshd without PAM treats a `!` password as a locked account.
        let days = chrono::Utc::now().timestamp() / 86400;
        let shadow = read("shadow")?.unwrap_or_default();
        write(
            &self.path("etc/shadow"),
            &format!("{}{user}:*:{days}:0:99999:7:::\n", others(&shadow)),
            0o640,
        )?;
        if let Some(gshadow) = read("gshadow")? {
            write(
                &self.path("etc/gshadow"),
                &format!("{}{user}:!::\n", add_member(&gshadow)),
                0o640,
            )?;
        }
        let home_dir = self.dir.join(home.trim_start_matches('/'));
        fs::create_dir_all(&home_dir).map_err(|e| NetnsError::io(&home_dir, e))?;
        Ok((id, id, home))
    }

    /// The host's /etc/sudoers.d plus the rule cloud-init writes for the default user.
    fn write_sudoers(&self, user: &str) -> Result<()> {
        let dir = self.path("etc/sudoers.d");
        fs::create_dir_all(&dir).map_err(|e| NetnsError::io(&dir, e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| NetnsError::io(&dir, e))?;
        if let Ok(entries) = fs::read_dir("/etc/sudoers.d") {
            for entry in entries.flatten() {
                let from = entry.path();
                if from.is_file() {
                    let to = dir.join(entry.file_name());
                    fs::copy(&from, &to).map_err(|e| NetnsError::io(&to, e))?;
                }
            }
        }
        if user != "root" {
            write(
                &dir.join("90-cloud-init-users"),
                &format!(
                    "# Created by devcloud (as cloud-init does)\n{user} ALL=(ALL) NOPASSWD:ALL\n"
                ),
                0o440,
            )?;
        }
        Ok(())
    }

    /// sshd settings of a freshly booted cloud image: the login user by key only, root
    /// refused (unless the login user is root), no PAM (there is no login session machinery
    /// in a namespace), strict modes, every path inside the machine directory.
    fn sshd_config_text(&self, user: &str) -> String {
        let d = self.dir.display();
        let root = if user == "root" {
            "prohibit-password"
        } else {
            "no"
        };
        format!(
            "# Generated by spark-openstack devcloud (netns backend); do not edit.\n\
             Port 22\n\
             ListenAddress 0.0.0.0\n\
             HostKey {d}/ssh_host_ed25519_key\n\
             PidFile {d}/status/sshd.pid\n\
             AuthorizedKeysFile .ssh/authorized_keys\n\
             PermitRootLogin {root}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes yes\n\
             UseDNS no\n\
             PrintMotd no\n\
             AllowTcpForwarding yes\n\
             X11Forwarding no\n\
             MaxSessions 100\n\
             MaxStartups 100:30:200\n\
             AcceptEnv LANG LC_*\n\
             Subsystem sftp internal-sftp\n"
        )
    }

    /// The host public key line (`ssh-ed25519 AAAA... root@host`).
    pub fn host_public_key(&self) -> Result<String> {
        let p = self.host_pubkey();
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| NetnsError::io(&p, e))
    }

    /// Starts a boot block of the console log in cloud-init's format, so tools that scrape
    /// host keys from `nova console-log` work unchanged: the first line now, the rest (host
    /// keys, "finished") written to [`Self::console_boot`] for the boot script to append when
    /// the boot delay is over.
    pub fn log_boot(&self, rec: &MachineRecord, netns: &str) -> Result<()> {
        let pubkey = self.host_public_key()?;
        let fingerprint = run(
            "ssh-keygen",
            &["-l", "-f", &self.host_pubkey().display().to_string()],
        )?;
        let floating = rec
            .floating_ip
            .map(|ip| format!("ci-info: eth1 {ip}\n"))
            .unwrap_or_default();
        let first = format!(
            "netns: booting {host} ({id}) in network namespace {netns}\n",
            host = rec.hostname,
            id = rec.id,
        );
        let text = format!(
            "ci-info: eth0 {fixed}\n{floating}\
             ec2: #############################################################\n\
             ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n\
             ec2: {fp}\n\
             ec2: -----END SSH HOST KEY FINGERPRINTS-----\n\
             ec2: #############################################################\n\
             -----BEGIN SSH HOST KEY KEYS-----\n\
             {pubkey}\n\
             -----END SSH HOST KEY KEYS-----\n\
             Cloud-init finished: {host} is up\n",
            host = rec.hostname,
            fixed = rec.fixed_ip,
            fp = fingerprint.trim(),
        );
        write(&self.console_boot(), &text, 0o644)?;
        use std::io::Write;
        let path = self.console();
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(first.as_bytes()))
            .map_err(|e| NetnsError::io(&path, e))
    }

    /// The last lines of sshd's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n");
        if tail.is_empty() {
            format!("(nothing in {})", self.log().display())
        } else {
            tail
        }
    }

    /// Deletes the whole machine directory (the machine's /root included).
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NetnsError::io(&self.dir, e)),
            _ => Ok(()),
        }
    }
}

/// The machine's /etc/hosts as a cloud image's first boot writes it: localhost and its own
/// name at its fixed address.
fn hosts_file(rec: &MachineRecord) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n",
        rec.fixed_ip, rec.hostname
    )
}

/// A user name useradd would accept (and safe in sudoers and passwd lines).
fn check_user_name(user: &str) -> Result<()> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !user.starts_with('-')
        && !user.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(NetnsError::Invalid(format!(
            "login user `{user}` must be 1-32 characters of a-z, 0-9, `_` and `-`"
        )))
    }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).map_err(|e| NetnsError::io(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| NetnsError::io(path, e))
}
