#!/usr/bin/env bash
# Installs the Debian packages switchboard needs to build, test and bench,
# only those that are missing (idempotent). Runs as root, or through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  gcc make pkg-config clang libclang-rt-14-dev
  libuv1-dev libhttp-parser-dev libcurl4-openssl-dev libsqlite3-dev libyaml-dev libssl-dev
  libjansson-dev libcmocka-dev libargon2-dev
  curl sqlite3 nginx-light wrk procps util-linux openssl
  chromium
)
# Node.js may come from another source (nodesource ships npm inside nodejs):
# ask for Debian's packages only when the commands are missing.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test clients (the official openai SDK) for the integration suite.
if [ -f tests/integration/package.json ] && [ ! -d tests/integration/node_modules/openai ]; then
  echo "bootstrap: npm install (tests/integration)"
  (cd tests/integration && npm install --no-audit --no-fund --silent)
fi

# The web console's build (Vue + Vite, web/) and its browser tests
# (playwright-core driving the chromium package above, tests/ui/), from their
# lock files.
for d in web tests/ui; do
  if [ -f "$d/package-lock.json" ] && [ ! -d "$d/node_modules" ]; then
    echo "bootstrap: npm ci ($d)"
    (cd "$d" && npm ci --no-audit --no-fund --silent)
  fi
done
