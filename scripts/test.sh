#!/usr/bin/env bash
# Installs what is missing (Debian packages, the JS SDK from npm), builds everything, and runs
# the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh --with-node
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTLPD_BUILD_TESTS=ON
cmake --build build -j "$(nproc)"
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 300
