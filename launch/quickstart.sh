#!/usr/bin/env bash
# The main job: the quickstart pipeline on the built-in sample corpus.
#   launch/quickstart.sh [WORK_DIR]        (default: runs/quickstart)
# Installs and builds first (launch/setup.sh), then: sample corpus -> tokenizer -> prepare
# (train/val token shards) -> train a small teacher -> evaluate it -> sample from it.
# Each stage is skipped when its output already exists, so a rerun resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
kdgrid="$PWD/build/kdgrid"
work="${1:-runs/quickstart}"
mkdir -p "$work"
# One thread per rank; the machine's cores are shared by the ranks.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
stage() { printf '\n=== %s ===\n' "$*"; }

stage "1. sample corpus (Debian fortunes + WordNet glosses)"
[ -s "$work/corpus.txt" ] || "$kdgrid" sample-corpus --out "$work/corpus.txt"
ls -l "$work/corpus.txt"

stage "2. byte-level BPE tokenizer"
[ -s "$work/tokenizer.json" ] || "$kdgrid" tokenizer --input "$work/corpus.txt" --vocab-size 4096 \
  --out "$work/tokenizer.json"

stage "3. prepare: text -> train/val token shards"
[ -d "$work/shards/train" ] || "$kdgrid" prepare --input "$work/corpus.txt" \
  --tokenizer "$work/tokenizer.json" --out "$work/shards" --val-fraction 0.05 --shard-tokens 262144
/usr/bin/python3 - "$work/shards" <<'PY'
import glob, sys
import h5py
import numpy as np
counts = {}
for split in ("train", "val"):
    shards = tokens = docs = 0
    for f in sorted(glob.glob(f"{sys.argv[1]}/{split}/*.h5")):
        with h5py.File(f, "r") as h:
            if h.attrs["format"] == "kdgrid-tokens":
                shards += 1
                tokens += h["tokens"].shape[0]
                docs += h["doc_offsets"].shape[0] - 1
                vocab = int(h.attrs["vocab_size"])
                c = np.bincount(h["tokens"][:], minlength=vocab)
                counts[split] = counts.get(split, 0) + c
    print(f"{split:5s}: {shards} token shards, {docs} documents, {tokens} tokens, vocab {vocab}")
# The baseline a language model must beat: val cross-entropy under the train unigram
# distribution (add-one smoothing), in nats.
p = (counts["train"] + 1) / (counts["train"].sum() + len(counts["train"]))
print(f"unigram baseline: val cross-entropy {-(counts['val'] * np.log(p)).sum() / counts['val'].sum():.3f} nats")
PY

stage "4. train a teacher (bf16; progress in $work/teacher/metrics.jsonl)"
"$kdgrid" train --data "$work/shards/train" --val-data "$work/shards/val" --run-dir "$work/teacher" \
  --n-layer 4 --d-model 256 --n-head 4 --max-seq 128 --batch-size 16 --steps 600 \
  --lr 1e-3 --warmup-steps 30 --eval-every 200 --val-tokens 32768 --save-every 200 --precision bf16

stage "5. evaluate the teacher on the validation shards"
"$kdgrid" eval --checkpoint "$work/teacher" --data "$work/shards/val"

stage "6. sample from the teacher"
"$kdgrid" generate --checkpoint "$work/teacher" --tokenizer "$work/tokenizer.json" \
  --prompt "The meaning of life" --max-new-tokens 60 --samples 2 --seed 1
