#!/usr/bin/env bash
# Installs every Debian 12 package that kes-cpp needs to build, test and
# benchmark. Idempotent: packages already present are skipped, and
# `apt-get update` only runs when something must be installed.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # fuzzing: clang-14 and its libFuzzer/sanitizer runtimes (tests/fuzz)
  clang libclang-rt-14-dev
  # libraries
  libssl-dev libboost1.81-dev libcurl4-openssl-dev nlohmann-json3-dev
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libprotobuf-dev
  protobuf-compiler libmsgpuck-dev libnghttp2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # tests: independent clients and real servers
  openssl curl python3 python3-pytest python3-requests python3-urllib3
  python3-botocore awscli python3-yaml python3-hvac
  python3-azure  # Azure Key Vault endpoint proof: azure.keyvault.secrets + azure.identity
  python3-google-auth  # proves the GCP Secret Manager test endpoint (JWTs, token, metadata)
  python3-cryptography  # upstream's decrypt rules in test_rotation.py (AES-GCM)
  # the Debian package: man pages from --help, checks, and a real Prometheus
  help2man lintian man-db zsh prometheus haproxy
  # HTTP/2 clients: the h2 suite run and the hostile-frame tests
  python3-h2 python3-httpx
  # etcd keystore tests: a real etcd cluster behind the JSON gateway, HAProxy in front of nodes
  etcd-server etcd-client
  # benchmarks
  nginx-light apache2-utils util-linux
  golang-go  # bench/goclient: the Go SDK's HTTP transport, standard library only
  iproute2  # VAULT_SRV_LOOKUP test: `ip link set lo up` in its own network namespace
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# man-db re-indexes every manual page after each install (the slowest step of
# installing lintian's ~130 packages); `man -l` and lintian need no index.
echo "man-db man-db/auto-update boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx is only a benchmark reference, prometheus, haproxy and etcd test tools (tests
# start their own on loopback); never leave the distro's default services running.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now nginx prometheus haproxy etcd >/dev/null 2>&1 || true
fi
pkill -x nginx >/dev/null 2>&1 || true
echo "setup: done"
