#!/bin/sh
# Redis for pods: password from REDIS_PASSWORD (a Secret), data in /data, runs as non-root.
set -eu
: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set (from a Secret)}"
exec redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --dir /data \
  --requirepass "$REDIS_PASSWORD" --save '' --appendonly no "$@"
