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
    let lock_path = images_dir.join(".lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| NetnsError::io(&lock_path, e))?;
    // Blocks while another process builds; it may have built this very image meanwhile.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| NetnsError::io(&lock_path, errno.into()))?;
    if dir.join(".complete").exists() {
        return Ok(rootfs);
    }
    build(&dir, apt_proxy)?;
    Ok(rootfs)
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
    fn a_changed_script_is_a_new_image() {
        assert_eq!(script_key("a").len(), 12);
        assert_ne!(script_key("a"), script_key("b"));
        assert_eq!(script_key(DEBIAN_12_SCRIPT), script_key(DEBIAN_12_SCRIPT));
    }
}
