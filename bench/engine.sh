#!/bin/bash
# Engine benchmark: the same 20-task workload (10 `command`, 10 `file state=directory`) on
# N local sshd hosts, run five ways, with wall times, ratios and the targets:
#   1. spark-openstack play                       (the subject)
#   2. ansible-playbook, forks=N, pipelining, ControlPersist, no facts   target: >= 30x slower
#   3. pyinfra --parallel N (server.shell + files.directory)             target: >= 3x slower
#                                                                        (>= 5x from 128 hosts)
#   4. plain OpenSSH, ControlMaster, one ssh per command, hosts parallel target: not faster
#   5. one ssh session per host running all 20 in one shell              target: spark within
#                                                                        1.5x (<= 0.6x from 128)
# plus spark-openstack's peak RSS (target < 100 MiB; < 200 MiB at 256 hosts), from
# /usr/bin/time -v. Given several N, each is measured in turn and a last table shows the
# time per host (wall / N), which should stay flat (within 15 %) as N grows.
#
#   bench/engine.sh [N...]    default 32. env: RUNS (best of, default 3), DIR (default
#                             /tmp/so-engine-bench), WAYS (default "spark one_session
#                             controlmaster pyinfra ansible"; Ansible takes minutes from 128
#                             hosts), SPARK_OPENSTACK_BIN (default $CARGO_TARGET_DIR/release/...),
#                             ANSIBLE_PLAYBOOK_BIN, PYINFRA_BIN (default: from $VENV or PATH)
# Needs: openssh-server openssh-client time (apt); ansible-core and pyinfra (pip, in a venv);
# `cargo build --release`. A benchmark, never a test: nothing here asserts. Each sshd host
# needs a few open files: from about 200 hosts, `ulimit -n 65536` first.
set -euo pipefail
SIZES=("${@:-32}")
RUNS=${RUNS:-3}
DIR=${DIR:-/tmp/so-engine-bench}
WAYS=${WAYS:-spark one_session controlmaster pyinfra ansible}
BIN=${SPARK_OPENSTACK_BIN:-${CARGO_TARGET_DIR:-target}/release/spark-openstack}
VENV=${VENV:-/work/cache/venv}
pick() { if [ -x "$VENV/bin/$1" ]; then echo "$VENV/bin/$1"; else command -v "$1" || true; fi; }
ANSIBLE=${ANSIBLE_PLAYBOOK_BIN:-$(pick ansible-playbook)}
PYINFRA=${PYINFRA_BIN:-$(pick pyinfra)}
[ -x "$BIN" ] || { echo "build first: cargo build --release (looked for $BIN)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
wants() { case " $WAYS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
wants pyinfra && [ -z "$PYINFRA" ] && { echo "pyinfra not found: set PYINFRA_BIN or leave it out of WAYS" >&2; exit 2; }
wants ansible && [ -z "$ANSIBLE" ] && { echo "ansible-playbook not found: set ANSIBLE_PLAYBOOK_BIN or leave it out of WAYS" >&2; exit 2; }
trap '"$BIN" testbed down --dir "$DIR" >/dev/null 2>&1 || true' EXIT
SUMMARY=$(mktemp)

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

# best-of-RUNS wall time of one way ("nan" when left out of WAYS or failed); also checks
# every host got the directories.
measure() {
    local name=$1 best="" t0 t1 took
    wants "$name" || { echo nan; return; }
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

# One size: hosts up, the workload in each tool's language, the five ways, hosts down.
bench_size() {
    N=$1
    "$BIN" testbed down --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
    "$BIN" testbed up --hosts "$N" --dir "$DIR" >/dev/null
    W="$DIR/work"; mkdir -p "$W"
    HOSTS=$(awk '/^Host /{print $2}' "$DIR/ssh_config")
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

    echo "== $N hosts x 20 tasks (10 command, 10 file state=directory), best of $RUNS"
    local t_spark t_one t_cm t_py t_ans rss
    t_spark=$(measure spark)
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/spark.time" 2>/dev/null || echo 0)
    t_one=$(measure one_session)
    t_cm=$(measure controlmaster)
    t_py=$(RUNS=1 measure pyinfra)
    t_ans=$(RUNS=1 measure ansible)
    awk -v n="$N" -v s="$t_spark" -v a="$t_ans" -v p="$t_py" -v c="$t_cm" -v o="$t_one" -v rss="$rss" '
    function r(x) { return (x == "nan" || s == "nan") ? "-" : sprintf("%.1fx", x / s) }
    function w(x) { return x == "nan" ? "-" : sprintf("%.2f", x) }
    function met(ok) { return ok ? "met" : "MISSED" }
    BEGIN {
        big = n >= 128
        printf "%-44s %9s %9s\n", "way", "wall s", "vs spark"
        printf "%-44s %9s %9s\n", "1. spark-openstack play", w(s), "1.00x"
        printf "%-44s %9s %9s", "2. ansible-playbook (forks, pipelining, CP)", w(a), r(a)
        if (a != "nan" && s != "nan") printf "  target >= 30x: %s", met(a / s >= 30); printf "\n"
        printf "%-44s %9s %9s", "3. pyinfra --parallel", w(p), r(p)
        if (p != "nan" && s != "nan") printf "  target >= %dx: %s", big ? 5 : 3, met(p / s >= (big ? 5 : 3)); printf "\n"
        printf "%-44s %9s %9s", "4. OpenSSH ControlMaster, ssh per command", w(c), r(c)
        if (c != "nan" && s != "nan") printf "  target >= 1x: %s", met(c / s >= 1); printf "\n"
        printf "%-44s %9s %9s", "5. one ssh session per host (20 in one shell)", w(o), r(o)
        if (o != "nan" && s != "nan") printf "  target spark <= %sx: %s", big ? "0.6" : "1.5", met(s / o <= (big ? 0.6 : 1.5)); printf "\n"
        lim = n >= 256 ? 200 : 100
        printf "spark-openstack peak RSS: %.1f MiB  target < %d MiB: %s\n", rss / 1024, lim, met(rss / 1024 < lim)
    }'
    echo "$N $t_spark $rss" >> "$SUMMARY"
    "$BIN" testbed down --dir "$DIR" >/dev/null 2>&1 || true
}

echo "engine benchmark: $($BIN --version 2>/dev/null || echo spark-openstack)"
wants ansible && echo "  $("$ANSIBLE" --version 2>/dev/null | head -1)"
wants pyinfra && echo "  pyinfra $("$PYINFRA" --version 2>/dev/null | awk '{print $NF}')"
for n in "${SIZES[@]}"; do bench_size "$n"; done
if [ "${#SIZES[@]}" -gt 1 ]; then
    echo "== spark-openstack time per host (wall / N; flat within 15 % is the target)"
    sort -n "$SUMMARY" | awk '
        NR == 1 { base = $2 / $1 * 1000 }
        { ms = $2 / $1 * 1000; worst = (ms / base > worst) ? ms / base : worst
          printf "%5d hosts  %7.2f s  %6.1f ms/host  %5.2fx the smallest N  RSS %.1f MiB\n", $1, $2, ms, ms / base, $3 / 1024 }
        END { printf "flat within 15 %%: %s\n", (worst <= 1.15 ? "met" : "MISSED") }'
fi
rm -f "$SUMMARY"
