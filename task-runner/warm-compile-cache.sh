#!/bin/sh
# Fills V8's compile cache ($NODE_COMPILE_CACHE) at image build time by running each code path of
# the runner once: the pod's /tmp is empty at every start, so a cache made at run time would never
# be reused. Run it as the user the pod runs as (the cache folder is per uid). Every command's exit
# code is checked, so this is also a smoke test of the bundle inside the image.
# Usage: warm-compile-cache.sh /app/task-runner.mjs
set -eu
runner="$1"
: "${NODE_COMPILE_CACHE:?set NODE_COMPILE_CACHE to the cache folder}"
refused='127.0.0.1:1' # nothing listens there: the connection is refused at once

expect() { # expect CODE COMMAND...
  want="$1"; shift
  set +e; "$@" >/dev/null 2>&1; got=$?; set -e
  if [ "$got" != "$want" ]; then
    echo "warm-up: '$*' exited $got, expected $want" >&2
    exit 1
  fi
}

expect 0 node "$runner" list --json
expect 0 node "$runner" describe maintenance.optimize-database
expect 2 node "$runner" run no.such-task
# Postgres path, task_runs recording, and the status report (its API refuses the connection).
expect 1 env DATABASE_URL="postgres://warm:up@$refused/none" \
  BGTASK_KUBE_API="https://$refused" BGTASK_KUBE_TOKEN_FILE=/dev/null BGTASK_NAME=warm-up BGTASK_NAMESPACE=default \
  node "$runner" run maintenance.cleanup-old-sessions
# Redis path.
expect 1 env DATABASE_URL="postgres://warm:up@$refused/none" REDIS_URL="redis://$refused" \
  node "$runner" run ai.test-scheduler-connection
# node-pg-migrate.
expect 1 env DATABASE_URL="postgres://warm:up@$refused/none" node "$runner" migrate
