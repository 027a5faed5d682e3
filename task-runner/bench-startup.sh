#!/usr/bin/env bash
# Start-up cost of one run as a ratio to a bare `node -e 0` (budget: at most 5x): `task-runner run`
# of a task that returns at once (the instant fixture plugin) — config validation, registry, the
# status report and exit. With BGTASK_KUBE_API, BGTASK_KUBE_TOKEN_FILE, BGTASK_KUBE_CA_FILE,
# BGTASK_NAME and BGTASK_NAMESPACE set, each run reports to that apiserver, as in a pod.
# Usage: task-runner/bench-startup.sh [runs]   (needs hyperfine and a built dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-40}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
export TASK_PLUGINS=tests/fixtures/plugins/instant.mjs BGTASK_RUN_ID=bench BGTASK_TRIGGER=Schedule BGTASK_ATTEMPT=1
# The machine-wide extra CA bundle would be parsed by every TLS start: a pod has none.
unset NODE_EXTRA_CA_CERTS
node dist/task-runner.mjs run sync.fixture-instant >/dev/null # fills the compile cache, proves the command works
hyperfine -N --warmup 5 --runs "$runs" --export-json "$out" 'node -e 0' 'node dist/task-runner.mjs run sync.fixture-instant'
node -e '
  const [bare, run] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
  const f = (r) => `mean ${(r.mean * 1e3).toFixed(1)} ms, median ${(r.median * 1e3).toFixed(1)} ms, min ${(r.min * 1e3).toFixed(1)} ms`;
  console.log(`node -e 0:           ${f(bare)}`);
  console.log(`task-runner run:     ${f(run)}`);
  console.log(`ratio (mean/median): ${(run.mean / bare.mean).toFixed(2)}x / ${(run.median / bare.median).toFixed(2)}x  (budget 5x)`);
' "$out"
