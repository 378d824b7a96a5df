#!/bin/sh
# Unpacks a Spark archive into SPARK_HOME, once per archive: prints `unchanged` when
# SPARK_HOME already holds it, else `changed`.
#
# usage: install-spark.sh ARCHIVE SPARK_HOME [PY4J_ARCHIVE]
#
# Two layouts are understood: the Apache binary distribution (spark-X-bin-*/bin, jars, ...)
# and the pyspark source distribution (pyspark-X/deps/{bin,sbin,jars,...} plus the pyspark
# package), which becomes the same SPARK_HOME layout: bin/ sbin/ jars/ and python/ with
# pyspark (and py4j from PY4J_ARCHIVE). conf/ is kept across reinstalls.
set -eu
archive=$1 home=$2 py4j=${3:-}
stamp="$(basename "$archive") $(wc -c < "$archive" | tr -d ' ')"
marker=$home/.spark-openstack-archive
# The fetch role may have unpacked the archive already, while the copies went on
# (fetch_unpack): that tree, stamped like the marker, is used instead of unpacking again.
staged=$archive.unpacked
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$stamp" ] && [ -x "$home/sbin/spark-daemon.sh" ]; then
  rm -rf "$staged"
  echo unchanged
  exit 0
fi

work=$(mktemp -d "$(dirname "$home")/.spark-install.XXXXXX")
trap 'rm -rf "$work" "$staged"' EXIT
if [ "$(cat "$staged/.spark-openstack-stamp" 2>/dev/null)" = "$stamp" ]; then
  rm -f "$staged/.spark-openstack-stamp"
  rmdir "$work" && mv "$staged" "$work"
else
  tar -xzf "$archive" -C "$work" --strip-components=1
fi
new=$work/home
mkdir "$new"
if [ -d "$work/deps/jars" ]; then
  # pyspark sdist
  for d in bin sbin jars data examples licenses conf; do
    [ ! -d "$work/deps/$d" ] || mv "$work/deps/$d" "$new/$d"
  done
  mkdir -p "$new/python"
  mv "$work/pyspark" "$new/python/pyspark"
  if [ -n "$py4j" ]; then
    mkdir "$work/py4j"
    tar -xzf "$py4j" -C "$work/py4j" --strip-components=1
    mv "$work/py4j/src/py4j" "$new/python/py4j"
  fi
elif [ -d "$work/jars" ] && [ -d "$work/sbin" ]; then
  # Apache binary distribution
  for f in "$work"/* "$work"/.[!.]*; do
    [ -e "$f" ] && [ "$f" != "$new" ] && mv "$f" "$new/"
  done
else
  echo "$archive is neither a Spark binary distribution nor a pyspark source distribution (no jars/ or deps/jars/ inside)" >&2
  exit 1
fi
[ -x "$new/sbin/spark-daemon.sh" ] || { echo "$archive has no sbin/spark-daemon.sh" >&2; exit 1; }
chmod +x "$new"/bin/* "$new"/sbin/*

# Keep the configuration of a previous install; the role templates it again anyway.
if [ -d "$home/conf" ]; then
  rm -rf "$new/conf"
  mv "$home/conf" "$new/conf"
fi
mkdir -p "$new/conf"
echo "$stamp" > "$new/.spark-openstack-archive"
rm -rf "$home"
mv "$new" "$home"
echo changed
