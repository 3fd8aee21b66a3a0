#!/usr/bin/env bash
# Debian's Chromium for the web console's browser tests, installed once from Debian's packages
# (Playwright drives it; nothing downloads a browser of its own).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  sudo="sudo"
fi
echo "installing Debian's chromium for the browser tests (once; about a minute)" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
