#!/usr/bin/env python3
"""The smallest leak `leakhound run` detects with its default flags.

    python3 bench/smallest_leak.py                    # ladder, one run per step
    python3 bench/smallest_leak.py --trials 3 --at 1000

An app (bench/apps/every-nth.js) keeps one short string (32 B: a 24 B string
and its 8 B array slot) every EVERY-th request, so it leaks 32/EVERY bytes
per request. For each EVERY of the ladder `leakhound run --json --load /`
runs with its defaults (2000 warm-up requests, 3 rounds of 2000, rounds of
at least 1 s); a step counts as detected when every trial says `leak` with
the accumulator `keptIds`. EVERY=0 (nothing kept) is the control and must
say `no-leak`. The smallest leak detected is the smallest bytes per request
whose step and every larger one were detected; it is printed per request
and as MB/h at the stated traffic (--at, requests per second), and written
to bench/out/smallest_leak.json.

Python 3.8+, standard library only; needs `node` (or --node) and a built
leakhound (target/release, else target/debug, or --leakhound).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APP = BENCH / "apps" / "every-nth.js"
LADDER = [1, 2, 4, 8, 16, 24, 32, 48, 64]
ENTRY_BYTES = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_leakhound(given: str | None) -> str:
    if given:
        return given
    for p in (ROOT / "target/release/leakhound", ROOT / "target/debug/leakhound"):
        if p.exists():
            return str(p)
    sys.exit("smallest_leak: build leakhound first (cargo build --release -p leakhound)")


def one_run(leakhound: str, node: str, every: int, timeout: float) -> dict:
    port = free_port()
    env = dict(os.environ, PORT=str(port), EVERY=str(every))
    t = time.monotonic()
    out = subprocess.run(
        [leakhound, "run", "--json", "--load", "/", "--", node, str(APP)],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
    )
    took = time.monotonic() - t
    try:
        v = json.loads(out.stdout)
    except ValueError:
        sys.exit(f"smallest_leak: no JSON from leakhound (exit {out.returncode}): {out.stderr.decode()[-500:]}")
    names = [s["accumulator"]["name"] for s in v.get("suspects", [])]
    rate = next((r for r in v["rates"]["suspects"] if r["name"] == "keptIds"), None)
    return {
        "every": every,
        "verdict": v["verdict"],
        "found": v["verdict"] == "leak" and "keptIds" in names,
        "suspects": names,
        "bytes_per_request_measured": rate["bytes_per_request"] if rate else None,
        "objects_per_round": (v["suspects"][names.index("keptIds")]["objects_per_step"] if "keptIds" in names else None),
        "noise_objects_per_step": v["diagnosis"]["noise_objects_per_step"],
        "seconds": round(took, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node", default="node")
    ap.add_argument("--leakhound")
    ap.add_argument("--trials", type=int, default=1, help="runs per step (all must detect)")
    ap.add_argument("--at", type=float, default=1000.0, help="traffic for the MB/h figure, requests per second")
    ap.add_argument("--ladder", default=",".join(map(str, LADDER)), help="EVERY values, comma-separated")
    ap.add_argument("--timeout", type=float, default=300.0)
    a = ap.parse_args()
    leakhound = find_leakhound(a.leakhound)
    ladder = [int(x) for x in a.ladder.split(",")]
    rows = []
    control = [one_run(leakhound, a.node, 0, a.timeout) for _ in range(a.trials)]
    print(f"control (nothing kept): {', '.join(r['verdict'] for r in control)}")
    for every in ladder:
        trials = [one_run(leakhound, a.node, every, a.timeout) for _ in range(a.trials)]
        found = all(r["found"] for r in trials)
        nominal = ENTRY_BYTES / every
        rows.append({"every": every, "nominal_bytes_per_request": nominal, "detected": found, "trials": trials})
        measured = [r["bytes_per_request_measured"] for r in trials if r["bytes_per_request_measured"] is not None]
        m = f"{sum(measured) / len(measured):.2f}" if measured else "-"
        print(f"every {every:>3}: {nominal:6.2f} B/request (measured {m}): {'detected' if found else 'missed'} "
              f"[{', '.join(r['verdict'] for r in trials)}; {', '.join(str(r['seconds']) + ' s' for r in trials)}]")
    smallest = None
    for r in rows:
        if not r["detected"]:
            break
        smallest = r
    result = {"at_requests_per_s": a.at, "control": control, "ladder": rows, "trials": a.trials}
    if smallest:
        b = smallest["nominal_bytes_per_request"]
        mbh = b * a.at * 3600 / 1e6
        result["smallest_detected_bytes_per_request"] = b
        result["smallest_detected_mb_per_hour"] = mbh
        print(f"smallest leak detected with the defaults: {b:.2f} B per request = {mbh:.1f} MB/h at {a.at:.0f} req/s")
    else:
        print("no step of the ladder was detected")
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    (out / "smallest_leak.json").write_text(json.dumps(result, indent=2))
    if any(r["verdict"] == "leak" for r in control):
        sys.exit("smallest_leak: the control came out leak")


if __name__ == "__main__":
    main()
