#!/usr/bin/env bash
# The image's install steps (deploy/Dockerfile runs exactly this), runnable without a container engine:
# deploy/check.sh runs it on a clean checkout, so the steps are exercised in CI even where no image is built.
#   deploy/docker/install.sh SERVICE     (from the repository root; installs into ./.venv)
# Installs only SERVICE and libs/common with their locked dependencies (no dev group), from uv.lock.
set -euo pipefail
service="${1:-}"
case "$service" in
  partners | events | talent | reporting) ;;
  *) echo "usage: $0 partners|events|talent|reporting" >&2; exit 2 ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
UV="$(command -v uv 2>/dev/null || echo "python3 -m uv")"

# Workspace members stay editable (their source is copied into the image beside the environment):
# each service's Alembic migrations are read from services/<svc>/migrations at run time.
$UV sync --frozen --no-dev --package "$service"

if [ "$service" = reporting ]; then
  # The dashboard's ECharts, served from the package folder; the image's assets stage puts it there
  # already, a checkout gets it from the npm lock file.
  if [ ! -f services/reporting/src/reporting/static/dashboard/vendor/echarts.min.js ]; then
    deploy/local/reporting-assets.sh
  fi
fi

# Prove the entry point imports and answers before anything is shipped.
.venv/bin/"$service" --help >/dev/null
echo "install: $service installed into $(pwd)/.venv"
