#!/usr/bin/env bash
# The project's test command: installs what the tests need (Node majors
# 18-26 from npm) when missing, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-nodes.sh
cargo test --workspace --locked 2>&1
