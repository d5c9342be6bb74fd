#!/usr/bin/env bash
# Provides Chromium for the browser tests (Debian's package) when it is missing and the system package
# manager can install it; otherwise says what to install. Part of the README's test command:
#   pip install -r requirements-dev.txt && scripts/provide_chromium.sh && python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "Installing Chromium for the browser tests (apt-get install chromium) ..."
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
      || echo "Chromium could not be installed: the browser tests will skip and say why."
  else
    echo "Chromium is missing and cannot be installed here (needs root and apt-get): the browser tests will skip."
    echo "Install it with your package manager (Debian/Ubuntu: sudo apt-get install chromium) to run them."
  fi
fi
