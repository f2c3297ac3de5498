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
# On a shared machine each run first waits (up to BENCH_QUIET_WAIT seconds, default 120; 0 =
# no wait) until at most one other task is runnable for 3 s in a row: two-thread OpenMP code
# loses most of its speed when another job preempts one of its threads, so a run that starts
# in a quiet moment measures the code rather than the neighbours. Each run's line says how
# long it waited and whether it found quiet.
#
# BENCH_OMP_WAIT_POLICY=passive|active (default: unset, libgomp's own spin-then-sleep) is
# given to both sides alike (kdgrid and torch both run their threads on libgomp). On a loaded
# machine passive waits are much faster for a 2-thread step (a preempted thread's partner
# stops spinning at barriers: kdgrid's step was 2-3x faster at load ~6); on an idle one the
# default spinning is the faster one. A run that found no quiet moment is worth repeating
# with BENCH_OMP_WAIT_POLICY=passive.
#
# Debian's torch takes its fp32 GEMM from the libblas.so.3 alternative, and that choice
# decides its fp32 speed: the reference BLAS (what a machine without libopenblas0 has) is
# ~100x slower; libopenblas0-pthread (Debian's default OpenBLAS) runs its own 2 threads next
# to torch's 2 OpenMP threads and they contend; libopenblas0-openmp shares torch's OpenMP
# pool and is the fastest. The script measures torch with the system's BLAS ("torch") and,
# when libopenblas0-openmp is installed, also with that one through LD_LIBRARY_PATH
# ("torch-ompblas"), and prints torch's fp32 matmul rate for each; ratios are given against
# both. bf16 matmuls go through oneDNN inside torch and do not depend on the BLAS.
#
# KDGRID_BASELINE=PATH adds a second kdgrid binary (e.g. one built from an older commit) to the
# alternation: each run times kdgrid, then the baseline, under the same conditions, and the
# summary prints kdgrid/baseline, the regression check of a change. BENCH_TORCH=0 leaves
# PyTorch out (then only the two kdgrid binaries run).
#
# The goal (>= 2x) is judged against torch-ompblas, torch's best BLAS on this machine:
# launch/setup.sh therefore installs libopenblas0-openmp (a small package) next to the
# pthread build that python3-torch pulls in. It does not switch the libblas.so.3 alternative
# (that would change numpy and everything else on the machine); this script points torch at
# it with LD_LIBRARY_PATH for the torch-ompblas runs only. With this script on this machine
# (2026-11-28, 2 cores) the fp32 ratios were 4.08x against "torch" (pthread build) and 1.80x
# against torch-ompblas: a ratio against the system BLAS alone would flatter kdgrid.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
steps="${2:-10}"
warmup="${3:-3}"
kdgrid="${KDGRID:-$PWD/build/kdgrid}"
baseline="${KDGRID_BASELINE:-}"
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "KDGRID_BASELINE=$baseline is not executable" >&2; exit 2; }
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

quiet_wait="${BENCH_QUIET_WAIT:-120}"

# Waits for a quiet machine (see above); prints "q<seconds>" or "busy".
wait_quiet() {
  local start=$SECONDS calm=0
  [ "$quiet_wait" -gt 0 ] || { echo "-"; return; }
  while [ $((SECONDS - start)) -lt "$quiet_wait" ]; do
    # procs_running counts this shell's awk too.
    if [ "$(awk '/procs_running/{print $2}' /proc/stat)" -le 2 ]; then calm=$((calm + 1)); else calm=0; fi
    [ $calm -ge 3 ] && { echo "q$((SECONDS - start))"; return; }
    sleep 1
  done
  echo "busy"
}

model=(--n-layer 4 --d-model 256 --n-head 4 --d-ff 1024 --max-seq 256 --batch-size 8)
clean_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2)
[ -z "${BENCH_OMP_WAIT_POLICY:-}" ] || clean_env+=(OMP_WAIT_POLICY="$BENCH_OMP_WAIT_POLICY")

# Median tokens/s of one kdgrid run ($1 = precision, $2 = binary, default $kdgrid).
kdgrid_run() {
  rm -rf "$work/run"
  "${clean_env[@]}" "${2:-$kdgrid}" train --data "$work/shards/train" --run-dir "$work/run" --no-resume \
    --steps $((warmup + steps)) --precision "$1" --lr 3e-4 --weight-decay 0.1 --grad-clip 1.0 \
    "${model[@]}" >"$work/kdgrid.log" 2>&1 || { cat "$work/kdgrid.log" >&2; exit 1; }
  "$python" - "$work/run/metrics.jsonl" "$warmup" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
print(statistics.median(r["tokens_per_s"] for r in rows))
PY
}

ompblas=/usr/lib/x86_64-linux-gnu/openblas-openmp
torch_configs=(torch)
[ -e "$ompblas/libblas.so.3" ] && torch_configs+=(torch-ompblas)
[ "${BENCH_TORCH:-1}" = 0 ] && torch_configs=()

# Median tokens/s of one PyTorch run ($1 = precision, $2 = torch | torch-ompblas).
torch_run() {
  local lib=()
  [ "$2" = torch-ompblas ] && lib=(LD_LIBRARY_PATH="$ompblas")
  "${clean_env[@]}" "${lib[@]}" "$python" bench/torch_gpt2_train.py --precision "$1" --threads 2 \
    --warmup "$warmup" --steps "$steps" >"$work/torch.json" 2>"$work/torch.log" ||
    { cat "$work/torch.log" >&2; exit 1; }
  "$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_s"])' "$work/torch.json"
}

echo "kdgrid vs PyTorch $("$python" -c 'import torch; print(torch.__version__)'), $(nproc) cores," \
  "OMP_NUM_THREADS=2, OMP_WAIT_POLICY=${BENCH_OMP_WAIT_POLICY:-(unset)}, $runs runs x $steps" \
  "steps (after $warmup warm-up), work dir $work, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${torch_configs[@]}"; do
  lib=()
  [ "$c" = torch-ompblas ] && lib=(LD_LIBRARY_PATH="$ompblas")
  "${clean_env[@]}" "${lib[@]}" "$python" - "$c" <<'PY'
import re, sys, time, torch
torch.set_num_threads(2)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
a @ b
t = time.perf_counter()
for _ in range(3):
    a @ b
rate = 3 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9
blas = sorted({m.group(0) for m in re.finditer(r"/\S*lib(open)?blas\S*", open("/proc/self/maps").read())})
print(f"{sys.argv[1]}: fp32 matmul 1024^3 {rate:.0f} GFLOP/s, BLAS {' '.join(blas) or '?'}")
PY
done

declare -A res
for r in $(seq 1 "$runs"); do
  for p in fp32 bf16; do
    q=$(wait_quiet)
    k=$(kdgrid_run "$p")
    res[kdgrid $p]+="$k "
    line=$(printf 'run %d %-4s  kdgrid %6.0f (%s)' "$r" "$p" "$k" "$q")
    if [ -n "$baseline" ]; then
      q=$(wait_quiet)
      b=$(kdgrid_run "$p" "$baseline")
      res[baseline $p]+="$b "
      line+=$(printf '   baseline %6.0f (%s) ratio %4.3f' "$b" "$q" "$(echo "$k / $b" | bc -l)")
    fi
    for c in "${torch_configs[@]}"; do
      q=$(wait_quiet)
      t=$(torch_run "$p" "$c")
      res[$c $p]+="$t "
      line+=$(printf '   %s %6.0f (%s) ratio %4.2f' "$c" "$t" "$q" "$(echo "$k / $t" | bc -l)")
    done
    echo "$line"
  done
done

echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for p in fp32 bf16; do
  args=("$p" "${res[kdgrid $p]}")
  [ -z "$baseline" ] || args+=(baseline "${res[baseline $p]}")
  for c in "${torch_configs[@]}"; do args+=("$c" "${res[$c $p]}"); done
  "$python" - "${args[@]}" <<'PY'
import statistics, sys
p, kd = sys.argv[1], [float(x) for x in sys.argv[2].split()]
mk = statistics.median(kd)
line = f"{p}: kdgrid {mk:6.0f} tokens/s"
for name, vals in zip(sys.argv[3::2], sys.argv[4::2]):
    mt = statistics.median(float(x) for x in vals.split())
    line += f" | {name} {mt:6.0f} tokens/s, kdgrid/{name} = {mk / mt:.2f}x"
goals = "; goal >= 2.0x against torch" if "torch" in " ".join(sys.argv[3::2]) else ""
goals += "; no regression: kdgrid/baseline >= 0.97" if "baseline" in sys.argv[3::2] else ""
print(line + f"   (medians of {len(kd)} runs{goals})")
PY
done
