#!/usr/bin/env python3
"""Every fixture, control and the demo through `leakhound run` in both
capture modes (`--mode snapshots`, `--mode tracking`, optionally with
`--track-allocations`): the verdict, pattern, accumulator, package, library
entry and handle side by side, and whether they agree.

    python3 bench/compare_modes.py [--node PATH] [--jobs 2] [--bin target/debug/leakhound]
        [--extra=--track-allocations] [APP ...]

Exit 1 when a row differs. Loopback only; each run is bounded by a timeout.
"""
import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APPS = [
    # crates/leakhound/tests/run.rs
    "fixtures/leaks/global-array.js", "fixtures/leaks/express-sessions.js", "fixtures/leaks/listeners.js",
    "fixtures/leaks/interval.js", "fixtures/leaks/closure.js", "fixtures/leaks/object-keys.js",
    "fixtures/leaks/async-context.js", "fixtures/leaks/sockets.js", "fixtures/leaks/memo.js",
    "fixtures/leaks/memo-wrapper.js",
    "fixtures/leaks/subscribers.js",
    "fixtures/controls/lru-cache.js", "fixtures/controls/warm-cache.js", "fixtures/controls/garbage.js",
    "fixtures/controls/listeners-removed.js", "fixtures/controls/subscribers-removed.js",
    # crates/leakhound/tests/sensitivity.rs
    "fixtures/leaks/buffers.js", "fixtures/leaks/slow-strings.js", "fixtures/leaks/ttl-only.js",
    "fixtures/controls/buffers-dropped.js", "fixtures/controls/lru-filling.js",
    # crates/leakhound/tests/deps.rs
    "fixtures/deps/ajv-per-request.js", "fixtures/deps/lru-cache-ttl-no-max.js", "fixtures/deps/node-cache-no-ttl.js",
    "fixtures/deps/memoizee-no-max.js", "fixtures/deps/rxjs-never-unsubscribed.js",
    "fixtures/deps/node-schedule-never-cancelled.js", "fixtures/deps/handlebars-partial-per-request.js",
    "fixtures/deps/express-session-memorystore.js", "fixtures/deps/prom-client-unbounded-labels.js",
    "fixtures/deps/controls/ajv-compiled-once.js", "fixtures/deps/controls/lru-cache-bounded.js",
    "fixtures/deps/controls/node-cache-ttl.js", "fixtures/deps/controls/memoizee-max.js",
    "fixtures/deps/controls/rxjs-unsubscribed.js", "fixtures/deps/controls/node-schedule-cancelled.js",
    "fixtures/deps/controls/handlebars-partial-once.js", "fixtures/deps/controls/express-session-uninitialized.js",
    "fixtures/deps/controls/prom-client-bounded-labels.js",
    # scripts/demo.sh
    "examples/demo/leaky-app.js",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, node, app, mode_args):
    port = free_port()
    path = "/orders?id=1" if "demo" in app else "/item?id=1"
    cmd = [binary, "run", "--json", "--load", f"http://127.0.0.1:{port}{path}", *mode_args, "--", node, os.path.join(ROOT, app)]
    t = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=180, env={**os.environ, "PORT": str(port)}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}, 180.0
    took = time.time() - t
    try:
        v = json.loads(p.stdout)
    except ValueError:
        return {"error": f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip().splitlines()[-1:]}"}, took
    s = (v.get("suspects") or [{}])[0]
    row = {
        "verdict": v.get("verdict"),
        "pattern": s.get("pattern"),
        "accumulator": (s.get("accumulator") or {}).get("name"),
        "package": (s.get("package") or {}).get("name"),
        "library": (s.get("library") or {}).get("id"),
        "handle": s.get("handle"),
    }
    return row, took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", default=os.path.join(ROOT, ".cache/node/20/bin/node"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/debug/leakhound"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--extra", action="append", default=[], help="more flags for the tracking run")
    ap.add_argument("apps", nargs="*")
    a = ap.parse_args()
    apps = a.apps or APPS
    modes = [["--mode", "snapshots"], ["--mode", "tracking", *a.extra]]
    jobs = [(app, i) for app in apps for i in range(2)]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        futs = {ex.submit(run, a.bin, a.node, app, modes[i]): (app, i) for app, i in jobs}
        for f in concurrent.futures.as_completed(futs):
            results[futs[f]] = f.result()
    print("| app | snapshots | tracking | same | time s / t |")
    print("|---|---|---|---|---|")
    differ = 0
    for app in apps:
        (r0, t0), (r1, t1) = results[(app, 0)], results[(app, 1)]
        same = r0 == r1
        differ += not same
        fmt = lambda r: r.get("error") or " ".join(str(r[k]) for k in ("verdict", "pattern", "accumulator", "package", "library", "handle") if r[k])
        print(f"| {app} | {fmt(r0)} | {fmt(r1)} | {'yes' if same else 'NO'} | {t0:.1f} / {t1:.1f} |")
    print(f"\n{len(apps) - differ} of {len(apps)} agree")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
