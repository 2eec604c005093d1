#!/usr/bin/env bash
# Installs what is missing, builds otlpd, and runs it in the foreground on the shipped config.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTLPD_BUILD_TESTS=OFF
cmake --build build -j "$(nproc)" --target otlpd
exec ./build/otlpd --config config/otlpd.yaml
