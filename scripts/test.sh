#!/usr/bin/env bash
# Installs what is missing (Debian packages, the JS SDK from npm), builds everything, and runs the
# whole suite with CTest: unit, end-to-end and fuzz tests, then the unit tests and fuzz targets
# again under ASan+UBSan and under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

./scripts/install-deps.sh --with-node
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTLPD_BUILD_TESTS=ON
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 300)

for sanitize in address,undefined thread; do
  dir="build-${sanitize%%,*}"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DOTLPD_SANITIZE="$sanitize" -DOTLPD_FUZZ_SECONDS=10
  cmake --build "$dir" -j "$jobs" --target sanitizer_tests
  (cd "$dir" && ctest -L sanitize --output-on-failure -j "$jobs" --timeout 300)
done
