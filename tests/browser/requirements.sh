#!/usr/bin/env bash
# What the web board's browser test needs beyond Rust: Debian's headless Chromium and its
# WebDriver, Selenium from PyPI, and axe-core from the npm registry (injected into each page).
# Each installed only when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver fonts-dejavu-core >/dev/null
fi
python3 -m pip install --quiet -r "$here/requirements.txt"
npm ci --silent --prefix "$here"
version=$(chromium --version)
echo "${version%%$'\n'*}"
