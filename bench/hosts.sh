#!/bin/sh
# Local sshd hosts for the engine benchmarks, and the OpenSSH baseline they are compared with.
#
#   bench/hosts.sh up [N] [DIR]          start N hosts (default 32) in DIR (default /tmp/so-bench)
#   bench/hosts.sh openssh [DIR] [CMDS]  time one OpenSSH session per host running CMDS (default 20)
#                                        commands in one shell: the baseline to stay within 1.5x of
#   bench/hosts.sh down [DIR]            stop the hosts (files are kept)
#
# `up` writes DIR/inventory.yml (group `testhosts`), DIR/known_hosts, DIR/ssh_config and
# DIR/id_ed25519. Run as root so each host gets its own /root (DIR/hostN/root).
# Needs: openssh-server openssh-client (apt), and the binary built (cargo build).
# Our side of the comparison: cargo test --test ssh_bench -- --ignored --nocapture
set -eu
BIN=${SPARK_OPENSTACK_BIN:-${CARGO_TARGET_DIR:-target}/debug/spark-openstack}
action=${1:-}
case "$action" in
up)
    n=${2:-32}; dir=${3:-/tmp/so-bench}
    "$BIN" testbed up --hosts "$n" --dir "$dir"
    ;;
down)
    "$BIN" testbed down --dir "${2:-/tmp/so-bench}"
    ;;
openssh)
    dir=${2:-/tmp/so-bench}; cmds=${3:-20}
    script=""
    i=0
    while [ "$i" -lt "$cmds" ]; do
        script="$script echo step $i; test -r /etc/hostname && cat /etc/hostname >/dev/null; echo err $i >&2;"
        i=$((i + 1))
    done
    hosts=$(awk '/^Host /{print $2}' "$dir/ssh_config")
    start=$(date +%s.%N)
    for h in $hosts; do
        ssh -F "$dir/ssh_config" "$h" "$script" >/dev/null 2>&1 &
    done
    wait
    end=$(date +%s.%N)
    echo "openssh: $(echo "$hosts" | wc -w) hosts x $cmds commands in $(awk "BEGIN { print $end - $start }")s"
    ;;
*)
    sed -n '2,13p' "$0"
    exit 2
    ;;
esac
