#!/usr/bin/env python3
"""Reproducible benchmark: leakhound vs v8-heap-parser vs memlab, on three
shapes of heap.

Every tool does the same job on the same file: parse a V8 heap snapshot,
build the dominator tree and retained sizes, and print a summary.

Shapes (each generated once into bench/out/, then reused):

- generated: gen-large-snapshot.js, two million small `Item`s in a Map and
  an array (~1 GB). Regular: most nodes hang from one retainer, and the
  dominator pass folds them away (the share is printed).
- irregular: gen-irregular-snapshot.js, Maps, closures, strings of every
  kind, arrays of cross links and shared objects (~1 GB); most nodes have
  several retainers.
- app: gen-app-snapshot.js, a real application: every package in
  fixtures/node_modules loaded, and an express + express-session +
  lru-cache + prom-client server after many loopback requests (~1 GB).

Every tool runs the same number of times (--runs), in turns; ratios are
taken pair by pair (same round) and reported as the median and range of
those ratios, for wall time and for CPU time (user + sys). leakhound runs
twice per round: on all cores, and on one core (`taskset -c 0` and
`--threads 1`). The machine must be quiet (see benchlib.py), or pass
--allow-busy and every figure is marked busy.

    python3 bench/run.py                          # all three shapes, full size, 5 runs each
    python3 bench/run.py --size small --runs 3    # a quick check (~100 MB files)
    python3 bench/run.py --shape irregular --skip memlab
    python3 bench/run.py --snapshot /tmp/x.heapsnapshot

Outputs: markdown tables on stdout, bench/out/results.json, and each run's
stdout/stderr under bench/out/logs/. `--report FILE` prints the tables of a
saved results file again, without running anything.

Beside each peer's ratios the tables give a ceiling: the peer's wall time
over leakhound's CPU time divided by the cores, i.e. the wall ratio
leakhound would reach if it kept every core busy throughout. A target above
the ceiling needs less work, not better use of the cores.

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
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
LOGS = OUT / "logs"
# memlab's own launcher (node_modules/@memlab/cli/bin/memlab.js) starts node
# with `--expose-gc --max-old-space-size=4096`; enough for ~1 GB snapshots.
MEMLAB_HEAP_MB = 4096
MEMLAB_JS = BENCH / "node_modules" / "@memlab" / "cli" / "bin" / "memlab.js"

# Targets from the issue, for every shape.
TARGET_VS_V8HP = 7.0
TARGET_VS_MEMLAB = 30.0
TARGET_RSS_FRACTION = 1.0

ALL_TOOLS = ["leakhound", "leakhound-1core", "v8hp", "memlab"]
PEERS = ["v8hp", "memlab"]

# shape -> (generator, size argument per --size, what the argument counts)
SHAPES = {
    "generated": ("gen-large-snapshot.js", {"small": 200_000, "full": 2_000_000}, "instances"),
    "irregular": ("gen-irregular-snapshot.js", {"small": 60_000, "full": 600_000}, "units"),
    "app": ("gen-app-snapshot.js", {"small": 20_000, "full": 600_000}, "requests"),
}


def log(msg: str) -> None:
    bl.log(msg)


def run_checked(cmd: list[str], cwd: Path = REPO, env: dict | None = None) -> None:
    log("$ " + shlex.join(cmd))
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=sys.stderr)  # stdout is for the tables


def capture(cmd: list[str], cwd: Path = REPO) -> str:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


# ---------------------------------------------------------------- snapshots

def ensure_snapshot(shape: str, size: str, count: int | None, gen_heap_mb: int, node: str) -> Path:
    """bench/out/SHAPE-SIZE.heapsnapshot, generated when missing or made with another count."""
    gen, sizes, what = SHAPES[shape]
    want = count or sizes[size]
    p = OUT / f"{shape}-{size if count is None else want}.heapsnapshot"
    meta = p.with_name(p.name + ".meta.json")
    if p.is_file() and p.stat().st_size > 0:
        try:
            have = json.loads(meta.read_text()).get(what)
        except (OSError, ValueError):
            have = None
        if have == want:
            log(f"using existing {p} ({p.stat().st_size / 1e6:.0f} MB, {have} {what})")
            return p
    if shape == "app" and not (REPO / "fixtures/node_modules/express/package.json").is_file():
        sys.exit("the app shape loads the fixtures' packages: run `cd fixtures && npm ci` first")
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    run_checked([node, f"--max-old-space-size={gen_heap_mb}", str(BENCH / gen), str(tmp), str(want)])
    if not tmp.is_file() or tmp.stat().st_size == 0:
        sys.exit(f"{gen} produced no file")
    os.replace(tmp, p)
    meta.write_text(json.dumps({what: want, "node": capture([node, "--version"])}) + "\n")
    log(f"generated {p} ({p.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f}s")
    return p


def rss_floor() -> int:
    """ru_maxrss also covers the moment between fork and exec, when the child
    still maps this Python process's memory, so no run reports less than
    this floor (measured by running `true`); above it the numbers are exact."""
    r = bl.measure([shutil.which("true") or "/bin/true"], 60, LOGS / "rss-floor")
    return r["peak_rss_kib"]


def dominator_shape(lh: Path, snap: Path) -> dict:
    """One extra, untimed leakhound run with HEAPSNAP_DEBUG=1: how many nodes
    the dominator pass folds away (one retainer, nothing numbered below)."""
    r = subprocess.run([str(lh), "summary", str(snap), "--json"], env=dict(os.environ, HEAPSNAP_DEBUG="1"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.search(r"(\d+) nodes, (\d+) numbered \((\d+) by DFS\), (\d+) folded", r.stderr)
    if not m:
        return {}
    nodes, numbered, _, folded = map(int, m.groups())
    return {"dominator_nodes": nodes, "dominator_numbered": numbered, "dominator_folded": folded,
            "dominator_folded_share": round(folded / nodes, 4) if nodes else None}


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
    lh = [str(rel / "leakhound"), "summary", s, "--json"]
    cmds = {
        "leakhound": lh,
        # One core in every sense: one thread in every phase, and pinned.
        "leakhound-1core": bl.single_core(lh + ["--threads", "1"]),
        "v8hp": [str(rel / "examples" / "v8hp_summary"), s] + (["--reader"] if args.v8hp_reader else []),
        "memlab": [args.node, "--expose-gc", f"--max-old-space-size={args.memlab_heap_mb}", str(MEMLAB_JS), "analyze",
                   args.memlab_plugin, "--snapshot", s, "--work-dir", str(OUT / "memlab-work")],
    }
    return {t: cmds[t] for t in tools}


MEMLAB_FAILURE = re.compile(r"heap out of memory|Error parsing heap snapshot|FATAL ERROR|Fatal JavaScript", re.I)


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
    return {k: data.get(k) for k in ("nodes", "edges", "total_size")} if isinstance(data, dict) else {}


def machine_info(node: str) -> dict:
    mem_kib = None
    cpu = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memlab_version = json.loads((BENCH / "node_modules/@memlab/cli/package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        memlab_version = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": None if mem_kib is None else round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "node": capture([node, "--version"]),
            "rustc": capture(["rustc", "--version"]), "memlab": memlab_version, "v8_heap_parser": "1.1.0"}


# ---------------------------------------------------------------- one shape

def bench_shape(name: str, snap: Path, tools: list[str], cmds: dict, args, errors: dict) -> dict:
    size = snap.stat().st_size
    results: dict[str, dict] = {t: {"command": shlex.join(cmds[t]), "runs": []} for t in tools}
    live = []
    for t in tools:
        if t in errors:
            results[t].update(ok=False, error=errors[t])
        elif not Path(cmds[t][0]).exists() and shutil.which(cmds[t][0]) is None:
            results[t].update(ok=False, error=f"{cmds[t][0]} not found")
        else:
            live.append(t)
    for t in tools:
        if t not in live:
            log(f"{name}: {t} skipped: {results[t]['error']}")
    floor = rss_floor()
    failed: set[str] = set()
    for i, tool in bl.turns(live, args.runs):
        if tool in failed:
            # Keep the rounds aligned: a failed tool gets a failed entry.
            results[tool]["runs"].append({"ok": False, "error": "failed before"})
            continue
        bl.warm_cache(snap)
        bl.wait_idle(args.wait_idle)
        log(f"{name} round {i + 1}/{args.runs}: {tool}")
        r = bl.measure(cmds[tool], args.timeout, LOGS / f"{name}.{tool}.{i + 1}", cwd=REPO)
        ok, why = run_ok(tool, r)
        r["ok"], r["error"] = ok, why
        results[tool]["runs"].append(r)
        busy = r["other_cpu_busy"]
        log(f"  {r['wall_s']:.2f}s wall, {r['cpu_s']:.2f}s CPU, {r['peak_rss_kib'] / 1024:.0f} MiB peak RSS"
            f"{'' if busy is None else f', others used {busy:.0%} of the CPUs'}{'' if ok else ', FAILED: ' + why}")
        if not ok:
            failed.add(tool)  # a failing tool will not get better by repeating
    for t in live:
        e = results[t]
        good = [r for r in e["runs"] if r.get("ok")]
        e["ok"] = len(good) == len(e["runs"]) and bool(good)
        if not e["ok"]:
            e["error"] = next((r["error"] for r in e["runs"] if not r.get("ok")), "?")
        e["wall_s"] = bl.spread([r["wall_s"] for r in good])
        e["cpu_s"] = bl.spread([r["cpu_s"] for r in good])
        e["peak_rss_kib"] = bl.spread([r["peak_rss_kib"] for r in good])
        e["rss_fraction_of_file"] = None if not good else bl.spread([r["peak_rss_kib"] * 1024 / size for r in good])
        e["busy_runs"] = sum(1 for r in good if r.get("busy_run"))
    ratios = {}
    for base in ("leakhound", "leakhound-1core"):
        if base not in live:
            continue
        for t in live:
            if t == base:
                continue
            ratios[f"{t}/{base}"] = {k: bl.paired_ratios(results[t]["runs"], results[base]["runs"], k)
                                     for k in ("wall_s", "cpu_s")}
    add_ceilings(results, ratios, os.cpu_count() or 1)
    counts = {}
    for t in ("leakhound", "leakhound-1core"):
        good = [r for r in results.get(t, {}).get("runs", []) if r.get("ok")]
        if good:
            counts = leakhound_counts(Path(good[0]["stdout"]))
            break
    lh = bl_target / "release" / "leakhound"
    shape = dominator_shape(lh, snap) if lh.exists() else {}
    return {"shape": name, "snapshot": str(snap), "size_bytes": size, **counts, **shape, "rss_floor_kib": floor,
            "tools": results, "ratios": ratios}


def add_ceilings(tools: dict, ratios: dict, cores: int) -> None:
    """Each peer's ceiling against leakhound on all cores (see the docstring)."""
    lh = tools.get("leakhound", {}).get("runs")
    for peer in PEERS:
        r = ratios.get(f"{peer}/leakhound")
        if lh and r is not None and tools.get(peer, {}).get("runs"):
            r["ceiling"] = bl.paired_ceilings(tools[peer]["runs"], lh, cores)
            r["ceiling_cores"] = cores


def print_shape(res: dict, busy_note: str) -> None:
    size = res["size_bytes"]
    fs = res.get("dominator_folded_share")
    print(f"\n### {res['shape']}{busy_note}\n")
    count = lambda k: "?" if res.get(k) is None else f"{res[k]:,}"  # noqa: E731
    print(f"Snapshot: `{res['snapshot']}`, {size / 1e6:.1f} MB; nodes {count('nodes')}; "
          f"edges {count('edges')}; folded out of the dominator pass: "
          f"{'?' if fs is None else f'{fs:.0%}'} of nodes\n")
    print("| tool | runs | wall s median (min-max) | CPU s median (min-max) | peak RSS MiB | RSS / file | busy runs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t, e in res["tools"].items():
        if not e.get("wall_s"):
            print(f"| {t} | failed: {e.get('error', '?')} | | | | | |")
            continue
        note = "" if e["ok"] else f" (failed: {e['error']})"
        rss = e["peak_rss_kib"]
        print(f"| {t}{note} | {e['wall_s']['n']} | {bl.fmt_spread(e['wall_s'])} | {bl.fmt_spread(e['cpu_s'])} "
              f"| {rss['median'] / 1024:.0f} | {e['rss_fraction_of_file']['median']:.2f} | {e['busy_runs']} |")
    if res["ratios"]:
        cores = next((v["ceiling_cores"] for v in res["ratios"].values() if "ceiling_cores" in v), None)
        head = f" ceiling, wall if leakhound kept {cores} cores busy |" if cores else ""
        print(f"\n| peer / leakhound, paired by round | wall: median (min-max) | CPU: median (min-max) |{head}")
        print("|---|---:|---:|" + ("---:|" if cores else ""))
        for k, v in res["ratios"].items():
            ceiling = ""
            if cores:
                ceiling = f" {bl.fmt_spread(v['ceiling'], '.2f', 'x')} |" if v.get("ceiling") else " |"
            print(f"| {k} | {bl.fmt_spread(v['wall_s'], '.2f', 'x')} | {bl.fmt_spread(v['cpu_s'], '.2f', 'x')} |{ceiling}")


def med(v) -> float | None:
    return None if v is None else v["median"]


def targets(res: dict) -> list[dict]:
    out = []
    r = res["ratios"]
    for peer, want in (("v8hp", TARGET_VS_V8HP), ("memlab", TARGET_VS_MEMLAB)):
        w = r.get(f"{peer}/leakhound", {}).get("wall_s")
        if w:
            ceiling = r[f"{peer}/leakhound"].get("ceiling")
            out.append({"target": f"leakhound >= {want:.0f}x faster than {peer} (median of paired wall ratios)",
                        "value": w["median"], "threshold": want, "met": w["median"] >= want,
                        "peer": peer, "ceiling": None if ceiling is None else ceiling["median"]})
    lh = res["tools"].get("leakhound", {}).get("rss_fraction_of_file")
    if lh:
        out.append({"target": "leakhound peak RSS <= file size", "value": lh["median"], "threshold": TARGET_RSS_FRACTION,
                    "met": lh["median"] <= TARGET_RSS_FRACTION})
    return out


def print_targets(shape_results: list[dict], busy_note: str) -> None:
    """The targets hold on every shape or not at all: the worst shape decides."""
    print(f"\n### Targets, worst shape first{busy_note}\n")
    print("| target | " + " | ".join(r["shape"] for r in shape_results) + " | worst |")
    print("|---|" + "---:|" * (len(shape_results) + 1))
    names = [t["target"] for t in shape_results[0]["targets"]] if shape_results else []
    for tname in names:
        vals = [next((t for t in r["targets"] if t["target"] == tname), None) for r in shape_results]
        got = [v for v in vals if v]
        higher = "RSS" not in tname
        worst = (min if higher else max)(got, key=lambda v: v["value"]) if got else None
        met = bool(got) and all(v["met"] for v in got)
        cells = " | ".join("?" if v is None else f"{v['value']:.2f}{'' if v['met'] else ' (NOT met)'}" for v in vals)
        worst_s = "?" if worst is None else f"{worst['value']:.2f}"
        print(f"| {tname} | {cells} | {worst_s} {'met' if met else 'NOT met'} |")
    for peer in PEERS:
        cells = [(r["shape"], t["ceiling"]) for r in shape_results for t in r["targets"]
                 if t.get("peer") == peer and t.get("ceiling") is not None]
        if cells:
            print(f"\nCeiling against {peer} (the wall ratio if leakhound kept every core busy): "
                  + ", ".join(f"{shape} {c:.2f}x" for shape, c in cells))


def reprint(path: Path) -> int:
    """Print the tables of a saved results file again."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        sys.exit(f"cannot read {path}: {e}")
    try:
        mi, state, settings, shapes = saved["machine"], saved["state_before"], saved["settings"], saved["shapes"]
        head = (f"Saved run {saved['date']}: {mi['cpu']}, {mi['cores']} cores; load average before: "
                f"{' '.join(map(str, state['loadavg']))}; {settings['runs']} runs per tool in turns; size {settings['size']}")
    except (KeyError, TypeError) as e:
        sys.exit(f"{path} is not a results file of bench/run.py (no {e})")
    busy_note = " (BUSY MACHINE: not a claim)" if saved.get("busy") else ""
    print(head)
    for res in shapes:
        # Files saved before the ceilings were recorded get them from their runs.
        add_ceilings(res["tools"], res["ratios"], mi["cores"])
        res["targets"] = targets(res)
        print_shape(res, busy_note)
    print_targets(shapes, busy_note)
    return 0


bl_target = REPO / "target"


def main() -> int:
    global bl_target
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", action="append", choices=list(SHAPES), help="a shape to run (repeatable; default all three)")
    ap.add_argument("--size", choices=["small", "full"], default="full",
                    help="small: ~30-100 MB files for a quick check; full: ~1 GB files, for claims (default)")
    ap.add_argument("--count", type=int, help="override the generator's count (instances, units or requests)")
    ap.add_argument("--snapshot", help="run on this file only (shape 'file'), no generation")
    ap.add_argument("--runs", "--repeat", type=int, default=5, dest="runs", help="runs per tool, in turns (default 5)")
    ap.add_argument("--skip", action="append", default=[], choices=ALL_TOOLS, help="skip a tool (repeatable)")
    ap.add_argument("--only", action="append", default=[], choices=ALL_TOOLS, help="run only these tools (repeatable)")
    ap.add_argument("--timeout", type=float, default=3600, help="per-run timeout in seconds (default 3600)")
    ap.add_argument("--allow-busy", action="store_true", help="measure even on a busy machine (figures are marked busy)")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="before each run, wait up to SECONDS for idle CPUs (default 0)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo/npm")
    ap.add_argument("--node", default=str(REPO / ".cache/node/20/bin/node") if (REPO / ".cache/node/20/bin/node").exists() else "node",
                    help="node for the generators and memlab (default Node 20 from .cache)")
    ap.add_argument("--gen-heap-mb", type=int, default=12000, help="--max-old-space-size for the generators")
    ap.add_argument("--memlab-heap-mb", type=int, default=MEMLAB_HEAP_MB)
    ap.add_argument("--memlab-plugin", default="object-size", help="memlab analyze plugin (default object-size)")
    ap.add_argument("--v8hp-reader", action="store_true", help="v8-heap-parser with decode_reader, not decode_slice")
    ap.add_argument("--json-out", default=str(OUT / "results.json"))
    ap.add_argument("--report", metavar="FILE", help="print the tables of a saved results file; run nothing")
    args = ap.parse_args()
    if args.report:
        return reprint(Path(args.report))
    if args.runs < 1:
        sys.exit("--runs must be at least 1")

    tools = [t for t in ALL_TOOLS if t not in args.skip and (not args.only or t in args.only)]
    if not tools:
        sys.exit("nothing to run")
    state = bl.require_quiet(args.allow_busy)
    if args.snapshot:
        snap = Path(args.snapshot).resolve()
        if not snap.is_file():
            sys.exit(f"snapshot not found: {snap}")
        shapes = [("file", snap)]
    else:
        names = args.shape or list(SHAPES)
        shapes = [(n, ensure_snapshot(n, args.size, args.count, args.gen_heap_mb, args.node)) for n in names]
    errors = build(tools, args.no_build)
    bl_target = target_dir()
    # Measure the state again: generating and building made the machine busy just now.
    state_start = bl.require_quiet(args.allow_busy, settle_s=240)
    busy_note = " (BUSY MACHINE: not a claim)" if state_start["busy"] else ""

    mi = machine_info(args.node)
    print(f"Machine: {mi['cpu']}, {mi['cores']} cores, {mi['mem_gib']} GiB RAM; node {mi['node']}; {mi['rustc']}; "
          f"memlab {mi['memlab']}; v8-heap-parser {mi['v8_heap_parser']}  ")
    print(f"Load average before: {' '.join(map(str, state_start['loadavg']))}; {args.runs} runs per tool in turns, "
          f"page cache warm; size {args.size}")
    shape_results = []
    for name, snap in shapes:
        cmds = tool_commands(tools, snap, bl_target, args)
        res = bench_shape(name, snap, tools, cmds, args, errors)
        res["targets"] = targets(res)
        shape_results.append(res)
        print_shape(res, busy_note)

    print_targets(shape_results, busy_note)
    state_end = bl.machine_state()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": mi,
        "state_before": state_start,
        "state_after": state_end,
        "busy": state_start["busy"],
        "settings": {"runs": args.runs, "size": args.size, "count": args.count, "timeout_s": args.timeout,
                     "memlab_heap_mb": args.memlab_heap_mb, "memlab_plugin": args.memlab_plugin,
                     "v8hp_decode": "reader" if args.v8hp_reader else "slice", "allow_busy": args.allow_busy},
        "shapes": shape_results,
    }
    jp = Path(args.json_out)
    jp.parent.mkdir(parents=True, exist_ok=True)
    jp.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {jp}")
    ok = all(e.get("ok") for r in shape_results for e in r["tools"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
