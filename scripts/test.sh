#!/usr/bin/env bash
# The project's test command: installs what the tests need when missing
# (Node majors 18-26 from npm, Debian's chromium for the browser-snapshot
# test), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-nodes.sh >/dev/null
if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing Debian's chromium" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# Prometheus and promtool: the supervise metrics test scrapes with a real server.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "test.sh: installing Debian's prometheus" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# The fixtures' own dependencies (express, the packages of fixtures/deps,
# and the TypeScript toolchains of fixtures/ts), from the npm registry;
# again whenever package-lock.json changed since the last install.
if [ ! -f fixtures/node_modules/.package-lock.json ] || [ fixtures/package-lock.json -nt fixtures/node_modules/.package-lock.json ]; then
  (cd fixtures && npm ci --no-audit --no-fund --silent >/dev/null)
fi
cargo test --workspace --locked 2>&1
