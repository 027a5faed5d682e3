#!/usr/bin/env bash
# Builds every image (platform images cached by input hash; product images with Docker's layer
# cache) and loads them into the kind cluster when it is running.
# Usage: hack/images.sh [--no-load]
source "$(dirname "$0")/lib.sh"

"$HACK_DIR/docker-up.sh"
exec 6>"$CACHE_DIR/images.lock"   # concurrent callers take turns instead of building twice
flock 6
step "platform images" "$HACK_DIR/platform-images.sh"
RUNTIME_IMAGE=bgtask.local/node-runtime:24

PRODUCT_IMAGES=()
build_product() { # build_product NAME DOCKERFILE
  local name="$1" dockerfile="$2" tag="bgtask.local/$1:dev"
  [ -f "$ROOT_DIR/$dockerfile" ] || return 0
  [ -f "$ROOT_DIR/dist/$name.mjs" ] || die "dist/$name.mjs is missing: run 'make build' first"
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$RUNTIME_IMAGE" -f "$ROOT_DIR/$dockerfile" \
    -t "$tag" "$ROOT_DIR" >/dev/null 2>"$CACHE_DIR/docker-build-$name.log" ||
    { tail -n 20 "$CACHE_DIR/docker-build-$name.log" >&2; die "docker build of $name failed"; }
  PRODUCT_IMAGES+=("$tag")
  printf '%s\t%s\n' "$tag" "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}
product_images() {
  build_product task-runner task-runner/Dockerfile
  build_product operator operator/Dockerfile
  prune_product_images task-runner
  prune_product_images operator
}
# Every build whose sources changed leaves the previous image untagged and a new build stage behind
# (~15 MB each, and the node_modules layer when dependencies change): keep the newest build stage,
# the layer cache the next build starts from, and drop superseded untagged images (their :e2e
# children go the same way, on the run after those are rebuilt). Images in use stay.
prune_product_images() { # prune_product_images NAME
  docker images -q --filter "label=io.personal-assistant.bgtask.stage=$1-build" | tail -n +2 | xargs -r docker rmi >/dev/null 2>&1 || true
  docker images -q --filter dangling=true --filter "label=io.personal-assistant.bgtask.image=$1" | xargs -r docker rmi >/dev/null 2>&1 || true
}
# Not in a subshell (unlike `step`): PRODUCT_IMAGES is read by load below.
t0=$SECONDS
product_images
printf '%-48s %5ss\n' "product images" "$((SECONDS - t0))" >>"$STEP_LOG"

load() {
  local images=("$RUNTIME_IMAGE" bgtask.local/postgres:15 bgtask.local/redis:7 "${PRODUCT_IMAGES[@]}")
  # kind skips an image whose ID the node already has.
  local out
  out=$(kind load docker-image --name "$CLUSTER_NAME" "${images[@]}" 2>&1) || { echo "$out" >&2; return 1; }
}
if [ "${1:-}" != --no-load ] && docker inspect -f '{{.State.Running}}' "$CLUSTER_NAME-control-plane" 2>/dev/null | grep -q true; then
  step "load images into kind" load
fi
