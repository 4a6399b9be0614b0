#!/usr/bin/env bash
# Runs every unit test binary under BUILD/test, each in its own process with
# a timeout, and prints one summary line ("N passed, N failed").
set -u
build=${1:-build}
pass=0; fail=0; failed=()
while IFS= read -r t; do
  if timeout 120 "$t" >"$t.log" 2>&1; then
    pass=$((pass + 1))
    grep -E '^\[  PASSED  \] [0-9]+ test' "$t.log" | sed "s|\$| $(basename "$t")|"
  else
    fail=$((fail + 1)); failed+=("$t")
    echo "FAIL $t"; tail -30 "$t.log"
  fi
done < <(find "$build/test" -type f -executable -name '*_test' | sort)
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
