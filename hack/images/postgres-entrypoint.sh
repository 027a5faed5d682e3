#!/bin/sh
# Postgres for pods: initdb into $PGDATA (an emptyDir or volume) on first start with the password
# from POSTGRES_PASSWORD (a Secret), accept password logins from the pod network, run in the
# foreground. Works as a non-root user with a read-only root filesystem (socket in /tmp).
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (from a Secret)}"
# A subfolder: a mounted volume's root is not ours to chmod 0700 (initdb insists on it).
PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"
PGUSER="${POSTGRES_USER:-postgres}"
PGDB="${POSTGRES_DB:-$PGUSER}"
export PATH="/usr/lib/postgresql/15/bin:$PATH"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chmod 700 "$PGDATA"
  pw=$(mktemp) && printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
  initdb -D "$PGDATA" -U "$PGUSER" --pwfile="$pw" --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pw"
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [ "$PGDB" != postgres ]; then
    echo "CREATE DATABASE \"$PGDB\" OWNER \"$PGUSER\";" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
