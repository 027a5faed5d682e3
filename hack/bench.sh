#!/usr/bin/env bash
# `make bench`: every benchmark in tests/bench, on the real cluster and host services, printing
# each figure beside its baseline measured in the same run.
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
export PATH="$ROOT_DIR/.tools/node/bin:$PATH"
step "bundle" npm run --silent build
# The operator benchmark's reference controller: Go and client-go, from the module proxy like
# the cluster's toolchain (the build cache makes it seconds after the first time).
build_reference_controller() {
  need_go
  (cd tests/bench/reference-controller && CGO_ENABLED=0 go build -trimpath -o "$ROOT_DIR/.run/reference-controller" .)
}
step "reference controller" build_reference_controller
BENCH_REPORT="${BENCH_REPORT:-$ROOT_DIR/.run/bench-report.txt}"
mkdir -p "$(dirname "$BENCH_REPORT")" && : >"$BENCH_REPORT"
export BENCH_REPORT
step "benchmarks" npx vitest run --project bench "$@"
echo; echo "== benchmark figures (also in $BENCH_REPORT) =="; cat "$BENCH_REPORT"
