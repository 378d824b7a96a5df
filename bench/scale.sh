#!/usr/bin/env bash
# Getting an archive onto every node of a 1+N cluster, on links shaped like a cloud's.
#
# One devcloud with image machines whose interfaces are shaped to RATE_MBIT (default
# 1000) by `netns.link`; for each N (default 2 8 16 32): `launch --cloud-only` 1+N
# machines, make them reach each other (playbooks/cluster-access.yml), bring ARCHIVE
# (default: the pyspark sdist, 435 MiB, Spark's whole runtime) to the master, then to
# every slave with the fetch role, once with `fetch_fanout: tree` and once with `flat`
# (the master sends every slave its copy, as before). Prints per N and scheme: the
# seconds of the cloud, SSH, controller->master and master->slaves phases, and the copies
# the master's interface sent (its kernel's tx counter / archive size).
#
#   usage: bench/scale.sh [N...]       (root; needs what tests/fetch_fanout.rs needs)
#   env:   BIN, RATE_MBIT, ARCHIVE, SCHEMES (default "tree flat")
#
# FULL=1: instead, a whole launch of 1+N per N and scheme (SCHEMES may also name
# `tree-late`: the tree without the early unpack): `launch --cloud-only` (cloud
# resources and boot), then playbooks/configure.yml with `--json` (its events carry the
# time), split into phases: SSH and cluster access, base (facts, Java from apt through
# devcloud's apt-cacher-ng, disks, kernel), distribution (fetch role: Spark from the
# pyspark sdist, py4j, Hadoop, and the unpacking that overlaps it), install (what is left
# of unpacking), configure (everything else), daemons
# (start, until every Spark worker is ALIVE and every DataNode live); and the master's
# sent bytes over the whole launch as copies of the three archives. Small daemons, so
# 1+32 fit on one host: HDFS heaps 128 MiB, no Spark Connect. env: SDIST, PY4J, HADOOP
# (default: the CI cache's); each run's events are kept as EVENTS_DIR/scale-CLUSTER.jsonl
# (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/spark-openstack}
[ -x "$BIN" ] || cargo build --release --quiet
SIZES=${*:-2 8 16 32}
RATE_MBIT=${RATE_MBIT:-1000}
SCHEMES=${SCHEMES:-tree flat}
cache=${SPARK_OPENSTACK_CACHE:-$HOME/.cache/spark-openstack-ci}
ARCHIVE=${ARCHIVE:-$cache/dl/pyspark-4.3.0.tar.gz}
[ -s "$ARCHIVE" ] || { echo "ARCHIVE=$ARCHIVE: no such file (run .ci/run once, or set ARCHIVE)" >&2; exit 1; }
export SPARK_OPENSTACK_APT_CACHE=${SPARK_OPENSTACK_APT_CACHE:-$cache/apt-cacher-ng}
export SPARK_OPENSTACK_DEVCLOUD_IMAGES=${SPARK_OPENSTACK_DEVCLOUD_IMAGES:-$cache/devcloud-images}
size=$(stat -c %s "$ARCHIVE")

work=$(mktemp -d /var/tmp/bench-scale.XXXXXX)
trap '"$BIN" devcloud down --state-dir "$work/state" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cat > "$work/devcloud.yaml" <<YAML
boot_time: {min_ms: 2000, max_ms: 2000}
action_time_ms: 200
quotas: {instances: 1000, cores: 100000, ram_mb: 100000000, ports: 2000, floating_ips: 100}
netns: {prefix: bs, supernet: 10.77.0.0/16, ssh_delay_s: [5, 10], machine_fs: image, link: {rate_mbit: $RATE_MBIT}}
YAML
export HOME="$work/home" OS_CLIENT_CONFIG_FILE="$work/clouds.yaml" OS_CLOUD=devcloud
mkdir -p "$HOME"
"$BIN" devcloud up --backend netns --state-dir "$work/state" --listen 127.0.0.1:0 \
    --config "$work/devcloud.yaml" --clouds-yaml "$work/clouds.yaml" >/dev/null
ssh-keygen -q -t ed25519 -N "" -f "$work/key"

cat > "$work/dist.yml" <<YAML
- hosts: master:slaves
  gather_facts: false
  tasks:
    - include_role: {name: fetch}
      vars: {fetch_src: "$ARCHIVE", fetch_dir: /home/debian/cache}
YAML
cat > "$work/upload.yml" <<YAML
- hosts: master
  gather_facts: false
  tasks:
    - file: {path: /home/debian/cache, state: directory}
    - synchronize: {src: "$ARCHIVE", dest: /home/debian/cache/$(basename "$ARCHIVE")}
YAML
cat > "$work/clear.yml" <<YAML
- hosts: slaves
  gather_facts: false
  tasks:
    - file: {path: /home/debian/cache/$(basename "$ARCHIVE"), state: absent}
YAML
play() { "$BIN" play "$@" --private-key "$work/key" --roles-path "$repo/roles" >"$work/play.log" 2>&1 \
  || { cat "$work/play.log" >&2; exit 1; }; }
now() { date +%s.%N; }
secs() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }
master_tx() { ip netns exec "$1" cat /sys/class/net/eth0/statistics/tx_bytes; }

master_ns() { # master_ns ADDRESS: the namespace whose interface holds the master's address
  local x try
  for try in $(seq 30); do # the floating address may be plugged just after ACTIVE
    for x in $(ip netns list | awk '/^bs-/ {print $1}'); do
      if ip -n "$x" -4 -o addr show | grep -q " $1/"; then echo "$x"; return; fi
    done
    sleep 1
  done
  echo "no namespace holds the master's address $1" >&2; exit 1
}

if [ "${FULL:-0}" = 1 ]; then
  SDIST=${SDIST:-$cache/dl/pyspark-4.3.0.tar.gz}
  PY4J=${PY4J:-$cache/dl/py4j-0.10.9.9.tar.gz}
  HADOOP=${HADOOP:-$cache/dl/hadoop-3.5.0-maven.tar.gz}
  for f in "$SDIST" "$PY4J" "$HADOOP"; do
    [ -s "$f" ] || { echo "$f: no such file (run .ci/run once, or set SDIST, PY4J, HADOOP)" >&2; exit 1; }
  done
  total=$(( $(stat -c %s "$SDIST") + $(stat -c %s "$PY4J") + $(stat -c %s "$HADOOP") ))
  printf 'whole launch: Spark %s, Hadoop %s (%d MiB in all), links %s Mbit/s, %s\n' "$(basename "$SDIST")" \
    "$(basename "$HADOOP")" $((total >> 20)) "$RATE_MBIT" "$(date -u +%F)"
  printf '%-6s %-6s %6s %6s %6s %8s %8s %9s %8s %7s %14s\n' slaves scheme cloud ssh base distrib install configure daemons total master_copies
  for n in $SIZES; do
    for scheme in $SCHEMES; do
      c=f$n${scheme//-/}
      t0=$(now)
      "$BIN" launch "$c" -s "$n" -a debian-12 -k "$c" -i "$work/key" -t m1.small --cloud-only >/dev/null
      t1=$(now)
      ns=$(master_ns "$("$BIN" get-master "$c" | tr -d '[:space:]')") || exit 1
      # tree-late: the tree without the early unpack (nodes unpack after the whole fan-out).
      late=(); [ "$scheme" = tree-late ] && late=(-e fetch_unpack=)
      if ! "$BIN" play --json "$repo/playbooks/configure.yml" -e "cluster=$c" -e "fetch_fanout=${scheme%-late}" "${late[@]}" \
          -e "spark_source=$SDIST" -e "spark_py4j_source=$PY4J" -e "hadoop_source=$HADOOP" \
          -e hdfs_heapsize_max=128m -e spark_connect_enabled=false \
          --private-key "$work/key" --roles-path "$repo/roles" >"$work/events.jsonl" 2>"$work/play.err"; then
        cp "$work/events.jsonl" "${EVENTS_DIR:-/tmp}/scale-$c.jsonl"
        tail -n 5 "$work/play.err" >&2
        python3 - "$work/events.jsonl" >&2 <<'PY'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l) if l.startswith("{") else {}
    if e.get("event") == "host_result" and e["status"] in ("failed", "unreachable"):
        r = e["result"]
        print(f'{e["host"]}: {e["task"]}: {r.get("msg", "")} {r.get("stderr", "")[-400:]}')
PY
        echo "the launch of $c failed; its events: ${EVENTS_DIR:-/tmp}/scale-$c.jsonl" >&2
        exit 1
      fi
      tx=$(ip netns exec "$ns" cat /sys/class/net/eth0/statistics/tx_bytes)
      cp "$work/events.jsonl" "${EVENTS_DIR:-/tmp}/scale-$c.jsonl"
      python3 - "$work/events.jsonl" "$n" "$scheme" "$(secs "$t0" "$t1")" "$tx" "$total" <<'PY'
import json, re, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
n, scheme, cloud, tx, total = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
plays = [e for e in events if e["event"] == "play_start"]
software = next(e["t"] for e in plays if e["name"] == "Install and configure the software")
end = events[-1]["t"]
# In the software play (linear strategy) a task lasts until the next one starts.
starts = [e for e in events if e["event"] == "task_start" and e["t"] >= software]
phase = {"base": 0.0, "distrib": 0.0, "install": 0.0, "configure": 0.0, "daemons": 0.0}
first_fetch = None
for cur, nxt in zip(starts, starts[1:] + [{"t": end}]):
    # Role tasks are named "role : task", as Ansible shows them.
    name, took = re.sub(r"^[\w.-]+ : ", "", cur["name"]), nxt["t"] - cur["t"]
    if re.search(r"archive into the cluster|py4j into the cluster|from the controller to the master"
                 r"|from the master to every slave|checksum|Name the file on the nodes|download cache"
                 r"|Get the file on the master|Download the file|py4j version", name):
        kind = "distrib"
        first_fetch = first_fetch if first_fetch is not None else cur["t"]
    elif first_fetch is None:
        kind = "base"
    elif re.match(r"Install (Spark|Hadoop)", name):
        kind = "install"
    elif re.match(r"(Start|Wait|Ask the master for its workers|restart)", name):
        kind = "daemons"
    else:
        kind = "configure"
    phase[kind] += took
base = phase["base"] + (starts[0]["t"] - software if starts else 0.0)
print(f"{n:<6} {scheme:<6} {cloud:6.1f} {software:6.1f} {base:6.1f} {phase['distrib']:8.1f} "
      f"{phase['install']:8.1f} {phase['configure']:9.1f} {phase['daemons']:8.1f} "
      f"{cloud + end:7.1f} {tx / total:14.2f}")
PY
      "$BIN" destroy "$c" --yes >/dev/null
    done
  done
  exit 0
fi

printf 'archive %s (%d MiB), links %s Mbit/s, %s\n' "$(basename "$ARCHIVE")" $((size >> 20)) "$RATE_MBIT" "$(date -u +%F)"
printf '%-6s %-6s %-8s %-6s %-17s %-15s %-14s\n' slaves scheme cloud_s ssh_s controller_to_m_s master_to_all_s master_copies
for n in $SIZES; do
  c=scale$n
  t0=$(now)
  "$BIN" launch "$c" -s "$n" -a debian-12 -k "$c" -i "$work/key" -t m1.small --cloud-only >/dev/null
  t1=$(now)
  play "$repo/playbooks/cluster-access.yml" -e "cluster=$c"
  t2=$(now)
  ns=$(master_ns "$("$BIN" get-master "$c" | tr -d '[:space:]')") || exit 1
  u0=$(now)
  play "$work/upload.yml" -e "cluster=$c"
  u1=$(now)
  first=1
  for scheme in $SCHEMES; do
    [ "$first" = 1 ] || play "$work/clear.yml" -e "cluster=$c"
    first=0
    tx0=$(master_tx "$ns")
    s0=$(now)
    play "$work/dist.yml" -e "cluster=$c" -e "fetch_fanout=$scheme"
    s1=$(now)
    tx1=$(master_tx "$ns")
    printf '%-6s %-6s %-8s %-6s %-17s %-15s %-14s\n' "$n" "$scheme" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" \
      "$(secs "$u0" "$u1")" "$(secs "$s0" "$s1")" "$(printf '%.2f' "$(echo "($tx1 - $tx0) / $size" | bc -l)")"
  done
  "$BIN" destroy "$c" --yes >/dev/null
done
