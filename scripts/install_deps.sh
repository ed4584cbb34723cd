#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the reference scripts need. Idempotent. Arguments name
# extra packages one script needs (scripts/configure_sanitize.sh: clang and its sanitizer runtimes).
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libtorch-dev libopenblas0-openmp   # LibTorch 1.13 (CPU); OpenBLAS, without which matmuls use the slow reference BLAS
  libgloo-dev                        # the headers of LibTorch's Gloo process group (data-parallel training)
  libcli11-dev libspdlog-dev libyaml-cpp-dev libsentencepiece-dev nlohmann-json3-dev libgtest-dev
  libpcre2-dev libutf8proc-dev        # tokenizer.json: pre-tokenizer regexes, Unicode normalisation
  jq                                  # scripts/sweep.sh reads the tools' JSON results
  "$@"
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
