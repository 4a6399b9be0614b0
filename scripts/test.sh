#!/usr/bin/env bash
# Everything `make test` runs, in order, each stage counted:
#   1. gcc build (-Werror) and the unit tests (cmocka, one process each)
#   2. clang build of the same sources (both compilers must accept them)
#   3. source checks (banned calls, layer rule)
#   4. integration tests: the real binary against fake upstreams over loopback
#      (plain-HTTP upstreams on the native HTTP/1.1 path, the default), again
#      with every request through libcurl (SWITCHBOARD_UPSTREAM=curl),
#      then the web console in Debian's chromium against that same binary (tests/ui)
#   5. AddressSanitizer + UndefinedBehaviorSanitizer build: unit + integration again
#   6. ThreadSanitizer build: unit + integration again (the control plane's
#      pool threads, registry poller and usage writer share state with the loops)
#   7. libFuzzer targets, briefly, from their seed corpora
# The last line is the summary CI reads: "tests: N passed, N failed", where N
# counts test cases (cmocka cases, node:test tests) plus one per other stage
# (builds, source checks, each fuzz run).
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0; failed=0; failures=()
log=$(mktemp); trap 'rm -f "$log"' EXIT

# Test cases a stage's output reports (cmocka and node:test summaries), or "".
cases() {
  local p f
  p=$(grep -hoE '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -hoE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  p=$((p + $(grep -hoE '^ℹ pass [0-9]+' "$log" | awk '{s+=$3} END{print s+0}')))
  f=$((f + $(grep -hoE '^ℹ fail [0-9]+' "$log" | awk '{s+=$3} END{print s+0}')))
  echo "$p $f"
}

stage() {
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS rc
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  read -r p f < <(cases)
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    [ "$rc" -eq 0 ] && p=1 || f=1
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 # the stage failed outside its test cases (a crash, a build error)
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -eq 0 ]; then
    echo "=== $name: ok, $p passed ($((SECONDS - t0)) s)"
  else
    failures+=("$name"); echo "=== $name: FAILED, $f failed ($((SECONDS - t0)) s)"
  fi
}

build_gcc()   { make -s -j"$jobs" all && make -s -j"$jobs" $(ls src/*/*_test.c | sed 's#^src/#build/test/#; s#\.c$##'); }
unit_gcc()    { scripts/run-unit.sh build; }
build_clang() { make -s -j"$jobs" BUILD=build-clang CC=clang build-clang/switchboard; }
build_asan()  { make -s -j"$jobs" BUILD=build-asan CC=clang SAN=1 OPT="-O1 -g" all \
                  $(ls src/*/*_test.c | sed 's#^src/#build-asan/test/#; s#\.c$##'); }
unit_asan()   { ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 scripts/run-unit.sh build-asan; }
integ()       { scripts/integration.sh build/switchboard; }
integ_curl()  { SWITCHBOARD_UPSTREAM=curl scripts/integration.sh build/switchboard; }
console_ui()  { scripts/console-tests.sh build/switchboard; }
integ_asan()  { ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
                  scripts/integration.sh build-asan/switchboard; }
# TSan: halt_on_error makes the first race fatal (a unit test fails; the
# gateway's report in stderr fails the integration file's clean-stop test).
# scripts/tsan.supp holds suppressions for proven third-party false
# positives only, each justified there.
TSAN_ENV=(TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp")
build_tsan()  { make -s -j"$jobs" BUILD=build-tsan CC=clang TSAN=1 OPT="-O1 -g" all \
                  $(ls src/*/*_test.c | sed 's#^src/#build-tsan/test/#; s#\.c$##'); }
unit_tsan()   { env "${TSAN_ENV[@]}" scripts/run-unit.sh build-tsan; }
integ_tsan()  { env "${TSAN_ENV[@]}" scripts/integration.sh build-tsan/switchboard; }
fuzz()        { scripts/fuzz.sh "$FUZZ_SECONDS"; }

stage "build (gcc)" build_gcc
stage "unit tests (gcc)" unit_gcc
stage "build (clang)" build_clang
stage "source checks" scripts/checksrc.sh
stage "integration" integ
stage "integration (curl upstream)" integ_curl
stage "console (chromium)" console_ui
stage "build (clang asan+ubsan)" build_asan
stage "unit tests (asan+ubsan)" unit_asan
stage "integration (asan+ubsan)" integ_asan
stage "build (clang tsan)" build_tsan
stage "unit tests (tsan)" unit_tsan
stage "integration (tsan)" integ_tsan
stage "fuzz (${FUZZ_SECONDS}s each)" fuzz

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed stage: %s\n' "${failures[@]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
