#!/bin/bash
# The binary users run carries no test hooks (STYLE: "Fault injection lives in tests"): no
# KDGRID_TEST_* string in build/kdgrid, while build/kdgrid-test, the same program with the hooks
# installed (tests/test_hooks.h), has every one the faults tests set (so the search itself works).
#
# usage: no_test_hooks_test.sh KDGRID KDGRID_TEST
set -u
kdgrid="$1"
kdgrid_test="$2"
failed=0
found=$(strings "$kdgrid" | grep KDGRID_TEST)
if [ -n "$found" ]; then
  echo "FAIL: $kdgrid carries test hooks:"
  echo "$found"
  failed=1
fi
for name in KDGRID_TEST_NAN_STEP KDGRID_TEST_CRASH_IN_SAVE KDGRID_TEST_HANG_IN_SAVE; do
  if ! strings "$kdgrid_test" | grep -q "^$name\$"; then
    echo "FAIL: $kdgrid_test does not read $name"
    failed=1
  fi
done
[ "$failed" = 0 ] && echo PASS
exit "$failed"
