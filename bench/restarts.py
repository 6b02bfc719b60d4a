#!/usr/bin/env python3
"""How many memory restarts `leakhound supervise` makes under load, and
whether any request is lost: the test
`supervise_restarts::memory_restarts_under_load_lose_no_request` (two
workers under --max-rss 110MB, 15,000 loopback requests over 16 keep-alive
connections, every response must succeed) run N times in a row.

    python3 bench/restarts.py              # 22 runs
    python3 bench/restarts.py --runs 5

Prints one line per run and the totals (restarts, runs passed, requests
failed), and writes bench/out/restarts.json. This is a count, not a timing:
a busy machine does not change what it checks, only how long it takes.
Python 3.11, standard library only.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
TEST = "memory_restarts_under_load_lose_no_request"
SUMMARY = re.compile(r"(\d+) requests in [\d.]+ s \(\d+/s\): (\d+) ok, (\d+) errors .*?, (\d+) non-2xx; (\d+) restarts")


def test_binary() -> str:
    """Builds the test once; the path of its binary (from cargo's JSON messages)."""
    out = subprocess.run(["cargo", "test", "-p", "leakhound", "--test", "supervise_restarts", "--no-run", "--message-format", "json"],
                         cwd=REPO, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "supervise_restarts" and m.get("executable"):
            return m["executable"]
    sys.exit("could not find the supervise_restarts test binary")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=22)
    ap.add_argument("--timeout", type=float, default=300, help="per run (default 300 s)")
    args = ap.parse_args()
    binary = test_binary()
    runs = []
    for i in range(args.runs):
        t0 = time.monotonic()
        try:
            p = subprocess.run([binary, TEST, "--exact", "--nocapture", "--test-threads", "1"], cwd=REPO / "crates" / "leakhound",
                               capture_output=True, text=True, timeout=args.timeout)
            text, passed = p.stdout + p.stderr, p.returncode == 0
        except subprocess.TimeoutExpired as e:
            text, passed = f"{e.stdout or ''}{e.stderr or ''}timed out", False
        m = SUMMARY.search(text)
        r = {"run": i + 1, "passed": passed, "seconds": round(time.monotonic() - t0, 1)}
        if m:
            req, ok, errors, non2xx, restarts = map(int, m.groups())
            r.update(requests=req, ok=ok, errors=errors, non_2xx=non2xx, restarts=restarts, failed=req - ok)
        runs.append(r)
        print(f"run {i + 1}/{args.runs}: {'passed' if passed else 'FAILED'}; "
              + (f"{r['restarts']} restarts, {r['requests']} requests, {r['failed']} failed" if m else "no summary line"), flush=True)
    counted = [r for r in runs if "restarts" in r]
    total = {"runs": len(runs), "passed": sum(r["passed"] for r in runs), "restarts": sum(r["restarts"] for r in counted),
             "requests": sum(r["requests"] for r in counted), "failed_requests": sum(r["failed"] for r in counted)}
    print(f"\n{total['restarts']} memory restarts in {total['runs']} run{'' if total['runs'] == 1 else 's'} ({total['passed']} passed); "
          f"{total['requests']:,} requests, {total['failed_requests']} failed")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "restarts.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "total": total, "runs": runs}, indent=2))
    return 0 if total["passed"] == total["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
