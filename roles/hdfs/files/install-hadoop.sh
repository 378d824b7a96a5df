#!/bin/sh
# Unpacks a Hadoop binary archive into HOME, once per archive: prints `unchanged` when HOME
# already holds it, else `changed`. etc/hadoop is kept across reinstalls (the role
# templates it again anyway).
#
# usage: install-hadoop.sh ARCHIVE HOME
set -eu
archive=$1 home=$2
stamp="$(basename "$archive") $(wc -c < "$archive" | tr -d ' ')"
# The fetch role may have unpacked the archive already, while the copies went on
# (fetch_unpack): that tree, stamped like the marker, is used instead of unpacking again
# (by the first instance installed; others unpack their own).
staged=$archive.unpacked
if [ -f "$home/.spark-openstack-archive" ] && [ "$(cat "$home/.spark-openstack-archive")" = "$stamp" ]; then
  echo unchanged
  exit 0
fi
work=$(mktemp -d "$(dirname "$home")/.hadoop-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ "$(cat "$staged/.spark-openstack-stamp" 2>/dev/null)" = "$stamp" ]; then
  rm -f "$staged/.spark-openstack-stamp"
  rmdir "$work" && mv "$staged" "$work"
else
  tar -xzf "$archive" -C "$work" --strip-components=1
fi
[ -x "$work/bin/hdfs" ] || { echo "$archive is not a Hadoop binary distribution (no bin/hdfs inside)" >&2; exit 1; }
mkdir -p "$work/etc/hadoop"
for keep in etc/hadoop logs pids; do
  if [ -d "$home/$keep" ]; then rm -rf "${work:?}/$keep"; mv "$home/$keep" "$work/$keep"; fi
done
echo "$stamp" > "$work/.spark-openstack-archive"
rm -rf "$home"
mv "$work" "$home"
trap - EXIT
echo changed
