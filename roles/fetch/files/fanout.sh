#!/bin/bash
# fanout.sh FILE DIR MASTER_COPIES NODE...
#
# Run on the master: brings FILE (a file or a directory) into DIR on every NODE (addresses
# on the cluster network), in a time that grows with log N, not N, and with at most
# MASTER_COPIES copies leaving the master whatever N is.
#
# Every node that holds a complete copy whose SHA-256 matches the master's serves the next
# node that lacks one: the master seeds the first MASTER_COPIES nodes, then they, and the
# nodes they fill, fill the rest (a copy doubles the sources, so N nodes take about
# log2(N) copy times). A slave sends one copy at a time, and starts the next as soon as
# its last one is verified: there are no rounds to wait for. The master sends its copies
# one at a time too, except when it serves every node itself (N <= MASTER_COPIES): then
# all at once, as a flat copy would.
#
# With FETCH_UNPACK_MARKER set (a path on the nodes), FILE is a .tar.gz that every node
# unpacks into FILE.unpacked/ (top directory stripped) as soon as it holds a verified copy,
# in the background while it goes on serving, so the install that follows only moves
# files; the master unpacks its own while it sends. A node whose MARKER file already
# names this archive ("NAME SIZE", what the install scripts write) is installed and
# unpacks nothing. An unpack that fails is reported and left to the install to redo.
#
# A node copies to another with rsync over SSH, authenticated by the master's cluster key
# through a forwarded agent that lives only while this script runs: the key itself never
# leaves the master, and nothing is left running afterwards. Nodes that already hold a
# verified copy are left alone (a rerun copies nothing). A copy that fails or does not
# verify is retried, from another source where there is one, up to 3 times per node;
# the script then fails naming each node that has no copy and why.
#
# Prints one line per copy made ("copied to NODE from SOURCE in Ss"), and a summary
# with the number of copies the master sent.
set -u
file=$1 dir=$2 master_copies=$3
shift 3
name=$(basename "$file")
target="$dir/$name"
opts=(-o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=10 -o LogLevel=ERROR)
max_tries=3
log=$(mktemp -d) || exit 1

cleanup() {
  [ -n "${SSH_AGENT_PID:-}" ] && ssh-agent -k >/dev/null 2>&1
  # Copies still running when the script is interrupted.
  jobs -p | xargs -r kill 2>/dev/null
  rm -rf "$log"
}
trap cleanup EXIT

# The SHA-256 of a file, or of a directory's files with their relative paths: what every
# node's copy must match. Shipped to the nodes as text, so they need nothing installed.
sum_script='p=$1
if [ -d "$p" ]; then
  (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum | cut -d" " -f1
elif [ -f "$p" ]; then
  sha256sum < "$p" | cut -d" " -f1
else
  echo none
fi'
sum_on() { # sum_on NODE: the checksum of NODE's copy ("none" when it has none)
  ssh "${opts[@]}" "$1" sh -s -- "$(printf %q "$target")" <<<"$sum_script" 2>&1
}

# Unpacks ARCHIVE into ARCHIVE.unpacked unless MARKER says it is installed: the staged
# tree is complete (renamed into place last) and stamped like the install scripts' marker.
unpack_script='a=$1 marker=$2 d=$1.unpacked
stamp="$(basename "$a") $(wc -c < "$a" | tr -d " ")"
[ "$(cat "$marker" 2>/dev/null)" != "$stamp" ] || { echo installed; exit 0; }
[ "$(cat "$d/.spark-openstack-stamp" 2>/dev/null)" != "$stamp" ] || { echo unpacked; exit 0; }
rm -rf "$d" "$d.tmp" && mkdir "$d.tmp" && tar -xzf "$a" -C "$d.tmp" --strip-components=1 &&
  echo "$stamp" > "$d.tmp/.spark-openstack-stamp" && mv "$d.tmp" "$d" && echo unpacked'
unpack_marker=${FETCH_UNPACK_MARKER:-}
unpack_jobs=()
unpack_on() { # unpack_on NODE: in the background; NODE "master" is this machine
  [ -n "$unpack_marker" ] || return 0
  local node=$1 started=$SECONDS
  (
    if [ "$node" = master ]; then
      r=$(sh -c "$unpack_script" sh "$file" "$unpack_marker" 2>&1)
    else
      r=$(ssh "${opts[@]}" "$node" sh -s -- "$(printf '%q %q' "$target" "$unpack_marker")" <<<"$unpack_script" 2>&1)
    fi
    case $r in
      unpacked) echo "unpacked $name on $node in $((SECONDS - started))s" ;;
      installed) ;;
      *) echo "cannot unpack $name on $node (the install will): $(printf '%s' "$r" | tail -n 2 | tr '\n' ' ')" >&2 ;;
    esac
  ) >"$log/unpack.$node" 2>&1 &
  unpack_jobs+=($!)
}

want=$(sh -c "$sum_script" sh "$file")
[ "$want" != none ] || { echo "$file is missing on the master" >&2; exit 1; }

# Which nodes already hold a verified copy (all checked at once).
for n in "$@"; do
  sum_on "$n" >"$log/have.$n" &
done
wait
holders=() pending=()
for n in "$@"; do
  if [ "$(cat "$log/have.$n")" = "$want" ]; then holders+=("$n"); else pending+=("$n"); fi
done
if [ ${#pending[@]} -eq 0 ]; then
  echo "every node already has $name"
  exit 0
fi
unpack_on master

# Slaves can serve only with the master's key: an agent holding it, forwarded to them.
# (Any slave may serve: the first one filled is the preferred source of the next.)
if [ $# -gt 1 ]; then
  eval "$(ssh-agent -s)" >/dev/null
  ssh-add -q ~/.ssh/id_ed25519 2>/dev/null || ssh-add -q 2>/dev/null
fi

# copy SOURCE NODE: one copy, then its verification; the exit status says whether NODE
# now has a good copy. SOURCE "master" is this machine.
copy() {
  local src=$1 dst=$2 started=$SECONDS
  # The copy on the master may live elsewhere (fetched_file); on a node it is $target.
  local from=$target
  [ "$src" = master ] && from=$file
  local rsync_to=(rsync -a --whole-file --ignore-times -e "ssh ${opts[*]}" "$from" "$dst:$dir/")
  if [ "$src" = master ]; then
    "${rsync_to[@]}" </dev/null || return 1
  else
    ssh -A "${opts[@]}" "$src" "$(printf '%q ' "${rsync_to[@]}")" </dev/null || return 1
  fi
  local got
  got=$(sum_on "$dst")
  if [ "$got" != "$want" ]; then
    echo "the copy on $dst does not verify (sha256 $got, want $want)"
    return 1
  fi
  echo "copied to $dst from $src in $((SECONDS - started))s"
}

declare -A busy=() tries=() last_src=() job_src=() job_dst=()
master_sent=0 master_running=0 failed=()
# The master sends one copy at a time (its first copy done, two nodes can serve), except
# when it is to serve every node itself: then all at once, as a flat copy would.
master_parallel=1
[ ${#pending[@]} -le "$master_copies" ] && master_parallel=${#pending[@]}
mkdir -p "$log/out"

# The idle sources, best first, into `sources`: slaves (so the master's copies stay few),
# then the master while it has copies left (once per copy it may start now). A slave
# whose copy is running is busy. (An
# array, not a command's output: no subshell for `wait -n` to trip over.)
idle_sources() {
  sources=()
  local h
  for h in "${holders[@]}"; do
    [ -z "${busy[$h]:-}" ] && sources+=("$h")
  done
  local free=$(( master_copies - master_sent ))
  [ $(( master_parallel - master_running )) -lt "$free" ] && free=$(( master_parallel - master_running ))
  for (( ; free > 0; free-- )); do sources+=(master); done
}

start() { # start SOURCE NODE
  local src=$1 dst=$2
  tries[$dst]=$(( ${tries[$dst]:-0} + 1 ))
  last_src[$dst]=$src
  if [ "$src" = master ]; then
    master_sent=$((master_sent + 1)) master_running=$((master_running + 1))
  else
    busy[$src]=1
  fi
  copy "$src" "$dst" >"$log/out/$dst" 2>&1 &
  job_src[$!]=$src
  job_dst[$!]=$dst
}

while [ ${#pending[@]} -gt 0 ] || [ ${#job_src[@]} -gt 0 ]; do
  idle_sources
  if [ ${#sources[@]} -eq 0 ] && [ ${#job_src[@]} -eq 0 ]; then
    # Nothing running and no slave holds a copy (every copy so far failed): the master
    # serves beyond its share rather than give up.
    sources=(master)
  fi
  # Pair every idle source with a pending node. A source does not retry a node it has
  # just failed while another source could take it (an idle one now, or a busy one
  # later); with no other source left, it tries again.
  others=$(( ${#holders[@]} + (master_sent < master_copies ? 1 : 0) - 1 ))
  for src in "${sources[@]}"; do
    [ ${#pending[@]} -gt 0 ] || break
    pick=-1
    for i in "${!pending[@]}"; do
      if [ "${last_src[${pending[$i]}]:-}" != "$src" ]; then pick=$i; break; fi
    done
    if [ "$pick" -lt 0 ]; then
      [ "$others" -gt 0 ] && continue
      pick=0
    fi
    dst=${pending[$pick]}
    unset 'pending[pick]'
    pending=("${pending[@]}")
    start "$src" "$dst"
  done
  if [ ${#job_src[@]} -eq 0 ]; then
    # Cannot happen (some source always takes a node); never spin if it does.
    for dst in "${pending[@]}"; do failed+=("$dst: no source could take it"); done
    break
  fi
  # Wait for a copy to end, then collect every one that has (`wait -n -p` would name it,
  # but needs bash 5.1; Ubuntu 20.04 has 5.0).
  wait -n
  for pid in "${!job_src[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    wait "$pid"
    rc=$?
    src=${job_src[$pid]} dst=${job_dst[$pid]}
    unset "job_src[$pid]" "job_dst[$pid]" "busy[$src]"
    [ "$src" = master ] && master_running=$((master_running - 1))
    if [ "$rc" -eq 0 ]; then
      cat "$log/out/$dst"
      holders+=("$dst")
      unpack_on "$dst"
    elif [ "${tries[$dst]}" -lt "$max_tries" ]; then
      echo "retrying $dst (try ${tries[$dst]} from $src failed: $(tail -n 2 "$log/out/$dst" | tr '\n' ' '))" >&2
      pending+=("$dst")
    else
      failed+=("$dst: $(tail -n 3 "$log/out/$dst" | tr '\n' ' ')")
    fi
  done
done

echo "master sent $master_sent copies of $name; $(( ${#holders[@]} )) of $# nodes have it"
if [ ${#unpack_jobs[@]} -gt 0 ]; then
  # Every copy has ended, so what is left to wait for are the unpacks (some of which
  # `wait -n` may have reaped already).
  wait
  cat "$log"/unpack.* 2>/dev/null
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf 'no copy of %s after %s tries on %s\n' "$name" "$max_tries" "${failed[@]}" >&2
  exit 1
fi
