#!/usr/bin/env bash
# Starts the test endpoint on a free loopback port and runs the spec's two
# conformance suites against it (Debian's awscli v2 and botocore).
#   bash tools/aws-test-endpoint/run-conformance.sh <spec-dir>
# Exit status 0 only if both suites pass. Nothing leaves loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
spec=${1:?usage: run-conformance.sh <spec-dir>}
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

/usr/bin/python3 "$here/server.py" --port 0 --port-file "$work/ports.json" \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 1 300); do [ -s "$work/ports.json" ] && break; sleep 0.1; done
[ -s "$work/ports.json" ] || { cat "$work/stderr"; echo "endpoint did not start"; exit 1; }
port=$(head -1 "$work/stdout")

: >"$work/aws-config"; : >"$work/aws-credentials"
export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true HOME="$work"
status=0
ENDPOINT="http://127.0.0.1:$port" AWS_BIN=/usr/bin/aws \
  bash "$spec/conformance/conformance_cli.sh" || status=1
/usr/bin/python3 "$spec/conformance/conformance_raw.py" "http://127.0.0.1:$port" || status=1
exit $status
