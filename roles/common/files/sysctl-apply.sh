#!/bin/sh
# sysctl-apply.sh KEY=VALUE...: sets each kernel setting that differs, one by one, and says
# per key what it did: `changed KEY`, or `skipped KEY: <why>` for a key this node cannot
# set (absent from its kernel, or read-only: a kernel-wide setting on a node that shares
# its kernel, such as a container). Only a failure to set a writable key is an error.
set -eu
for kv in "$@"; do
  k=${kv%%=*} v=${kv#*=}
  p=/proc/sys/$(printf '%s' "$k" | tr . /)
  if [ ! -e "$p" ]; then
    echo "skipped $k: not in this node's kernel"
  elif [ "$(cat "$p")" = "$v" ]; then
    : # already so
  elif [ ! -w "$p" ]; then
    echo "skipped $k: read-only here (kernel-wide, and this node shares its kernel)"
  else
    sysctl -q -w "$k=$v" >/dev/null
    echo "changed $k"
  fi
done
