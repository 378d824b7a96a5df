#!/bin/sh
# Decommissions the DataNodes of HOSTS in every running HDFS instance of this node (the
# master): lists them in the instance's exclude file, has the NameNode reread it
# (`dfsadmin -refreshNodes`), and waits until `dfsadmin -report` shows each of them
# Decommissioned, i.e. every block they hold has its replicas elsewhere. A host the
# NameNode does not know (no DataNode there) is skipped. Prints `decommissioned` when it
# decommissioned anything; fails after TIMEOUT seconds saying which hosts are not done.
#
# The instances are the Hadoop homes in ~ (~/ephemeral-hdfs, ~/persistent-hdfs) whose
# NameNode runs.
#
# usage: decommission.sh TIMEOUT HOST...
set -eu
timeout=$1
shift
[ $# -gt 0 ] || exit 0
did=false

# "host<TAB>status" for every DataNode the NameNode knows, live or dead.
statuses() {
  bin/hdfs dfsadmin -report 2>/dev/null | awk '
    /^Hostname: / { h = $2 }
    /^Decommission Status : / { sub(/^Decommission Status : /, ""); print h "\t" $0 }'
}

for home in "$HOME"/*-hdfs; do
  [ -x "$home/bin/hdfs" ] && [ -f "$home/etc/hadoop/hdfs-site.xml" ] || continue
  cd "$home"
  name=$(basename "$home")
  if ! bin/hdfs --daemon status namenode >/dev/null 2>&1; then
    echo "$name: the NameNode is not running; nothing to decommission"
    continue
  fi
  known=$(statuses)
  leaving=""
  for h in "$@"; do
    if printf '%s\n' "$known" | cut -f1 | grep -qxF "$h"; then leaving="$leaving $h"; fi
  done
  if [ -z "$leaving" ]; then
    echo "$name: no DataNode on$(printf ' %s' "$@")"
    continue
  fi
  exclude=etc/hadoop/dfs.exclude
  touch "$exclude"
  for h in $leaving; do grep -qxF "$h" "$exclude" || echo "$h" >>"$exclude"; done
  bin/hdfs dfsadmin -refreshNodes >/dev/null
  start=$(date +%s)
  while :; do
    pending=""
    now=$(statuses)
    for h in $leaving; do
      st=$(printf '%s\n' "$now" | awk -F '\t' -v h="$h" '$1 == h { print $2 }' | head -1)
      [ "$st" = Decommissioned ] || pending="$pending $h ($st)"
    done
    [ -n "$pending" ] || break
    if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
      echo "$name: DataNodes not decommissioned after $timeout s:$pending." >&2
      echo "Their blocks are not all copied to the other DataNodes yet (see \`$name/bin/hdfs dfsadmin -report\` on the master)." >&2
      echo "Retry with a longer -e hdfs_decommission_timeout=SECONDS, or -e hdfs_decommission=false to remove them anyway (blocks whose only copies are there are lost)." >&2
      exit 1
    fi
    sleep 3
  done
  echo "$name: decommissioned$leaving in $(($(date +%s) - start)) s"
  did=true
done
[ "$did" = false ] || echo decommissioned
