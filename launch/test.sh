#!/usr/bin/env bash
# Installs, builds and runs every test (the README's test command; CI runs exactly this).
# Extra arguments go to ctest, e.g. launch/test.sh -L unit   or   -R tokenizer
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
cd "${KDGRID_BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
