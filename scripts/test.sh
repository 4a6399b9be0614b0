#!/usr/bin/env bash
# Everything `make test` runs, in order, each stage counted:
#   1. gcc build (-Werror) and the unit tests (cmocka, one process each)
#   2. clang build of the same sources (both compilers must accept them)
#   3. source checks (banned calls, layer rule)
#   4. integration tests: the real binary against fake upstreams over loopback
#   5. AddressSanitizer + UndefinedBehaviorSanitizer build: unit + integration again
#   6. libFuzzer targets, briefly, from their seed corpora
# The last line is the summary CI reads: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0; failed=0; failures=()

stage() {
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

build_gcc()   { make -s -j"$jobs" all && make -s -j"$jobs" $(ls src/*/*_test.c | sed 's#^src/#build/test/#; s#\.c$##'); }
unit_gcc()    { scripts/run-unit.sh build; }
build_clang() { make -s -j"$jobs" BUILD=build-clang CC=clang build-clang/switchboard; }
build_asan()  { make -s -j"$jobs" BUILD=build-asan CC=clang SAN=1 OPT="-O1 -g" all \
                  $(ls src/*/*_test.c | sed 's#^src/#build-asan/test/#; s#\.c$##'); }
unit_asan()   { ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 scripts/run-unit.sh build-asan; }
integ()       { scripts/integration.sh build/switchboard; }
integ_asan()  { ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
                  scripts/integration.sh build-asan/switchboard; }
fuzz()        { scripts/fuzz.sh "$FUZZ_SECONDS"; }

stage "build (gcc)" build_gcc
stage "unit tests (gcc)" unit_gcc
stage "build (clang)" build_clang
stage "source checks" scripts/checksrc.sh
stage "integration" integ
stage "build (clang asan+ubsan)" build_asan
stage "unit tests (asan+ubsan)" unit_asan
stage "integration (asan+ubsan)" integ_asan
stage "fuzz (${FUZZ_SECONDS}s each)" fuzz

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed stage: %s\n' "${failures[@]}"
echo "make test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
