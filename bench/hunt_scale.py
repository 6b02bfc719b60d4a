#!/usr/bin/env python3
"""The hunt at service scale (issue 16): an http server holding a catalog
of N entries in a Map (1.5M entries is about 280 MB of heap after GC) plus
a small leak (an audit array gaining one record per request), hunted by
`leakhound run` in each capture mode. Per mode: wall time, the verdict and
accumulator, the target's peak RSS (VmHWM of the node process, polled) and
its heap after GC.

    python3 bench/hunt_scale.py [--entries 1500000] [--modes snapshots,tracking,tracking+alloc]
        [--node .cache/node/24/bin/node] [--bin target/release/leakhound] [-n 2000]

Loopback only, each run bounded by --timeout. The numbers depend on the
machine; on a shared one they are indicative only.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APP = r"""
const http = require('http');
const N = +process.env.CATALOG_ENTRIES;
const catalog = new Map();
for (let i = 0; i < N; i++) catalog.set('sku-' + i, { id: i, name: 'item ' + i, price: i % 1000 });
const audit = [];  // the leak: one record per request, never trimmed
http.createServer((req, res) => {
  const id = (Math.random() * N) | 0;
  audit.push({ at: Date.now(), url: req.url, sku: 'sku-' + id });
  res.end(JSON.stringify(catalog.get('sku-' + id) || null));
}).listen(+process.env.PORT, '127.0.0.1', () => console.log('listening'));
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return out


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def hunt(args, app, mode):
    port = free_port()
    flags = {"snapshots": ["--mode", "snapshots"], "tracking": ["--mode", "tracking"],
             "tracking+alloc": ["--mode", "tracking", "--track-allocations"]}[mode]
    cmd = [args.bin, "run", "--json", "-n", str(args.requests), "--warmup", str(args.requests),
           "--ready-timeout", "300s", "--load", f"http://127.0.0.1:{port}/item", *flags, "--", args.node, app]
    env = {**os.environ, "PORT": str(port), "CATALOG_ENTRIES": str(args.entries)}
    t = time.time()
    # Files, not pipes: the JSON report is larger than a pipe's buffer and
    # nobody reads it while the run goes on.
    out_f, err_f = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env, stdin=subprocess.DEVNULL)
    peak = 0
    cpu = 0.0
    while p.poll() is None:
        for c in children(p.pid):
            peak = max(peak, vm_hwm(c) or 0)
            cpu = max(cpu, cpu_seconds(c) or 0.0)
        if time.time() - t > args.timeout:
            p.kill()
            break
        time.sleep(0.1)
    p.wait()
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    wall = time.time() - t
    try:
        v = json.loads(out)
    except ValueError:
        return {"mode": mode, "error": err.decode(errors="replace").strip().splitlines()[-1:] or f"exit {p.returncode}", "wall_s": wall}
    s = (v.get("suspects") or [{}])[0]
    floors = [f["heap_used"] for f in v.get("floors", [])]
    return {
        "mode": mode, "wall_s": wall, "verdict": v["verdict"], "accumulator": (s.get("accumulator") or {}).get("name"),
        "peak_rss": peak, "heap_after_gc": max(floors) if floors else None,
        # The rounds after the warm-up: tracking is on during them.
        "req_per_s": rounds_rate(v),
        "cpu_s": cpu,
        "requests": (v.get("load") or {}).get("requests"),
        "snapshot_bytes": sum(x["bytes"] for x in v.get("snapshots", [])),
    }


def rounds_rate(v):
    rounds = ((v.get("load") or {}).get("rounds") or [])[1:]
    d = sum(r["duration_s"] for r in rounds)
    return sum(r["requests"] for r in rounds) / d if d else None


def mb(b):
    return "-" if b is None else f"{b / 1e6:,.0f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_500_000)
    ap.add_argument("--modes", default="snapshots,tracking,tracking+alloc")
    ap.add_argument("--node", default=os.path.join(ROOT, ".cache/node/24/bin/node"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/leakhound"))
    ap.add_argument("-n", "--requests", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        app = os.path.join(d, "service.js")
        with open(app, "w") as f:
            f.write(APP)
        rows = [hunt(args, app, m) for m in args.modes.split(",")]
    print(f"catalog entries: {args.entries:,}; {args.requests} requests per round; node {args.node}")
    print("| mode | wall time | verdict | accumulator | target peak RSS | heap after GC | req/s in the rounds | target CPU | snapshot bytes |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['mode']} | {r['wall_s']:.1f} s | error: {r['error']} | | | | | | |")
            continue
        print(f"| {r['mode']} | {r['wall_s']:.1f} s | {r['verdict']} | {r['accumulator']} | {mb(r['peak_rss'])} | "
              f"{mb(r['heap_after_gc'])} | {r['req_per_s'] or 0:,.0f} | {r['cpu_s']:.1f} s | {mb(r['snapshot_bytes'])} |")


if __name__ == "__main__":
    sys.exit(main())
