#!/usr/bin/env bash
# Installs the npm packages the integration tests drive through corral (tests/node:
# @cardano-ogmios/client, ws and @blockfrost/blockfrost-js, exact versions in package-lock.json)
# with `npm ci`.
# Idempotent and quick: skipped while node_modules was installed from this very lock file.
# Node and npm come with the machine image; Debian's nodejs and npm are installed only
# when no node is there at all. Without them it says so; the tests skip, or fail under CI.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tests/node" && pwd)"
if ! command -v node >/dev/null && [ "$(id -u)" = 0 ]; then
  # Only when absent: the machine image's own node/npm must not be replaced by Debian's.
  apt-get install -y --no-install-recommends nodejs npm >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-node-deps: node or npm is not installed; test_ogmios_client and test_blockfrost_client will skip (fail under CI)" >&2
  [ -z "${CI:-}" ] || exit 1
  exit 0
fi
stamp="$dir/node_modules/.corral-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "install-node-deps: tests/node is up to date"
  exit 0
fi
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
echo "install-node-deps: installed tests/node from package-lock.json"
