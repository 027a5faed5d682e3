#!/usr/bin/env bash
# `make up`: everything a newcomer needs, from a fresh machine: toolchain, images, the kind
# cluster, Postgres and Redis running in it; then how to use it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
NS=bgtask-demo

step "Node $NODE_VERSION" "$HACK_DIR/install-node.sh"
export PATH="$ROOT_DIR/.tools/node/bin:$PATH"
[ -f node_modules/.installed ] && [ node_modules/.installed -nt package-lock.json ] ||
  step "npm dependencies" bash -c 'npm install --no-audit --no-fund --loglevel=error && touch node_modules/.installed'
step "bundle operator and task-runner" npm run --silent build
step "Kubernetes toolchain" "$HACK_DIR/build-toolchain.sh"
step "kind cluster" "$HACK_DIR/cluster-up.sh" >/dev/null
"$HACK_DIR/images.sh"

install_services() {
  kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl -n "$NS" apply -f "$HACK_DIR/manifests/services.yaml" >/dev/null
  for d in postgres redis; do kubectl -n "$NS" rollout status "deployment/$d" --timeout=180s >/dev/null; done
}
step "Postgres and Redis in the cluster" install_services
step_summary

cat <<MSG

The cluster '$CLUSTER_NAME' is up (Kubernetes $KUBERNETES_VERSION):
$(kubectl get nodes -o wide | sed 's/^/  /')

$(kubectl -n "$NS" get pods -o wide | sed 's/^/  /')

Use it:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $NS get pods
  kubectl -n $NS exec deploy/postgres -- sh -c 'PGPASSWORD=\$POSTGRES_PASSWORD psql -h /tmp -U postgres -d bgtask -c "select version()"'
  make doctor     # what is installed, cached and running
  make down       # delete the cluster
MSG
