#!/usr/bin/env python3
"""leakhound load vs autocannon vs wrk, in the same run, on the same servers.

Starts a trivial Node http server (hello.js) and a trivial Rust server
(crates/loadgen/examples/hello_server.rs, hyper), and for each server and
connection count runs every tool for the same duration, REPS times in a
rotating order, and takes the median requests/s of each. Also the CPU time
each tool used (getrusage of the finished child), as microseconds of load
driver CPU per response: on a 2-core machine the driver and the server share
the CPUs, so that is what decides how far a driver can push the server.

    python3 bench/load/run.py [--connections 50,100] [--duration 10] [--reps 5]
                              [--servers node,rust] [--variants]

--variants also runs leakhound's alternatives (1 thread, hyper's client,
tokio's work-stealing runtime) to show why the defaults are what they are.
Results: a table on stdout, JSON in bench/load/out/.
"""

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "out")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    log("building leakhound and the Rust hello server (release)...")
    subprocess.run(
        ["cargo", "build", "--release", "-p", "leakhound", "--bin", "leakhound", "-p", "loadgen", "--example", "hello_server"],
        cwd=ROOT,
        check=True,
    )
    return os.path.join(target, "release", "leakhound"), os.path.join(target, "release", "examples", "hello_server")


def ensure_peers():
    if not shutil.which("wrk"):
        log("installing Debian's wrk...")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    autocannon = os.path.join(HERE, "node_modules", ".bin", "autocannon")
    if not os.path.exists(autocannon):
        log("installing autocannon (bench/load/package.json)...")
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=HERE, check=True, stdout=subprocess.DEVNULL)
    return autocannon


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception as e:  # noqa: BLE001 - only for the report
        return f"unknown ({e})"


class Server:
    def __init__(self, name, argv):
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on (\d+)", line)
        if not m:
            self.stop()
            raise SystemExit(f"{name} server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{m.group(1)}/"

    def cpu_s(self):
        """CPU seconds (user + system) the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def timed(argv, timeout):
    """Run a tool; (stdout, CPU seconds it used, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({out.returncode}): {out.stderr.strip()[:500]}")
    return out.stdout, cpu, wall


def run_leakhound(lh, url, conns, dur, extra=()):
    out, cpu, wall = timed([lh, "load", url, "-c", str(conns), "-d", f"{dur}s", "--json", *extra], dur + 60)
    d = json.loads(out)
    return {"rps": d["requests_per_s"], "responses": d["ok"] + d["non_2xx"], "errors": d["errors"], "cpu_s": cpu,
            "p99_ms": d["latency_ms"]["p99"]}


def run_autocannon(ac, url, conns, dur):
    out, cpu, wall = timed([ac, "-c", str(conns), "-d", str(dur), "--json", url], dur + 60)
    d = json.loads(out)
    total = d["requests"]["total"]
    # autocannon's `duration` is the wall time of its run in seconds.
    return {"rps": total / d["duration"], "responses": total, "errors": d["errors"] + d["timeouts"], "cpu_s": cpu,
            "p99_ms": d["latency"]["p99"]}


def run_wrk(url, conns, dur, threads):
    out, cpu, wall = timed(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{dur}s", "--latency", url], dur + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(int(x) for x in errs.groups()) if errs else 0) + (int(non2xx.group(1)) if non2xx else 0)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {"rps": rps, "responses": total, "errors": errors, "cpu_s": cpu,
            "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", default="50,100")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--servers", default="node,rust")
    ap.add_argument("--variants", action="store_true")
    args = ap.parse_args()

    lh, hello_rs = build()
    autocannon = ensure_peers()
    threads = os.cpu_count() or 1
    node = shutil.which("node")
    env = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpus": threads,
        "load_average_at_start": os.getloadavg(),
        "node": version([node, "--version"]),
        "wrk": version(["wrk", "--version"]),
        "autocannon": version([autocannon, "--version"]),
        "leakhound": version([lh, "--version"]),
        "duration_s": args.duration,
        "reps": args.reps,
        "wrk_threads": threads,
        "leakhound_threads": threads,
    }
    log(json.dumps(env))

    tools = {
        "leakhound": lambda url, c: run_leakhound(lh, url, c, args.duration),
        "autocannon": lambda url, c: run_autocannon(autocannon, url, c, args.duration),
        "wrk": lambda url, c: run_wrk(url, c, args.duration, threads),
    }
    if args.variants:
        tools["leakhound --threads 1"] = lambda url, c: run_leakhound(lh, url, c, args.duration, ["--threads", "1"])
        tools["leakhound --engine hyper"] = lambda url, c: run_leakhound(lh, url, c, args.duration, ["--engine", "hyper"])
        tools["leakhound --runtime work-stealing"] = lambda url, c: run_leakhound(
            lh, url, c, args.duration, ["--runtime", "work-stealing"])

    servers = {
        "node": [node, os.path.join(HERE, "hello.js")],
        "rust": [hello_rs],
    }
    results = []
    for sname in args.servers.split(","):
        server = Server(sname, servers[sname])
        try:
            # Warm the server up (V8's JIT, the allocator) before measuring.
            run_leakhound(lh, server.url, 50, 2)
            for conns in [int(c) for c in args.connections.split(",")]:
                samples = {t: [] for t in tools}
                names = list(tools)
                for rep in range(args.reps):
                    # Rotate the order, so that no tool always runs first or last.
                    order = names[rep % len(names):] + names[:rep % len(names)]
                    for t in order:
                        server_cpu = server.cpu_s()
                        r = tools[t](server.url, conns)
                        # The server's CPU use over the run, in cores: about 1.0
                        # means a single-threaded Node server is saturated.
                        r["server_cores"] = (server.cpu_s() - server_cpu) / args.duration
                        r["cpu_us_per_response"] = r["cpu_s"] / max(r["responses"], 1) * 1e6
                        samples[t].append(r)
                        log(f"{sname} c={conns} rep {rep + 1} {t}: {r['rps']:.0f} req/s, "
                            f"{r['cpu_us_per_response']:.1f} us CPU/response, server {r['server_cores']:.2f} cores, "
                            f"errors {r['errors']}")
                row = {"server": sname, "connections": conns, "tools": {}}
                for t, rs in samples.items():
                    row["tools"][t] = {
                        "median_rps": statistics.median(r["rps"] for r in rs),
                        "median_cpu_us_per_response": statistics.median(r["cpu_us_per_response"] for r in rs),
                        "median_p99_ms": statistics.median(r["p99_ms"] for r in rs if r["p99_ms"] is not None),
                        "median_server_cores": statistics.median(r["server_cores"] for r in rs),
                        "runs": rs,
                    }
                lhr = row["tools"]["leakhound"]["median_rps"]
                row["leakhound_vs_autocannon"] = lhr / row["tools"]["autocannon"]["median_rps"]
                row["leakhound_vs_wrk"] = lhr / row["tools"]["wrk"]["median_rps"]
                results.append(row)
        finally:
            server.stop()

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"load-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.json")
    with open(path + ".part", "w") as f:
        json.dump({"env": env, "results": results}, f, indent=2)
    os.replace(path + ".part", path)

    print(f"\nmedian of {args.reps} runs of {args.duration} s each; {threads} CPUs; "
          f"load average at start {env['load_average_at_start'][0]:.2f}")
    print("| server | connections | tool | req/s | tool CPU us/response | server CPU (cores) | p99 ms |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for row in results:
        for t, s in row["tools"].items():
            print(f"| {row['server']} | {row['connections']} | {t} | {s['median_rps']:.0f} | "
                  f"{s['median_cpu_us_per_response']:.1f} | {s['median_server_cores']:.2f} | {s['median_p99_ms']:.2f} |")
    print()
    print("| server | connections | leakhound / autocannon | leakhound / wrk |")
    print("|---|---:|---:|---:|")
    for row in results:
        print(f"| {row['server']} | {row['connections']} | {row['leakhound_vs_autocannon']:.2f}x | "
              f"{row['leakhound_vs_wrk'] * 100:.0f}% |")
    print(f"\nresults: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
