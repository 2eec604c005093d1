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

sanitized() {  # sanitizer, build dir, ctest label regex
  cmake -S . -B "$2" -DCMAKE_BUILD_TYPE=Debug -DOTLPD_SANITIZE="$1" -DOTLPD_FUZZ_SECONDS=10
  cmake --build "$2" -j "$jobs" --target sanitizer_tests
  (cd "$2" && ctest -L "$3" --output-on-failure -j "$jobs" --timeout 300)
}
sanitized address,undefined build-asan 'sanitize|asan'
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp"
sanitized thread build-tsan sanitize
