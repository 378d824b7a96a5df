# Shared by .ci/openstack/up and .ci/openstack/down: where the state lives, the ports, and
# how daemons are started and stopped (each in its own process group, by pid file).
# shellcheck shell=bash

CACHE=${SPARK_OPENSTACK_CACHE:-$HOME/.cache/spark-openstack-ci}
STATE=$CACHE/openstack
ETC=$STATE/etc
LOGS=$STATE/logs
RUN=$STATE/run
DONE=$STATE/done

# Ports: all on 127.0.0.1, in a block nothing else on the CI machine uses (devcloud picks
# a free port of its own).
P_MYSQL=25306
P_RABBIT=25672
P_RABBIT_DIST=25673
P_EPMD=25369
P_KEYSTONE=25357
P_PLACEMENT=25778
P_NOVA=25774
P_NEUTRON=25696
P_GLANCE=25292
P_CINDER=25776
# Swift: the proxy (Swift API under /v1, S3 API at /) and its three storage servers.
P_SWIFT=25880
P_SWIFT_ACCOUNT=25882
P_SWIFT_CONTAINER=25881
P_SWIFT_OBJECT=25883

# Nova's compute hosts (FakeDriver): one availability zone each.
COMPUTE_HOSTS=(realstack-1 realstack-2)

T0=${T0:-$SECONDS}
step() { printf '[%4ss] %s\n' "$((SECONDS - T0))" "$*"; }

pid_of() { cat "$RUN/$1.pid" 2>/dev/null; }

# True when the daemon NAME's pid file names a live process.
is_running() {
  local p
  p=$(pid_of "$1") || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

# start_daemon NAME CMD...: runs CMD in the background in a new session (so its process
# group id is its pid), output to $LOGS/NAME.log, pid to $RUN/NAME.pid. No-op if running.
start_daemon() {
  local name=$1
  shift
  if is_running "$name"; then return 0; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# stop_daemon NAME: SIGTERM to its process group, SIGKILL after 20 s; removes the pid file.
stop_daemon() {
  local name=$1 p i
  p=$(pid_of "$name") || return 0
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
  echo "$p"
}

# wait_gone PID...: until no process of those process groups is left (20 s, then KILL).
wait_gone() {
  local i p left
  for i in $(seq 1 100); do
    left=
    for p in "$@"; do
      if kill -0 -- "-$p" 2>/dev/null || kill -0 "$p" 2>/dev/null; then left="$left $p"; fi
    done
    [ -z "$left" ] && return 0
    sleep 0.2
  done
  for p in $left; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
  sleep 0.5
}
