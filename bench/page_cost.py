#!/usr/bin/env python3
"""What a fresh page of memory costs on this machine, against writing one
that is already mapped: the figure behind leakhound's recycling allocator
(`crates/leakhound/src/recycle.rs`) and its pre-faulting (`heapsnap::mem`).

    python3 bench/page_cost.py [--mib 1024] [--rounds 5] [--huge]

Each round maps MIB of fresh anonymous memory twice and times, in turn:
- fault: `memset` over fresh memory, so the kernel faults in (finds, clears
  and maps) one 4 KiB page at a time as it is first written;
- populate: `madvise(MADV_POPULATE_WRITE)` over fresh memory, the same work
  in one system call (what leakhound's big arrays cost);
- write: `memset` over the populated bytes (what a kept page costs);
- unmap: `munmap`.
`--huge` also asks for transparent huge pages (`MADV_HUGEPAGE`) first, in a
round of its own: faster when 2 MiB pages are free, but the kernel may stop
to compact memory for them (the first round shows it), which is why
leakhound does not ask for them. Linux only (5.14 or later for populate).
"""
import argparse
import ctypes
import ctypes.util
import statistics
import sys
import time

PROT_READ, PROT_WRITE = 1, 2
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20
MADV_HUGEPAGE, MADV_POPULATE_WRITE = 14, 23
PAGE = 4096


def libc():
    lib = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    lib.mmap.restype = ctypes.c_void_p
    lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return lib


def fresh(lib, size: int, huge: bool) -> int:
    addr = lib.mmap(None, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        sys.exit(f"mmap of {size} bytes failed: errno {ctypes.get_errno()}")
    if huge and lib.madvise(addr, size, MADV_HUGEPAGE) != 0:
        sys.exit(f"madvise(MADV_HUGEPAGE) failed: errno {ctypes.get_errno()} (transparent huge pages off?)")
    return addr


def one_round(lib, size: int, huge: bool) -> dict:
    addr = fresh(lib, size, huge)
    t0 = time.perf_counter()
    ctypes.memset(addr, 1, size)
    fault = time.perf_counter() - t0
    lib.munmap(addr, size)
    addr = fresh(lib, size, huge)
    t0 = time.perf_counter()
    if lib.madvise(addr, size, MADV_POPULATE_WRITE) != 0:
        sys.exit(f"madvise(MADV_POPULATE_WRITE) failed: errno {ctypes.get_errno()} (Linux 5.14 or later needed)")
    t1 = time.perf_counter()
    ctypes.memset(addr, 1, size)
    t2 = time.perf_counter()
    lib.munmap(addr, size)
    t3 = time.perf_counter()
    return {"fault_s": fault, "populate_s": t1 - t0, "write_s": t2 - t1, "unmap_s": t3 - t2}


def report(label: str, rounds: list[dict], size: int) -> None:
    gib = size / 2**30
    pages = size // PAGE
    steps = (("fault_s", "fresh, faulted in by writing"), ("populate_s", "fresh, populated in one call"),
             ("write_s", "mapped, written (memset)"), ("unmap_s", "unmapped"))
    for key, what in steps:
        v = [r[key] for r in rounds]
        med = statistics.median(v)
        per_page = med / pages * 1e6
        print(f"| {label} | {what} | {med / gib:.3f} s/GiB ({min(v) / gib:.3f}-{max(v) / gib:.3f}) | {per_page:.2f} µs |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=1024, help="MiB mapped per round (default 1024)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--huge", action="store_true", help="also time rounds with MADV_HUGEPAGE")
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("Linux only")
    if args.mib < 1 or args.rounds < 1:
        sys.exit("--mib and --rounds must be at least 1")
    lib = libc()
    size = args.mib << 20
    print(f"{args.mib} MiB a round, {args.rounds} rounds; median (min-max) per GiB, and per 4 KiB page\n")
    print("| pages | step | time | per 4 KiB page |")
    print("|---|---|---:|---:|")
    report("4 KiB", [one_round(lib, size, False) for _ in range(args.rounds)], size)
    if args.huge:
        report("huge (2 MiB)", [one_round(lib, size, True) for _ in range(args.rounds)], size)


if __name__ == "__main__":
    main()
