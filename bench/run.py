#!/usr/bin/env python3
"""Reproducible benchmark: leakhound vs v8-heap-parser vs memlab.

Every tool does the same job on the same file: parse a V8 heap snapshot,
build the dominator tree / retained sizes and print a summary.

    python3 bench/run.py                       # generate (if needed), build, run all
    python3 bench/run.py --repeat 5            # median of 5 runs for leakhound
    python3 bench/run.py --snapshot /tmp/x.heapsnapshot --skip memlab
    python3 bench/run.py --instances 500000    # a smaller generated snapshot

Peak RSS is ru_maxrss of the child as returned by os.wait4: the largest
resident set reached by the child or any descendant it reaped (per process,
not a sum over the tree). Wall time is measured around spawn + wait4. The
page cache is warmed (the file is read once) before every timed run, so all
tools see a warm cache.

Outputs: a markdown table on stdout, bench/out/results.json, and each run's
stdout/stderr under bench/out/logs/.

Python 3.11, standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
DEFAULT_SNAPSHOT = OUT / "large.heapsnapshot"
DEFAULT_INSTANCES = 2_000_000
# memlab's own launcher (node_modules/@memlab/cli/bin/memlab.js) starts node
# with `--expose-gc --max-old-space-size=4096`; that is enough for the ~1 GB
# default snapshot (~13M nodes). Raise it with --memlab-heap-mb for bigger ones.
MEMLAB_HEAP_MB = 4096
MEMLAB_JS = BENCH / "node_modules" / "@memlab" / "cli" / "bin" / "memlab.js"

# Targets from the issue.
TARGET_VS_V8HP = 7.0
TARGET_VS_MEMLAB = 30.0
TARGET_RSS_FRACTION = 1.0

ALL_TOOLS = ["leakhound", "leakhound-1t", "v8hp", "memlab"]
FAST_TOOLS = {"leakhound", "leakhound-1t"}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_checked(cmd: list[str], cwd: Path = REPO, env: dict | None = None) -> None:
    log("$ " + shlex.join(cmd))
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def capture(cmd: list[str], cwd: Path = REPO) -> str:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


# ---------------------------------------------------------------- snapshot

def ensure_snapshot(args) -> Path:
    if args.snapshot:
        p = Path(args.snapshot).resolve()
        if not p.is_file():
            sys.exit(f"snapshot not found: {p}")
        return p
    p = DEFAULT_SNAPSHOT
    meta = p.with_name(p.name + ".meta.json")
    want = args.instances
    if p.is_file() and p.stat().st_size > 0:
        have = None
        try:
            have = json.loads(meta.read_text()).get("instances")
        except (OSError, ValueError):
            pass
        if have is None or have == want:
            log(f"using existing {p} ({p.stat().st_size / 2**20:.0f} MiB"
                f"{'' if have is None else f', {have} instances'})")
            return p
        log(f"{p} was generated with {have} instances, want {want}: regenerating")
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    t0 = time.perf_counter()
    run_checked(["node", f"--max-old-space-size={args.gen_heap_mb}",
                 str(BENCH / "gen-large-snapshot.js"), str(tmp), str(want)])
    if not tmp.is_file() or tmp.stat().st_size == 0:
        sys.exit("snapshot generation produced no file")
    os.replace(tmp, p)
    meta.write_text(json.dumps({"instances": want}) + "\n")
    log(f"generated {p} ({p.stat().st_size / 2**20:.0f} MiB) in "
        f"{time.perf_counter() - t0:.0f}s")
    return p


def warm_cache(path: Path) -> None:
    """`cat FILE > /dev/null`, in a child so this process's RSS stays small
    (see rss_floor)."""
    cat = shutil.which("cat")
    if cat:
        subprocess.run([cat, str(path)], stdout=subprocess.DEVNULL, check=True)
        return
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(256 << 10)
        while f.readinto(buf):
            pass


def cpu_sample() -> tuple[int, int] | None:
    """(total, idle) jiffies over all CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # guest time is already included in user/nice
    v = v[:8]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v), idle


def cpu_busy_fraction(interval: float = 1.0) -> float | None:
    """Fraction of all CPUs busy over `interval` seconds."""
    a = cpu_sample()
    time.sleep(interval)
    b = cpu_sample()
    if a is None or b is None:
        return None
    return 0.0 if b[0] == a[0] else 1.0 - (b[1] - a[1]) / (b[0] - a[0])


def wait_idle(max_wait: float, threshold: float = 0.15) -> None:
    """Waits (at most max_wait s) until other processes use < threshold of the CPUs
    for 3 consecutive seconds."""
    if max_wait <= 0:
        return
    deadline = time.monotonic() + max_wait
    quiet = 0
    announced = False
    while time.monotonic() < deadline:
        busy = cpu_busy_fraction()
        if busy is None:
            return
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= 3:
            return
        if not announced and busy >= threshold:
            log(f"waiting for an idle machine (CPU {busy:.0%} busy)...")
            announced = True
    log("machine still busy; running anyway")


def rss_floor() -> int:
    """ru_maxrss is a high-water mark that also covers the moment between
    fork and exec, when the child still maps this Python process's memory
    (Linux records the pre-exec RSS at exec). So no tool can report less than
    this floor; above it the numbers are exact. Measured by running `true`."""
    r = measure([shutil.which("true") or "/bin/true"], 60, LOGS / "rss-floor")
    return r["peak_rss_kib"]


# ---------------------------------------------------------------- build

def target_dir() -> Path:
    env = os.environ.get("CARGO_TARGET_DIR")
    if env:
        return Path(env).resolve()
    try:
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            cwd=REPO, capture_output=True, text=True, check=True).stdout
        return Path(json.loads(out)["target_directory"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return REPO / "target"


def build(tools: list[str], no_build: bool) -> dict[str, str]:
    """Returns tool -> error message for tools that could not be built."""
    errors: dict[str, str] = {}
    if no_build:
        return errors
    if any(t.startswith("leakhound") for t in tools):
        try:
            run_checked(["cargo", "build", "--release", "-p", "leakhound"])
        except subprocess.CalledProcessError as e:
            for t in tools:
                if t.startswith("leakhound"):
                    errors[t] = f"build failed ({e.returncode})"
    if "v8hp" in tools:
        try:
            run_checked(["cargo", "build", "--release", "--example", "v8hp_summary",
                         "-p", "heapsnap"])
        except subprocess.CalledProcessError as e:
            errors["v8hp"] = f"build failed ({e.returncode})"
    if "memlab" in tools and not MEMLAB_JS.is_file():
        env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1")
        try:
            run_checked(["npm", "ci", "--no-audit", "--no-fund"], cwd=BENCH, env=env)
        except (OSError, subprocess.CalledProcessError) as e:
            errors["memlab"] = f"npm ci failed: {e}"
    return errors


def tool_commands(tools: list[str], snap: Path, tdir: Path, args) -> dict[str, list[str]]:
    rel = tdir / "release"
    s = str(snap)
    cmds = {
        "leakhound": [str(rel / "leakhound"), "summary", s, "--json"],
        "leakhound-1t": [str(rel / "leakhound"), "summary", s, "--json", "--threads", "1"],
        "v8hp": [str(rel / "examples" / "v8hp_summary"), s]
        + (["--reader"] if args.v8hp_reader else []),
        "memlab": ["node", "--expose-gc", f"--max-old-space-size={args.memlab_heap_mb}",
                   str(MEMLAB_JS), "analyze", args.memlab_plugin, "--snapshot", s,
                   "--work-dir", str(OUT / "memlab-work")],
    }
    return {t: cmds[t] for t in tools}


# ---------------------------------------------------------------- measure

def measure(cmd: list[str], timeout: float, log_prefix: Path) -> dict:
    """Runs cmd; returns wall seconds, peak RSS (KiB) and exit status."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path = log_prefix.parent / (log_prefix.name + ".stdout")
    err_path = log_prefix.parent / (log_prefix.name + ".stderr")
    load_before = os.getloadavg()[0]
    cpu0 = cpu_sample()
    timed_out = threading.Event()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err,
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
            # The child is in its own session, so Ctrl-C did not reach it.
            kill()
            os.waitpid(proc.pid, 0)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        cpu1 = cpu_sample()
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped
    rc = proc.returncode
    # CPU used by *other* processes during the run, as a fraction of all CPUs:
    # (busy jiffies on the machine - the child's CPU time) / (wall * cores).
    other = None
    if cpu0 and cpu1 and wall > 0:
        hz = os.sysconf("SC_CLK_TCK")
        busy = ((cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])) / hz
        other = max(0.0, busy - ru.ru_utime - ru.ru_stime) / (wall * (os.cpu_count() or 1))
    return {
        "wall_s": round(wall, 3),
        "peak_rss_kib": ru.ru_maxrss,          # KiB on Linux
        "user_s": round(ru.ru_utime, 3),
        "sys_s": round(ru.ru_stime, 3),
        "exit_code": rc,
        "timed_out": timed_out.is_set(),
        "loadavg_1m_before": round(load_before, 2),
        "other_cpu_busy": None if other is None else round(other, 3),
        "stdout": str(out_path),
        "stderr": str(err_path),
    }


MEMLAB_FAILURE = re.compile(
    r"heap out of memory|Error parsing heap snapshot|FATAL ERROR|Fatal JavaScript", re.I)


def run_ok(tool: str, r: dict) -> tuple[bool, str]:
    if r["timed_out"]:
        return False, "timeout"
    if r["exit_code"] != 0:
        return False, f"exit {r['exit_code']}"
    out = Path(r["stdout"]).read_bytes()
    if not out.strip():
        return False, "no output"
    if tool == "memlab":
        err = Path(r["stderr"]).read_bytes()
        m = MEMLAB_FAILURE.search((out + err).decode("utf-8", "replace"))
        if m:
            return False, m.group(0)
    if tool.startswith("leakhound"):
        try:
            json.loads(out)
        except ValueError:
            return False, "stdout is not JSON"
    return True, ""


def leakhound_counts(stdout_path: Path) -> dict:
    try:
        data = json.loads(stdout_path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data.get(k) for k in ("nodes", "edges", "total_size")}


# ---------------------------------------------------------------- report

def fmt(v, spec: str) -> str:
    return "?" if v is None else format(v, spec)


def fmtx(v) -> str:
    return "?" if v is None else f"{v:.2f}x"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def machine_info() -> dict:
    mem_kib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memlab_version = "?"
    try:
        memlab_version = json.loads(
            (BENCH / "node_modules/@memlab/cli/package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": None if mem_kib is None else round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": capture(["node", "--version"]),
        "rustc": capture(["rustc", "--version"]),
        "memlab": memlab_version,
        "v8_heap_parser": "1.1.0",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshot", help="use this snapshot instead of generating one")
    ap.add_argument("--instances", type=int, default=DEFAULT_INSTANCES,
                    help="instances for the generated snapshot (default 2000000, ~1 GB)")
    ap.add_argument("--gen-heap-mb", type=int, default=12000,
                    help="--max-old-space-size for the generator (default 12000)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per fast tool (leakhound); median is reported (default 3)")
    ap.add_argument("--repeat-peers", type=int, default=1,
                    help="runs per slow peer (v8hp, memlab) (default 1)")
    ap.add_argument("--skip", action="append", default=[], choices=ALL_TOOLS,
                    help="skip a tool (repeatable)")
    ap.add_argument("--only", action="append", default=[], choices=ALL_TOOLS,
                    help="run only these tools (repeatable)")
    ap.add_argument("--timeout", type=float, default=3600,
                    help="per-run timeout in seconds (default 3600)")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before each run, wait up to SECONDS for other processes to "
                         "leave the CPUs idle (shared machines; default 0 = no wait)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo/npm")
    ap.add_argument("--memlab-heap-mb", type=int, default=MEMLAB_HEAP_MB,
                    help=f"memlab node --max-old-space-size (default {MEMLAB_HEAP_MB}, "
                         "memlab's own)")
    ap.add_argument("--memlab-plugin", default="object-size",
                    help="memlab analyze plugin (default object-size; 'shape' also works)")
    ap.add_argument("--v8hp-reader", action="store_true",
                    help="run the v8-heap-parser peer with decode_reader instead of "
                         "decode_slice")
    ap.add_argument("--json-out", default=str(OUT / "results.json"))
    args = ap.parse_args()

    tools = [t for t in ALL_TOOLS if t not in args.skip
             and (not args.only or t in args.only)]
    if not tools:
        sys.exit("nothing to run")

    snap = ensure_snapshot(args)
    size = snap.stat().st_size
    errors = build(tools, args.no_build)
    tdir = target_dir()
    cmds = tool_commands(tools, snap, tdir, args)

    results: dict[str, dict] = {}
    for tool in tools:
        cmd = cmds[tool]
        entry = {"command": shlex.join(cmd), "runs": []}
        results[tool] = entry
        if tool in errors:
            entry.update(ok=False, error=errors[tool])
            log(f"{tool}: skipped: {errors[tool]}")
            continue
        if not Path(cmd[0]).exists() and shutil.which(cmd[0]) is None:
            entry.update(ok=False, error=f"{cmd[0]} not found")
            log(f"{tool}: {cmd[0]} not found")
            continue
        n = args.repeat if tool in FAST_TOOLS else args.repeat_peers
        for i in range(max(1, n)):
            warm_cache(snap)
            wait_idle(args.wait_idle)
            load = os.getloadavg()[0]
            if load > 0.5 * (os.cpu_count() or 1):
                log(f"warning: 1-min load average is {load:.2f}; timings may be noisy")
            log(f"{tool} run {i + 1}/{n}: {entry['command']}")
            floor = rss_floor()
            r = measure(cmd, args.timeout, LOGS / f"{tool}.{i + 1}")
            r["rss_floor_kib"] = floor
            ok, why = run_ok(tool, r)
            r["ok"], r["error"] = ok, why
            entry["runs"].append(r)
            busy = r["other_cpu_busy"]
            log(f"  {r['wall_s']:.2f}s wall, {r['peak_rss_kib'] / 1024:.0f} MiB peak RSS, "
                f"{r['user_s'] + r['sys_s']:.1f}s CPU"
                f"{'' if busy is None else f', other processes used {busy:.0%} of the CPUs'}"
                f"{'' if ok else ', FAILED: ' + why}")
            if not ok:
                break  # a failing tool will not get better by repeating
        good = [r for r in entry["runs"] if r["ok"]]
        entry["ok"] = bool(good) and len(good) == len(entry["runs"])
        if not entry["ok"]:
            entry["error"] = next((r["error"] for r in entry["runs"] if not r["ok"]), "?")
        if good:
            entry["wall_s"] = statistics.median(r["wall_s"] for r in good)
            entry["peak_rss_kib"] = statistics.median(r["peak_rss_kib"] for r in good)
            entry["cpu_s"] = statistics.median(r["user_s"] + r["sys_s"] for r in good)

    counts: dict = {}
    for t in ("leakhound", "leakhound-1t"):
        e = results.get(t)
        if e and e.get("runs") and e["runs"][0]["ok"]:
            counts = leakhound_counts(Path(e["runs"][0]["stdout"]))
            break

    base = results.get("leakhound", {}).get("wall_s")
    base1 = results.get("leakhound-1t", {}).get("wall_s")
    for t, e in results.items():
        e["vs_leakhound"] = ratio(e.get("wall_s"), base)
        e["vs_leakhound_1t"] = ratio(e.get("wall_s"), base1)
        rss = e.get("peak_rss_kib")
        e["rss_fraction_of_file"] = None if rss is None else rss * 1024 / size

    # ---- print
    print()
    print(f"Snapshot: `{snap}`  ")
    print(f"File size: {size / 2**20:.1f} MiB ({size} bytes); "
          f"nodes: {fmt(counts.get('nodes'), ',')}; edges: {fmt(counts.get('edges'), ',')}; "
          f"total self size: {fmt(counts.get('total_size'), ',')}  ")
    mi = machine_info()
    print(f"Machine: {mi['cpu']}, {mi['cores']} cores, {mi['mem_gib']} GiB RAM; "
          f"{mi['node']}; {mi['rustc']}; memlab {mi['memlab']}  ")
    print(f"Runs: leakhound median of {args.repeat}, peers {args.repeat_peers}; "
          "page cache warm\n")
    print("| tool | wall s | peak RSS MiB | time / leakhound | time / leakhound 1t "
          "| RSS / file size | CPU s (user+sys) | other load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for t, e in results.items():
        if e.get("wall_s") is None:
            print(f"| {t} | failed: {e.get('error', '?')} | | | | | | |")
            continue
        others = [r["other_cpu_busy"] for r in e["runs"] if r.get("other_cpu_busy") is not None]
        other = f"{max(others):.0%}" if others else "?"
        note = "" if e["ok"] else f" (failed: {e['error']})"
        print(f"| {t}{note} | {e['wall_s']:.2f} | {e['peak_rss_kib'] / 1024:.0f} "
              f"| {fmtx(e['vs_leakhound'])} | {fmtx(e['vs_leakhound_1t'])} "
              f"| {e['rss_fraction_of_file']:.2f} | {e['cpu_s']:.1f} | {other} |")

    floors = [r["rss_floor_kib"] for e in results.values() for r in e["runs"]]
    rss_floor_kib = max(floors) if floors else None
    low = [t for t, e in results.items() if e.get("peak_rss_kib") is not None
           and any(e["peak_rss_kib"] <= r["rss_floor_kib"] * 1.1 for r in e["runs"])]
    if low:
        print(f"\nNote: peak RSS of {', '.join(low)} is at the harness floor "
              f"({rss_floor_kib / 1024:.0f} MiB, the RSS of the forking Python process); "
              "the real peak is lower. Use a bigger snapshot.")

    checks = []
    if "v8hp" in results:
        checks.append(("leakhound >= 7x faster than v8-heap-parser",
                       results["v8hp"].get("vs_leakhound"), TARGET_VS_V8HP, True))
    if "memlab" in results:
        checks.append(("leakhound >= 30x faster than memlab",
                       results["memlab"].get("vs_leakhound"), TARGET_VS_MEMLAB, True))
    if "leakhound" in results:
        checks.append(("leakhound peak RSS <= file size",
                       results["leakhound"].get("rss_fraction_of_file"),
                       TARGET_RSS_FRACTION, False))
    targets = []
    print()
    for name, val, target, higher_better in checks:
        met = None if val is None else (val >= target if higher_better else val <= target)
        targets.append({"target": name, "value": val, "threshold": target, "met": met})
        mark = "?" if met is None else ("met" if met else "NOT met")
        print(f"- {name}: {fmt(val, '.2f')} ({mark})")

    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": mi,
        "snapshot": {"path": str(snap), "size_bytes": size, **counts},
        "rss_floor_kib": rss_floor_kib,
        "settings": {"repeat": args.repeat, "repeat_peers": args.repeat_peers,
                     "wait_idle_s": args.wait_idle,
                     "timeout_s": args.timeout, "memlab_heap_mb": args.memlab_heap_mb,
                     "memlab_plugin": args.memlab_plugin,
                     "v8hp_decode": "reader" if args.v8hp_reader else "slice"},
        "tools": results,
        "targets": targets,
    }
    jp = Path(args.json_out)
    jp.parent.mkdir(parents=True, exist_ok=True)
    jp.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {jp}")
    return 0 if all(e.get("ok") for e in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
