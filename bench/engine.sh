#!/bin/bash
# Engine benchmark: the same 20-task workload (10 `command`, 10 `file state=directory`) on
# N local sshd hosts (default 32), run five ways, with wall times, ratios and the targets:
#   1. spark-openstack play                       (the subject)
#   2. ansible-playbook, forks=N, pipelining, ControlPersist, no facts   target: >= 30x slower
#   3. pyinfra --parallel N (server.shell + files.directory)             target: >= 3x slower
#   4. plain OpenSSH, ControlMaster, one ssh per command, hosts parallel target: not faster
#   5. lower bound: one ssh session per host running all 20 in one shell target: within 1.5x
# plus spark-openstack's peak RSS (target < 100 MiB), from /usr/bin/time -v.
#
#   bench/engine.sh [N]       env: RUNS (best of, default 3), DIR (default /tmp/so-engine-bench),
#                             SPARK_OPENSTACK_BIN (default $CARGO_TARGET_DIR/release/...),
#                             ANSIBLE_PLAYBOOK_BIN, PYINFRA_BIN (default: from /work/cache/venv or PATH)
# Needs: openssh-server openssh-client time (apt); ansible-core and pyinfra (pip, in a venv);
# `cargo build --release`. A benchmark, never a test: nothing here asserts.
set -euo pipefail
N=${1:-32}
RUNS=${RUNS:-3}
DIR=${DIR:-/tmp/so-engine-bench}
BIN=${SPARK_OPENSTACK_BIN:-${CARGO_TARGET_DIR:-target}/release/spark-openstack}
VENV=${VENV:-/work/cache/venv}
pick() { if [ -x "$VENV/bin/$1" ]; then echo "$VENV/bin/$1"; else command -v "$1" || true; fi; }
ANSIBLE=${ANSIBLE_PLAYBOOK_BIN:-$(pick ansible-playbook)}
PYINFRA=${PYINFRA_BIN:-$(pick pyinfra)}
[ -x "$BIN" ] || { echo "build first: cargo build --release (looked for $BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }

"$BIN" testbed down --dir "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR"
"$BIN" testbed up --hosts "$N" --dir "$DIR" >/dev/null
trap '"$BIN" testbed down --dir "$DIR" >/dev/null 2>&1 || true' EXIT
W="$DIR/work"; mkdir -p "$W"
HOSTS=$(awk '/^Host /{print $2}' "$DIR/ssh_config")

# --- the workload, in each tool's language ------------------------------------------------
{
    echo "- hosts: testhosts"
    echo "  gather_facts: false"
    echo "  tasks:"
    for i in $(seq 0 9); do
        echo "    - command: echo step $i"
        echo "    - file: {path: /root/bench/d$i, state: directory}"
    done
} > "$W/workload.yml"
{
    echo "from pyinfra.operations import files, server"
    echo "for i in range(10):"
    echo "    server.shell(name=f'step {i}', commands=[f'echo step {i}'])"
    echo "    files.directory(name=f'dir {i}', path=f'/root/bench/d{i}')"
} > "$W/deploy.py"
{
    echo "hosts = ["
    for h in $HOSTS; do
        port=$(awk -v h="$h" '$1=="Host"{cur=$2} cur==h && $1=="Port"{print $2}' "$DIR/ssh_config")
        echo "    ('$h', {'ssh_hostname': '127.0.0.1', 'ssh_port': $port, 'ssh_user': 'root',"
        echo "            'ssh_key': '$DIR/id_ed25519', 'ssh_known_hosts_file': '$DIR/known_hosts',"
        echo "            'ssh_strict_host_key_checking': 'yes'}),"
    done
    echo "]"
} > "$W/inventory.py"
ONE_SHELL=""
for i in $(seq 0 9); do ONE_SHELL="$ONE_SHELL echo step $i; mkdir -p /root/bench/d$i;"; done

# Every run starts from hosts without the directories, so each does the same work.
reset_hosts() { rm -rf "$DIR"/host*/root/bench; }
now() { date +%s.%N; }

run_spark() {
    /usr/bin/time -v -o "$W/spark.time" "$BIN" play -i "$DIR/inventory.yml" -f "$N" \
        --host-key-checking strict "$W/workload.yml" >"$W/spark.out" 2>&1
}
run_ansible() {
    ANSIBLE_FORKS=$N ANSIBLE_PIPELINING=1 ANSIBLE_HOST_KEY_CHECKING=True \
    ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s" \
    ANSIBLE_SSH_CONTROL_PATH_DIR="$W/ansible-cp" ANSIBLE_HOME="$W/ansible-home" \
    ANSIBLE_LOCAL_TEMP="$W/ansible-local" ANSIBLE_REMOTE_TMP="$W/ansible-remote" \
    ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1 ANSIBLE_CONFIG=/nonexistent \
        "$ANSIBLE" -i "$DIR/inventory.yml" "$W/workload.yml" >"$W/ansible.out" 2>&1
    # The next run must open its connections again, like the other tools do.
    for h in $HOSTS; do
        ssh -F "$DIR/ssh_config" -o ControlPath="$W/ansible-cp/%C" -O exit "$h" >/dev/null 2>&1 || true
    done
}
run_pyinfra() {
    (cd "$W" && "$PYINFRA" -y --parallel "$N" inventory.py deploy.py >"$W/pyinfra.out" 2>&1)
}
run_controlmaster() {
    mkdir -p "$W/cm"
    for h in $HOSTS; do
        (
            s() { ssh -F "$DIR/ssh_config" -o ControlMaster=auto -o ControlPath="$W/cm/%C" \
                      -o ControlPersist=60 "$h" "$1" >/dev/null; }
            for i in $(seq 0 9); do s "echo step $i"; s "mkdir -p /root/bench/d$i"; done
        ) &
    done
    wait
    for h in $HOSTS; do
        ssh -F "$DIR/ssh_config" -o ControlPath="$W/cm/%C" -O exit "$h" >/dev/null 2>&1 || true
    done
}
run_one_session() {
    for h in $HOSTS; do
        ssh -F "$DIR/ssh_config" "$h" "$ONE_SHELL" >/dev/null &
    done
    wait
}

# best-of-RUNS wall time of one way; also checks every host got the directories.
measure() {
    local name=$1 best="" t0 t1 took
    for _ in $(seq "$RUNS"); do
        reset_hosts
        t0=$(now)
        if ! "run_$name"; then
            echo "$name: FAILED (see $W/$name.out)" >&2
            echo "nan"; return
        fi
        t1=$(now)
        local made
        made=$(ls -d "$DIR"/host*/root/bench/d9 2>/dev/null | wc -l)
        [ "$made" -eq "$N" ] || echo "$name: only $made of $N hosts have the directories" >&2
        took=$(awk "BEGIN { print $t1 - $t0 }")
        best=$(awk -v a="$best" -v b="$took" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}

echo "engine benchmark: $N hosts x 20 tasks (10 command, 10 file state=directory), best of $RUNS"
echo "  $($BIN --version 2>/dev/null || echo spark-openstack), $("$ANSIBLE" --version 2>/dev/null | head -1), pyinfra $("$PYINFRA" --version 2>/dev/null | awk '{print $2}')"
T_SPARK=$(measure spark)
RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/spark.time")
T_ONE=$(measure one_session)
T_CM=$(measure controlmaster)
T_PY=$( [ -n "$PYINFRA" ] && RUNS=1 measure pyinfra || echo nan)
T_ANS=$( [ -n "$ANSIBLE" ] && RUNS=1 measure ansible || echo nan)

awk -v s="$T_SPARK" -v a="$T_ANS" -v p="$T_PY" -v c="$T_CM" -v o="$T_ONE" -v rss="$RSS_KB" 'BEGIN {
    printf "%-44s %9s %9s\n", "way", "wall s", "vs spark"
    printf "%-44s %9.2f %9s\n", "1. spark-openstack play", s, "1.00x"
    printf "%-44s %9.2f %8.1fx  target >= 30x: %s\n", "2. ansible-playbook (forks, pipelining, CP)", a, a/s, (a/s >= 30 ? "met" : "MISSED")
    printf "%-44s %9.2f %8.1fx  target >= 3x: %s\n", "3. pyinfra --parallel", p, p/s, (p/s >= 3 ? "met" : "MISSED")
    printf "%-44s %9.2f %8.2fx  target >= 1x: %s\n", "4. OpenSSH ControlMaster, ssh per command", c, c/s, (c/s >= 1 ? "met" : "MISSED")
    printf "%-44s %9.2f %8.2fx  target spark <= 1.5x: %s\n", "5. one ssh session per host (lower bound)", o, o/s, (s/o <= 1.5 ? "met" : "MISSED")
    printf "spark-openstack peak RSS: %.1f MiB  target < 100 MiB: %s\n", rss/1024, (rss/1024 < 100 ? "met" : "MISSED")
}'
