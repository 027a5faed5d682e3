#!/usr/bin/env bash
# Installs the Debian packages the scripts and tests run on the host, when missing:
# PostgreSQL 15 and Redis (process-level tests), debootstrap, jq, gcc, curl, flock, npm.
# --no-services: all but PostgreSQL and Redis, which only the test tiers run on the host (`make up`).
source "$(dirname "$0")/lib.sh"

services=1
case "${1:-}" in
  '') ;;
  --no-services) services= ;;
  *) die "usage: $0 [--no-services]" ;;
esac
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
if [ -n "$services" ]; then
  [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
  have redis-server || missing+=(redis-server)
fi
for tool in "${HOST_TOOLS[@]}"; do
  # shellcheck disable=SC2206 # one command's packages, split on purpose
  have "${tool%%:*}" || missing+=(${tool#*:})
done
[ ${#missing[@]} -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || die "missing host packages: ${missing[*]}; install them: sudo apt-get install ${missing[*]}"
have apt-get || die "missing host packages: ${missing[*]}; this is not a Debian/Ubuntu host, install them by hand"
log "installing host packages: ${missing[*]}"
# The Postgres package must not start a cluster of its own: tests start theirs on free ports.
policy=/usr/sbin/policy-rc.d
[ -e "$policy" ] && keep_policy=1 || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
status=0
{ apt_get update -qq && apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
[ -n "${keep_policy:-}" ] || rm -f "$policy"
[ $status -eq 0 ] || die "apt-get install ${missing[*]} failed: check the Debian mirror in /etc/apt/sources.list"
