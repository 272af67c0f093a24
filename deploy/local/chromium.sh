#!/usr/bin/env bash
# Installs Debian's `chromium` (used headless by the reporting dashboard's Playwright test) when
# /usr/bin/chromium is missing. Idempotent: does nothing when it is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "chromium: installing Debian package 'chromium' with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo '(version unknown)')"
