#!/usr/bin/env bash
# Makes sure a Docker engine answers and can run privileged containers (kind's nodes are).
# Idempotent: never touches an engine that already works.
source "$(dirname "$0")/lib.sh"

WRAPPER_DIR=/usr/local/lib/bgtask-operator   # stable, outside any clone: daemon.json outlives clones
WRAPPER="$WRAPPER_DIR/runc-drop-sys-resource"
RUNTIME_NAME=bgtask-runc
PROBE_IMAGE=bgtask/probe:1

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

install_docker() {
  command -v dockerd >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "Docker is not installed and installing it needs root: sudo apt-get install docker.io"
  command -v apt-get >/dev/null || die "Docker is not installed and this is not a Debian/Ubuntu host: install Docker Engine, then rerun"
  log "installing Docker Engine from Debian (docker.io)"
  (apt_get update -qq && apt_get install -y -qq --no-install-recommends docker.io jq >/dev/null) ||
    die "apt-get install docker.io failed: check the Debian mirror in /etc/apt/sources.list"
}

start_dockerd() {
  engine_answers && return 0
  command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is not installed"
  # A dockerd that is still stopping holds its pid file: wait for it rather than start a second.
  local pid
  if [ -f /var/run/docker.pid ] && pid=$(cat /var/run/docker.pid) && kill -0 "$pid" 2>/dev/null; then
    log "dockerd (pid $pid) is running but not answering yet; waiting"
    retry_until 60 "dockerd to answer" engine_answers && return 0
    die "dockerd (pid $pid) does not answer after 60s; see /var/log/bgtask-dockerd.log or stop it and rerun"
  fi
  rm -f /var/run/docker.pid
  log "starting dockerd (log: /var/log/bgtask-dockerd.log)"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl start docker || true
  fi
  if ! engine_answers; then
    # setsid: a session of its own, so a caller whose process group is killed when it ends (a CI
    # step, a timeout, a terminal closing) does not take the engine and every cluster with it.
    setsid nohup dockerd >>/var/log/bgtask-dockerd.log 2>&1 </dev/null &
    disown || true
  fi
  retry_until 90 "dockerd to answer" engine_answers || {
    tail -n 20 /var/log/bgtask-dockerd.log >&2 || true
    die "dockerd did not start (last log lines above); it needs root, a kernel with overlayfs/cgroups, and iptables"
  }
}

probe_image() {
  docker image inspect "$PROBE_IMAGE" >/dev/null 2>&1 && return 0
  command -v gcc >/dev/null || die "gcc is needed to build a tiny probe image (apt-get install gcc libc6-dev)"
  local tmp; tmp=$(mktemp -d)
  printf 'int main(void){return 0;}\n' >"$tmp/true.c"
  gcc -static -Os -o "$tmp/true" "$tmp/true.c" && strip "$tmp/true"
  tar -C "$tmp" -cf - true | docker import --change 'ENTRYPOINT ["/true"]' - "$PROBE_IMAGE" >/dev/null
  rm -rf "$tmp"
}

privileged_works() { docker run --rm --privileged "$PROBE_IMAGE" 2>&1; }

install_runc_wrapper() {
  mkdir -p "$WRAPPER_DIR"
  install -m 0755 "$HACK_DIR/runc-wrapper.sh" "$WRAPPER"
  command -v jq >/dev/null || apt_get install -y -qq jq >/dev/null
  local cfg=/etc/docker/daemon.json cur='{}'
  mkdir -p /etc/docker
  [ -s "$cfg" ] && cur=$(cat "$cfg")
  echo "$cur" | jq --arg n "$RUNTIME_NAME" --arg p "$WRAPPER" \
    '.runtimes[$n] = {"path": $p} | ."default-runtime" = $n' >"$cfg.tmp" && mv "$cfg.tmp" "$cfg"
  log "registered $WRAPPER as Docker's default runtime; restarting dockerd"
  local pid; pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ] && systemctl is-active -q docker; then
    systemctl restart docker
  elif [ -n "$pid" ]; then
    kill "$pid"
    retry_until 60 "dockerd to stop" bash -c "! kill -0 $pid"
  fi
  start_dockerd
}

main() {
  install_docker
  # daemon.json may name the wrapper from an earlier run: make sure it is there and current first.
  if grep -qs "$WRAPPER" /etc/docker/daemon.json && ! cmp -s "$HACK_DIR/runc-wrapper.sh" "$WRAPPER"; then
    mkdir -p "$WRAPPER_DIR" && install -m 0755 "$HACK_DIR/runc-wrapper.sh" "$WRAPPER"
  fi
  start_dockerd
  probe_image
  local out
  if out=$(privileged_works); then return 0; fi
  if grep -q "apply caps: operation not permitted" <<<"$out"; then
    # Known sandbox limit (CAP_SYS_RESOURCE missing from the bounding set): the wrapper fixes it.
    install_runc_wrapper
    out=$(privileged_works) || die "privileged containers still fail after installing the runc wrapper: $out"
    return 0
  fi
  die "docker run --privileged fails, so kind cannot run its node: $out"
}
main "$@"
