#!/usr/bin/env bash
# Reports what is installed, cached and running, and for each missing piece the command that fixes it.
source "$(dirname "$0")/lib.sh"
set +e
if [ -t 1 ]; then G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'; else G='' R='' N=''; fi
ok() { printf '  %s✔%s %-30s %s\n' "$G" "$N" "$1" "$2"; }
missing() { printf '  %s✘%s %-30s %s  →  %s\n' "$R" "$N" "$1" "$2" "$3"; }

echo "Docker"
if docker info >/dev/null 2>&1; then
  ok "engine" "$(docker version -f '{{.Server.Version}}' 2>/dev/null), default runtime $(docker info -f '{{.DefaultRuntime}}' 2>/dev/null), cgroup v$(docker info -f '{{.CgroupVersion}}' 2>/dev/null)"
  if docker run --rm --privileged bgtask/probe:1 >/dev/null 2>&1; then ok "privileged containers" "work"
  else missing "privileged containers" "fail or untested" "hack/docker-up.sh"; fi
elif command -v dockerd >/dev/null; then missing "engine" "installed, not running" "hack/docker-up.sh"
else missing "engine" "not installed" "hack/docker-up.sh (installs docker.io)"; fi

echo "Toolchain (cache: $CACHE_DIR)"
for entry in "node:$NODE_HOME:hack/install-node.sh" \
  "kubernetes $KUBERNETES_VERSION:$CACHE_DIR/kubernetes-$KUBERNETES_VERSION:make toolchain" \
  "etcd $ETCD_VERSION:$CACHE_DIR/etcd-$ETCD_VERSION:make toolchain" \
  "coredns $COREDNS_VERSION:$CACHE_DIR/coredns-$COREDNS_VERSION:make toolchain" \
  "pause $PAUSE_VERSION:$CACHE_DIR/pause-$PAUSE_VERSION:make toolchain" \
  "crictl $CRICTL_VERSION:$CACHE_DIR/crictl-$CRICTL_VERSION:make toolchain" \
  "kind $KIND_VERSION:$CACHE_DIR/kind-$KIND_VERSION:make toolchain" \
  "helm $HELM_VERSION:$CACHE_DIR/helm-$HELM_VERSION:make toolchain" \
  "promtool $PROMETHEUS_VERSION:$CACHE_DIR/promtool-$PROMETHEUS_VERSION:make toolchain"; do
  IFS=: read -r name dir fix <<<"$entry"
  if cached "$dir"; then ok "$name" "$(du -sh "$dir" 2>/dev/null | cut -f1)"; else missing "$name" "not built" "$fix"; fi
done
[ -d "$ROOT_DIR/node_modules" ] && ok "npm dependencies" "installed" || missing "npm dependencies" "not installed" "make deps"

echo "Images"
if docker info >/dev/null 2>&1; then
  for img in bgtask.local/node-runtime:24 bgtask.local/postgres:15 bgtask.local/redis:7 bgtask.local/task-runner:dev bgtask.local/operator:dev; do
    if size=$(docker image inspect -f '{{.Size}}' "$img" 2>/dev/null); then ok "$img" "$((size / 1000000)) MB"
    else missing "$img" "not built" "make images"; fi
  done
  node_img=$(docker images --format '{{.Repository}}:{{.Tag}}' 'bgtask.local/kind-node' | head -n1)
  [ -n "$node_img" ] && ok "kind node image" "$node_img" || missing "kind node image" "not built" "make node-image"
fi

echo "Cluster"
node="$CLUSTER_NAME-control-plane"
state=$(docker inspect -f '{{.State.Status}}' "$node" 2>/dev/null)
if [ "$state" = running ] && kubectl get --raw=/readyz >/dev/null 2>&1; then
  ok "kind cluster '$CLUSTER_NAME'" "running, $(kubectl get nodes --no-headers 2>/dev/null | awk '{print $2, $5}')"
  ok "kubeconfig" "export KUBECONFIG=$KUBECONFIG"
  mem=$(docker stats --no-stream --format '{{.MemUsage}}' "$node" 2>/dev/null | cut -d/ -f1)
  ok "node memory" "$mem"
elif [ -n "$state" ]; then missing "kind cluster '$CLUSTER_NAME'" "$state / not ready" "make cluster-up"
else missing "kind cluster '$CLUSTER_NAME'" "absent" "make cluster-up"; fi

echo "Host packages (make up and make test install them when missing)"
for tool in "${HOST_TOOLS[@]}"; do
  b=${tool%%:*}
  command -v "$b" >/dev/null && ok "$b" "$(command -v "$b")" || missing "$b" "not installed" "hack/host-deps.sh --no-services"
done

echo "Host services (test runs start their own on free ports)"
for b in /usr/lib/postgresql/15/bin/postgres redis-server; do
  command -v "$b" >/dev/null && ok "$(basename "$b")" "$(command -v "$b")" || missing "$(basename "$b")" "not installed" "make host-deps"
done
exit 0
