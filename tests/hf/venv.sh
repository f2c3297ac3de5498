#!/usr/bin/env bash
# Creates (idempotently) the Python environment for the Hugging Face interchange tests:
# a venv over Debian's python3 with --system-site-packages (so Debian's torch 1.13, numpy and
# h5py are used as they are) plus pinned transformers/tokenizers/safetensors wheels from PyPI,
# which Debian 12 does not package. transformers 4.30.2 is a release that still supports
# torch 1.13 and has Python 3.11 wheels for its compiled dependencies.
#   tests/hf/venv.sh [VENV_DIR]     (default: build/hf-venv); prints the venv's python path
# Exit 0: ready. Exit 1: the venv could not be created (e.g. no network to PyPI).
set -euo pipefail
venv="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/hf-venv}"
pins=(transformers==4.30.2 tokenizers==0.13.3 safetensors==0.3.1 huggingface-hub==0.16.4)
stamp="$venv/.kdgrid-hf-ready"
want="${pins[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
# Concurrent callers (two tests starting together) wait for one creator.
exec 9>"$venv.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
rm -rf "$venv"
{
  /usr/bin/python3 -m venv --system-site-packages "$venv" &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      --only-binary=:all: "${pins[@]}" &&
    "$venv/bin/python" -c "import transformers, tokenizers, safetensors, torch"
} >&2 || { echo "venv.sh: could not create $venv (PyPI unreachable?)" >&2; exit 1; }
echo "$want" >"$stamp"
echo "$venv/bin/python"
