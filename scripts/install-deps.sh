#!/usr/bin/env bash
# Installs the Debian 12 packages otlpd needs to build and test, skipping what is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libboost-dev libboost-system-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libyaml-cpp-dev libspdlog-dev catch2 nlohmann-json3-dev
  libzstd-dev zlib1g-dev libssl-dev libnghttp2-dev
  # The .deb (packaging/) and its test: dpkg-shlibdeps and file for Depends, lintian, systemd-analyze.
  dpkg-dev file lintian systemd
  # The sanitizer builds of the test suite and the libFuzzer runs: clang and its runtimes.
  clang libclang-rt-14-dev
)
# The end-to-end tests drive otlpd with the OpenTelemetry JavaScript SDK.
if [ "${1:-}" = "--with-node" ] && ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
