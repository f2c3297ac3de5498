#!/usr/bin/env bash
# `kdgrid tokenizer` through the real binary: trains and writes JSON (files and directories as
# --input, one rank and two), and bad input exits 2 with a message naming the option or file.
set -uo pipefail
bin="${KDGRID_BIN:?KDGRID_BIN is not set}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# expect CODE NEEDLE CMD...: runs CMD, checks its exit code and that its output holds NEEDLE.
expect() {
  local code="$1" needle="$2"
  shift 2
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $out"
  [[ "$out" == *"$needle"* ]] || fail "'$*' output lacks '$needle': $out"
}

mkdir -p "$work/texts"
for i in $(seq 1 300); do
  echo "Line $i: the quick brown fox jumps over the lazy dog, again and again."
done >"$work/texts/a.txt"
for i in $(seq 1 200); do
  echo "Zeile $i: Der schnelle braune Fuchs springt über den faulen Hund."
done >"$work/texts/b.txt"

a="$work/texts/a.txt"
expect 0 "vocab 400" "$bin" tokenizer --input "$a" --vocab-size 400 --out "$work/a.json"
[ -s "$work/a.json" ] || fail "a.json was not written"
grep -q '"format": "kdgrid-bpe"' "$work/a.json" || fail "a.json has no format field"
grep -q '"vocab_size": 400' "$work/a.json" || fail "a.json has the wrong vocab_size"

# A directory stands for its files in name order: the same result as listing them.
expect 0 "vocab 500" "$bin" tokenizer --input "$work/texts" --vocab-size 500 --out "$work/d.json"
expect 0 "vocab 500" "$bin" tokenizer --input "$work/texts/a.txt" "$work/texts/b.txt" \
  --vocab-size 500 --out "$work/f.json"
cmp -s "$work/d.json" "$work/f.json" || fail "directory and file list give different tokenizers"

# Options from an INI file.
printf 'input = %s\nvocab-size = 300\nout = %s\n' "$a" "$work/ini.json" >"$work/t.ini"
expect 0 "vocab 300" "$bin" tokenizer --config "$work/t.ini"

# Usage errors: exit 2, the message names the option or file.
x="$work/x.json"
expect 2 "--vocab-size" "$bin" tokenizer --input "$a" --vocab-size 100 --out "$x"
expect 2 "vocab-size" "$bin" tokenizer --input "$a" --vocab-size -3 --out "$x"
expect 2 "vocab-size" "$bin" tokenizer --input "$a" --out "$x"
expect 2 "$work/nope.txt" "$bin" tokenizer --input "$work/nope.txt" --vocab-size 300 --out "$x"
expect 2 "--vocab-size" "$bin" tokenizer --input "$a" --vocab-size 100000 --out "$x"
mkdir -p "$work/empty"
expect 2 "$work/empty" "$bin" tokenizer --input "$work/empty" --vocab-size 300 --out "$x"
expect 2 "$work/no/such/dir" "$bin" tokenizer --input "$a" --vocab-size 300 \
  --out "$work/no/such/dir/x.json"
[ ! -e "$work/x.json" ] || fail "a failed run left x.json behind"

# Under mpirun with two ranks: same file, and a data error still exits 2 on every rank.
if command -v mpirun >/dev/null; then
  expect 0 "vocab 400" mpirun -np 2 "$bin" tokenizer --input "$a" --vocab-size 400 \
    --out "$work/mpi.json"
  cmp -s "$work/a.json" "$work/mpi.json" || fail "two ranks wrote a different tokenizer"
  expect 2 "--vocab-size" mpirun -np 2 "$bin" tokenizer --input "$a" --vocab-size 100000 \
    --out "$x"
fi
echo "tokenizer_cli: all checks passed"
