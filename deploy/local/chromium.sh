#!/usr/bin/env bash
# Installs Debian's `chromium` (used headless by the reporting dashboard's Playwright tests) and
# `fonts-noto-cjk` (without a CJK font every Chinese character of the dashboard's screenshots is an empty
# box) when either is missing. Idempotent: does nothing when both are there.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "install ok installed" || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -eq 0 ]; then
  echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')), with fonts-noto-cjk"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "chromium: installing Debian package(s) ${missing[*]} with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo '(version unknown)'), with fonts-noto-cjk"
