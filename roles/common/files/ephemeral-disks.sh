#!/bin/sh
# Mounts a node's ephemeral disks on BASE, BASE2, BASE3, ... and prints one mount point a
# line (then `changed` when it mounted or formatted anything).
#
# usage: ephemeral-disks.sh BASE FSTYPE FLAVOR_EPHEMERAL_GB
#
# Only disks Nova labels `ephemeral0`, `ephemeral1`, ... are touched, so a data volume or
# the root disk can never be formatted by mistake. Nova formats them itself (ext4, or vfat
# on some clouds); a vfat one is reformatted to FSTYPE because Spark and HDFS need POSIX
# permissions. When the flavor has no ephemeral disk, or none is found, BASE on the root
# disk is used.
set -eu
base=$1 fstype=$2 flavor_gb=${3:-0}
changed=

labelled() {
  if command -v blkid >/dev/null 2>&1; then
    blkid -o device -t "LABEL=$1" 2>/dev/null | head -1
  elif [ -e "/dev/disk/by-label/$1" ]; then
    readlink -f "/dev/disk/by-label/$1"
  fi
}

n=0
while dev=$(labelled "ephemeral$n") && [ -n "$dev" ]; do
  if [ "$n" -eq 0 ]; then dir=$base; else dir=$base$((n + 1)); fi
  current=$(findmnt -n -o TARGET --source "$dev" 2>/dev/null | head -1 || true)
  if [ "$current" != "$dir" ]; then
    [ -z "$current" ] || umount "$dev"
    if [ "$(blkid -o value -s TYPE "$dev" 2>/dev/null)" = vfat ]; then
      "mkfs.$fstype" -q -L "ephemeral$n" "$dev" >/dev/null
    fi
    mkdir -p "$dir"
    mount -o defaults,noatime "$dev" "$dir"
    changed=1
  fi
  echo "$dir"
  n=$((n + 1))
done

if [ "$n" -eq 0 ]; then
  [ "$flavor_gb" -eq 0 ] || echo "warning: the flavor has ${flavor_gb} GB of ephemeral disk but no disk labelled ephemeral0 was found; using $base on the root disk" >&2
  [ -d "$base" ] || { mkdir -p "$base"; changed=1; }
  echo "$base"
fi
[ -z "$changed" ] || echo changed
