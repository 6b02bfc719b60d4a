#!/usr/bin/env python3
"""Benchmark: `leakhound diagnose` vs memlab `find-leaks --trace-all-objects`.

Both tools get the same three snapshots of one process (a leak of
LeakedRecord objects on top of a large steady heap, written by
bench/gen-leak-snapshots.js). Every tool runs the same number of times
(--runs), in turns, with a warm page cache; leakhound runs on all cores and
on one core (`taskset -c 0`, `--threads 1`). Reported per tool: wall and CPU
time (median and range), peak RSS; per pair of runs in the same round:
memlab / leakhound for wall and CPU time (median and range of the pair
ratios); and how many leaked objects each tool reports (memlab samples its
traces; leakhound counts every survivor). The machine must be quiet (see
benchlib.py) or --allow-busy marks every figure busy.

    python3 bench/diagnose.py                     # generate (if needed), build, 5 runs each
    python3 bench/diagnose.py --runs 3 --steady 100000 --leak 40000   # a quick check
    python3 bench/diagnose.py --dir /tmp/snaps    # snapshots s1..s3 in that folder

Outputs a markdown table on stdout and bench/out/diagnose-results.json.
Python 3.11, standard library only.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
import run as base  # noqa: E402  (build helpers, memlab paths)

BENCH = base.BENCH
REPO = base.REPO
OUT = base.OUT
LOGS = base.LOGS
TARGET_VS_MEMLAB = 15.0
DEFAULT_DIR = OUT / "leak-snapshots"


def ensure_snapshots(args) -> list[Path]:
    d = Path(args.dir)
    files = [d / f"s{k}.heapsnapshot" for k in (1, 2, 3)]
    meta = d / "meta.json"
    want = {"steady": args.steady, "leak": args.leak}
    try:
        have = json.loads(meta.read_text())
    except (OSError, ValueError):
        have = None
    if all(f.exists() for f in files) and have in (None, want):
        return files
    d.mkdir(parents=True, exist_ok=True)
    base.run_checked([args.node, f"--max-old-space-size={args.gen_heap_mb}", str(BENCH / "gen-leak-snapshots.js"), str(d),
                      str(args.steady), str(args.leak)])
    meta.write_text(json.dumps(want) + "\n")
    return files


def memlab_count(stdout: str) -> int | None:
    """The largest count in memlab's leak table, e.g. `│ 0 │ 'LeakedRecord' │ 'object' │ 200000 │ '23.7MB' │`."""
    rows = re.findall(r"│\s*\d+\s*│\s*'[^']*'\s*│\s*'[^']*'\s*│\s*(\d+)\s*│", stdout)
    return max((int(x) for x in rows), default=None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="folder with (or for) s1..s3.heapsnapshot")
    ap.add_argument("--steady", type=int, default=500_000, help="steady Items (default 500000, ~250 MB snapshots)")
    ap.add_argument("--leak", type=int, default=200_000, help="leaked records per step (default 200000)")
    ap.add_argument("--gen-heap-mb", type=int, default=8000)
    ap.add_argument("--runs", "--repeat", type=int, default=5, dest="runs", help="runs per tool, in turns (default 5)")
    ap.add_argument("--memlab-heap-mb", type=int, default=base.MEMLAB_HEAP_MB)
    ap.add_argument("--skip-memlab", action="store_true")
    ap.add_argument("--skip-1core", action="store_true", help="no single-core leakhound row")
    ap.add_argument("--allow-busy", action="store_true", help="measure even on a busy machine (figures are marked busy)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--node", default=str(REPO / ".cache/node/20/bin/node") if (REPO / ".cache/node/20/bin/node").exists() else "node")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json-out", default=str(OUT / "diagnose-results.json"))
    args = ap.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be at least 1")

    bl.require_quiet(args.allow_busy)
    files = ensure_snapshots(args)
    tools = ["leakhound"] + ([] if args.skip_1core else ["leakhound-1core"]) + ([] if args.skip_memlab else ["memlab"])
    errors = base.build(["leakhound"] + ([] if args.skip_memlab else ["memlab"]), args.no_build)
    state = bl.require_quiet(args.allow_busy, settle_s=240)
    busy_note = " (BUSY MACHINE: not a claim)" if state["busy"] else ""
    lh = [str(base.target_dir() / "release" / "leakhound"), "diagnose", "--json", *map(str, files)]
    cmds = {
        "leakhound": lh,
        "leakhound-1core": bl.single_core(lh + ["--threads", "1"]),
        "memlab": [args.node, f"--max-old-space-size={args.memlab_heap_mb}", str(base.MEMLAB_JS), "find-leaks", "--baseline",
                   str(files[0]), "--target", str(files[1]), "--final", str(files[2]), "--trace-all-objects"],
    }
    results: dict[str, dict] = {t: {"command": shlex.join(cmds[t]), "runs": []} for t in tools}
    live = [t for t in tools if not (t.startswith("leakhound") and "leakhound" in errors) and t not in errors]
    failed: set[str] = set()
    for i, tool in bl.turns(live, args.runs):
        if tool in failed:
            results[tool]["runs"].append({"ok": False, "error": "failed before"})
            continue
        for f in files:
            bl.warm_cache(f)
        bl.log(f"round {i + 1}/{args.runs}: {tool}")
        r = bl.measure(cmds[tool], args.timeout, LOGS / f"diagnose-{tool}.{i + 1}", cwd=REPO)
        out = Path(r["stdout"]).read_text(errors="replace")
        err = Path(r["stderr"]).read_text(errors="replace")
        r["ok"] = r["exit_code"] == 0 and not r["timed_out"] and not base.MEMLAB_FAILURE.search(out + err)
        if tool.startswith("leakhound") and r["ok"]:
            d = json.loads(out)
            s = d["suspects"][0] if d["suspects"] else {}
            # The quantity memlab reports: objects allocated between the first
            # and second snapshot that are still alive in the third.
            r["leaked_objects"] = (s.get("objects_per_step") or [None])[0]
            r["survivors"] = d["survivors"]
            r["verdict"] = d["verdict"]
        elif tool == "memlab":
            r["leaked_objects"] = memlab_count(out)
        results[tool]["runs"].append(r)
        bl.log(f"  {r['wall_s']:.2f}s wall, {r['cpu_s']:.2f}s CPU, {r['peak_rss_kib'] / 1024:.0f} MiB peak RSS"
               f"{'' if r['ok'] else ', FAILED'}")
        if not r["ok"]:
            failed.add(tool)
    for t in tools:
        e = results[t]
        if t not in live:
            e.update(ok=False, error=errors.get(t) or errors.get("leakhound"))
            continue
        good = [r for r in e["runs"] if r.get("ok")]
        e["ok"] = bool(good) and len(good) == len(e["runs"])
        e["wall_s"] = bl.spread([r["wall_s"] for r in good])
        e["cpu_s"] = bl.spread([r["cpu_s"] for r in good])
        e["peak_rss_kib"] = bl.spread([r["peak_rss_kib"] for r in good])
        e["leaked_objects"] = sorted({r.get("leaked_objects") for r in good}, key=lambda x: (x is None, x))
        e["busy_runs"] = sum(1 for r in good if r.get("busy_run"))
    ratios = {}
    for b in ("leakhound", "leakhound-1core"):
        if b in live and "memlab" in live:
            ratios[f"memlab/{b}"] = {k: bl.paired_ratios(results["memlab"]["runs"], results[b]["runs"], k) for k in ("wall_s", "cpu_s")}

    sizes = [f.stat().st_size for f in files]
    print(f"\nSnapshots: {', '.join(f'{s / 1e6:.0f} MB' for s in sizes)} ({args.dir}); leak: {args.leak} LeakedRecord per step; "
          f"{args.runs} runs per tool in turns; load average before {' '.join(map(str, state['loadavg']))}{busy_note}\n")
    print("| tool | runs | wall s median (min-max) | CPU s median (min-max) | peak RSS MiB | leaked objects found (S1→S2, alive in S3) | busy runs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t in tools:
        e = results[t]
        if not e.get("wall_s"):
            print(f"| {t} | failed: {e.get('error', '?')} | | | | | |")
            continue
        print(f"| {t} | {e['wall_s']['n']} | {bl.fmt_spread(e['wall_s'])} | {bl.fmt_spread(e['cpu_s'])} | "
              f"{e['peak_rss_kib']['median'] / 1024:.0f} | {', '.join(map(str, e['leaked_objects']))} | {e['busy_runs']} |")
    if ratios:
        print("\n| pair, same round | wall: median (min-max) | CPU: median (min-max) |")
        print("|---|---:|---:|")
        for k, v in ratios.items():
            print(f"| {k} | {bl.fmt_spread(v['wall_s'], '.1f', 'x')} | {bl.fmt_spread(v['cpu_s'], '.1f', 'x')} |")
        w = ratios.get("memlab/leakhound", {}).get("wall_s")
        if w:
            print(f"\nleakhound vs memlab, median of paired wall ratios: {w['median']:.1f}x (target {TARGET_VS_MEMLAB:.0f}x: "
                  f"{'met' if w['median'] >= TARGET_VS_MEMLAB else 'NOT met'}; worst pair {w['min']:.1f}x){busy_note}")
    OUT.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": base.machine_info(args.node),
                                               "state_before": state, "busy": state["busy"], "files": [str(f) for f in files],
                                               "sizes": sizes, "results": results, "ratios": ratios}, indent=2))
    return 0 if all(results[t].get("ok") for t in tools) else 1


if __name__ == "__main__":
    sys.exit(main())
