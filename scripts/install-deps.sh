#!/usr/bin/env bash
# Installs what corral needs to build, test and benchmark on Debian 12. Idempotent.
#
# It only installs. It never stops, disables, restarts or reconfigures a service the machine
# already runs: the benchmarks (bench/compare) start their own nginx and HAProxy with their
# own config files, pid files and logs, on ports the kernel hands out, beside any system ones.
set -euo pipefail
pkgs=(libuv1-dev node-llhttp libxxhash-dev libssl-dev libyaml-cpp-dev doctest-dev cmake g++
      pkg-config make python3 curl wrk haproxy nginx-light python3-websockets clang-format systemd
      clang-14 libclang-rt-14-dev prometheus chromium
      libsystemd-dev) # libsystemd-dev: sd_notify readiness and socket activation
# Shared pins (sticky.store): hiredis 0.14 with its libuv adapter; redis-server (and the
# redis-cli it pulls in) only for the tests, which start their own on a free loopback port.
pkgs+=(libhiredis-dev redis-server)
# Packages whose Debian install starts a daemon (nginx-light: port 80, prometheus: 9090,
# redis-server: 6379). The monitoring and store tests start their own Prometheus and Redis on
# ephemeral ports.
daemons=(haproxy nginx-light prometheus redis-server)
# Packaging (tests/package/): mandoc lints the man pages; man-db is `man -l` (with groff, which
# test_man.sh runs as `groff -ww`) and what `systemd-analyze verify` runs for the unit's
# Documentation=man:...; dpkg-dev has dpkg-shlibdeps, which `cpack -G DEB` runs to declare
# the package's library dependencies.
pkgs+=(mandoc man-db dpkg-dev)

# The npm packages of tests/node (its own script: npm, not apt; quick when up to date).
"$(dirname "$0")/install-node-deps.sh"

missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update

# A fresh nginx, HAProxy, Prometheus or Redis would start at once with Debian's default config
# and hold port 80 (or 6379) on a machine that never asked for one. While this install runs, and
# only when one of them is new, /usr/sbin/policy-rc.d (exit 101 = "action forbidden") tells invoke-rc.d and
# deb-systemd-invoke not to start or restart services. Services already running are left as
# they are; an existing policy-rc.d (containers often have one) is respected, never replaced.
policy=/usr/sbin/policy-rc.d
own_policy=0
new_daemon=0
for d in "${daemons[@]}"; do
  if [[ " ${missing[*]} " == *" $d "* ]]; then new_daemon=1; fi
done
if [ "$new_daemon" = 1 ] && [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  printf '#!/bin/sh\n# written by corral scripts/install-deps.sh for the length of one install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  own_policy=1
fi

apt-get install -y --no-install-recommends "${missing[@]}"

if [ "$own_policy" = 1 ]; then
  rm -f "$policy"
  trap - EXIT
  echo "install-deps: new nginx/haproxy/prometheus/redis packages were installed without starting their services"
fi
