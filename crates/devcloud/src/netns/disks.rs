//! Block devices of machines that boot from an image: a flavor's ephemeral disk and attached
//! Cinder volumes, each a file on the host served as a loop device.
//!
//! There is no device-mapper or virtio here, but loop devices are real block devices: a
//! guest's `blkid`, `mkfs`, `mount` and `findmnt` work on them as on a VM's `/dev/vdb`. The
//! guest finds them the way it finds a VM's disks: the ephemeral disk by its label
//! (`/dev/disk/by-label/ephemeral0`, an ext4 filesystem Nova's libvirt driver makes), a volume
//! by its serial (`/dev/disk/by-id/virtio-<first 20 characters of the volume id>`, as udev
//! names a virtio disk whose serial Nova sets to the volume id), never by a guessed `vdX`.
//!
//! A loop device is attached only while its machine runs (attached before the boot, detached
//! after its processes die), so a stopped or deleted machine holds none. Its device node
//! exists only in the machine's private `/dev`: other machines (and the host's `/dev`, which
//! the kernel populates) cannot reach into it by accident, and `/proc/partitions` lists it
//! everywhere, as it lists every disk of a hypervisor.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cmd::{run, run_tolerant};
use super::error::{NetnsError, Result};

/// One disk of a machine, as recorded in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// The file behind the disk (sparse: only what the guest writes takes space).
    pub file: PathBuf,
    /// Where the guest finds it under `/dev` (`disk/by-label/ephemeral0`, `disk/by-id/...`).
    pub link: String,
    pub size_gb: u64,
    pub kind: DiskKind,
    /// The Cinder volume's id (volumes only).
    #[serde(default)]
    pub volume_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    /// Made and formatted (ext4, label `ephemeral0`) with the machine, deleted with it.
    Ephemeral,
    /// A Cinder volume: unformatted when new, outlives the machines it is attached to.
    Volume,
}

impl Disk {
    /// The flavor's ephemeral disk of a machine whose directory is `machine_dir`.
    pub fn ephemeral(machine_dir: &Path, size_gb: u64) -> Disk {
        Disk {
            file: machine_dir.join("disks/ephemeral0.img"),
            link: "disk/by-label/ephemeral0".into(),
            size_gb,
            kind: DiskKind::Ephemeral,
            volume_id: None,
        }
    }

    /// Volume `id` of `size_gb`, kept in `volumes_dir`.
    pub fn volume(volumes_dir: &Path, id: &str, size_gb: u64) -> Disk {
        let serial: String = id.chars().take(20).collect();
        Disk {
            file: volumes_dir.join(format!("{id}.img")),
            link: format!("disk/by-id/virtio-{serial}"),
            size_gb,
            kind: DiskKind::Volume,
            volume_id: Some(id.to_string()),
        }
    }

    /// Makes the backing file when it does not exist yet: sparse, of the disk's size; an
    /// ephemeral disk also gets its filesystem, as Nova formats one before the first boot.
    /// An existing file is left as it is (a volume keeps its data across attachments).
    pub fn ensure_file(&self) -> Result<()> {
        if self.file.exists() {
            return Ok(());
        }
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| NetnsError::io(dir, e))?;
        }
        // Made under a temporary name, so a crash never leaves a disk without its filesystem.
        let tmp = self.file.with_extension("img.tmp");
        let tmp_s = tmp.display().to_string();
        let size = format!("{}G", self.size_gb.max(1));
        run("truncate", &["-s", &size, &tmp_s])?;
        if self.kind == DiskKind::Ephemeral {
            // `-T largefile` (one inode per MiB) keeps the inode tables small: the kernel
            // zeroes them lazily after the first mount, which would otherwise write some
            // 640 MB into the sparse file of a 40 GB disk. Lazy init and no discard keep
            // mkfs itself instant.
            run(
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-L",
                    "ephemeral0",
                    "-T",
                    "largefile",
                    "-E",
                    "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                    &tmp_s,
                ],
            )?;
        }
        std::fs::rename(&tmp, &self.file).map_err(|e| NetnsError::io(&self.file, e))
    }
}

/// A disk attached as a loop device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// `loop7`.
    pub name: String,
    pub major: u64,
    pub minor: u64,
    pub link: String,
}

impl Attached {
    /// The line of `disks.list` the boot script (and a hot-plug) reads: `NAME MAJ MIN LINK`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.name, self.major, self.minor, self.link
        )
    }
}

/// Attaches the disk's file to a free loop device (making the file first if needed). A loop
/// device left attached to the same file (a devcloud killed mid-stop) is released first, so a
/// disk is never served twice.
pub fn attach(disk: &Disk) -> Result<Attached> {
    disk.ensure_file()?;
    detach_file(&disk.file)?;
    let file = disk.file.display().to_string();
    let dev = run("losetup", &["--find", "--show", &file])?
        .trim()
        .to_string();
    let meta = std::fs::metadata(&dev).map_err(|e| NetnsError::io(&dev, e))?;
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    Ok(Attached {
        name: dev.trim_start_matches("/dev/").to_string(),
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        link: disk.link.clone(),
    })
}

/// Detaches every loop device backed by `file`. A device still in use (mounted in a machine
/// whose last process is only now going away) is released by the kernel when it is closed:
/// `losetup -d` marks it autoclear.
pub fn detach_file(file: &Path) -> Result<()> {
    if !file.exists() {
        return Ok(());
    }
    let f = file.display().to_string();
    for line in run("losetup", &["--noheadings", "--output", "NAME", "-j", &f])?.lines() {
        let dev = line.trim();
        if !dev.is_empty() {
            run_tolerant("losetup", &["-d", dev], &["No such device"])?;
        }
    }
    Ok(())
}

/// Detaches every loop device whose backing file lies under `dir` (a teardown's sweep, for
/// disks a lost state file no longer lists).
pub fn detach_under(dir: &Path) -> Result<()> {
    let out = run(
        "losetup",
        &["--list", "--noheadings", "--output", "NAME,BACK-FILE"],
    )?;
    for (dev, file) in out
        .lines()
        .filter_map(|l| l.trim().split_once(char::is_whitespace))
    {
        // The kernel appends " (deleted)" to a backing file that is gone.
        let file = file.trim().trim_end_matches(" (deleted)");
        if Path::new(file).starts_with(dir) {
            run_tolerant("losetup", &["-d", dev], &["No such device"])?;
        }
    }
    Ok(())
}

/// Makes the device node and its `/dev/disk/...` link inside a running machine (a volume
/// attached while it runs: the hot-plug a VM's udev would see). `pid` is a process of the
/// machine; the commands run in its mount namespace and root, with the image's tools.
pub fn plug(pid: i32, a: &Attached) -> Result<()> {
    let target = pid.to_string();
    let (maj, min) = (a.major.to_string(), a.minor.to_string());
    run(
        "nsenter",
        &[
            "--target", &target, "--mount", "--root", "--wd", "--", "/bin/sh", "-c", PLUG, "sh",
            &a.name, &maj, &min, &a.link,
        ],
    )
    .map(|_| ())
}

/// Removes the device node and link from a running machine (a volume detached while it runs).
pub fn unplug(pid: i32, name: &str, link: &str) -> Result<()> {
    let target = pid.to_string();
    run(
        "nsenter",
        &[
            "--target",
            &target,
            "--mount",
            "--root",
            "--wd",
            "--",
            "/bin/sh",
            "-c",
            "rm -f \"/dev/$1\" \"/dev/$2\"",
            "sh",
            name,
            link,
        ],
    )
    .map(|_| ())
}

/// `sh -c PLUG sh NAME MAJ MIN LINK`: the device node (group `disk`, as udev makes it) and
/// its link, relative as udev makes it (LINK is always `disk/by-*/NAME`). Shared by the boot script (see `machine`), which runs it for every line of
/// `disks.list` with `$r` set to the new root.
pub const PLUG: &str = r#"r=${r:-}
mknod -m 0660 "$r/dev/$1" b "$2" "$3" 2>/dev/null || [ -b "$r/dev/$1" ]
chgrp disk "$r/dev/$1" 2>/dev/null || chgrp 6 "$r/dev/$1"
mkdir -p "$r/dev/${4%/*}"
ln -sfn "../../$1" "$r/dev/$4"
"#;

/// Where a machine's root process is (PID 1 of its PID namespace), for [`plug`].
pub fn machine_init(pids: &[i32]) -> Option<i32> {
    pids.iter().copied().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("NSpid:"))
                    .and_then(|l| l.split_whitespace().last().map(|n| n == "1"))
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_found_by_their_serial_as_udev_names_virtio_disks() {
        let d = Disk::volume(Path::new("/v"), "0b9f7c1e-5d2a-4c1b-9e8f-123456789abc", 2);
        assert_eq!(d.link, "disk/by-id/virtio-0b9f7c1e-5d2a-4c1b-9");
        assert_eq!(
            d.file,
            Path::new("/v/0b9f7c1e-5d2a-4c1b-9e8f-123456789abc.img")
        );
        let e = Disk::ephemeral(Path::new("/m/abc"), 40);
        assert_eq!(e.link, "disk/by-label/ephemeral0");
        assert_eq!(
            Attached {
                name: "loop7".into(),
                major: 7,
                minor: 7,
                link: e.link
            }
            .line(),
            "loop7 7 7 disk/by-label/ephemeral0\n"
        );
    }
}
