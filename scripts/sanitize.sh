#!/usr/bin/env bash
# Builds everything into build-sanitize/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer:
# scripts/configure_sanitize.sh) and runs the whole GoogleTest suite with ctest under them: an invalid memory
# access, a leak, or undefined behaviour fails the test that caused it, with a symbolized stack trace. Leaks inside
# third-party libraries that are not ours are suppressed by scripts/lsan.supp.
# Usage: scripts/sanitize.sh                 build everything, run the whole suite
#        scripts/sanitize.sh test_io ...     build and run only these test binaries (directly, not through ctest)
# JOBS=N caps the build's and ctest's parallelism (default: every core).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}

# Also for the build: gtest_discover_tests runs each test binary to list its tests.
# allocator_may_return_null: an impossible allocation (an adapter config asking for terabytes) must fail as it does
# without the sanitizer, so that the tool can report it, instead of aborting the process.
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"

scripts/configure_sanitize.sh
if [ $# -eq 0 ]; then
  cmake --build build-sanitize -j"$jobs"
  ctest --test-dir build-sanitize --output-on-failure -j"$jobs"
else
  cmake --build build-sanitize -j"$jobs" --target "$@"
  for binary in "$@"; do
    echo "sanitize: $binary"
    "build-sanitize/tests/$binary"
  done
fi
echo "sanitize: every test passed, no sanitizer reports"
