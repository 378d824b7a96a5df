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

printf 'archive %s (%d MiB), links %s Mbit/s, %s\n' "$(basename "$ARCHIVE")" $((size >> 20)) "$RATE_MBIT" "$(date -u +%F)"
printf '%-6s %-6s %-8s %-6s %-17s %-15s %-14s\n' slaves scheme cloud_s ssh_s controller_to_m_s master_to_all_s master_copies
for n in $SIZES; do
  c=scale$n
  t0=$(now)
  "$BIN" launch "$c" -s "$n" -a debian-12 -k "$c" -i "$work/key" -t m1.small --cloud-only >/dev/null
  t1=$(now)
  play "$repo/playbooks/cluster-access.yml" -e "cluster=$c"
  t2=$(now)
  master=$("$BIN" get-master "$c" | tr -d '[:space:]')
  ns=$(for x in $(ip netns list | awk '/^bs-/ {print $1}'); do
         if ip -n "$x" -4 -o addr show | grep -q " $master/"; then echo "$x"; fi; done)
  [ -n "$ns" ] || { echo "no namespace holds the master's address $master" >&2; exit 1; }
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
