#!/usr/bin/env python3
"""Faults, measured: how many requests `leakhound supervise --workers 2` loses
under sustained loopback load when things go wrong, and how `leakhound run`
cleans up when its app dies.

    python3 bench/faults/run.py [--node 22] [--seconds 8] [--json out.json]

Each scenario starts its own supervisor (fixtures/supervise/app.js, each
response delayed 20 ms so requests are always in flight), drives it with
8 keep-alive connections, each renewed every 20 requests so they
spread over both workers (about 350 requests/s on loopback), injects one
fault, and counts: requests sent, failed (no response: reset, closed,
timed out at 10 s; refused connections after a deliberate stop are counted
apart), and how long until the service had two serving workers again (or
what the fault's end is). Bounded: every wait has a time limit, every
process started is killed at the end. The full-disk case mounts a 160 MiB
tmpfs (needs root; skipped otherwise).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
APP = os.path.join(ROOT, "fixtures", "supervise", "app.js")


def leakhound_bin():
    if os.environ.get("LEAKHOUND"):
        return os.environ["LEAKHOUND"]
    for p in ("target/release/leakhound", "target/debug/leakhound"):
        if os.path.exists(os.path.join(ROOT, p)):
            return os.path.join(ROOT, p)
    sys.exit("build leakhound first (cargo build --release), or set LEAKHOUND")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Load:
    """`conns` threads, each a keep-alive connection sending GET / in a loop."""

    def __init__(self, port, conns=8):
        self.port, self.conns = port, conns
        self.sent = self.ok = self.failed = self.refused = 0
        self.failures = []
        self.lock = threading.Lock()
        self.stop_at = None
        self.threads = []

    def start(self):
        self.running = True
        self.began = time.monotonic()
        for _ in range(self.conns):
            t = threading.Thread(target=self.loop, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def loop(self):
        conn, uses = None, 0
        while self.running:
            # A new connection every 20 requests, so connections spread
            # over both workers (each accepts from the one shared socket).
            if conn is not None and uses >= 20:
                conn.close()
                conn = None
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                uses = 0
            uses += 1
            t = time.monotonic()
            try:
                conn.request("GET", "/")
            except ConnectionRefusedError:
                with self.lock:
                    self.refused += 1
                conn = None
                time.sleep(0.05)
                continue
            except OSError as e:
                with self.lock:
                    self.sent += 1
                    self.failed += 1
                    self.failures.append((t, type(e).__name__ + (" on a new connection" if uses == 1 else "")))
                conn = None
                continue
            with self.lock:
                self.sent += 1
            try:
                r = conn.getresponse()
                r.read()
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failed += 1
                        self.failures.append((t, f"HTTP {r.status}"))
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # reset, closed, timed out: lost
                with self.lock:
                    self.failed += 1
                    self.failures.append((t, type(e).__name__ + (" on a new connection" if uses == 1 else "")))
                conn = None

    def stop(self):
        self.running = False
        self.ended = time.monotonic()
        for t in self.threads:
            t.join(15)
        return self


class Sup:
    """`leakhound supervise --json` with its events, arrival times attached."""

    def __init__(self, args, env=None, workers=2):
        self.events = []
        self.lock = threading.Lock()
        e = dict(os.environ)
        e.update(env or {})
        cmd = [BIN, "supervise", "--json", "--listen", "127.0.0.1:0", "--workers", str(workers), *args, "--", "node", APP]
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e, text=True)
        threading.Thread(target=self.read, daemon=True).start()
        listening = self.wait(lambda v: v["event"] == "listening", 15, "listening")
        self.port = int(listening["address"].rsplit(":", 1)[1])
        self.wait_n(lambda v: v["event"] == "ready", workers, 30, "ready workers")

    def read(self):
        for line in self.p.stderr:
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and "event" in v:
                with self.lock:
                    self.events.append((time.monotonic(), v))

    def find(self, pred):
        with self.lock:
            return [(t, v) for t, v in self.events if pred(v)]

    def wait_n(self, pred, n, timeout, what):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            got = self.find(pred)
            if len(got) >= n:
                return got[n - 1][1]
            time.sleep(0.01)
        raise RuntimeError(f"no {what} within {timeout} s: {[v for _, v in self.events]}")

    def wait(self, pred, timeout, what):
        return self.wait_n(pred, 1, timeout, what)

    def when(self, pred):
        got = self.find(pred)
        return got[0][0] if got else None

    def ready_pids(self):
        return [v["pid"] for _, v in self.find(lambda v: v["event"] == "ready")]

    def worker_pids(self):
        return [v["pid"] for _, v in self.find(lambda v: v["event"] == "spawned")]

    def close(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for pid in self.worker_pids():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def row(fault, load, extra=""):
    rate = load.sent / max(1e-9, load.ended - load.began)
    return {
        "fault": fault,
        "load": f"{load.conns} keep-alive conns, ~{rate:.0f} req/s",
        "sent": load.sent,
        "failed": load.failed,
        "refused": load.refused,
        "failures": sorted({k for _, k in load.failures}),
        "note": extra,
    }


BASE_ENV = {"RESPONSE_DELAY_MS": "20"}


def kill9_worker():
    sup = Sup([], BASE_ENV)
    try:
        load = Load(sup.port).start()
        time.sleep(SECONDS / 3)
        victim = sup.ready_pids()[0]
        t = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        sup.wait_n(lambda v: v["event"] == "ready", 3, 20, "a replacement")
        recovered = sup.find(lambda v: v["event"] == "ready")[2][0] - t
        time.sleep(max(0.0, SECONDS - SECONDS / 3 - (time.monotonic() - t)))
        load.stop()
        r = row("kill -9 of a worker", load, "the failed ones were in flight in the killed worker")
        r["recovered_s"] = round(recovered, 2)
        return r
    finally:
        sup.close()


def sigstop_worker():
    sup = Sup(["--heartbeat-timeout", "3s"], BASE_ENV)
    try:
        load = Load(sup.port).start()
        time.sleep(SECONDS / 3)
        victim = sup.ready_pids()[0]
        t = time.monotonic()
        os.kill(victim, signal.SIGSTOP)
        killed = sup.wait(lambda v: v["event"] == "killed" and v["pid"] == victim, 20, "the heartbeat kill")
        caught = sup.when(lambda v: v["event"] == "killed" and v["pid"] == victim) - t
        sup.wait_n(lambda v: v["event"] == "ready", 3, 20, "a replacement")
        recovered = sup.find(lambda v: v["event"] == "ready")[2][0] - t
        time.sleep(max(0.0, SECONDS - SECONDS / 3 - (time.monotonic() - t)))
        load.stop()
        r = row(
            "worker hung (SIGSTOP), --heartbeat-timeout 3s",
            load,
            f"caught by the heartbeat after {caught:.1f} s ({killed['why'][:40]}…); the failed ones were its connections",
        )
        r["recovered_s"] = round(recovered, 2)
        return r
    finally:
        sup.close()


def never_listens():
    flag = os.path.join(tempfile.mkdtemp(prefix="leakhound-faults-"), "broken-deploy")
    sup = Sup(["--ready-timeout", "3s"], {**BASE_ENV, "NEVER_LISTEN_FILE": flag})
    try:
        load = Load(sup.port).start()
        time.sleep(1)
        open(flag, "w").close()
        t = time.monotonic()
        sup.p.send_signal(signal.SIGHUP)  # a rolling restart onto the broken deploy
        sup.wait(lambda v: v["event"] == "replacement-failed", 20, "the replacement's failure")
        said = sup.when(lambda v: v["event"] == "replacement-failed") - t
        time.sleep(max(0.0, SECONDS - (time.monotonic() - t)))
        load.stop()
        fails = sup.find(lambda v: v["event"] == "replacement-failed")
        old_serving = all(alive(p) for p in sup.ready_pids()[:2])
        r = row(
            "replacement never listens (--ready-timeout 3s)",
            load,
            f"timed out after {said:.1f} s, said in {len(fails)} replacement-failed event(s) in {SECONDS:.0f} s "
            f"(retried with backoff); old workers {'kept serving' if old_serving else 'GONE'}",
        )
        r["recovered_s"] = None
        return r
    finally:
        os.remove(flag) if os.path.exists(flag) else None
        sup.close()


def full_disk():
    d = tempfile.mkdtemp(prefix="leakhound-faults-disk-")
    mnt = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m,mode=0700", "tmpfs", d], capture_output=True, text=True)
    if mnt.returncode != 0:
        return {"fault": "full disk during --snapshot-before-restart", "skipped": f"cannot mount a tmpfs: {mnt.stderr.strip()}"}
    sup = None
    try:
        env = {**BASE_ENV, "LEAK_HEAP_KB_PER_S": "4000"}
        sup = Sup(["--max-heap", "30MB", "--snapshot-before-restart", d, "--snapshot-min-free", "1MB", "--snapshot-keep", "5"], env)
        load = Load(sup.port).start()
        # The disk fills (another writer) once the snapshot is under way.
        draining = sup.wait(lambda v: v["event"] == "draining", 40, "a memory restart")
        t = sup.when(lambda v: v["event"] == "restart")
        with open(os.path.join(d, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
            except OSError:
                pass
        victim = draining["pid"]
        sup.wait(lambda v: v["event"] == "exited" and v["pid"] == victim, 60, "the old worker's exit")
        done = sup.when(lambda v: v["event"] == "exited" and v["pid"] == victim)
        time.sleep(1)
        load.stop()
        outcome = sup.find(lambda v: v["event"] in ("snapshot", "snapshot-skipped") and v["pid"] == victim)
        parts = [n for n in os.listdir(d) if n.endswith(".part")]
        what = outcome[0][1] if outcome else {"event": "none"}
        note = (
            f"{what['event']}: {what.get('why', what.get('path', ''))[:70]}; "
            f"restart done (old worker exited {done - t:.1f} s after the trigger); .part files left: {len(parts)}"
        )
        r = row("full disk during --snapshot-before-restart (160 MiB tmpfs)", load, note)
        r["recovered_s"] = round(done - t, 2)
        r["parts_left"] = len(parts)
        return r
    finally:
        if sup:
            sup.close()
        subprocess.run(["umount", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def sigterm_supervise():
    sup = Sup([], BASE_ENV)
    try:
        load = Load(sup.port).start()
        time.sleep(SECONDS / 2)
        pids = sup.worker_pids()
        t = time.monotonic()
        sup.p.send_signal(signal.SIGTERM)
        sup.p.wait(30)
        took = time.monotonic() - t
        time.sleep(0.5)
        load.stop()
        left = [p for p in pids if alive(p)]
        r = row("SIGTERM to supervise", load, f"drained and exited in {took:.2f} s (code {sup.p.returncode}); workers left: {len(left)}; refused after the socket closed: {load.refused}")
        r["recovered_s"] = None
        return r
    finally:
        sup.close()


def sigkill_supervise():
    sup = Sup([], BASE_ENV)
    try:
        load = Load(sup.port).start()
        time.sleep(SECONDS / 2)
        pids = sup.worker_pids()
        sup.p.kill()
        sup.p.wait(10)
        t = time.monotonic()
        while any(alive(p) for p in pids) and time.monotonic() - t < 5:
            time.sleep(0.01)
        gone_in = time.monotonic() - t
        time.sleep(0.5)
        load.stop()
        left = [p for p in pids if alive(p)]
        r = row("SIGKILL to supervise", load, f"orphaned workers: {len(left)} (all gone {gone_in:.2f} s after); the failed ones were in flight")
        r["recovered_s"] = None
        r["orphans"] = len(left)
        return r
    finally:
        sup.close()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def run_app_killed(when):
    keep = tempfile.mkdtemp(prefix="leakhound-faults-run-")
    port = free_port()
    cmd = [BIN, "run", "--load", f"http://127.0.0.1:{port}/item?id=1", "--snapshots", "5", "--requests", "20000",
           "--keep", keep, "--", "node", os.path.join(ROOT, "fixtures", "leaks", "global-array.js")]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PORT": str(port)})
    try:
        t0 = time.monotonic()
        app = None
        while time.monotonic() - t0 < 30 and app is None:
            kids = children(p.pid)
            app = kids[0] if kids else None
            time.sleep(0.02)
        if when == "mid-snapshot":
            while time.monotonic() - t0 < 60 and not any(n.endswith(".part") for n in os.listdir(keep)):
                time.sleep(0.002)
        else:
            # Once the app answers, leakhound's load round is under way.
            while time.monotonic() - t0 < 30:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            time.sleep(0.05)
        seen_part = any(n.endswith(".part") for n in os.listdir(keep))
        t = time.monotonic()
        os.kill(app, signal.SIGKILL)
        err = p.communicate(timeout=60)[1]
        took = time.monotonic() - t
        parts = [n for n in os.listdir(keep) if n.endswith(".part")]
        orphans = [c for c in [app] + children(p.pid) if alive(c)]
        last = (err.strip().splitlines() or [""])[-1]
        return {
            "fault": f"run: app killed {when}",
            "load": "run's own driver",
            "sent": None,
            "failed": None,
            "recovered_s": None,
            "note": f"exit {p.returncode} after {took:.2f} s; .part present at the kill: {seen_part}, left: {len(parts)}; "
                    f"orphans: {len(orphans)}; said: {last[:90]}",
            "parts_left": len(parts),
            "orphans": len(orphans),
        }
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(keep, ignore_errors=True)


def main():
    global BIN, SECONDS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node", default="22", help="Node major from .cache/node (default 22)")
    ap.add_argument("--seconds", type=float, default=8.0, help="load per scenario (default 8)")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--only", help="comma-separated scenario names")
    a = ap.parse_args()
    BIN, SECONDS = leakhound_bin(), a.seconds
    node_bin = os.path.join(ROOT, ".cache", "node", a.node, "bin")
    if os.path.isdir(node_bin):
        os.environ["PATH"] = node_bin + os.pathsep + os.environ["PATH"]
    scenarios = {
        "kill9": kill9_worker,
        "sigstop": sigstop_worker,
        "never-listens": never_listens,
        "full-disk": full_disk,
        "sigterm": sigterm_supervise,
        "sigkill": sigkill_supervise,
        "run-mid-round": lambda: run_app_killed("mid-round"),
        "run-mid-snapshot": lambda: run_app_killed("mid-snapshot"),
    }
    names = a.only.split(",") if a.only else list(scenarios)
    rows = []
    for n in names:
        print(f"... {n}", file=sys.stderr, flush=True)
        rows.append(scenarios[n]())
    print("| fault | load | requests sent | failed | recovered in | what happened |")
    print("|---|---|---:|---:|---:|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['fault']} | | | | | skipped: {r['skipped']} |")
            continue
        rec = f"{r['recovered_s']:.2f} s" if r.get("recovered_s") is not None else "-"
        sent = r["sent"] if r["sent"] is not None else "-"
        failed = r["failed"] if r["failed"] is not None else "-"
        kinds = f" ({', '.join(r['failures'])})" if r.get("failures") else ""
        print(f"| {r['fault']} | {r['load']} | {sent} | {failed}{kinds} | {rec} | {r['note']} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
