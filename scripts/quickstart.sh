#!/usr/bin/env bash
# The README's first command: install what is missing, build, and fine-tune the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
build/peft-train --config configs/quickstart.yaml "$@"
