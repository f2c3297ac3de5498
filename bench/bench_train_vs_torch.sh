#!/usr/bin/env bash
# Training throughput, kdgrid vs PyTorch eager, same machine, same run: GPT-2 with 4 layers,
# d_model 256, 4 heads, d_ff 1024, vocab 4096, seq 256, batch 8, AdamW (lr 3e-4, betas
# 0.9/0.95, weight decay 0.1 on matrices, clip 1.0), 2 threads each, fp32 and bf16.
#
#   bench/bench_train_vs_torch.sh [RUNS] [STEPS] [WARMUP]     (defaults 3, 10, 3)
#
# kdgrid: `kdgrid train` on token shards made here from the built-in sample corpus; tokens/s
# is the median of metrics.jsonl's tokens_per_s over the steps after WARMUP. PyTorch:
# bench/torch_gpt2_train.py (Debian's torch 1.13 via /usr/bin/python3, torch.set_num_threads(2),
# bf16 through torch.autocast), median over the same steps. Both sides run with
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (those halve OpenBLAS SGEMM here; see
# shared/ENVIRONMENT.md) and OMP_NUM_THREADS=2. The runs alternate kdgrid, torch, kdgrid,
# torch, ... so load from other jobs on a shared machine falls on both; the figures are medians
# over RUNS runs, the ratio is median(kdgrid) / median(torch).
#
# Debian's torch takes its fp32 GEMM from the libblas.so.3 alternative: with only the
# reference BLAS installed (no libopenblas0) its fp32 matmul is ~100x slower and the fp32
# ratio means nothing. The script prints torch's fp32 matmul rate so that shows.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
steps="${2:-10}"
warmup="${3:-3}"
kdgrid="${KDGRID:-$PWD/build/kdgrid}"
python=/usr/bin/python3
[ -x "$kdgrid" ] || { echo "no kdgrid binary at $kdgrid (build first or set KDGRID)" >&2; exit 2; }
work="${BENCH_WORK:-$(mktemp -d /tmp/kdgrid_vs_torch.XXXXXX)}"
mkdir -p "$work"

# Token shards (vocab 4096) from the sample corpus, made once per work directory.
if [ ! -d "$work/shards/train" ]; then
  "$kdgrid" sample-corpus --out "$work/corpus.txt" >"$work/prepare.log" 2>&1
  "$kdgrid" tokenizer --input "$work/corpus.txt" --vocab-size 4096 --out "$work/tokenizer.json" >>"$work/prepare.log" 2>&1
  "$kdgrid" prepare --input "$work/corpus.txt" --tokenizer "$work/tokenizer.json" \
    --out "$work/shards" --val-fraction 0.05 --shard-tokens 262144 >>"$work/prepare.log" 2>&1
fi

model=(--n-layer 4 --d-model 256 --n-head 4 --d-ff 1024 --max-seq 256 --batch-size 8)
clean_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2)

# Median tokens/s of one kdgrid run ($1 = precision).
kdgrid_run() {
  rm -rf "$work/run"
  "${clean_env[@]}" "$kdgrid" train --data "$work/shards/train" --run-dir "$work/run" --no-resume \
    --steps $((warmup + steps)) --precision "$1" --lr 3e-4 --weight-decay 0.1 --grad-clip 1.0 \
    "${model[@]}" >"$work/kdgrid.log" 2>&1 || { cat "$work/kdgrid.log" >&2; exit 1; }
  "$python" - "$work/run/metrics.jsonl" "$warmup" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
print(statistics.median(r["tokens_per_s"] for r in rows))
PY
}

# Median tokens/s of one PyTorch run ($1 = precision); also leaves its JSON in $work.
torch_run() {
  "${clean_env[@]}" "$python" bench/torch_gpt2_train.py --precision "$1" --threads 2 \
    --warmup "$warmup" --steps "$steps" >"$work/torch.json" 2>"$work/torch.log" ||
    { cat "$work/torch.log" >&2; exit 1; }
  "$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_s"])' "$work/torch.json"
}

echo "kdgrid vs PyTorch $("$python" -c 'import torch; print(torch.__version__)'), $(nproc) cores," \
  "OMP_NUM_THREADS=2, $runs runs x $steps steps (after $warmup warm-up), work dir $work"
"${clean_env[@]}" "$python" - <<'PY'
import time, torch
torch.set_num_threads(2)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
a @ b
t = time.perf_counter()
for _ in range(3):
    a @ b
print("torch fp32 matmul 1024^3: %.0f GFLOP/s" % (3 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9))
PY

declare -A kd th
for r in $(seq 1 "$runs"); do
  for p in fp32 bf16; do
    k=$(kdgrid_run "$p")
    t=$(torch_run "$p")
    kd[$p]+="$k "
    th[$p]+="$t "
    printf 'run %d %-4s  kdgrid %8.0f tokens/s   torch %8.0f tokens/s   ratio %5.2f\n' \
      "$r" "$p" "$k" "$t" "$(echo "$k / $t" | bc -l)"
  done
done

echo
for p in fp32 bf16; do
  "$python" - "$p" "${kd[$p]}" "${th[$p]}" <<'PY'
import statistics, sys
p, k, t = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
mk, mt = statistics.median(k), statistics.median(t)
print(f"{p}: kdgrid {mk:8.0f} tokens/s, torch {mt:8.0f} tokens/s (medians of {len(k)} runs): "
      f"kdgrid/torch = {mk / mt:.2f}x (goal >= 2.0x)")
PY
done
