#!/usr/bin/env bash
# Installs the reporting dashboard's front-end assets: Apache ECharts from the npm registry (locked by
# services/reporting/frontend/package-lock.json), copied into the folder the service serves, so the
# dashboard works offline. Idempotent: skips what is already in place.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FRONTEND="$ROOT/services/reporting/frontend"
VENDOR="$ROOT/services/reporting/src/reporting/static/dashboard/vendor"
SOURCE="$FRONTEND/node_modules/echarts/dist/echarts.min.js"

if ! command -v npm >/dev/null 2>&1; then
  echo "reporting-assets: npm is required (apt-get install npm)" >&2
  exit 1
fi
cd "$FRONTEND"
if [ -f "$SOURCE" ]; then
  echo "reporting-assets: echarts $(node -p "require('./node_modules/echarts/package.json').version") already installed"
elif [ -f package-lock.json ]; then
  echo "reporting-assets: npm ci (from package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "reporting-assets: npm install echarts"
  npm install --no-audit --no-fund --loglevel=error
fi
mkdir -p "$VENDOR"
if cmp -s "$SOURCE" "$VENDOR/echarts.min.js"; then
  echo "reporting-assets: $VENDOR/echarts.min.js is up to date"
else
  cp "$SOURCE" "$VENDOR/echarts.min.js"
  echo "reporting-assets: copied echarts.min.js ($(wc -c <"$VENDOR/echarts.min.js") bytes) to $VENDOR"
fi
