#!/bin/bash
# Every subcommand's --help shows its defaults as a person writes them: a floating-point default
# in fmt's shortest round-trip form (--lr (=0.0003)), never Boost's every-digit form
# (=0.00029999999999999997). The subcommands come from `kdgrid --help`.
#
# usage: help_defaults_test.sh KDGRID
set -u
bin="$1"
failed=0
subcommands=$("$bin" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
if [ -z "$subcommands" ]; then
  echo "FAIL: no subcommands in $bin --help"
  exit 1
fi
for sub in $subcommands; do
  help=$("$bin" "$sub" --help 2>&1)
  # A default with six or more digits after the point, or a float's 7-9 digit tail (0.800000012).
  long=$(printf '%s\n' "$help" | grep -E '\(=-?[0-9]*\.[0-9]{6,}')
  if [ -n "$long" ]; then
    echo "FAIL: kdgrid $sub --help:"
    echo "$long"
    failed=1
  fi
done
# The form itself, on the defaults DESIGN section 2 names.
train_help=$("$bin" train --help)
for want in '--lr arg (=0.0003)' '--weight-decay arg (=0.1)' '--grad-clip arg (=1)'; do
  if ! printf '%s\n' "$train_help" | grep -qF -- "$want"; then
    echo "FAIL: kdgrid train --help lacks '$want'"
    failed=1
  fi
done
[ "$failed" = 0 ] && echo "PASS ($(echo $subcommands | wc -w) subcommands)"
exit "$failed"
