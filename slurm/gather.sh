#!/usr/bin/env bash
# Gathers a sweep's results (slurm/sweep.sh) into one table sorted by validation loss.
#
#   slurm/gather.sh [--data DIR] [--max-tokens N] SWEEP_DIR
#
# For each row of SWEEP_DIR/sweep.tsv, runs `kdgrid eval` on the run directory's `latest`
# checkpoint over --data DIR, or else over the run's own --val-data (from its config.ini), and
# prints one line per run, best first: val_loss, ppl, tokens scored, step, run, flags. Runs with
# no checkpoint or a failed eval come last with their reason. The table is also written to
# SWEEP_DIR/results.tsv (tab-separated). Eval runs as one process; set KDGRID_EVAL_LAUNCH to
# run it otherwise (e.g. KDGRID_EVAL_LAUNCH="srun -n 4 --mpi=pmix" inside an allocation).
# Exits 0 when every run was scored, 1 when some were not, 2 on a usage error.
set -euo pipefail
# shellcheck source=slurm/env.sh
source "$(dirname "$0")/env.sh"

die() { echo "gather.sh: error: $*" >&2; exit 2; }
data="" max_tokens=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=${2:?--data needs DIR}; shift 2 ;;
    --data=*) data=${1#*=}; shift ;;
    --max-tokens) max_tokens=${2:?--max-tokens needs N}; shift 2 ;;
    --max-tokens=*) max_tokens=${1#*=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || die "usage: gather.sh [--data DIR] [--max-tokens N] SWEEP_DIR"
sweep_dir=$1
table=$sweep_dir/sweep.tsv
[ -r "$table" ] || die "$table not found (is $sweep_dir a sweep from slurm/sweep.sh?)"
[ -x "$KDGRID_BIN" ] || die "KDGRID_BIN=$KDGRID_BIN is not an executable"

# The value of `name = value` in an INI file (first occurrence), or "".
iniValue() {
  awk -v key="$2" -F'=' '{
    k = $1; gsub(/^[ \t]+|[ \t]+$/, "", k)
    if (k == key) { v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); print v; exit }
  }' "$1" 2>/dev/null
}

# A number field of eval's JSON line, e.g. jsonNumber '{"loss":3.2,"ppl":24.5}' loss -> 3.2
jsonNumber() {
  sed -n "s/.*\"$2\":\([-+0-9.eE]*\|null\).*/\1/p" <<<"$1"
}

scored=() failed=()
while IFS=$'\t' read -r task run flags; do
  run_dir=$sweep_dir/runs/$run
  if [ ! -f "$run_dir/checkpoints/latest" ]; then
    failed+=("$(printf -- '-\t-\t-\t-\t%s\t%s\tno checkpoint (array task %s)' "$run" "$flags" "$task")")
    continue
  fi
  step=$(<"$run_dir/checkpoints/latest")
  step=$((10#${step#step_}))
  eval_data=${data:-$(iniValue "$run_dir/config.ini" val-data)}
  if [ -z "$eval_data" ]; then
    failed+=("$(printf -- '-\t-\t-\t%s\t%s\t%s\tno --val-data in its config.ini: pass --data' \
      "$step" "$run" "$flags")")
    continue
  fi
  args=(eval --checkpoint "$run_dir" --data "$eval_data")
  [ -z "$max_tokens" ] || args+=(--max-tokens "$max_tokens")
  # shellcheck disable=SC2086
  if out=$(${KDGRID_EVAL_LAUNCH:-} "$KDGRID_BIN" "${args[@]}" 2>"$run_dir/gather-eval.log"); then
    loss=$(jsonNumber "$out" loss) ppl=$(jsonNumber "$out" ppl) tokens=$(jsonNumber "$out" tokens)
    scored+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$loss" "$ppl" "$tokens" "$step" "$run" "$flags")")
  else
    failed+=("$(printf -- '-\t-\t-\t%s\t%s\t%s\teval exited %s (see %s)' "$step" "$run" \
      "$flags" "$?" "$run_dir/gather-eval.log")")
  fi
done < <(tail -n +2 "$table")

{
  printf 'val_loss\tppl\ttokens\tstep\trun\tflags\n'
  [ ${#scored[@]} -eq 0 ] || printf '%s\n' "${scored[@]}" | sort -t $'\t' -k1,1g
  [ ${#failed[@]} -eq 0 ] || printf '%s\n' "${failed[@]}"
} >"$sweep_dir/results.tsv"
# Aligned for reading; the numbers are rounded here and kept in full in results.tsv.
awk -F'\t' 'function num(x) { return x ~ /^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$/ ? sprintf("%.5f", x) : x }
  { printf "%-10s %-12s %-9s %-6s %-36s %s%s\n", (NR > 1 ? num($1) : $1), (NR > 1 ? num($2) : $2),
           $3, $4, $5, $6, (NF > 6 ? "  [" $7 "]" : "") }' "$sweep_dir/results.tsv"
echo "gather.sh: ${#scored[@]} of $((${#scored[@]} + ${#failed[@]})) runs scored; table in $sweep_dir/results.tsv" >&2
[ ${#failed[@]} -eq 0 ]
