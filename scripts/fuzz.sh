#!/usr/bin/env bash
# Builds corral's libFuzzer targets (clang-14, ASan + UBSan) and runs them on their seeds.
#
#   scripts/fuzz.sh list              the targets (tests/fuzz/fuzz_NAME.cpp -> NAME)
#   scripts/fuzz.sh TARGET SECONDS    fuzz one target for SECONDS
#   scripts/fuzz.sh all SECONDS       fuzz every target for SECONDS each, two at a time
#   scripts/fuzz.sh build             configure and build everything in the sanitizer build
#
# Seeds are read from tests/fuzz/corpus/TARGET/ and never written: new inputs go to a
# scratch directory ($FUZZ_WORK, default a fresh one under /tmp), and so does the input
# of any finding (crash, sanitizer report, failed FUZZ_CHECK, leak, slow input). Exit
# status: 0 when no target found anything, 1 otherwise.
#
# FUZZ_BUILD_DIR (default build-fuzz) is configured and built when needed; scripts/test.sh
# points it at build-asan, whose one sanitizer build also serves the unit and integration
# tests. FUZZ_JOBS (default 2) targets run at once. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-2}

targets() { for f in tests/fuzz/fuzz_*.cpp; do f=${f##*/fuzz_}; echo "${f%.cpp}"; done; }

usage() {
  echo "usage: scripts/fuzz.sh list | TARGET SECONDS | all SECONDS" >&2
  exit 2
}

# Configures (once) and builds the fuzz targets (or $1: every target) with clang-14 and
# both sanitizers.
build() {
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    local launcher=()
    if command -v ccache >/dev/null; then
      launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 \
      -DCMAKE_CXX_COMPILER=clang++-14 -DCORRAL_SANITIZE=ON -DCORRAL_FUZZ=ON \
      "${launcher[@]}" >/dev/null
  fi
  cmake --build "$dir" --target "${1:-fuzz}" -j"$(nproc)" >/dev/null
}

# Runs one target for $2 seconds; prints one summary line; non-zero on a finding.
run_one() {
  local t=$1 secs=$2 work="$scratch/$1"
  mkdir -p "$work/new" "$work/findings"
  local rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/findings/" \
    "$work/new" "tests/fuzz/corpus/$t" >"$work/log" 2>&1 || rc=$?
  local runs eps new
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  new=$(sed -n 's/^stat::new_units_added: *//p' "$work/log" | tail -1)
  local findings
  findings=$(find "$work/findings" -type f | wc -l)
  if [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ]; then findings=1; fi
  printf '%-10s %4ss  runs %-10s exec/s %-7s new inputs %-5s findings %s\n' \
    "$t" "$secs" "${runs:-?}" "${eps:-?}" "${new:-?}" "$findings"
  if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
    echo "--- fuzz_$t: finding (exit $rc); log $work/log, inputs in $work/findings/" >&2
    grep -E 'ERROR|FUZZ_CHECK|runtime error|SUMMARY|Test unit written|==[0-9]+==' \
      "$work/log" | head -20 >&2 || true
    return 1
  fi
}

[ $# -ge 1 ] || usage
case "$1" in
  list)
    targets
    exit 0
    ;;
  build)
    build all
    exit 0
    ;;
  all) [ $# -eq 2 ] || usage ;;
  *)
    [ $# -eq 2 ] || usage
    targets | grep -qx "$1" || { echo "fuzz.sh: no target '$1' (scripts/fuzz.sh list)" >&2; exit 2; }
    ;;
esac
secs=$2
[[ "$secs" =~ ^[0-9]+$ ]] || usage

build
scratch=${FUZZ_WORK:-$(mktemp -d /tmp/corral-fuzz.XXXXXX)}
mkdir -p "$scratch"
echo "fuzz.sh: scratch directory $scratch" >&2

if [ "$1" != all ]; then
  run_one "$1" "$secs"
  exit $?
fi

# Every target, $jobs at a time; each job's status is collected by pid at the end.
pids=()
for t in $(targets); do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$t" "$secs" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
exit $fail
