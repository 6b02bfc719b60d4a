#!/usr/bin/env bash
# Build leakhound and run it on the bundled leaky demo app.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p leakhound
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
node examples/demo/leaky-app.js --snapshot "$out/demo.heapsnapshot" --requests 3000
echo
echo '$ leakhound summary demo.heapsnapshot --top 10'
target/release/leakhound summary "$out/demo.heapsnapshot" --top 10
echo
echo '$ leakhound retainers demo.heapsnapshot --class LogEntry --objects 1 --paths 2'
target/release/leakhound retainers "$out/demo.heapsnapshot" --class LogEntry --objects 1 --paths 2
