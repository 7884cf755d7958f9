#!/usr/bin/env bash
# Starts the test endpoint on a free loopback port and runs the spec's
# conformance_vault.py against it (raw requests checks and Debian's hvac),
# with every optional group enabled: KV v1 and v2, AppRole, token expiry,
# transit, a policy-restricted token and seal/unseal through the admin API.
#   bash tools/vault-test-endpoint/run-conformance.sh <spec-dir> [server flags...]
# With VAULT_NAMESPACE=ns1 in the environment the endpoint gets a namespace
# ns1 with the test layout and the whole suite runs inside it.
# Exit status 0 only if the suite passes. Nothing leaves loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
spec=${1:?usage: run-conformance.sh <spec-dir> [server flags...]}
shift
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

ns=${VAULT_NAMESPACE:-}
ns_flags=()
[ -n "$ns" ] && ns_flags=(--namespace "$ns")
/usr/bin/python3 "$here/server.py" --port 0 --port-file "$work/ports.json" "${ns_flags[@]}" "$@" \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 1 300); do [ -s "$work/ports.json" ] && break; sleep 0.1; done
[ -s "$work/ports.json" ] || { cat "$work/stderr"; echo "endpoint did not start"; exit 1; }

field() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d=d[k]
print(d)' "$work/ports.json" "$@"; }
creds() { field credentials "${ns:+${ns%/}/}" "$1"; }
admin="http://127.0.0.1:$(field port)"
restricted=$(curl -sf -X POST "$admin/__admin/tokens" \
  -d "{\"policies\": [\"default\"], \"namespace\": \"$ns\"}" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["client_token"])')

VAULT_ADDR="$admin" VAULT_TOKEN="$(field root_token)" \
  ROLE_ID="$(creds role_id)" SECRET_ID="$(creds secret_id)" \
  TRANSIT_KEY="$(creds transit_key)" RESTRICTED_TOKEN="$restricted" \
  SEAL_CMD="curl -sf -X POST $admin/__admin/seal >/dev/null" \
  UNSEAL_CMD="curl -sf -X POST $admin/__admin/unseal >/dev/null" \
  /usr/bin/python3 "$spec/conformance/conformance_vault.py"
