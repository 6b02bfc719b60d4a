#!/usr/bin/env python3
"""Benchmark: `leakhound diagnose` vs memlab `find-leaks --trace-all-objects`.

Both tools get the same three snapshots of one process (a leak of
LeakedRecord objects on top of a large steady heap, written by
bench/gen-leak-snapshots.js) in the same run, with a warm page cache.
Reported: wall time, peak RSS, the ratio memlab/leakhound, and how many
leaked objects each tool reports (memlab samples its traces; leakhound
counts every survivor).

    python3 bench/diagnose.py                     # generate (if needed), build, run both
    python3 bench/diagnose.py --repeat 5          # median of 5 leakhound runs
    python3 bench/diagnose.py --dir /tmp/snaps    # snapshots s1..s3 in that folder

Outputs a markdown table on stdout and bench/out/diagnose-results.json.
Python 3.11, standard library only; measurement code is shared with run.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as base  # noqa: E402  (measure, warm_cache, build helpers)

BENCH = base.BENCH
REPO = base.REPO
OUT = base.OUT
LOGS = base.LOGS
TARGET_VS_MEMLAB = 15.0
DEFAULT_DIR = OUT / "leak-snapshots"


def ensure_snapshots(args) -> list[Path]:
    d = Path(args.dir)
    files = [d / f"s{k}.heapsnapshot" for k in (1, 2, 3)]
    if all(f.exists() for f in files):
        return files
    d.mkdir(parents=True, exist_ok=True)
    base.run_checked(["node", f"--max-old-space-size={args.gen_heap_mb}",
                      str(BENCH / "gen-leak-snapshots.js"), str(d),
                      str(args.steady), str(args.leak)])
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
    ap.add_argument("--repeat", type=int, default=3, help="leakhound runs (median)")
    ap.add_argument("--repeat-peers", type=int, default=1, help="memlab runs (median)")
    ap.add_argument("--memlab-heap-mb", type=int, default=base.MEMLAB_HEAP_MB)
    ap.add_argument("--skip-memlab", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json-out", default=str(OUT / "diagnose-results.json"))
    args = ap.parse_args()

    files = ensure_snapshots(args)
    tools = ["leakhound"] + ([] if args.skip_memlab else ["memlab"])
    errors = base.build(tools, args.no_build)
    lh = base.target_dir() / "release" / "leakhound"
    cmds = {
        "leakhound": [str(lh), "diagnose", "--json", *map(str, files)],
        "memlab": ["node", f"--max-old-space-size={args.memlab_heap_mb}", str(base.MEMLAB_JS), "find-leaks",
                   "--baseline", str(files[0]), "--target", str(files[1]), "--final", str(files[2]),
                   "--trace-all-objects"],
    }
    results: dict[str, dict] = {}
    for tool in tools:
        entry = {"command": shlex.join(cmds[tool]), "runs": []}
        results[tool] = entry
        if tool in errors:
            entry.update(ok=False, error=errors[tool])
            continue
        n = args.repeat if tool == "leakhound" else args.repeat_peers
        for i in range(max(1, n)):
            for f in files:
                base.warm_cache(f)
            base.log(f"{tool} run {i + 1}/{n}: {entry['command']}")
            r = base.measure(cmds[tool], args.timeout, LOGS / f"diagnose-{tool}.{i + 1}")
            out = Path(r["stdout"]).read_text(errors="replace")
            err = Path(r["stderr"]).read_text(errors="replace")
            r["ok"] = r["exit_code"] == 0 and not r["timed_out"] and not base.MEMLAB_FAILURE.search(out + err)
            if tool == "leakhound" and r["ok"]:
                d = json.loads(out)
                s = d["suspects"][0] if d["suspects"] else {}
                # The same quantity memlab reports: objects allocated between the
                # first and second snapshot that are still alive in the third.
                r["leaked_objects"] = (s.get("objects_per_step") or [None])[0]
                r["survivors"] = d["survivors"]
                r["verdict"] = d["verdict"]
            elif tool == "memlab":
                r["leaked_objects"] = memlab_count(out)
            entry["runs"].append(r)
            base.log(f"  {r['wall_s']:.2f}s wall, {r['peak_rss_kib'] / 1024:.0f} MiB peak RSS"
                     f"{'' if r['ok'] else ', FAILED'}")
            if not r["ok"]:
                break
        good = [r for r in entry["runs"] if r["ok"]]
        entry["ok"] = bool(good)
        if good:
            entry["wall_s"] = statistics.median(r["wall_s"] for r in good)
            entry["peak_rss_kib"] = statistics.median(r["peak_rss_kib"] for r in good)
            entry["leaked_objects"] = good[-1].get("leaked_objects")

    sizes = [f.stat().st_size for f in files]
    print(f"\nSnapshots: {', '.join(f'{s / 1e6:.0f} MB' for s in sizes)} ({args.dir}); "
          f"leak: {args.leak} LeakedRecord per step\n")
    print("| tool | wall s | peak RSS MiB | memlab / leakhound | leaked objects found (S1→S2, alive in S3) |")
    print("|---|---:|---:|---:|---:|")
    lhw = results["leakhound"].get("wall_s")
    for tool in tools:
        e = results[tool]
        if not e.get("ok"):
            print(f"| {tool} | failed | | | |")
            continue
        ratio = (e["wall_s"] / lhw) if lhw else None
        print(f"| {tool} | {e['wall_s']:.2f} | {e['peak_rss_kib'] / 1024:.0f} | "
              f"{'' if ratio is None else f'{ratio:.1f}x'} | {e.get('leaked_objects')} |")
    if "memlab" in results and results["memlab"].get("ok") and lhw:
        r = results["memlab"]["wall_s"] / lhw
        rss_ok = results["leakhound"]["peak_rss_kib"] < results["memlab"]["peak_rss_kib"]
        print(f"\nleakhound is {r:.1f}x faster than memlab (target {TARGET_VS_MEMLAB:.0f}x: "
              f"{'met' if r >= TARGET_VS_MEMLAB else 'NOT met'}); peak RSS "
              f"{'below' if rss_ok else 'NOT below'} memlab's")
    OUT.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps({"machine": base.machine_info(), "files": [str(f) for f in files],
                                               "sizes": sizes, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
