#!/bin/bash
# Installed as Docker's default runtime only on hosts whose capability bounding set lacks
# CAP_SYS_RESOURCE (some sandboxes): there `docker run --privileged` fails with
# "unable to apply caps: operation not permitted". It drops CAP_SYS_RESOURCE from the OCI spec
# runc is given (the bundle's config.json for create/run, the --process file for exec), then
# execs the real runc with the same arguments.
REAL_RUNC=${REAL_RUNC:-/usr/sbin/runc}
strip_caps() {
  local f="$1"
  [ -f "$f" ] || return 0
  local tmp="$f.bgtask.$$"
  jq 'def drop: if type == "array" then map(select(. != "CAP_SYS_RESOURCE")) else . end;
      if .process? then .process.capabilities |= (if . then with_entries(.value |= drop) else . end)
      elif .capabilities? then .capabilities |= with_entries(.value |= drop)
      else . end' "$f" >"$tmp" && mv "$tmp" "$f"
}
cmd="" bundle="" process=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  a="${args[$i]}"
  case "$a" in
    create | run | exec) [ -z "$cmd" ] && cmd="$a" ;;
    --bundle | -b) bundle="${args[$((i + 1))]}" ;;
    --bundle=*) bundle="${a#--bundle=}" ;;
    --process | -p) process="${args[$((i + 1))]}" ;;
    --process=*) process="${a#--process=}" ;;
  esac
done
case "$cmd" in
  create | run) strip_caps "${bundle:-.}/config.json" ;;
  exec) [ -n "$process" ] && strip_caps "$process" ;;
esac
exec "$REAL_RUNC" "$@"
