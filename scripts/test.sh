#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds kes-cpp and runs every test:
# unit tests and integration tests (real binary, real TLS, loopback) through
# ctest; then both again against an AddressSanitizer + UBSan build (build-asan:
# the unit tests and the `kes` binary the integration tests start); then every
# libFuzzer target for a bounded time (build-fuzz, clang; tests/fuzz/run.sh).
# Any failure, sanitizer report or fuzzer crash makes the script exit non-zero.
#
#   bash scripts/test.sh            # everything
#   KES_SKIP_SANITIZE=1 bash scripts/test.sh   # skip the sanitizer pass
#   KES_SKIP_FUZZ=1 bash scripts/test.sh       # skip the fuzzers
#   KES_FUZZ_SECONDS=60 bash scripts/test.sh   # fuzz each target longer (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

jobs=$(nproc)
build=${KES_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 900)

if [ -z "${KES_SKIP_SANITIZE:-}" ]; then
  echo "== unit + integration tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKES_SANITIZE=ON \
        -DKES_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
  # The server and CLI processes the integration tests start inherit these:
  # a report stops the process (halt_on_error) and the harness fails the
  # test on any report in its stderr (kes_harness.check_no_sanitizer_report).
  # Leak checking is real for the server: SIGTERM is taken by sigtimedwait
  # and `kes server` returns from main, so LeakSanitizer runs at exit.
  # test_aws_endpoint and test_gemalto_endpoint are left out: they check a
  # Python test endpoint with independent clients and never start `kes`.
  (cd build-asan &&
     ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" --timeout 900 -E '^integration\.test_(aws|gemalto)_endpoint$')
fi

if [ -z "${KES_SKIP_FUZZ:-}" ]; then
  echo "== libFuzzer targets (clang, ASan + UBSan), ${KES_FUZZ_SECONDS:-20}s each"
  # NDEBUG as in the shipped build: Boost.Beast's internal BOOST_ASSERTs are
  # compiled out there, so the fuzzers judge the code that runs (ASan and
  # UBSan still stop on any memory or UB error on those paths).
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
        "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" \
        -DKES_FUZZ=ON -DKES_BUILD_TESTS=OFF -DKES_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j "$jobs" --target kes_fuzzers
  bash tests/fuzz/run.sh build-fuzz "${KES_FUZZ_SECONDS:-20}"
fi
