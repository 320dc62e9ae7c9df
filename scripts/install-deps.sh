#!/usr/bin/env bash
# Installs what corral needs to build, test and benchmark on Debian 12. Idempotent.
set -euo pipefail
pkgs=(libuv1-dev node-llhttp libxxhash-dev libssl-dev libyaml-cpp-dev doctest-dev cmake g++
      pkg-config make python3 curl wrk haproxy nginx-light python3-websockets clang-format systemd)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The Debian packages start nginx/haproxy as services; the benchmarks start their own.
for s in nginx haproxy; do
  command -v systemctl >/dev/null 2>&1 && systemctl disable --now "$s" >/dev/null 2>&1 || true
done
