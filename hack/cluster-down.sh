#!/usr/bin/env bash
# Deletes the project's kind cluster (a no-op when there is none).
source "$(dirname "$0")/lib.sh"
if docker info >/dev/null 2>&1 && [ -x "$KIND_BIN/kind" ]; then
  kind delete cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG"
fi
rm -f "$KUBECONFIG"
