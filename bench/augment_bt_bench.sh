#!/usr/bin/env bash
# Back-translation throughput: `kdgrid augment --method backtranslate` against a bare Apertium
# round trip (`apertium -u LANG-PIVOT | apertium -u PIVOT-LANG`) over the same text, in the
# same run, alternating, each BENCH_REPEAT times.
#
#   bench/augment_bt_bench.sh [KDGRID_BIN]          (default build/kdgrid)
#   BENCH_DOCS=600 BENCH_REPEAT=3 BENCH_PIVOT=spa
#
# Text: the first BENCH_DOCS fortunes of the plain fortune files in /usr/share/games/fortunes
# (package `fortunes`, file-name order), one document each. kdgrid reads them from two kdgrid-text shards (written with
# Debian's python3-h5py) and writes the round trips; the bare pipeline reads them as one text
# file (documents separated by blank lines) and writes to /dev/null. Both start their Apertium
# processes inside the timed span. Sentences: the number kdgrid reports for the text (the same
# for both). Prints both rates per repeat, and the ratio of the best times (goal: kdgrid >= 0.9
# of the bare round trip).
set -euo pipefail
kdgrid=$(realpath "${1:-build/kdgrid}")
docs=${BENCH_DOCS:-2000}
repeat=${BENCH_REPEAT:-3}
pivot=${BENCH_PIVOT:-spa}
lang=eng
fortunes=/usr/share/games/fortunes
[ -d "$fortunes" ] || { echo "augment_bt_bench: $fortunes missing (apt-get install fortunes)" >&2; exit 1; }
command -v apertium >/dev/null || { echo "augment_bt_bench: apertium missing" >&2; exit 1; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

work=$(mktemp -d "${TMPDIR:-/tmp}/kdgrid-bt-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$fortunes" "$docs" "$work" <<'PY'
import sys
import h5py
import numpy as np
import glob
import os
directory, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
docs = []
for path in sorted(glob.glob(f"{directory}/*")):
    if path.endswith((".dat", ".u8")) or not os.path.isfile(path):
        continue
    text = open(path, "rb").read().decode("utf-8", "replace")
    docs += [d.strip("\n") + "\n" for d in text.split("\n%\n") if d.strip()]
docs = [d.encode() for d in docs[:n]]
with open(f"{work}/text.txt", "wb") as f:
    f.write(b"\n".join(docs))
os.makedirs(f"{work}/in")
half = len(docs) // 2
for k, part in enumerate((docs[:half], docs[half:])):
    with h5py.File(f"{work}/in/text_{k:05d}.h5", "w") as f:
        f.attrs["format"] = "kdgrid-text"
        f.attrs["format_version"] = 1
        f["text/bytes"] = np.frombuffer(b"".join(part), dtype=np.uint8)
        f["text/offsets"] = np.cumsum([0] + [len(d) for d in part]).astype(np.uint64)
PY

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
echo "augment_bt_bench: $docs fortunes, $(stat -c %s "$work/text.txt") bytes, pivot $pivot, $(getconf _NPROCESSORS_ONLN) cores"
best_bare=1e9
best_kdgrid=1e9
for ((run = 0; run < repeat; ++run)); do
  t0=$(now)
  apertium -u "$lang-$pivot" "$work/text.txt" | apertium -u "$pivot-$lang" >/dev/null
  t1=$(now)
  rm -rf "$work/out"
  log=$("$kdgrid" augment --method backtranslate --bt-pivots "$pivot" --input "$work/in" --out "$work/out" 2>&1)
  t2=$(now)
  sentences=$(sed -n 's/^augment: \([0-9]*\) sentences.*/\1/p' <<<"$log")
  bare=$(calc "$t1 - $t0")
  ours=$(calc "$t2 - $t1")
  printf 'run %d: %s sentences: bare apertium round trip %.2f s = %.1f sentences/s; kdgrid augment %.2f s = %.1f sentences/s (%.2fx)\n' \
    "$run" "$sentences" "$bare" "$(calc "$sentences / $bare")" "$ours" \
    "$(calc "$sentences / $ours")" "$(calc "$bare / $ours")"
  best_bare=$(calc "($bare < $best_bare) ? $bare : $best_bare")
  best_kdgrid=$(calc "($ours < $best_kdgrid) ? $ours : $best_kdgrid")
done
printf 'best of %d: kdgrid / bare apertium throughput = %.2f (goal >= 0.9)\n' "$repeat" \
  "$(calc "$best_bare / $best_kdgrid")"
