#!/usr/bin/env bash
# The backend seam, proven without a GPU: every model command runs on the guarded test device
# (kernels/guarded/guarded_backend.h: memory the host code cannot touch outside the op
# dispatch and the staging copies) and must give bit-identical results to the CPU backend:
# train (fp32/bf16/fp16, every recompute mode, the adversarial pass), distill online and
# offline, teacher-logits, eval --teacher, generate, augment --method fgsm, and a 2x2x2 grid.
# A host access to device memory kills the run with a SIGSEGV naming the allocation.
#   guarded_device_test.sh KDGRID_TEST_BIN MPIEXEC
set -uo pipefail
bin="${1:?kdgrid-test binary}"
mpiexec="${2:-mpirun}"
py=/usr/bin/python3
compare="$(cd "$(dirname "$0")" && pwd)/compare_runs.py"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
export OMP_NUM_THREADS=2 KDGRID_GUARDED_POOL_MB=4096

run() {  # run LOG CMD...: runs CMD, fails showing LOG's tail on a non-zero exit
  local log="$1"
  shift
  "$@" >"$log" 2>&1 || { tail -20 "$log"; fail "'$*' exited $?"; }
}
# both NAME ARGS...: the same command on --device cpu and --device guarded, into NAME_cpu and
# NAME_guarded (its --run-dir / --out is NAME_<device>), then compares them.
both() {
  local name="$1"
  shift
  for dev in cpu guarded; do
    rm -rf "${name}_$dev"
    run "$name.$dev.log" "$bin" "$@" --device "$dev" ${OUT_FLAG:---run-dir} "${name}_$dev"
  done
  $py "$compare" "${name}_cpu" "${name}_guarded" || fail "$name: cpu and guarded differ"
}

run data.log "$bin" sample-corpus --out corpus.txt --max-mb 0.2
run data.log "$bin" tokenizer --input corpus.txt --vocab-size 384 --out tok.json
run data.log "$bin" prepare --input corpus.txt --tokenizer tok.json --out shards --shard-tokens 12000

model=(--n-layer 2 --d-model 32 --n-head 4 --max-seq 32)
common=(--data shards/train --val-data shards/val --batch-size 4 --grad-accum 2 --steps 4
        --eval-every 2 --save-every 2)
both teacher train "${model[@]}" "${common[@]}" --precision fp32 --recompute none
both bf16 train "${model[@]}" "${common[@]}" --precision bf16 --recompute selective \
  --adv-epsilon 0.01 --adv-weight 0.5
both fp16 train "${model[@]}" "${common[@]}" --precision fp16 --recompute full

student=(--n-layer 1 --d-model 32 --n-head 2 --max-seq 32)
both online distill --teacher teacher_cpu "${student[@]}" "${common[@]}" --kd-loss jsd
OUT_FLAG=--out both logits teacher-logits --teacher teacher_cpu --data shards/train --topk 8
both offline distill --teacher-logits logits_cpu "${student[@]}" "${common[@]}"
OUT_FLAG=--out both fgsm augment --method fgsm --checkpoint teacher_cpu --input shards/val \
  --max-flips 2

for dev in cpu guarded; do
  run "eval.$dev.log" "$bin" eval --checkpoint online_cpu --data shards/val --teacher teacher_cpu \
    --device "$dev"
  tail -1 "eval.$dev.log" >"eval.$dev.json"
  run "gen.$dev.log" "$bin" generate --checkpoint teacher_cpu --tokenizer tok.json --prompt "The" \
    --max-new-tokens 24 --samples 2 --temperature 0.8 --device "$dev"
done
cmp -s eval.cpu.json eval.guarded.json || fail "eval: $(cat eval.cpu.json) vs $(cat eval.guarded.json)"
grep -q '"loss"' eval.cpu.json || fail "eval printed no JSON line"
cmp -s gen.cpu.log gen.guarded.log || fail "generate: the samples differ"

# 2x2x2 grid (8 ranks): tensor-parallel all-reduces, pipeline sends and data-parallel
# reductions all go through the staging copies.
export OMP_NUM_THREADS=1
for dev in cpu guarded; do
  rm -rf "grid_$dev"
  run "grid.$dev.log" "$mpiexec" -np 8 "$bin" train --n-layer 2 --d-model 32 --n-head 4 \
    --max-seq 32 --data shards/train --batch-size 2 --grad-accum 2 --steps 3 --save-every 3 \
    --dp 2 --pp 2 --tp 2 --device "$dev" --run-dir "grid_$dev"
done
$py "$compare" grid_cpu grid_guarded || fail "2x2x2 grid: cpu and guarded differ"
echo "1 passed, 0 failed"
