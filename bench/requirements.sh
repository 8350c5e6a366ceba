#!/usr/bin/env bash
# What the peer benchmark (bench/peers.rs) needs beyond Rust: nginx and HAProxy from Debian's
# packages, the plain proxies the gateway is measured against. Installed only when missing.
set -euo pipefail
bash "$(dirname "$0")/../tests/production/requirements.sh"
if ! command -v nginx >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # HTTP/2 and gRPC proxying are built into Debian's nginx; the benchmark runs its own
    # nginx in the foreground with its own configuration, on loopback.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx -v 2>&1
