#!/usr/bin/env python3
"""What one heap snapshot costs the process it is taken of (issue 16):
wall time and the target's peak RSS against its heap, on four heap shapes
and three sizes.

    python3 bench/snapshot_cost.py [--shapes maps,maps-split,strings,closures] [--sizes 50,300,1000]
        [--node .cache/node/24/bin/node] [--bin target/release/leakhound] [--runs 1] [--allow-busy]

Shapes (built by bench/apps/heap-shape.js until the heap reaches the size):
- maps: many small objects in one Map (a catalog: string key -> {id, name,
  price}), as in bench/hunt_scale.py;
- maps-split: the same records in Maps of 100,000 entries each;
- strings: large strings and Buffers (16 KiB each, half and half; Buffers
  count by their backing store, which lives outside the JS heap);
- closures: deep closures (chains of 500 functions, each holding its
  context, a small record and the previous function).

Each target is a fresh `node --inspect-port=P` process; leakhound takes the
snapshot as a user would, `leakhound snapshot --pid PID --port P --gc`,
which first checks the snapshot's estimated memory against the machine's
headroom. A size whose estimate does not fit is not forced unless the
shape's measured ratio at the size below predicts that it fits in 80% of
MemAvailable; otherwise the row says it was refused and why. The target's
peak RSS is its VmHWM, reset (clear_refs 5) just before the snapshot.

Loopback only; every target is killed at the end of its row.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "bench", "apps", "heap-shape.js")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def one(args, shape, size_mb, force, out_dir):
    port = free_port()
    node = subprocess.Popen(
        [args.node, f"--inspect-port=127.0.0.1:{port}", "--max-old-space-size=8192", APP, shape, str(size_mb)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        line = node.stdout.readline()
        m = re.match(r"ready (\d+) (\d+) (\d+)", line or "")
        if not m:
            return {"shape": shape, "size_mb": size_mb, "error": f"the app did not start: {line!r}"}
        heap_used, array_buffers, build_s = int(m.group(1)), int(m.group(2)), float(m.group(3)) / 1000
        rss_before = status(node.pid, "VmRSS")
        with open(f"/proc/{node.pid}/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        out = os.path.join(out_dir, f"{shape}-{size_mb}.heapsnapshot")
        cmd = [args.bin, "snapshot", "--pid", str(node.pid), "--port", str(port), "--gc", "-o", out, "--json"]
        if force:
            cmd.append("--force")
        t = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        wall = time.time() - t
        peak = status(node.pid, "VmHWM")
        row = {"shape": shape, "size_mb": size_mb, "heap_used": heap_used, "array_buffers": array_buffers,
               "build_s": build_s, "rss_before": rss_before, "forced": force}
        if p.returncode != 0:
            row["refused"] = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
            return row
        v = json.loads(p.stdout)
        with open(out, "rb") as f:
            head = f.read(4096).decode(errors="replace")
        n = re.search(r'"node_count":\s*(\d+)', head)
        row.update({"wall_s": wall, "snapshot_s": v["seconds"], "peak_rss": peak, "file_bytes": os.path.getsize(out),
                    "nodes": int(n.group(1)) if n else None})
        os.unlink(out)
        return row
    finally:
        node.send_signal(signal.SIGKILL)
        node.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="maps,maps-split,strings,closures")
    ap.add_argument("--sizes", default="50,300,1000", help="heap sizes in MB (10^6 bytes)")
    ap.add_argument("--node", default=os.path.join(ROOT, ".cache/node/24/bin/node"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/leakhound"))
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--allow-busy", action="store_true")
    ap.add_argument("--json-out", default=os.path.join(ROOT, "bench", "out", "snapshot_cost.json"))
    args = ap.parse_args()
    state = benchlib.require_quiet(args.allow_busy, "snapshot cost benchmark", settle_s=120)
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="leakhound-bench-") as d:
        os.chmod(d, 0o700)
        for shape in args.shapes.split(","):
            ratio = None
            for size in sizes:
                # Forced only where this shape's own ratio predicts a fit.
                force = ratio is not None and ratio * size * 1e6 < 0.8 * mem_available()
                benchlib.log(f"{shape} {size} MB{' (forced: predicted to fit)' if force else ''}")
                r = one(args, shape, size, force, d)
                rows.append(r)
                if r.get("peak_rss") and r.get("heap_used"):
                    ratio = r["peak_rss"] / (r["heap_used"] + r["array_buffers"])
    busy = " (BUSY MACHINE: not a claim)" if state.get("busy") else ""
    print(f"node {args.node}; load average before: {state['loadavg']}{busy}")
    print("| shape | heap used (+ Buffers) | snapshot time (whole command) | target peak RSS | peak RSS / (heap + Buffers) | file | nodes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        heap = f"{r.get('heap_used', 0) / 1e6:,.0f} MB" + (f" (+{r['array_buffers'] / 1e6:,.0f} MB)" if r.get("array_buffers", 0) > 1e6 else "")
        if "error" in r:
            print(f"| {r['shape']} | {r['size_mb']} MB target | error: {r['error']} | | | | |")
        elif "refused" in r:
            print(f"| {r['shape']} | {heap} | refused: {r['refused']} | | | | |")
        else:
            total = r["heap_used"] + r["array_buffers"]
            print(f"| {r['shape']} | {heap} | {r['snapshot_s']:.1f} s ({r['wall_s']:.1f} s) | {r['peak_rss'] / 1e6:,.0f} MB | "
                  f"{r['peak_rss'] / total:.1f}x{' (forced)' if r['forced'] else ''} | {r['file_bytes'] / 1e6:,.0f} MB | "
                  f"{r['nodes'] or 0:,} |")
    os.makedirs(os.path.dirname(args.json_out), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump({"machine": state, "node": args.node, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
