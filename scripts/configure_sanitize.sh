#!/usr/bin/env bash
# Configures build-sanitize/, the build scripts/sanitize.sh and scripts/fuzz.sh share: clang, every target with
# AddressSanitizer + UndefinedBehaviorSanitizer (PEFT_SANITIZE) and the libFuzzer targets of fuzz/ (PEFT_FUZZ).
# -O1 as the sanitizers recommend (whole stack traces, quicker builds) and no NDEBUG, so assertions stay on
# (nlohmann's included). Installs clang, its sanitizer and libFuzzer runtimes (libclang-rt-14-dev) and
# llvm-symbolizer (llvm) when missing. Extra arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh clang libclang-rt-14-dev llvm
CC=clang CXX=clang++ cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 \
  -DPEFT_SANITIZE=ON -DPEFT_FUZZ=ON "$@" >/dev/null
