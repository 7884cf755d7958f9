#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds kes-cpp (Release) and starts
# `kes server --dev`: an in-memory keystore on 127.0.0.1:7373 with a fresh
# admin API key printed at start-up. Extra arguments go to `kes server`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKES_BUILD_TESTS=OFF \
      -DKES_BUILD_BENCH=OFF >/dev/null
cmake --build build-release --target kes
exec ./build-release/kes server --dev --addr 127.0.0.1:7373 "$@"
