#!/usr/bin/env bash
# The main job: the quickstart pipeline on the built-in sample corpus.
#   launch/quickstart.sh [WORK_DIR]        (default: runs/quickstart)
# Installs and builds first (launch/setup.sh), then: sample corpus -> tokenizer -> prepare
# (train/val text and token shards) -> train a small teacher -> evaluate it -> sample from it ->
# augment the training text (EDA perturbation) -> token shards of the augmented text -> distill
# a student with about 1/8 of the teacher's parameters on a 2x2x2 grid (dp x pp x tp = 8 MPI
# ranks) from the original and augmented shards -> the same student trained from scratch on the
# same batches -> the same distillation without the augmented shards -> a comparison table
# (stdout and WORK_DIR/summary.md).
# Each stage is skipped when its output already exists, so a rerun resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/setup.sh
SECONDS=0  # the stages' clock starts after the build
kdgrid="$PWD/build/kdgrid"
work="${1:-runs/quickstart}"
mkdir -p "$work"
# One thread per rank; the machine's cores are shared by the ranks.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
stage() { printf '\n=== %s ===  (%s, %d s so far)\n' "$*" "$(date +%T)" "$SECONDS"; }
# 8 ranks on however many cores there are: one thread each, idle ranks yield the CPU.
mpirun8() { OMP_NUM_THREADS=1 launch/kdgrid-mpirun --oversubscribe -np 8 "$kdgrid" "$@"; }
# Evaluates run directory $2 against the teacher on the validation shards, once per checkpoint:
# the JSON line is kept in $work/eval/$1.json (redone when the run has a newer checkpoint).
evaluate() {
  local out="$work/eval/$1.json"
  if [ ! -s "$out" ] || [ "$2/checkpoints/latest" -nt "$out" ]; then
    "$kdgrid" eval --checkpoint "$2" --data "$work/shards/val" --teacher "$work/teacher" \
      >"$out.tmp"
    mv "$out.tmp" "$out"
  fi
  printf '%-18s %s\n' "$1" "$(cat "$out")"
}

stage "1. sample corpus (Debian fortunes + WordNet glosses)"
[ -s "$work/corpus.txt" ] || "$kdgrid" sample-corpus --out "$work/corpus.txt"
ls -l "$work/corpus.txt"

stage "2. byte-level BPE tokenizer"
[ -s "$work/tokenizer.json" ] || "$kdgrid" tokenizer --input "$work/corpus.txt" --vocab-size 4096 \
  --out "$work/tokenizer.json"

stage "3. prepare: text -> train/val text and token shards"
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

stage "7. augment the training text: EDA perturbation (WordNet synonyms, swaps, deletions)"
# One variant per training document; the output shards keep /provenance/source_doc.
ls "$work/aug/perturb/"*.h5 >/dev/null 2>&1 || "$kdgrid" augment --method perturb \
  --input "$work/shards/train" --out "$work/aug/perturb" --num-aug 1 --seed 1

stage "8. prepare: augmented text -> token shards (same tokenizer)"
# prepare always splits off validation documents; the augmented ones (every 100th) go unused,
# the real validation set stays $work/shards/val.
[ -d "$work/aug/shards/train" ] || "$kdgrid" prepare --input "$work/aug/perturb" \
  --tokenizer "$work/tokenizer.json" --out "$work/aug/shards" --val-fraction 0.01 \
  --shard-tokens 262144
/usr/bin/python3 - "$work/shards/train" "$work/aug/shards/train" <<'PY'
import glob, sys
import h5py
import numpy as np
sha, tokens, docs, sources = set(), [0, 0], 0, set()
for i, d in enumerate(sys.argv[1:]):
    for f in sorted(glob.glob(f"{d}/tokens_*.h5")):
        with h5py.File(f, "r") as h:
            sha.add(h.attrs["tokenizer_sha256"])
            tokens[i] += h["tokens"].shape[0]
            if i == 1:
                docs += h["doc_offsets"].shape[0] - 1
                sources.update(np.unique(h["provenance/source_doc"][:]).tolist())
print(f"augmented: {tokens[1]} tokens in {docs} documents made from {len(sources)} training "
      f"documents (original: {tokens[0]} tokens); one tokenizer: {len(sha) == 1}")
PY

# The student: 2 layers, d_model 80 (about 1/8 of the teacher's parameters, most of them the
# token embedding). Every student run sees the same global batch each step (dp 2 x 8 sequences
# x 2 micro-batches of 128 tokens) for the same number of steps: equal token budgets.
student=(--n-layer 2 --d-model 80 --n-head 2 --max-seq 128 --steps 300 --lr 2e-3
  --warmup-steps 20 --precision bf16 --save-every 0)
mix="$work/shards/train:1,$work/aug/shards/train:1"
# Forward KL at T 1 with 0.1 of the loss on the labels: the best of T {1, 2} x alpha {0.5, 0.9, 1}
# and of forward_kl / reverse_kl / jsd at this budget (alpha 1 came within 0.001 nats; T 2,
# reverse_kl and jsd did worse). The budget matters: this teacher saw 1.2M tokens, and students
# trained much longer (800 steps) catch up with it, so scratch overtakes alpha 0.9 there and a
# lower alpha (more weight on the labels) wins.
kd_loss=forward_kl kd_t=1 kd_alpha=0.9
kd=(--teacher "$work/teacher" --kd-loss "$kd_loss" --kd-temperature "$kd_t" --kd-alpha "$kd_alpha")

stage "9. distill the student on a 2x2x2 grid (8 ranks; progress in $work/student_kd/metrics.jsonl)"
mpirun8 distill --data "$mix" --run-dir "$work/student_kd" "${student[@]}" "${kd[@]}" \
  --dp 2 --pp 2 --tp 2 --batch-size 8 --grad-accum 2

stage "10. the same student from scratch: same data, grid and batches, no teacher"
mpirun8 train --data "$mix" --run-dir "$work/student_scratch" "${student[@]}" \
  --dp 2 --pp 2 --tp 2 --batch-size 8 --grad-accum 2

stage "11. distill again without the augmented shards (the augmentation's effect)"
mpirun8 distill --data "$work/shards/train" --run-dir "$work/student_kd_noaug" "${student[@]}" \
  "${kd[@]}" --dp 2 --pp 2 --tp 2 --batch-size 8 --grad-accum 2

stage "12. evaluate every model against the teacher on the validation shards"
mkdir -p "$work/eval"
evaluate teacher "$work/teacher"
evaluate student_kd "$work/student_kd"
evaluate student_scratch "$work/student_scratch"
evaluate student_kd_noaug "$work/student_kd_noaug"

stage "13. summary"
{
cat <<EOF
# kdgrid quickstart summary

- teacher: trained on the original training shards (one rank).
- student_kd: distilled from the teacher ($kd_loss, T $kd_t, alpha $kd_alpha) on the original
  and the perturbed shards, weights 1:1.
- student_scratch: the same student, data, batches and steps, cross-entropy only.
- student_kd_noaug: as student_kd, on the original shards only.

EOF
/usr/bin/python3 - "$work" teacher student_kd student_scratch student_kd_noaug <<'PY'
import json, math, sys
import h5py

work, runs = sys.argv[1], sys.argv[2:]
rows = []
for run in runs:
    ev = json.load(open(f"{work}/eval/{run}.json"))
    ckpt = open(f"{work}/{run}/checkpoints/latest").read().strip()
    with h5py.File(f"{work}/{run}/checkpoints/{ckpt}/model.h5", "r") as h:
        params = sum(d.size for d in h["model"].values())
        grid = h.attrs["grid"]
        grid = (grid.decode() if isinstance(grid, bytes) else str(grid)).replace(",", "x")
    # Throughput over the whole run: global tokens of every step / wall time of every step.
    tokens = seconds = 0.0
    last = {}
    for line in open(f"{work}/{run}/metrics.jsonl"):
        m = json.loads(line)
        tokens += m["tokens_per_s"] * m["step_time_s"]
        seconds += m["step_time_s"]
        last = m
    rows.append((run, grid, ev["loss"], math.exp(ev["loss"]), ev["kl_to_teacher"],
                 ev["top1_agreement"], params, last["tokens_seen"], tokens / seconds))
print(f"Validation set: {ev['tokens']} target tokens; kl_to_teacher = KL(teacher || model) at T 1.\n")
print("| model | grid dp x pp x tp | val loss (nats) | perplexity | kl_to_teacher | top1_agreement "
      "| parameters | train tokens | train tokens/s |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.2f} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:,} "
          f"| {r[7]:,} | {r[8]:,.0f} |")
ppl = {r[0]: r[3] for r in rows}


def compare(what, a, b):
    change = 100 * (ppl[a] / ppl[b] - 1)
    print(f"{what}: perplexity {abs(change):.1f}% {'lower' if change < 0 else 'higher'} "
          f"({ppl[a]:.2f} vs {ppl[b]:.2f})")


print()
compare("distilled student vs the same student from scratch", "student_kd", "student_scratch")
compare("distilled with vs without the augmented shards", "student_kd", "student_kd_noaug")
PY
} | tee "$work/summary.md"
echo "quickstart: done in $SECONDS s (after the build); summary in $work/summary.md"
