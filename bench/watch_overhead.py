#!/usr/bin/env python3
"""What `leakhound watch` costs the process it watches.

One long-running target (fixtures/live/sawtooth.js: a steady, timer-driven
workload that makes ~20 minor and ~1 full GC per second under
--max-old-space-size=128 --max-semi-space-size=1, the worst case for the GC
observer) is measured in alternating windows: "off" (nobody watching) and
"on" (`leakhound watch --pid` polling it), for each --interval asked. The
target's CPU time (utime + stime from /proc/PID/stat) over each window gives
its CPU use in % of one core; the cost of watching is on minus off.
Alternating windows in the same process cancel slow drift of the machine;
the spread of the off windows shows the noise.

On a shared machine that noise (±1-2% of a core) is larger than the cost
at 1 s, so the cost is also derived from two precise parts: the cost of one
poll, from a 10 ms interval (100 polls/s, which makes it measurable), and
the cost of the GC observer per GC, from bench/gc-observer-cost.js
(in-process, alternating phases), times the target's GC rate:
estimate at interval I = poll cost / I + observer cost per GC x GCs/s.

The target's inspector is opened once (SIGUSR1, by a first short watch)
before any window, so every window has it open; what is measured is the
session, the probe and the polls.

    python3 bench/watch_overhead.py                       # 1s and 10ms, 8 windows of 10 s each
    python3 bench/watch_overhead.py --intervals 1s --windows 10 --window-s 30
    python3 bench/watch_overhead.py --no-build --node .cache/node/24/bin/node
    python3 bench/watch_overhead.py --single-core        # target and watcher share CPU 0

The measured cost is given with its 95% confidence interval: windows are
paired (each "on" window with the "off" window just before it) and the
interval is Student's t over the pair differences. A claim such as "under
1%" holds only if the whole interval is under it. The machine must be quiet
(see benchlib.py), or --allow-busy marks the figures busy.

Outputs a markdown table on stdout and bench/out/watch-overhead.json.
Python 3.11, standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14, stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leakhound_bin(no_build: bool) -> Path:
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "leakhound"], cwd=REPO, check=True)
    return target_dir / "release" / "leakhound"


def measure(pid: int, seconds: float) -> float:
    """CPU use of `pid` over the next `seconds`, in % of one core."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    return 100.0 * (c1 - c0) / (t1 - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intervals", default="1s,10ms", help="comma-separated --interval values (default 1s,10ms; 10ms gives the per-poll cost)")
    ap.add_argument("--windows", type=int, default=8, help="windows per state and interval (default 8)")
    ap.add_argument("--window-s", type=float, default=10.0, help="seconds per window (default 10)")
    ap.add_argument("--settle-s", type=float, default=2.0, help="pause before each window (default 2)")
    ap.add_argument("--node", default=str(REPO / ".cache/node/20/bin/node"), help="node binary (default Node 20 from .cache)")
    ap.add_argument("--fixture", default=str(REPO / "fixtures/live/sawtooth.js"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--single-core", action="store_true", help="pin the target and the watcher to CPU 0 (taskset)")
    ap.add_argument("--allow-busy", action="store_true", help="measure even on a busy machine (figures are marked busy)")
    args = ap.parse_args()
    state = bl.require_quiet(args.allow_busy, "cost measurement")
    pin = (lambda cmd: bl.single_core(cmd)) if args.single_core else (lambda cmd: cmd)

    lh = leakhound_bin(args.no_build)
    micro = subprocess.run([args.node, "--max-semi-space-size=1", str(BENCH / "gc-observer-cost.js"), "6"],
                           check=True, capture_output=True, text=True)
    observer = json.loads(micro.stdout)
    port = free_port()
    target = subprocess.Popen(
        pin([args.node, f"--inspect-port={port}", "--max-old-space-size=128", "--max-semi-space-size=1", args.fixture, "100000"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict = {"node": args.node, "fixture": args.fixture, "window_s": args.window_s, "single_core": args.single_core,
                     "state_before": state, "busy": state["busy"], "intervals": {}}
    try:
        time.sleep(3)
        # Open the inspector once (SIGUSR1), so every window has it open.
        subprocess.run([str(lh), "watch", "--pid", str(target.pid), "--port", str(port), "--duration", "1s", "-q"],
                       check=True, stdout=subprocess.DEVNULL)
        for interval in args.intervals.split(","):
            off: list[float] = []
            on: list[float] = []
            watcher_cpu: list[float] = []
            polls: list[float] = []
            gc_rates: list[float] = []
            for w in range(2 * args.windows):
                watching = w % 2 == 1
                watcher = None
                if watching:
                    watcher = subprocess.Popen(
                        pin([str(lh), "watch", "--pid", str(target.pid), "--port", str(port), "--interval", interval, "--json"]),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                time.sleep(args.settle_s)
                if watching:
                    w0 = cpu_seconds(watcher.pid)
                    t0 = time.monotonic()
                pct = measure(target.pid, args.window_s)
                if watching:
                    watcher_cpu.append(100.0 * (cpu_seconds(watcher.pid) - w0) / (time.monotonic() - t0))
                    watcher.send_signal(signal.SIGINT)
                    out, err = watcher.communicate(timeout=60)
                    # Ctrl-C ends a watch with its report and exit 130 (the Unix convention).
                    if watcher.returncode not in (0, 130):
                        print(err.decode(), file=sys.stderr)
                        raise SystemExit(f"leakhound watch failed ({watcher.returncode})")
                    doc = json.loads(out)
                    polls.append(len(doc["samples"]) / max(doc["elapsed_s"], 1e-9))
                    g = doc["gcs"]
                    gc_rates.append((g["minor"] + g["major"] + g["other"]) / max(doc["elapsed_s"], 1e-9))
                    on.append(pct)
                else:
                    off.append(pct)
                print(f"interval {interval:>6} window {w + 1:2}/{2 * args.windows} {'on ' if watching else 'off'}: target CPU {pct:6.2f}%",
                      file=sys.stderr)
            mean_off, mean_on = statistics.mean(off), statistics.mean(on)
            # Each on window minus the off window just before it.
            diffs = [b - a for a, b in zip(off, on)]
            cost, lo, hi = bl.mean_ci95(diffs)
            results["intervals"][interval] = {
                "off_pct": off,
                "on_pct": on,
                "mean_off_pct": mean_off,
                "mean_on_pct": mean_on,
                "stdev_off_pct": statistics.stdev(off) if len(off) > 1 else 0.0,
                "stdev_on_pct": statistics.stdev(on) if len(on) > 1 else 0.0,
                "cost_pct_of_a_core": mean_on - mean_off,
                "cost_relative_pct": 100.0 * (mean_on - mean_off) / mean_off,
                "paired_cost_pct_of_a_core": cost,
                "paired_cost_ci95_pct_of_a_core": [lo, hi],
                "paired_cost_relative_ci95_pct": [100.0 * lo / mean_off, 100.0 * hi / mean_off],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "polls_per_s": statistics.mean(polls),
                "gcs_per_s": statistics.mean(gc_rates),
                "leakhound_cpu_pct": statistics.mean(watcher_cpu),
            }
    finally:
        target.kill()
        target.wait()

    # The two precise parts: the cost of a poll (from the fastest interval)
    # and of the observer per GC.
    fastest = max(results["intervals"].values(), key=lambda r: r["polls_per_s"])
    observer_pct = lambda gcs_per_s: gcs_per_s * observer["us_per_gc_median"] / 1e6 * 100.0
    poll_ms = 10.0 * (fastest["cost_pct_of_a_core"] - observer_pct(fastest["gcs_per_s"])) / fastest["polls_per_s"]
    results["observer_us_per_gc"] = observer
    results["poll_cost_ms"] = poll_ms
    for r in results["intervals"].values():
        r["estimate_pct_of_a_core"] = poll_ms * r["polls_per_s"] / 10.0 + observer_pct(r["gcs_per_s"])
        r["estimate_relative_pct"] = 100.0 * r["estimate_pct_of_a_core"] / r["mean_off_pct"]

    OUT.mkdir(exist_ok=True)
    (OUT / "watch-overhead.json").write_text(json.dumps(results, indent=2))
    busy_note = " (BUSY MACHINE: not a claim)" if state["busy"] else ""
    print(f"target: {Path(args.fixture).name} on {args.node}, {args.windows} off and {args.windows} on windows of {args.window_s:.0f} s per interval"
          f"{', target and watcher on CPU 0' if args.single_core else ''}; load average before {' '.join(map(str, state['loadavg']))}{busy_note}\n")
    print(f"GC observer: {observer['us_per_gc_median']:.1f} us per GC (median of {len(observer['us_per_gc'])} rounds, {observer['node']}); "
          f"one poll: {poll_ms:.3f} ms of the target's CPU\n")
    print("| --interval | polls/s | GCs/s | target CPU off (% core) | target CPU on | measured cost (% core), 95% CI | "
          "same, % of target, 95% CI | estimate (% core) | estimate (% of target) | leakhound's own CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for interval, r in results["intervals"].items():
        print(f"| {interval} | {r['polls_per_s']:.1f} | {r['gcs_per_s']:.0f} | {r['mean_off_pct']:.2f} ± {r['stdev_off_pct']:.2f} | "
              f"{r['mean_on_pct']:.2f} ± {r['stdev_on_pct']:.2f} | {r['paired_cost_pct_of_a_core']:+.2f} "
              f"[{r['paired_cost_ci95_pct_of_a_core'][0]:+.2f}, {r['paired_cost_ci95_pct_of_a_core'][1]:+.2f}] | "
              f"[{r['paired_cost_relative_ci95_pct'][0]:+.2f}%, {r['paired_cost_relative_ci95_pct'][1]:+.2f}%] | "
              f"{r['estimate_pct_of_a_core']:.3f} | {r['estimate_relative_pct']:.2f}% | {r['leakhound_cpu_pct']:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
