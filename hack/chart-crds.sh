#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml, from `npm run generate`) into the Helm chart's crds/
# folder, which Helm installs before the chart. tests/unit/chart-crds.test.ts fails when they differ.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
dest="$ROOT_DIR/charts/bgtask-operator/crds"
mkdir -p "$dest"
rm -f "$dest"/*.yaml
cp "$ROOT_DIR"/crds/*.yaml "$dest/"
echo "copied $(ls "$ROOT_DIR"/crds/*.yaml | wc -l) CRD file(s) into charts/bgtask-operator/crds/"
