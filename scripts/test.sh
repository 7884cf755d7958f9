#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds kes-cpp and runs every test:
# unit tests and integration tests (real binary, real TLS, loopback) through
# ctest, then the unit tests once more under AddressSanitizer + UBSan.
#
#   bash scripts/test.sh            # everything
#   KES_SKIP_SANITIZE=1 bash scripts/test.sh   # skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

jobs=$(nproc)
build=${KES_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 900)

if [ -z "${KES_SKIP_SANITIZE:-}" ]; then
  echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKES_SANITIZE=ON \
        -DKES_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs" --target kes_unit_tests
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" -L unit)
fi
