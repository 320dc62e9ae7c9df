#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (unit + integration) with ctest.
# Then (CI, or CORRAL_ASAN=1) one clang-14 ASan+UBSan build in build-asan serves the fuzz
# targets (10 s each, two at a time), the unit tests and the integration suites once more;
# any finding or sanitizer report fails. CORRAL_ASAN=0 skips that part.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j2 "$@")

# The Debian package, installed and removed on this machine (tests/package/test_deb.sh):
# it needs root (CI is root); the script refuses to touch an existing corral install.
if [ "$(id -u)" = 0 ]; then
  tests/package/test_deb.sh "${BUILD_DIR:-build}"
else
  echo "test.sh: SKIP tests/package/test_deb.sh (the package test needs root)"
fi

asan=${CORRAL_ASAN:-}
if [ -z "$asan" ]; then asan=$([ -n "${CI:-}" ] && echo 1 || echo 0); fi
[ "$asan" = 1 ] || exit 0

export FUZZ_BUILD_DIR=build-asan
start=$(date +%s)
scripts/fuzz.sh build
echo "test.sh: sanitizer build in $(($(date +%s) - start)) s"
start=$(date +%s)
scripts/fuzz.sh all "${FUZZ_SECONDS:-10}"
echo "test.sh: fuzzing in $(($(date +%s) - start)) s"

# Sanitizer reports go to files as well as failing their process, so that a report from a
# server an integration test started (whose stderr nobody reads) still fails CI.
logs=$PWD/build-asan/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
start=$(date +%s)
rc=0
(cd build-asan &&
  CORRAL_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:log_path=$logs/asan \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan \
    ctest --output-on-failure -j2 "$@") || rc=$?
echo "test.sh: sanitizer ctest in $(($(date +%s) - start)) s"
if [ -n "$(ls -A "$logs")" ]; then
  echo "test.sh: sanitizer reports:" >&2
  head -n 60 "$logs"/* >&2
  rc=1
fi
exit $rc
