#!/usr/bin/env bash
# Creates (or reuses, if healthy) the project's single-node kind cluster and prints how to use it.
# The node image is the published kindest/node when it can be pulled (or $KIND_NODE_IMAGE),
# otherwise the offline build of hack/node-image.sh.
source "$(dirname "$0")/lib.sh"

NODE="$CLUSTER_NAME-control-plane"
PUBLISHED_NODE_IMAGE="kindest/node:v1.34.0"

"$HACK_DIR/docker-up.sh"
"$HACK_DIR/build-toolchain.sh" kind

# Two callers at once (make targets, test tiers) must not create the cluster twice.
exec 8>"$CACHE_DIR/cluster.lock"
flock 8

node_image() {
  if [ -n "${KIND_NODE_IMAGE:-}" ]; then echo "$KIND_NODE_IMAGE"; return; fi
  if docker image inspect "$PUBLISHED_NODE_IMAGE" >/dev/null 2>&1 ||
     timeout 20 docker pull -q "$PUBLISHED_NODE_IMAGE" >/dev/null 2>&1; then
    echo "$PUBLISHED_NODE_IMAGE"; return
  fi
  # Cold, the Go builds are CPU-bound and debootstrap is network/disk-bound: overlap them.
  local prefetch=()
  for profile in kind-node kube-proxy runtime postgres redis; do
    "$HACK_DIR/rootfs.sh" "$profile" >/dev/null & prefetch+=($!)
  done
  "$HACK_DIR/build-toolchain.sh" kubernetes etcd pause coredns crictl >&2
  for pid in "${prefetch[@]}"; do wait "$pid" || die "building a root filesystem failed (see the lines above)"; done
  "$HACK_DIR/node-image.sh"
}

api_ready() { kubectl get --raw=/readyz >/dev/null 2>&1; }

diagnose() {
  log "last lines of the node's log:"; docker logs --tail 30 "$NODE" 2>&1 | sed 's/^/  /' >&2 || true
  log "recent events:"; kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 | sed 's/^/  /' >&2 || true
}

wait_cluster() {
  retry_until 120 "the API server" api_ready || { diagnose; return 1; }
  kubectl wait --for=condition=Ready node --all --timeout=120s >/dev/null || { diagnose; return 1; }
  kubectl -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null || { diagnose; return 1; }
  # The default ServiceAccount appears a moment after the namespace; pods need it.
  retry_until 60 "the default ServiceAccount" kubectl -n default get serviceaccount default || return 1
}

reuse_existing() { # returns 0 when the existing cluster is healthy (restarting a stopped node)
  local image="$1" state current
  state=$(docker inspect -f '{{.State.Status}}' "$NODE" 2>/dev/null) || return 1
  current=$(docker inspect -f '{{.Config.Image}}' "$NODE")
  if [ "$current" != "$image" ]; then
    log "the cluster runs node image $current, wanted $image: replacing it"; return 1
  fi
  if [ "$state" != running ]; then
    log "the node container is $state (left by an earlier run): starting it"
    docker start "$NODE" >/dev/null || return 1
  fi
  kind export kubeconfig --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || return 1
  wait_cluster
}

create_cluster() {
  local image="$1" cfg; cfg=$(mktemp)
  cat >"$cfg" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: $CLUSTER_NAME
networking:
  apiServerAddress: 127.0.0.1
  podSubnet: 10.244.0.0/16
$( [ "$image" = "$PUBLISHED_NODE_IMAGE" ] || echo "  disableDefaultCNI: true  # the offline node image has a static bridge CNI")
nodes:
  - role: control-plane
    image: $image
YAML
  # Ctrl-C or a failure mid-way must not leave half a cluster running.
  trap 'log "interrupted: deleting the half-created cluster"; kind delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1; exit 130' INT TERM
  if ! kind create cluster --config "$cfg" --kubeconfig "$KUBECONFIG" --wait 180s; then
    diagnose
    kind delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || true
    die "kind could not create the cluster (diagnostics above)"
  fi
  trap - INT TERM
  rm -f "$cfg"
  wait_cluster || die "the cluster did not become ready (diagnostics above)"
}

main() {
  local image; image=$(node_image)
  if docker inspect "$NODE" >/dev/null 2>&1; then
    if reuse_existing "$image"; then
      log "reusing the healthy cluster '$CLUSTER_NAME'"
    else
      log "deleting the unusable cluster '$CLUSTER_NAME'"
      kind delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || docker rm -f "$NODE" >/dev/null
      step "create kind cluster" create_cluster "$image"
    fi
  else
    step "create kind cluster" create_cluster "$image"
  fi
  echo "export KUBECONFIG=$KUBECONFIG"
}
main
