#!/usr/bin/env bash
# What the production-topology test needs beyond Rust: HAProxy from Debian's packages, the
# load balancer in front of the gateway replicas. Installed only when missing.
set -euo pipefail
if ! command -v haproxy >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends haproxy >/dev/null
fi
# Not piped into head: under pipefail its early exit would fail the script (SIGPIPE).
version=$(haproxy -v)
echo "${version%%$'\n'*}"
