//! Machine images: root filesystems that netns machines boot from (each machine runs on a
//! copy-on-write overlay of one, see [`super::machine`]).
//!
//! Only `debian-12` can be built here: Debian's package archive is the one distribution
//! archive this host reaches. It is made by `images/debian-12.sh` (mmdebstrap, minbase plus
//! what a stock cloud image has: sshd, sudo, rsync; no Java, no Python) through the apt cache
//! ([`crate::apt_proxy`]), once: the result is kept under `<images dir>/debian-12-<hash of the
//! script>/`, so changing the script builds a new image and machines made from the old one
//! keep theirs. A build goes to a temporary directory renamed into place when complete, under
//! an exclusive lock, so concurrent devclouds build once and never boot a half-made root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use super::error::{NetnsError, Result};

/// The build script of the only image that can be built here.
const DEBIAN_12_SCRIPT: &str = include_str!("../../images/debian-12.sh");

/// Debian's archive as this host's apt reaches it (the apt cache fetches from here).
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
const DEBIAN_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";

/// The image directory when `SPARK_OPENSTACK_DEVCLOUD_IMAGES` does not name one.
pub const DEFAULT_IMAGES_DIR: &str = "/var/lib/spark-openstack/devcloud-images";

/// Where images are kept: `SPARK_OPENSTACK_DEVCLOUD_IMAGES`, else [`DEFAULT_IMAGES_DIR`].
pub fn default_images_dir() -> PathBuf {
    std::env::var_os("SPARK_OPENSTACK_DEVCLOUD_IMAGES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_IMAGES_DIR))
}

/// The images this host can build, by Glance name.
pub const BUILDABLE: [&str; 1] = ["debian-12"];

/// The root filesystem of image `name` in `images_dir`, built first if it is not there yet
/// (through the HTTP proxy `apt_proxy`, e.g. `http://127.0.0.1:3149/`). Refuses names it
/// cannot build, saying which it can.
pub fn ensure(images_dir: &Path, name: &str, apt_proxy: &str) -> Result<PathBuf> {
    if name != "debian-12" {
        return Err(NetnsError::Invalid(format!(
            "image `{name}` has no root filesystem in this devcloud: only {} can be built \
             here (Debian's archive is the only distribution archive this host reaches)",
            BUILDABLE.join(", ")
        )));
    }
    let dir = images_dir.join(format!("{name}-{}", script_key(DEBIAN_12_SCRIPT)));
    let rootfs = dir.join("rootfs");
    if dir.join(".complete").exists() {
        return Ok(rootfs);
    }
    fs::create_dir_all(images_dir).map_err(|e| NetnsError::io(images_dir, e))?;
    // Blocks while another process builds; it may have built this very image meanwhile.
    let _lock = build_lock(images_dir)?;
    if dir.join(".complete").exists() {
        return Ok(rootfs);
    }
    build(&dir, apt_proxy)?;
    Ok(rootfs)
}

/// Records that the machine in `machine_dir` boots from the image whose root filesystem is
/// `rootfs`: a file under `<image>/machines/`, so [`prune`] keeps the image as long as the
/// machine exists, running or stopped (a stopped machine's root disk is an overlay upper
/// layer that means nothing without its image).
pub fn record_user(rootfs: &Path, machine_dir: &Path) -> Result<()> {
    let Some(image) = rootfs.parent() else {
        return Ok(());
    };
    let users = image.join("machines");
    fs::create_dir_all(&users).map_err(|e| NetnsError::io(&users, e))?;
    let text = machine_dir.display().to_string();
    let file = users.join(script_key(&text));
    fs::write(&file, text).map_err(|e| NetnsError::io(&file, e))
}

/// Undoes [`record_user`] (the machine was deleted).
pub fn forget_user(rootfs: &Path, machine_dir: &Path) {
    if let Some(image) = rootfs.parent() {
        let key = script_key(&machine_dir.display().to_string());
        let _ = fs::remove_file(image.join("machines").join(key));
    }
}

/// One entry of an images directory, as `devcloud image list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    /// The directory's name: `debian-12-<key>` (or `....tmp` for a build that never
    /// finished).
    pub name: String,
    pub path: PathBuf,
    /// Built from the script this devcloud has: what new machines boot from.
    pub current: bool,
    /// Completely built (an interrupted build is not).
    pub complete: bool,
    /// Machine directories that still exist and boot from it.
    pub machines: Vec<PathBuf>,
    /// Disk usage in bytes.
    pub bytes: u64,
}

/// The images in `images_dir`, by name (none when the directory does not exist).
pub fn list(images_dir: &Path) -> Result<Vec<ImageEntry>> {
    let current = format!("debian-12-{}", script_key(DEBIAN_12_SCRIPT));
    let entries = match fs::read_dir(images_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetnsError::io(images_dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_image_name(&name) || !path.is_dir() {
            continue;
        }
        let machines = fs::read_dir(path.join("machines"))
            .map(|d| {
                d.flatten()
                    .filter_map(|f| fs::read_to_string(f.path()).ok())
                    .map(PathBuf::from)
                    .filter(|m| m.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        out.push(ImageEntry {
            current: name == current,
            complete: path.join(".complete").exists(),
            bytes: disk_usage(&path),
            machines,
            name,
            path,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The images directory's exclusive lock, held while an image is built or images are
/// pruned: one process builds, the others wait and then find the image complete, and no
/// prune removes a build half-way. Released when the returned guard drops.
fn build_lock(images_dir: &Path) -> Result<Flock<fs::File>> {
    let lock_path = images_dir.join(".lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| NetnsError::io(&lock_path, e))?;
    Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| NetnsError::io(&lock_path, errno.into()))
}

/// Removes the images no machine boots from and that new machines would not use (built
/// from an older script, or never finished), with their build logs; keeps the current one
/// and any in use. Holds the build lock, so no build is pruned half-way. Returns what was
/// removed.
pub fn prune(images_dir: &Path) -> Result<Vec<ImageEntry>> {
    if !images_dir.is_dir() {
        return Ok(Vec::new());
    }
    let _lock = build_lock(images_dir)?;
    let mut removed = Vec::new();
    for image in list(images_dir)? {
        if (image.current && image.complete) || !image.machines.is_empty() {
            continue;
        }
        remove_tree(&image.path)?;
        let _ = fs::remove_file(image.path.with_extension("log"));
        removed.push(image);
    }
    Ok(removed)
}

/// `<buildable name>-<12 hex digits>`, or that with `.tmp` (a build): only such
/// directories are images; anything else in the directory is never listed or removed.
fn is_image_name(name: &str) -> bool {
    BUILDABLE.iter().any(|b| {
        name.strip_prefix(b)
            .and_then(|r| r.strip_prefix('-'))
            .map(|k| k.strip_suffix(".tmp").unwrap_or(k))
            .is_some_and(|k| k.len() == 12 && k.bytes().all(|c| c.is_ascii_hexdigit()))
    })
}

/// Bytes used under `path` (`du`; 0 when it cannot tell).
fn disk_usage(path: &Path) -> u64 {
    Command::new("du")
        .args(["-s", "-x", "--block-size=1"])
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The first 12 hex digits of the script's SHA-256: a new script, a new image.
fn script_key(script: &str) -> String {
    hex::encode(Sha256::digest(script.as_bytes()))[..12].to_string()
}

fn build(dir: &Path, apt_proxy: &str) -> Result<()> {
    if !Path::new("/usr/bin/mmdebstrap").exists() {
        return Err(NetnsError::Invalid(
            "building the debian-12 machine image needs mmdebstrap (apt-get install \
             mmdebstrap), or give devcloud `netns: {machine_fs: host}` for machines that \
             share the host's filesystem"
                .into(),
        ));
    }
    let tmp = dir.with_extension("tmp");
    remove_tree(&tmp)?;
    fs::create_dir_all(&tmp).map_err(|e| NetnsError::io(&tmp, e))?;
    let log_path = dir.with_extension("log");
    let log = fs::File::create(&log_path).map_err(|e| NetnsError::io(&log_path, e))?;
    let err_log = log.try_clone().map_err(|e| NetnsError::io(&log_path, e))?;
    let out = tmp.display().to_string();
    let status = Command::new("sh")
        .args([
            "-c",
            DEBIAN_12_SCRIPT,
            "debian-12.sh",
            &out,
            DEBIAN_MIRROR,
            DEBIAN_SECURITY_MIRROR,
        ])
        .env("http_proxy", apt_proxy)
        .env_remove("https_proxy")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .status()
        .map_err(|e| NetnsError::Command {
            command: "sh debian-12.sh (mmdebstrap)".into(),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(12)..].join("\n");
        let _ = remove_tree(&tmp);
        return Err(NetnsError::Command {
            command: format!(
                "building image debian-12 with mmdebstrap (whole log: {})",
                log_path.display()
            ),
            status: status.to_string(),
            stderr: tail,
        });
    }
    let marker = tmp.join(".complete");
    fs::write(&marker, "").map_err(|e| NetnsError::io(&marker, e))?;
    fs::rename(&tmp, dir).map_err(|e| NetnsError::io(dir, e))
}

fn remove_tree(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NetnsError::io(p, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_debian_can_be_built_and_the_refusal_says_why() {
        let dir = std::env::temp_dir().join("devcloud-image-refusal");
        let e = ensure(&dir, "rocky-9", "http://127.0.0.1:9/").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("`rocky-9`") && text.contains("debian-12"),
            "{text}"
        );
        assert!(!dir.exists(), "a refused image must not create anything");
    }

    #[test]
    fn prune_keeps_the_current_image_and_those_machines_boot_from() {
        let dir = std::env::temp_dir().join(format!("devcloud-prune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let current = dir.join(format!("debian-12-{}", script_key(DEBIAN_12_SCRIPT)));
        let old = dir.join("debian-12-000000000000");
        let used = dir.join("debian-12-111111111111");
        let unfinished = dir.join("debian-12-222222222222.tmp");
        let machine = dir.join("machine-a");
        let gone = dir.join("machine-deleted");
        for d in [&current, &old, &used, &unfinished, &machine] {
            fs::create_dir_all(d.join("rootfs")).unwrap();
        }
        fs::write(current.join(".complete"), "").unwrap();
        fs::write(old.join(".complete"), "").unwrap();
        fs::write(old.with_extension("log"), "build log").unwrap();
        fs::write(used.join(".complete"), "").unwrap();
        record_user(&used.join("rootfs"), &machine).unwrap();
        // A machine deleted since: its record no longer holds the image.
        record_user(&old.join("rootfs"), &gone).unwrap();

        let listed = list(&dir).unwrap();
        let names: Vec<&str> = listed.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        let of = |p: &Path| listed.iter().find(|i| i.path == p).unwrap().clone();
        assert!(of(&current).current && of(&current).complete);
        assert!(!of(&unfinished).complete);
        assert_eq!(of(&used).machines, vec![machine.clone()]);
        assert!(of(&old).machines.is_empty());

        let removed: Vec<PathBuf> = prune(&dir).unwrap().into_iter().map(|i| i.path).collect();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(removed.contains(&old) && removed.contains(&unfinished));
        assert!(current.exists() && used.exists() && !old.exists() && !unfinished.exists());
        assert!(!old.with_extension("log").exists());
        // Once its machine is gone, the old image goes too.
        fs::remove_dir_all(&machine).unwrap();
        let removed: Vec<PathBuf> = prune(&dir).unwrap().into_iter().map(|i| i.path).collect();
        assert_eq!(removed, vec![used.clone()]);
        assert!(current.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_changed_script_is_a_new_image() {
        assert_eq!(script_key("a").len(), 12);
        assert_ne!(script_key("a"), script_key("b"));
        assert_eq!(script_key(DEBIAN_12_SCRIPT), script_key(DEBIAN_12_SCRIPT));
    }
}
