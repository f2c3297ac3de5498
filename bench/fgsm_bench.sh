#!/usr/bin/env bash
# FGSM throughput: `kdgrid augment --method fgsm` sequences/s on one rank, for a given model size.
#   bench/fgsm_bench.sh [KDGRID_BIN] [WINDOWS] [D_MODEL] [N_LAYER] [MAX_SEQ] [MAX_FLIPS]
#   (defaults: build/kdgrid 64 256 4 128 4)
# Random token shards (vocab 4096, written with h5py) and a model trained for 2 steps on them
# (the attack's cost does not depend on how well the model is trained, except through how many
# candidate flips are verified, which the output reports). Prints kdgrid's own summary: windows,
# flips, forward passes spent verifying, and sequences/s over the attacks alone.
set -euo pipefail
kdgrid="$(realpath "${1:-build/kdgrid}")"
windows="${2:-64}"
d_model="${3:-256}"
n_layer="${4:-4}"
max_seq="${5:-128}"
flips="${6:-4}"
work="$(mktemp -d /tmp/kdgrid-fgsm-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
/usr/bin/python3 - "$work/in" "$windows" "$max_seq" <<'PY'
import os, sys
import h5py
import numpy as np
out, windows, max_seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out)
n = windows * (max_seq + 1)
with h5py.File(f"{out}/bench.h5", "w") as f:
    f.attrs["format"] = "kdgrid-tokens"
    f.attrs["format_version"] = 1
    f.attrs["vocab_size"] = 4096
    f.attrs["eot_token"] = 4095
    f.attrs["tokenizer_sha256"] = "00" * 32
    f.create_dataset("tokens", data=np.random.default_rng(0).integers(0, 4095, n).astype(np.uint16))
    f.create_dataset("doc_offsets", data=np.array([0, n], dtype=np.uint64))
PY
"$kdgrid" train --data "$work/in" --run-dir "$work/run" --steps 2 --n-layer "$n_layer" \
  --n-head 4 --d-model "$d_model" --max-seq "$max_seq" --batch-size 4 > /dev/null 2>&1
echo "fgsm: vocab 4096, d_model $d_model, $n_layer layers, max_seq $max_seq, max-flips $flips," \
  "OMP_NUM_THREADS=$OMP_NUM_THREADS"
"$kdgrid" augment --method fgsm --input "$work/in" --out "$work/out" --checkpoint "$work/run" \
  --epsilon 0.5 --max-flips "$flips"
