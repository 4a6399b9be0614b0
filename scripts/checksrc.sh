#!/usr/bin/env bash
# Source checks that tools do not do for us (STYLE.md practice 23):
#  - banned functions: sprintf, strcpy, strcat, strtok, atoi (and friends)
#  - assignments inside if/while conditions
#  - the layer rule (STYLE.md practice 1): includes point only downward
#  - every .c/.h opens with an SPDX line
set -u
cd "$(dirname "$0")/.."
fail=0
say() { echo "checksrc: $*"; fail=1; }

files=$(ls src/*/*.[ch] src/*.c 2>/dev/null)

# Banned calls (word boundary, not part of a longer name like snprintf).
while IFS= read -r hit; do say "banned call: $hit"; done < <(
  grep -nE '(^|[^_a-zA-Z0-9])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)\s*\(' $files)

# Assignment inside a condition: "if (x = y)" / "while ((x = y))" but not ==, <=, >=, !=.
while IFS= read -r hit; do say "assignment in condition: $hit"; done < <(
  grep -nE '^\s*(if|while)\s*\(.*[^=!<>]=[^=].*\)\s*(\{|$)' $files |
  grep -vE '(if|while)\s*\(.*(==|!=|<=|>=)' | grep -vE '//|/\*' )

# Layers, bottom to top. A file may include its own layer and those below.
rank() {
  case "$1" in
    core) echo 0 ;;
    net|upstream|store|crypto) echo 1 ;;
    provider) echo 2 ;;
    registry) echo 3 ;;
    router) echo 4 ;;
    gateway|batch) echo 5 ;;
    api) echo 6 ;;
    front|cli) echo 7 ;;
    main) echo 8 ;;
    *) echo 9 ;;
  esac
}
for f in $files; do
  layer=$(echo "$f" | awk -F/ 'NF==3 {print $2} NF==2 {print "main"}')
  me=$(rank "$layer")
  while IFS= read -r inc; do
    dep=${inc%%/*}
    them=$(rank "$dep")
    if [ "$them" -gt "$me" ]; then say "$f includes $inc (layer $dep is above $layer)"; fi
    if [ "$them" -eq "$me" ] && [ "$dep" != "$layer" ] && [ "$me" -ne 1 ] ; then
      say "$f includes $inc (sibling layer $dep)"
    fi
    if [ "$me" -eq 1 ] && [ "$them" -eq 1 ] && [ "$dep" != "$layer" ] && [ "$dep" != "crypto" ]; then
      say "$f includes $inc (sibling layer $dep)"
    fi
  done < <(grep -hoE '^#include "[a-z]+/[a-z_]+\.h"' "$f" | sed -E 's/#include "(.*)"/\1/')
done

for f in $files; do
  head -1 "$f" | grep -q 'SPDX-License-Identifier' || say "$f: first line must be the SPDX line"
done

if [ $fail -eq 0 ]; then echo "checksrc: ok"; fi
exit $fail
