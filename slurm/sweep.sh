#!/usr/bin/env bash
# Submits a hyperparameter sweep as ONE Slurm job array: one array task, and one run directory,
# per combination of options.
#
#   slurm/sweep.sh [--sample N] [--seed S] [--max-parallel M] [--sbatch-arg ARG]... [--dry-run]
#                  SCRIPT CONFIG SWEEP_DIR NAME=V1,V2,... [NAME=V1,V2,...]...
#
#   SCRIPT     a batch script of slurm/ (train.sbatch, distill.sbatch, ...)
#   CONFIG     its INI file: the options every run shares
#   SWEEP_DIR  gets sweep.tsv (array task, run name, kdgrid flags), runs/NAME/ (the run
#              directories, NAME from the options, e.g. lr3e-4_kd-temperature2), logs/ (job
#              output) and array_job (the job id); slurm/gather.sh SWEEP_DIR tabulates the results
#   NAME=V,..  a kdgrid flag without its dashes and the values to try, e.g. lr=1e-3,3e-4
#              batch-size=4,8 kd-temperature=1,2,4 kd-alpha=0.5,0.9
#
# Default: the full grid (every combination; the first option varies slowest). --sample N: N
# distinct combinations drawn at random (reproducible with --seed S, default 0). --max-parallel M
# lets at most M runs run at once (sbatch --array=...%M). --sbatch-arg passes one option to sbatch
# (e.g. --sbatch-arg=--ntasks=4 --sbatch-arg=--time=2:00:00). --dry-run writes and prints the
# table without submitting. Submitting again with the same table resubmits the array: finished
# runs have nothing left to do, the others resume from their `latest` checkpoint.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
die() { echo "sweep.sh: error: $*" >&2; exit 2; }

sample=0 seed=0 max_parallel="" dry_run=0
sbatch_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sample) sample=${2:?--sample needs N}; shift 2 ;;
    --sample=*) sample=${1#*=}; shift ;;
    --seed) seed=${2:?--seed needs S}; shift 2 ;;
    --seed=*) seed=${1#*=}; shift ;;
    --max-parallel) max_parallel=${2:?--max-parallel needs M}; shift 2 ;;
    --max-parallel=*) max_parallel=${1#*=}; shift ;;
    --sbatch-arg) sbatch_args+=("${2:?--sbatch-arg needs a value}"); shift 2 ;;
    --sbatch-arg=*) sbatch_args+=("${1#*=}"); shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ $# -ge 4 ] || { echo "sweep.sh: error: need SCRIPT CONFIG SWEEP_DIR and at least one NAME=V1,V2,..." >&2; usage; }
script=$1 config=$2 sweep_dir=$3
shift 3
[[ "$sample" =~ ^[0-9]+$ ]] || die "--sample $sample: not a count"
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed $seed: not a non-negative integer"
[ -z "$max_parallel" ] || [[ "$max_parallel" =~ ^[1-9][0-9]*$ ]] ||
  die "--max-parallel $max_parallel: not a positive count"
[ -r "$script" ] || die "SCRIPT $script: not readable"
[ -r "$config" ] || die "CONFIG $config: not readable"

# The grid, built one option at a time: flags[i] holds "--name value ..." and names[i] the run
# name of combination i.
flags=("") names=("")
declare -A seen_option=()
for spec in "$@"; do
  [[ "$spec" == *=* ]] || die "'$spec': expected NAME=V1,V2,..."
  option=${spec%%=*} values=${spec#*=}
  [[ "$option" =~ ^[a-z][a-z0-9-]*$ ]] || die "'$spec': NAME must be a kdgrid flag without dashes"
  [ -z "${seen_option[$option]:-}" ] || die "'$spec': $option given twice"
  seen_option[$option]=1
  [[ "$values" =~ ^[^[:space:]]+$ ]] || die "'$spec': values may not be empty or hold blanks"
  IFS=, read -r -a list <<<"$values"
  [ ${#list[@]} -ge 1 ] || die "'$spec': no values"
  next_flags=() next_names=()
  for i in "${!flags[@]}"; do
    for v in "${list[@]}"; do
      [ -n "$v" ] || die "'$spec': an empty value"
      next_flags+=("${flags[$i]:+${flags[$i]} }--$option $v")
      # File-name safe: anything but letters, digits, '.', '+' and '-' becomes '-'.
      next_names+=("${names[$i]:+${names[$i]}_}$option${v//[^A-Za-z0-9.+-]/-}")
    done
  done
  flags=("${next_flags[@]}") names=("${next_names[@]}")
  [ ${#flags[@]} -le 100000 ] || die "more than 100000 combinations"
done
total=${#flags[@]}
dup=$(printf '%s\n' "${names[@]}" | sort | uniq -d | head -n 1)
[ -z "$dup" ] || die "two combinations share the run name $dup; use values that differ in letters or digits"

# Which combinations to run: all, or a reproducible random sample (a Fisher-Yates shuffle seeded
# with --seed; kept in grid order).
if [ "$sample" -gt 0 ]; then
  [ "$sample" -le "$total" ] || die "--sample $sample: the grid has only $total combinations"
  mapfile -t picked < <(awk -v n="$total" -v k="$sample" -v seed="$seed" 'BEGIN {
    srand(seed)
    for (i = 0; i < n; i++) a[i] = i
    for (i = 0; i < k; i++) { j = i + int(rand() * (n - i)); t = a[i]; a[i] = a[j]; a[j] = t }
    for (i = 0; i < k; i++) print a[i]
  }' | sort -n)
else
  mapfile -t picked < <(seq 0 $((total - 1)))
fi

mkdir -p "$sweep_dir"
table=$sweep_dir/sweep.tsv
new_table=$(
  printf 'task\trun\tflags\n'
  task=0
  for i in "${picked[@]}"; do
    printf '%d\t%s\t%s\n' "$task" "${names[$i]}" "${flags[$i]}"
    task=$((task + 1))
  done
)
if [ -f "$table" ] && [ "$(cat "$table")" != "$new_table" ]; then
  die "$table exists and holds another sweep; use a new SWEEP_DIR"
fi
printf '%s\n' "$new_table" >"$table"
count=${#picked[@]}
echo "sweep.sh: $count of $total combinations in $table"

if [ "$dry_run" -eq 1 ]; then
  cat "$table"
  exit 0
fi
mkdir -p "$sweep_dir/runs" "$sweep_dir/logs"
# The array tasks find their row through KDGRID_SWEEP_DIR (slurm/lib.sh); sbatch passes the
# environment on.
export KDGRID_SWEEP_DIR=$sweep_dir
job=$(sbatch --parsable --array="0-$((count - 1))${max_parallel:+%$max_parallel}" \
  --job-name="kdgrid-sweep-$(basename "$sweep_dir")" --output="$sweep_dir/logs/%x-%A_%a.out" \
  "${sbatch_args[@]}" "$script" "$config")
job=${job%%;*}  # --parsable prints "id" or "id;cluster"
echo "$job" >"$sweep_dir/array_job"
echo "sweep.sh: submitted job array $job ($count tasks); when it is done: slurm/gather.sh $sweep_dir"
