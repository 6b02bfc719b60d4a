//! `leakhound supervise` in a container: `--max-rss auto` and the workers'
//! `--max-old-space-size` from a real cgroup v1 limit, a real OOM kill
//! under load (detected, reported, counted, replaced, no request lost),
//! and leakhound as PID 1 of a real PID namespace (`unshare --pid --fork`):
//! it reaps orphaned zombies and drains on SIGTERM.
//!
//! The cgroup tests make their own child of /sys/fs/cgroup/memory and
//! remove it after (also on failure); without root or a writable memory
//! controller they print a SKIP line and return.

mod supervise_support;

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use supervise_support::*;

const MIB: u64 = 1024 * 1024;

/// A cgroup of this test, removed on drop once its processes are gone.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(test: &str, limit: Option<u64>) -> Option<Cgroup> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new("/sys/fs/cgroup/memory").join(format!(
            "leakhound-test-{}-s{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!(
                "SKIP {test}: cannot create the cgroup {} ({e}); needs root and a writable cgroup v1 memory controller",
                dir.display()
            );
            return None;
        }
        let cg = Cgroup(dir);
        if let Some(l) = limit {
            std::fs::write(cg.0.join("memory.limit_in_bytes"), l.to_string()).unwrap();
        }
        Some(cg)
    }

    /// `leakhound supervise --json --listen 127.0.0.1:0 ARGS -- node NODE_ARGS`,
    /// moved into this cgroup before it runs (so are its workers).
    fn supervise(&self, args: &[&str], env: &[(&str, &str)], node_args: &[&str]) -> Supervised {
        Supervised::start_cmd(self.command(args, env, node_args))
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)], node_args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("supervise").args(["--json", "--listen", "127.0.0.1:0"]).args(args).arg("--").arg("node").args(node_args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let procs = std::ffi::CString::new(self.0.join("cgroup.procs").to_string_lossy().as_bytes()).unwrap();
        // SAFETY: between fork and exec only async-signal-safe calls (open, write, close).
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0": the writing process itself.
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        cmd
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let t = Instant::now();
        while std::fs::remove_dir(&self.0).is_err() && self.0.exists() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.0.exists() {
            eprintln!("warning: could not remove the test cgroup {}", self.0.display());
        }
    }
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

fn two_ready(sup: &mut Supervised) -> Vec<u32> {
    sup.wait_until("two ready workers", Duration::from_secs(20), |evs| {
        let r: Vec<u32> = evs.iter().filter(|e| e["event"] == "ready").map(|e| e["pid"].as_u64().unwrap() as u32).collect();
        (r.len() >= 2).then_some(r)
    })
}

/// 1 GiB, two workers: `--max-rss auto` = (80% of 1 GiB − 64 MiB) / 2 and
/// each worker runs with `--max-old-space-size=320` (75% of 512 MiB − 64);
/// a command that sets its own heap size keeps it; without a limit `auto`
/// is refused with one line.
#[test]
fn max_rss_auto_and_heap_fit() {
    let Some(cg) = Cgroup::new("max_rss_auto_and_heap_fit", Some(1024 * MIB)) else { return };
    let mut sup = cg.supervise(&["--workers", "2", "--max-rss", "auto"], &[], &[&fixture("app.js")]);
    let c = sup.wait_for("the container event", Duration::from_secs(10), |e| e["event"] == "container");
    assert_eq!(c["limit"], 1024 * MIB);
    assert_eq!(c["max_rss"], ((1024.0 * 0.8 - 64.0) / 2.0 * MIB as f64) as u64, "{c}");
    assert_eq!(c["max_old_space_size_mb"], 320);
    assert!(c["heap"].as_str().unwrap().contains("75% of 512.0 MiB"), "{c}");
    for pid in two_ready(&mut sup) {
        assert!(cmdline(pid).contains("--max-old-space-size=320"), "{}", cmdline(pid));
    }
    assert!(sup.stop().success());

    let mut sup = cg.supervise(&["--workers", "2"], &[], &["--max-old-space-size=200", &fixture("app.js")]);
    let c = sup.wait_for("the container event", Duration::from_secs(10), |e| e["event"] == "container");
    assert_eq!(c["max_old_space_size_mb"], Value::Null);
    assert_eq!(c["max_rss"], Value::Null);
    assert!(c["heap"].as_str().unwrap().contains("--max-old-space-size=200"), "{c}");
    for pid in two_ready(&mut sup) {
        let cl = cmdline(pid);
        assert!(cl.contains("--max-old-space-size=200") && cl.matches("max-old-space-size").count() == 1, "{cl}");
    }
    assert!(sup.stop().success());
    drop(cg);

    let Some(free) = Cgroup::new("max_rss_auto_and_heap_fit (no limit)", None) else { return };
    let o = free.command(&["--max-rss", "auto"], &[], &[&fixture("app.js")]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--max-rss auto: this process has no memory limit"), "{stderr}");
}

/// GET on loopback, one request per connection.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

/// 256 MiB, two workers under load: the first worker process stops
/// accepting and leaks 50 MB/s of Buffers (outside the heap, so the
/// kernel, not V8, stops it). The OOM kill is reported as such, counted in
/// `leakhound_worker_oom_kills_total`, the worker is replaced, and the
/// other worker, which serves every request meanwhile, loses none.
#[test]
fn oom_kill_is_detected_counted_and_replaced() {
    let Some(cg) = Cgroup::new("oom_kill_is_detected_counted_and_replaced", Some(256 * MIB)) else { return };
    let once = tempfile::tempdir().unwrap();
    let once_file = once.path().join("leaked");
    let mut sup = cg.supervise(
        &["--workers", "2", "--metrics", "127.0.0.1:0", "--backoff", "100ms"],
        &[("OOM_ONCE_FILE", once_file.to_str().unwrap())],
        &[&fixture("app.js")],
    );
    let metrics =
        sup.wait_for("the metrics endpoint", Duration::from_secs(10), |e| e["event"] == "metrics")["url"].as_str().unwrap().to_string();
    let metrics_port: u16 = metrics.trim_start_matches("http://").split(['/', ':']).nth(1).unwrap().parse().unwrap();
    two_ready(&mut sup);
    let leaker: u32 = std::fs::read_to_string(&once_file).unwrap().trim().parse().unwrap();

    let url = format!("http://127.0.0.1:{}/", sup.port);
    let mut cfg = loadgen::LoadConfig::new(vec![loadgen::Request::get(&url).unwrap()], 8, loadgen::Stop::Duration(Duration::from_secs(8)));
    cfg.timeout = Duration::from_secs(10);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = rt.block_on(loadgen::run(&cfg, None, None)).expect("load run");

    let oom = sup.wait_for("the oom-killed event", Duration::from_secs(15), |e| e["event"] == "oom-killed");
    assert_eq!(oom["pid"], leaker);
    let slot = oom["worker"].as_u64().unwrap();
    let other = 1 - slot;
    assert!(oom["oom_kills"].as_u64().unwrap() >= 1);
    let crashed = sup.wait_for("the crash event", Duration::from_secs(5), |e| e["event"] == "crashed" && e["pid"] == leaker);
    assert!(crashed["status"].as_str().unwrap().contains("OOM killer"), "{crashed}");
    let replacement =
        sup.wait_for("the replacement", Duration::from_secs(15), |e| e["event"] == "ready" && e["worker"] == slot && e["pid"] != leaker);
    let body = get(metrics_port, "/metrics").expect("metrics");
    assert!(body.contains(&format!("leakhound_worker_oom_kills_total{{worker=\"{slot}\"}} 1")), "{body}");
    assert!(body.contains(&format!("leakhound_worker_oom_kills_total{{worker=\"{other}\"}} 0")), "{body}");
    eprintln!(
        "load: {} requests, {} ok, {} errors {:?}, {} non-2xx; OOM kill of pid {leaker}, replaced by pid {}",
        report.requests, report.ok, report.errors, report.errors_by_kind, report.non_2xx, replacement["pid"]
    );
    assert!(report.requests > 500, "too little load to mean anything: {}", report.requests);
    assert_eq!(report.errors, 0, "{:?}", report.errors_by_kind);
    assert_eq!(report.non_2xx, 0);
    assert!(sup.stop().success());
}

fn ppid_and_state(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.to_string();
    Some((f.next()?.parse().ok()?, state))
}

fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some((ppid, state)) = ppid_and_state(pid) {
            if ppid == parent {
                out.push((pid, state));
            }
        }
    }
    out
}

/// leakhound as PID 1 of a new PID namespace: orphans of its workers
/// become its children; it reaps them when they end (no zombie stays), and
/// SIGTERM drains the worker and ends it with status 0.
#[test]
fn pid1_reaps_orphans_and_drains_on_sigterm() {
    let unshare = ["/usr/bin/unshare", "/bin/unshare"].into_iter().find(|p| Path::new(p).exists());
    let Some(unshare) = unshare else {
        eprintln!("SKIP pid1_reaps_orphans_and_drains_on_sigterm: no unshare(1) (util-linux)");
        return;
    };
    let probe = Command::new(unshare).args(["--pid", "--fork", "--mount-proc", "true"]).status();
    if !probe.as_ref().is_ok_and(|s| s.success()) {
        eprintln!("SKIP pid1_reaps_orphans_and_drains_on_sigterm: cannot make a PID namespace here ({probe:?}); needs root");
        return;
    }
    let mut cmd = Command::new(unshare);
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        BIN,
        "supervise",
        "--json",
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "200ms",
        "--",
        "node",
    ])
    .arg(fixture("app.js"))
    .env("ORPHANS", "3");
    let mut sup = Supervised::start_cmd(cmd);
    let ready = sup.wait_for("the worker", Duration::from_secs(20), |e| e["event"] == "ready");
    // The worker's pid as the namespace sees it: 2 or so.
    assert!(ready["pid"].as_u64().unwrap() < 100, "{ready}");
    // leakhound's pid outside: the child of unshare.
    let t = Instant::now();
    let leakhound = loop {
        if let Some((pid, _)) = children_of(sup.pid()).first() {
            break *pid;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "no child of unshare");
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = std::fs::read_to_string(format!("/proc/{leakhound}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap().to_string();
    assert!(nspid.split_whitespace().last() == Some("1"), "leakhound is not PID 1 of its namespace: {nspid}");
    // The three orphaned sleeps were reparented to leakhound...
    let worker_outside: Vec<u32> =
        children_of(leakhound).into_iter().filter(|(p, _)| cmdline(*p).contains("app.js")).map(|(p, _)| p).collect();
    let mut adopted = std::collections::BTreeSet::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        for (pid, _) in children_of(leakhound) {
            if !worker_outside.contains(&pid) {
                adopted.insert(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(adopted.len() >= 3, "expected the worker's 3 orphans to become leakhound's children, saw {adopted:?}");
    // ...and, once ended, reaped: no zombie left.
    let zombies: Vec<(u32, String)> = children_of(leakhound).into_iter().filter(|(_, s)| s == "Z").collect();
    assert!(zombies.is_empty(), "zombies of PID 1: {zombies:?}");

    signal(leakhound, libc::SIGTERM);
    let status = sup.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", sup.transcript());
    let events = sup.events();
    assert!(events.iter().any(|e| e["event"] == "stopping" && e["why"].as_str().unwrap().starts_with("SIGTERM")), "{}", sup.transcript());
    assert!(events.iter().any(|e| e["event"] == "exited" && e["drain_ms"].is_u64()), "{}", sup.transcript());
    assert!(events.iter().any(|e| e["event"] == "stopped"));
    for p in worker_outside {
        assert!(!alive(p), "worker {p} outlived leakhound");
    }
}

/// A snapshot before a restart must fit the container's headroom: in a
/// 192 MiB cgroup a worker restarted at a 40-50 MB heap (a snapshot can
/// need 24 times that) while its replacement already runs gets no
/// snapshot, and the event says why; the restart itself happens, and no
/// OOM kill. (With 2x allowed, the same worker was OOM-killed while
/// writing its snapshot.)
#[test]
fn snapshot_that_would_not_fit_the_container_is_skipped() {
    let Some(cg) = Cgroup::new("snapshot_that_would_not_fit_the_container_is_skipped", Some(192 * MIB)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    let mut sup = cg.supervise(
        &["--max-heap", "40MB", "--snapshot-before-restart", snaps.to_str().unwrap(), "--snapshot-min-free", "1MB"],
        &[("LEAK_HEAP_KB_PER_S", "8000")],
        &[&fixture("app.js")],
    );
    let skipped = sup.wait_for("a skipped snapshot", Duration::from_secs(30), |e| e["event"] == "snapshot-skipped");
    let why = skipped["why"].as_str().unwrap();
    assert!(why.contains("the container has") && why.contains("OOM-kill the container"), "{why}");
    sup.wait_for("the restarted worker's exit", Duration::from_secs(20), |e| e["event"] == "exited" && e["pid"] == skipped["pid"]);
    assert_eq!(sup.count(|e| e["event"] == "oom-killed"), 0, "{}", sup.transcript());
    assert_eq!(sup.count(|e| e["event"] == "snapshot"), 0);
    assert!(sup.stop().success());
    assert_eq!(std::fs::read_dir(&snaps).map(|d| d.count()).unwrap_or(0), 0, "no snapshot file, not even a partial one");
}
