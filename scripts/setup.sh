#!/usr/bin/env bash
# Installs every Debian 12 package that kes-cpp needs to build, test and
# benchmark. Idempotent: packages already present are skipped, and
# `apt-get update` only runs when something must be installed.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # libraries
  libssl-dev libboost1.81-dev libcurl4-openssl-dev nlohmann-json3-dev
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libprotobuf-dev
  protobuf-compiler libmsgpuck-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # tests: independent clients and real servers
  openssl curl python3 python3-pytest python3-requests python3-urllib3
  python3-botocore awscli python3-yaml
  # etcd keystore tests: a real etcd cluster behind the JSON gateway, HAProxy in front of nodes
  etcd-server etcd-client haproxy
  # benchmarks
  nginx-light apache2-utils util-linux
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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx is only a benchmark reference; never leave the distro's default site running.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
# etcd too: the tests start their own members on free loopback ports.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true; fi
pkill -x nginx >/dev/null 2>&1 || true
echo "setup: done"
