#!/usr/bin/env bash
# `kdgrid prepare` throughput in MB/s of input text, on the Debian fortunes corpus.
#
#   bench/prepare_bench.sh [KDGRID_BIN]          (default build/kdgrid)
#   BENCH_RANKS="1 2" BENCH_COPIES=2 BENCH_REPEAT=3 BENCH_MPIEXEC=mpirun
#
# Corpus: every fortune file of /usr/share/games/fortunes (package `fortunes`), its '%' lines
# turned into blank lines so each fortune is a document, concatenated BENCH_COPIES times
# (~2.6 MB per copy). Tokenizer: 8192 ids trained on one copy (not timed). Each run prepares
# the corpus into fresh directories (--val-fraction 0.01, --shard-tokens 1000000).
# Prints one line per run: wall-clock MB/s as `prepare` reports it (reading, encoding,
# writing; MPI start-up excluded) and MB per CPU-second of the whole run (user + sys of all
# ranks, MPI start-up included), which depends less on other load on the machine.
set -euo pipefail
kdgrid=$(realpath "${1:-build/kdgrid}")
ranks_list=${BENCH_RANKS:-"1 2"}
copies=${BENCH_COPIES:-2}
repeat=${BENCH_REPEAT:-3}
mpiexec=${BENCH_MPIEXEC:-mpirun}
fortunes=/usr/share/games/fortunes
[ -d "$fortunes" ] || { echo "prepare_bench: $fortunes missing (apt-get install fortunes)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

work=$(mktemp -d "${TMPDIR:-/tmp}/kdgrid-prepare-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
for f in "$fortunes"/*; do
  case "$f" in *.dat|*.u8) continue ;; esac
  [ -f "$f" ] || continue
  sed 's/^%$//' "$f"
  echo
done > "$work/one.txt"
for ((i = 0; i < copies; ++i)); do cat "$work/one.txt"; done > "$work/corpus.txt"
"$kdgrid" tokenizer --input "$work/one.txt" --vocab-size 8192 --out "$work/tok.json" >/dev/null 2>&1

echo "prepare_bench: corpus $(stat -c %s "$work/corpus.txt") bytes ($copies copies of the fortunes), vocab 8192, OMP_NUM_THREADS=$OMP_NUM_THREADS, $(getconf _NPROCESSORS_ONLN) cores"
for ranks in $ranks_list; do
  for ((run = 0; run < repeat; ++run)); do
    out="$work/out_${ranks}_$run"
    cmd=("$kdgrid" prepare --input "$work/corpus.txt" --tokenizer "$work/tok.json" --out "$out"
         --val-fraction 0.01 --shard-tokens 1000000)
    [ "$ranks" -gt 1 ] && cmd=("$mpiexec" -np "$ranks" "${cmd[@]}")
    TIMEFORMAT="%U %S"
    { time "${cmd[@]}" >"$work/log" 2>&1; } 2>"$work/cpu"
    summary=$(grep -E "MB of text in" "$work/log") || { cat "$work/log" >&2; exit 1; }
    mb=$(sed -E 's/.*prepare: ([0-9.]+) MB of text.*/\1/' <<<"$summary")
    mbps=$(sed -E 's/.*= ([0-9.]+) MB\/s.*/\1/' <<<"$summary")
    read -r user sys <"$work/cpu"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    per_cpu=$(awk -v m="$mb" -v c="$cpu" 'BEGIN { printf "%.2f", (c > 0 ? m / c : 0) }')
    echo "prepare_bench: ranks=$ranks run=$run input_mb=$mb wall_mb_per_s=$mbps cpu_s=$cpu mb_per_cpu_s=$per_cpu"
    rm -rf "$out"
  done
done
