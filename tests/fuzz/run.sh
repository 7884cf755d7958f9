#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time, starting from its seed
# corpus, and fails if any of them finds a crash, a sanitizer report, a
# leak, a hang (-timeout) or an out-of-memory (-rss_limit_mb).
#
#   tests/fuzz/run.sh <fuzz-build-dir> [seconds-per-target]
#
# <fuzz-build-dir> is a build dir configured with CC=clang CXX=clang++
# -DKES_FUZZ=ON (scripts/test.sh makes build-fuzz). Targets are the
# tests/fuzz/fuzz_*.cc files; each one's seed corpus is
# tests/fuzz/corpus/<target>/, read only: inputs found during the run go to
# a scratch dir. A crash's reproducer is kept under <fuzz-build-dir>/crashes/
# and printed in base64 so that a CI log alone is enough to replay it:
#   <fuzz-build-dir>/tests/fuzz/<target> <reproducer-file>
# Targets run $KES_FUZZ_JOBS (default: nproc) at a time.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
secs=${2:-20}
jobs=${KES_FUZZ_JOBS:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

targets=()
for f in "$src"/tests/fuzz/fuzz_*.cc; do targets+=("$(basename "$f" .cc)"); done

run_one() {
  local t=$1 bin="$build/tests/fuzz/$1" seed="$src/tests/fuzz/corpus/$1"
  mkdir -p "$work/$t/new" "$work/$t/seed"
  [ -d "$seed" ] || seed="$work/$t/seed"  # a new target without seeds yet
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin was not built" >"$work/$t.log"
    echo 1 >"$work/$t.rc"
    return
  fi
  local rc=0
  "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/$t/" "$work/$t/new" "$seed" >"$work/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$t.rc"
}

running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

passed=0
failed=0
for t in "${targets[@]}"; do
  rc=$(cat "$work/$t.rc")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/$t.log" | tail -1 || true)
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    seeds=$(find "$src/tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    echo "fuzz: $t ok: ${runs:-?} inputs in ${secs}s, ${cov:-cov: ?}, $seeds seeds"
    continue
  fi
  failed=$((failed + 1))
  echo "fuzz: $t FAILED (exit $rc); last lines of its log:"
  tail -n 60 "$work/$t.log" | sed 's/^/  /'
  mkdir -p "$build/crashes"
  for a in "$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-*; do
    [ -f "$a" ] || continue
    cp "$a" "$build/crashes/$t-$(basename "$a")"
    echo "  reproducer $build/crashes/$t-$(basename "$a") (base64):"
    head -c 4096 "$a" | base64 | sed 's/^/    /'
  done
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
