#!/usr/bin/env bash
# Installs what is missing (Debian packages, the JS SDK from npm), builds everything, and runs the
# whole suite with CTest: in an optimized build the daemon, end-to-end, fault, security and package
# tests; then, built with clang, the unit, daemon, attack and end-to-end tests under
# ASan+UBSan with each fuzz target run by libFuzzer, and the unit tests under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

./scripts/install-deps.sh --with-node
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)

# The unit tests and fuzz targets that the sanitizer builds run are left out here.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTLPD_BUILD_TESTS=ON -DOTLPD_BUILD_SANITIZER_TESTS=OFF
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 300)

sanitized() {  # build dir, target, ctest label regex, cmake options
  local dir=$1 target=$2 labels=$3
  shift 3
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ "$@"
  cmake --build "$dir" -j "$jobs" --target "$target"
  (cd "$dir" && ctest -L "$labels" --output-on-failure -j "$jobs" --timeout 300)
}
sanitized build-asan sanitizer_tests 'unit|fuzz|security|e2e' -DOTLPD_SANITIZE=address,undefined \
  -DOTLPD_LIBFUZZER=ON -DOTLPD_FUZZ_SECONDS=30
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp"
sanitized build-tsan tsan_tests unit_sanitize -DOTLPD_SANITIZE=thread
