#!/usr/bin/env bash
# Launch overhead on devcloud (records backend): 60 ms per API call, 20 s boot time,
# clusters of 10, 50 and 100 slaves, cloud resources only (no SSH, no software roles).
# Prints, per size, the wall time above the boot time and the number of API calls the
# launch made (from devcloud's request log), which should grow linearly with the size.
# Target: < 10 s overhead at 100 slaves.
#   usage: bench/launch.sh [SIZES...]   (default: 10 50 100)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/spark-openstack}
[ -x "$BIN" ] || cargo build --quiet
SIZES=${*:-10 50 100}
BOOT_S=20

work=$(mktemp -d)
trap '"$BIN" devcloud down --state-dir "$work/state" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cat > "$work/devcloud.yaml" <<YAML
latency_ms: 60
boot_time: {min_ms: $((BOOT_S * 1000)), max_ms: $((BOOT_S * 1000))}
quotas: {instances: 1000, cores: 100000, ram_mb: 100000000, ports: 2000, floating_ips: 100}
YAML
export HOME="$work/home" OS_CLIENT_CONFIG_FILE="$work/clouds.yaml" OS_CLOUD=devcloud
mkdir -p "$HOME"
SPARK_OPENSTACK_LOG=info "$BIN" devcloud up --state-dir "$work/state" --listen 127.0.0.1:0 \
    --config "$work/devcloud.yaml" --clouds-yaml "$work/clouds.yaml" >/dev/null

printf '%-8s %-10s %-12s %-10s\n' slaves wall_s overhead_s api_calls
for n in $SIZES; do
    before=$(grep -c " request " "$work/state/devcloud.log" 2>/dev/null || true)
    start=$(date +%s.%N)
    "$BIN" launch "bench$n" -s "$n" -a ubuntu-22.04 -t m1.tiny --cloud-only >/dev/null
    end=$(date +%s.%N)
    after=$(grep -c " request " "$work/state/devcloud.log" 2>/dev/null || true)
    wall=$(echo "$end - $start" | bc)
    printf '%-8s %-10.1f %-12.1f %-10s\n' "$n" "$wall" "$(echo "$wall - $BOOT_S" | bc)" "$((${after:-0} - ${before:-0}))"
    "$BIN" destroy "bench$n" --yes >/dev/null
done
