#!/usr/bin/env bash
# Builds every fuzz/*_fuzz.c with libFuzzer + ASan + UBSan and runs each for
# N seconds (default 20) from its seed corpus. A crash fails the run and
# leaves the reproducer in build-fuzz/crash-*.
set -u
cd "$(dirname "$0")/.."
secs=${1:-20}
make -s -j"$(nproc)" BUILD=build-fuzz CC=clang SAN=1 FUZZ=1 OPT="-O1 -g" fuzzers || exit 1
rc=0
failed=""
for f in build-fuzz/fuzz/*_fuzz; do
  [ -x "$f" ] || continue
  name=$(basename "$f" _fuzz)
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  [ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
  echo "fuzz: $name for ${secs}s"
  if ! "$f" -max_total_time="$secs" -artifact_prefix=build-fuzz/crash-"$name"- \
       -print_final_stats=0 "$corpus" >build-fuzz/"$name".log 2>&1; then
    echo "fuzz: $name FAILED"; tail -40 build-fuzz/"$name".log; rc=1; failed="$failed $name"
  else
    grep -E '^Done|#[0-9]+.*DONE' build-fuzz/"$name".log | tail -1
  fi
done
# Last, so that a log cut to its tail still names them (stop 15's did not).
[ -n "$failed" ] && echo "fuzz: failed:$failed (reproducers in build-fuzz/crash-*)"
exit $rc
