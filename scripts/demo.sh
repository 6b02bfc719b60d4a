#!/usr/bin/env bash
# Build leakhound and hunt the leak of the bundled demo app end to end:
# `leakhound run` starts it, loads it, snapshots it between rounds and
# diagnoses the snapshots; then the classic views of the last snapshot.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p leakhound
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
lh=target/release/leakhound
# --mode snapshots: the summary and diff below read the per-round snapshots
# (on Node 22+ the default would take one snapshot at the end).
echo "\$ leakhound run --mode snapshots --keep $out --html $out/report.html --load http://127.0.0.1:$port/orders?id=1 -- node examples/demo/leaky-app.js"
html=()
if "$lh" run --help | grep -q -- '--html'; then html=(--html "$out/report.html"); fi
PORT=$port "$lh" run --mode snapshots --keep "$out" "${html[@]}" --load "http://127.0.0.1:$port/orders?id=1" -- node examples/demo/leaky-app.js
echo
echo "\$ leakhound summary $out/s4.heapsnapshot --top 8"
"$lh" summary "$out/s4.heapsnapshot" --top 8
echo
echo "\$ leakhound diff $out/s1.heapsnapshot $out/s4.heapsnapshot --top 5"
"$lh" diff "$out/s1.heapsnapshot" "$out/s4.heapsnapshot" --top 5
if [ -f "$out/report.html" ]; then
  mkdir -p target/demo
  cp "$out/report.html" target/demo/report.html
  echo
  echo "HTML report: target/demo/report.html"
fi
