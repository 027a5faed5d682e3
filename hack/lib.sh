# Shared helpers for the platform scripts: source it, don't run it.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

# Everything built is cached outside the work tree, keyed by version, so clones share it.
CACHE_DIR="${BGTASK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bgtask-operator}"
mkdir -p "$CACHE_DIR"
export KUBECONFIG="${KUBECONFIG_OVERRIDE:-$CACHE_DIR/kubeconfig-$CLUSTER_NAME}"

K8S_BIN="$CACHE_DIR/kubernetes-$KUBERNETES_VERSION/bin"
ETCD_BIN="$CACHE_DIR/etcd-$ETCD_VERSION/bin"
COREDNS_BIN="$CACHE_DIR/coredns-$COREDNS_VERSION/bin"
PAUSE_BIN="$CACHE_DIR/pause-$PAUSE_VERSION/bin"
CRICTL_BIN="$CACHE_DIR/crictl-$CRICTL_VERSION/bin"
KIND_BIN="$CACHE_DIR/kind-$KIND_VERSION/bin"
HELM_BIN="$CACHE_DIR/helm-$HELM_VERSION/bin"
NODE_HOME="$CACHE_DIR/node-$NODE_VERSION"
export PATH="$NODE_HOME/bin:$K8S_BIN:$KIND_BIN:$HELM_BIN:$PATH"

# The commands the scripts run on the host besides Docker, each with the Debian packages that
# provide it (space-separated): host-deps.sh installs them, doctor.sh reports them.
# npm fetches Node itself (install-node.sh) and the dependencies; Debian's runs under that Node.
HOST_TOOLS=(debootstrap:debootstrap jq:jq "gcc:gcc libc6-dev" curl:curl flock:util-linux npm:npm)

# apt-get for the scripts that install host packages, which may run side by side (the root
# filesystems are built in parallel, Docker beside them): they take turns on one lock, and wait
# for a dpkg lock that another apt (unattended-upgrades, say) holds instead of failing at once.
apt_get() {
  (
    flock 5
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
  ) 5>"$CACHE_DIR/apt.lock"
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# step NAME CMD...: one line when a long step starts, its duration when it ends, and a summary
# line appended to $STEP_LOG so the caller can print the total at the end.
# Exported so the steps of child scripts land in the same summary.
export STEP_LOG="${STEP_LOG:-$CACHE_DIR/.steps-$$}"
step() {
  local name="$1"; shift
  local t0=$SECONDS
  log "▶ $name"
  # A subshell outside any condition keeps `set -e` in force inside the step (bash ignores it
  # in functions called from `if`, which would let a failed build be marked complete).
  local rc=0
  set +e
  (set -e; "$@")
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    local dt=$((SECONDS - t0))
    log "✔ $name (${dt}s)"
    printf '%-48s %5ss\n' "$name" "$dt" >>"$STEP_LOG"
  else
    log "✘ $name failed (exit $rc, after $((SECONDS - t0))s)"
    return $rc
  fi
}
step_summary() {
  [ -s "$STEP_LOG" ] || return 0
  log "── summary ──"
  cat "$STEP_LOG" >&2
  # Wall time of the whole run (steps nest, so their sum would count some twice).
  printf '%-48s %5ss\n' "total (wall clock)" "$SECONDS" >&2
  rm -f "$STEP_LOG"
}

# A cache entry is complete only when its marker exists: a killed build leaves no half entry.
cached() { [ -f "$1/.complete" ]; }
mark_complete() { touch "$1/.complete"; }

need_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed (need Go >= 1.24 to build the Kubernetes toolchain); install it from https://go.dev/dl or your distribution"
}

# hash_of FILES/STRINGS...: a short content hash used to tag images by their inputs.
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# prune_superseded TAG...: removes every other tag of the first TAG's repository (older builds of
# our own images, each tagged by the hash of its inputs). An image a container still uses stays.
prune_superseded() {
  local repo="${1%:*}"
  docker images --format '{{.Repository}}:{{.Tag}}' "$repo" | grep -vxF -f <(printf '%s\n' "$@") |
    xargs -r docker rmi >/dev/null 2>&1 || true
}

retry_until() { # retry_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every second
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 1
  done
}
