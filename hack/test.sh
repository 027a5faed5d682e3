#!/usr/bin/env bash
# Runs the named test tiers in order (unit, integration, e2e); each tier's vitest globalSetup
# brings up what it needs (cluster, images, host Postgres/Redis).
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
export PATH="$ROOT_DIR/.tools/node/bin:$PATH"

step "typecheck" npx tsc -p tsconfig.json --noEmit
needs_build=false
for t in "$@"; do [ "$t" != unit ] && needs_build=true; done
$needs_build && step "bundle" npm run --silent build
for tier in "$@"; do
  if [ -z "$(find "tests/$tier" -name '*.test.ts' 2>/dev/null)" ]; then
    log "tier $tier has no tests yet: skipped"
    continue
  fi
  step "tests: $tier" npx vitest run --project "$tier"
done
step_summary
