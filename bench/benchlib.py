"""What every bench script here shares: one way to run and measure a
process, one rule for a busy machine, and one way to pair runs.

- A run is measured by os.wait4: wall time around spawn + wait, CPU time
  (user + sys of the child and every descendant it reaped), peak RSS
  (ru_maxrss, KiB), the load average before it and the CPU other processes
  used during it (/proc/stat minus the child's own CPU time).
- Tools run in turns (round 1: A B C, round 2: B C A, ...), the same number
  of runs each, so slow drift of the machine hits every tool alike; a ratio
  is taken within each round (pair by pair) and the median of those is
  reported with its range, never a ratio of two medians from different
  moments.
- Before measuring, the machine must be quiet: a 1-minute load average
  below a quarter of the cores and under 15 % of the CPUs busy over 2 s.
  Otherwise the script stops, unless --allow-busy is given, in which case
  every figure it prints is marked as taken on a busy machine. Each run
  where other processes used more than 10 % of the CPUs is flagged too.

Python 3.11, standard library only.
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BUSY_LOAD_PER_CORE = 0.25
BUSY_CPU_FRACTION = 0.15
RUN_OTHER_LOAD_FLAG = 0.10


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def cpu_sample() -> tuple[int, int] | None:
    """(total, idle) jiffies over all CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    v = v[:8]  # guest time is already inside user/nice
    return sum(v), v[3] + (v[4] if len(v) > 4 else 0)


def cpu_busy_fraction(interval: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over `interval` seconds."""
    a = cpu_sample()
    time.sleep(interval)
    b = cpu_sample()
    if a is None or b is None:
        return None
    return 0.0 if b[0] == a[0] else 1.0 - (b[1] - a[1]) / (b[0] - a[0])


def machine_state() -> dict:
    """Load averages and how busy the CPUs are right now."""
    la = os.getloadavg()
    busy = cpu_busy_fraction(2.0)
    cores = os.cpu_count() or 1
    reasons = []
    if la[0] > BUSY_LOAD_PER_CORE * cores:
        reasons.append(f"1-min load average {la[0]:.2f} on {cores} cores")
    if busy is not None and busy > BUSY_CPU_FRACTION:
        reasons.append(f"{busy:.0%} of the CPUs busy")
    return {"loadavg": [round(x, 2) for x in la], "cpu_busy": None if busy is None else round(busy, 3),
            "cores": cores, "busy": bool(reasons), "why": "; ".join(reasons)}


def require_quiet(allow_busy: bool, what: str = "benchmark", settle_s: float = 0) -> dict:
    """Refuses to measure on a busy machine unless allowed; returns the state.
    With settle_s, first waits up to that long for the machine to become quiet
    (the load average of our own snapshot generation or build decays with a
    one-minute time constant)."""
    st = machine_state()
    deadline = time.monotonic() + settle_s
    if st["busy"] and settle_s > 0 and not allow_busy:
        log(f"waiting up to {settle_s:.0f} s for the machine to settle ({st['why']})")
        while st["busy"] and time.monotonic() < deadline:
            time.sleep(5)
            st = machine_state()
    if st["busy"]:
        if not allow_busy:
            print(f"bench: the machine is busy ({st['why']}); a {what} taken now would not hold. "
                  "Wait for a quiet machine, or pass --allow-busy to run anyway (every figure is then marked busy).",
                  file=sys.stderr)
            sys.exit(2)
        log(f"warning: machine busy ({st['why']}); running because of --allow-busy, figures are marked busy")
    return st


def wait_idle(max_wait: float, threshold: float = BUSY_CPU_FRACTION) -> None:
    """Waits (at most max_wait s) until the CPUs are under `threshold` busy for 3 s in a row."""
    if max_wait <= 0:
        return
    deadline = time.monotonic() + max_wait
    quiet = 0
    while time.monotonic() < deadline:
        busy = cpu_busy_fraction()
        if busy is None:
            return
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= 3:
            return
    log("machine still busy after --wait-idle; running anyway")


def warm_cache(path: Path) -> None:
    """`cat FILE > /dev/null` in a child, so this process's RSS stays small."""
    subprocess.run([shutil.which("cat") or "cat", str(path)], stdout=subprocess.DEVNULL, check=True)


def single_core(cmd: list[str], core: int = 0) -> list[str]:
    """The command pinned to one core with taskset (util-linux)."""
    ts = shutil.which("taskset")
    if ts is None:
        sys.exit("bench: taskset (util-linux) is needed for the single-core row")
    return [ts, "-c", str(core)] + cmd


def measure(cmd: list[str], timeout: float, log_prefix: Path, cwd: Path | None = None,
            env: dict | None = None) -> dict:
    """Runs cmd once; wall and CPU seconds, peak RSS (KiB), exit status, load."""
    log_prefix.parent.mkdir(parents=True, exist_ok=True)
    out_path = log_prefix.parent / (log_prefix.name + ".stdout")
    err_path = log_prefix.parent / (log_prefix.name + ".stderr")
    load_before = os.getloadavg()
    cpu0 = cpu_sample()
    timed_out = threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                except InterruptedError:
                    continue
        except KeyboardInterrupt:
            kill()  # the child is in its own session: Ctrl-C did not reach it
            os.waitpid(proc.pid, 0)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        cpu1 = cpu_sample()
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped
    cpu = ru.ru_utime + ru.ru_stime
    other = None
    if cpu0 and cpu1 and wall > 0:
        hz = os.sysconf("SC_CLK_TCK")
        busy = ((cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])) / hz
        other = max(0.0, busy - cpu) / (wall * (os.cpu_count() or 1))
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "user_s": round(ru.ru_utime, 3),
        "sys_s": round(ru.ru_stime, 3),
        "peak_rss_kib": ru.ru_maxrss,
        "exit_code": proc.returncode,
        "timed_out": timed_out.is_set(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "other_cpu_busy": None if other is None else round(other, 3),
        "busy_run": other is not None and other > RUN_OTHER_LOAD_FLAG,
        "stdout": str(out_path),
        "stderr": str(err_path),
    }


def spread(values: list[float]) -> dict | None:
    """Median, min and max (None for no values)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def paired_ratios(num_runs: list[dict], den_runs: list[dict], key: str) -> dict | None:
    """num/den within each round (run i of one with run i of the other), then
    the median and range of those ratios. Rounds where either failed are left out."""
    r = [a[key] / b[key] for a, b in zip(num_runs, den_runs)
         if a.get("ok") and b.get("ok") and b.get(key)]
    return spread(r)


def paired_ceilings(peer_runs: list[dict], lh_runs: list[dict], cores: int) -> dict | None:
    """Per round, the peer's wall time over leakhound's CPU time spread
    evenly on `cores`: the wall ratio leakhound would reach if it kept every
    core busy from start to end. A target above it cannot be met by better
    use of the cores alone, only by less work."""
    r = [a["wall_s"] / (b["cpu_s"] / cores) for a, b in zip(peer_runs, lh_runs)
         if a.get("ok") and b.get("ok") and b.get("cpu_s")]
    return spread(r)


def turns(tools: list[str], rounds: int) -> list[tuple[int, str]]:
    """(round, tool) in turns, the starting tool rotated each round so that no
    tool always runs first (after an idle gap) or last."""
    order = []
    for i in range(rounds):
        k = i % len(tools)
        for t in tools[k:] + tools[:k]:
            order.append((i, t))
    return order


# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= 30 else 1.96


def mean_ci95(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95 % confidence interval (Student's t)."""
    m = statistics.mean(values)
    if len(values) < 2:
        return m, math.nan, math.nan
    h = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - h, m + h


def fmt_spread(s: dict | None, spec: str = ".2f", suffix: str = "") -> str:
    """`1.23 (1.10-1.40)`, or `?`."""
    if s is None:
        return "?"
    if s["n"] == 1:
        return f"{format(s['median'], spec)}{suffix} (1 run)"
    return f"{format(s['median'], spec)}{suffix} ({format(s['min'], spec)}-{format(s['max'], spec)})"
