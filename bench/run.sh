#!/usr/bin/env bash
# Benchmark harness (issue #6): builds Release, then runs kes-cpp and the
# nginx ceiling side by side on loopback and prints a table; results go to
# bench/results/<date>.json. Figures are reported, never asserted.
#
#   bash bench/run.sh            # full run, about 8 minutes
#   bash bench/run.sh --quick    # about 2 minutes
#   bash bench/run.sh --etcd     # only the etcd rows (issue 13), about 1 minute:
#                                # cold-cache generate vs etcd range (1- and
#                                # 3-member cluster), 1 vs 3 nodes behind HAProxy
#   bash bench/run.sh --soak     # only the soak row: 10^6 mixed requests with
#                                # key churn and log subscribers; RSS and fds
#                                # before/after (--soak-requests N for fewer)
#
# Environment: KES_BENCH_BUILD_DIR (default: build-bench in the repository).
# Other flags go to bench/harness.py (--rounds N, --keys N, --out FILE, --keep-tmp,
# --rounds-only: the HTTP/1.1, HTTP/2 and Go client throughput rounds alone).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${KES_BENCH_BUILD_DIR:-$src/build-bench}"

for tool in nginx ab taskset openssl curl python3 go; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (bash scripts/setup.sh)" >&2; exit 2; }
done

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKES_BUILD_TESTS=OFF \
      -DKES_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target kes-loadgen kes_goclient kes_micro_bench
# If the server does not build, the harness still measures the ceiling and
# says that the kes-cpp rows are missing.
cmake --build "$build" --target kes || echo "bench: kes did not build; ceiling rows only" >&2

exec python3 "$src/bench/harness.py" --build-dir "$build" --source-dir "$src" "$@"
