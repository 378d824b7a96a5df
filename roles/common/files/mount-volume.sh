#!/bin/sh
# Mounts the Cinder volume VOLUME_ID on DIR, making a filesystem on it first when it has
# none (a new volume). Prints DIR, then `changed` when it formatted or mounted anything.
#
# usage: mount-volume.sh VOLUME_ID DIR FSTYPE
#
# The device is found by the volume's id (Nova passes it as the disk serial, which udev
# shows as /dev/disk/by-id/virtio-<first 20 characters>), never by a guessed /dev/vdX name,
# so another disk can never be formatted by mistake. A volume that already has a
# filesystem is never reformatted: persistent HDFS data survives relaunches.
set -eu
id=$1 dir=$2 fstype=$3
short=$(printf %s "$id" | cut -c1-20)
dev=
for d in /dev/disk/by-id/*"$short"*; do
  [ -e "$d" ] && { dev=$(readlink -f "$d"); break; }
done
if [ -z "$dev" ]; then
  echo "warning: volume $id is attached but no /dev/disk/by-id entry names it; using $dir on the root disk" >&2
  [ -d "$dir" ] || { mkdir -p "$dir"; echo "$dir"; echo changed; exit 0; }
  echo "$dir"
  exit 0
fi
changed=
if [ -z "$(blkid -o value -s TYPE "$dev" 2>/dev/null)" ]; then
  "mkfs.$fstype" -q "$dev" >/dev/null
  changed=1
fi
if [ "$(findmnt -n -o TARGET --source "$dev" 2>/dev/null | head -1)" != "$dir" ]; then
  mkdir -p "$dir"
  mount -o defaults,noatime "$dev" "$dir"
  changed=1
fi
echo "$dir"
[ -z "$changed" ] || echo changed
