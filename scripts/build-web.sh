#!/usr/bin/env bash
# Builds the console (web/) into web/dist once per change of its sources: the
# Makefile calls this for the stamp web/dist/.built, which every build variant
# (build, build-clang, build-asan, build-tsan, build-fuzz) shares, so npm runs
# once, not once per variant. Vite writes to a private folder that is then
# renamed into place, so two makes at once never see a half-written dist/.
set -euo pipefail
cd "$(dirname "$0")/../web"
# npm ci again when the lock file changed since the last install.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "build-web: npm ci (web)"
  npm ci --no-audit --no-fund --silent
fi
tmp="dist.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
node node_modules/vite/bin/vite.js build --logLevel warn --outDir "$tmp"
touch "$tmp/.built"
old="dist.old.$$"
[ -d dist ] && mv dist "$old"
mv "$tmp" dist
rm -rf "$old"
trap - EXIT
