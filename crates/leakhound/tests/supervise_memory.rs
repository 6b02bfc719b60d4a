//! `leakhound supervise`: what memory triggers a restart, and how fast.
//! --max-rss against a worker growing 50 MB/s (measured from outside, in
//! /proc, every 10 ms), --max-heap with heap snapshots kept and capped, the
//! disk-space check, and --restart-on-leak on the post-GC floor's trend.

mod supervise_support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use supervise_support::*;

/// These tests measure how fast leakhound reacts: run them one at a time,
/// not against each other for the 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A worker growing 50 MB/s is restarted before it exceeds --max-rss by
/// more than 60 MB: its peak RSS, from its start to its exit, read by the
/// test every 10 ms, stays under limit + 60 MB, for three restarts in a row.
#[test]
fn rss_growing_50mb_per_s_is_caught_within_60mb() {
    let _serial = serial();
    const LIMIT: u64 = 250_000_000;
    let mut sup = Supervised::start(&["--max-rss", "250MB"], &[("LEAK_RSS_MB_PER_S", "50")], &[&fixture("app.js")]);
    let mut peak: BTreeMap<u32, u64> = BTreeMap::new();
    let t0 = Instant::now();
    let finished = |evs: &[Value]| {
        evs.iter()
            .filter(|e| e["event"] == "exited" && e["drain_ms"].is_u64())
            .map(|e| e["pid"].as_u64().unwrap() as u32)
            .collect::<Vec<_>>()
    };
    while finished(&sup.events()).len() < 3 {
        assert!(t0.elapsed() < Duration::from_secs(45), "fewer than 3 restarts in 45 s:\n{}", sup.transcript());
        for pid in worker_pids(&sup.events()) {
            if let Some(r) = rss(pid) {
                let p = peak.entry(pid).or_insert(0);
                *p = (*p).max(r);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = sup.stop();
    assert!(status.success(), "{}", sup.transcript());
    let events = sup.events();
    for pid in finished(&events).into_iter().take(3) {
        let restart = events.iter().find(|e| e["event"] == "restart" && e["pid"] == pid).expect("restart event");
        assert_eq!(restart["reason"], "rss");
        let decided_at = restart["rss"].as_u64().unwrap();
        let p = peak[&pid];
        eprintln!(
            "pid {pid}: restart decided at {:.1} MB ({}), peak {:.1} MB until exit (limit {:.1} MB)",
            decided_at as f64 / 1e6,
            restart["detail"].as_str().unwrap(),
            p as f64 / 1e6,
            LIMIT as f64 / 1e6
        );
        assert!(decided_at <= LIMIT + 60_000_000, "pid {pid}: decided at {decided_at}");
        assert!(p <= LIMIT + 60_000_000, "pid {pid}: peak RSS {p} exceeds the limit by more than 60 MB\n{}", sup.transcript());
        assert!(p > LIMIT - 80_000_000, "pid {pid}: peak {p}: restarted far too early");
    }
}

/// --max-heap restarts a worker whose heap grows; with
/// --snapshot-before-restart each replaced worker writes a heap snapshot
/// first, only the newest --snapshot-keep 1 stays, none is left
/// half-written, and the kept one is a whole snapshot that shows the
/// leaking class.
#[test]
fn heap_limit_restarts_with_capped_snapshots() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps");
    let snaps_s = snaps.to_string_lossy().into_owned();
    let mut sup = Supervised::start(
        &["--max-heap", "25MB", "--snapshot-before-restart", &snaps_s, "--snapshot-keep", "1", "--snapshot-min-free", "100MB"],
        &[("LEAK_HEAP_KB_PER_S", "4000")],
        &[&fixture("app.js")],
    );
    sup.wait_until("2 snapshots", Duration::from_secs(40), |evs| {
        (evs.iter().filter(|e| e["event"] == "snapshot").count() >= 2).then_some(())
    });
    let status = sup.stop();
    assert!(status.success(), "{}", sup.transcript());
    let events = sup.events();
    for r in events.iter().filter(|e| e["event"] == "restart") {
        assert_eq!(r["reason"], "heap", "{r}");
        assert!(r["heap_used"].as_u64().unwrap() > 25_000_000, "{r}");
    }
    let snapshot_events: Vec<&Value> = events.iter().filter(|e| e["event"] == "snapshot").collect();
    let removed: usize = snapshot_events.iter().map(|e| e["removed"].as_array().unwrap().len()).sum();
    assert!(removed >= 1, "no old snapshot removed:\n{}", sup.transcript());
    let mut files: Vec<String> =
        std::fs::read_dir(&snaps).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert!(files.iter().all(|f| !f.ends_with(".part")), "half-written snapshot left: {files:?}");
    assert_eq!(files.len(), 1, "--snapshot-keep 1: {files:?}");
    // Private: the folder leakhound made is 0700, the snapshot 0600.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&snaps).unwrap().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(snaps.join(&files[0])).unwrap().mode() & 0o777, 0o600);
    // The one kept is the newest written.
    let newest: Vec<String> = snapshot_events
        .iter()
        .rev()
        .take(1)
        .map(|e| std::path::Path::new(e["path"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for n in &newest {
        assert!(files.contains(n), "{n} not kept: {files:?}");
    }
    // Whole, parseable, and showing what leaks.
    let out = std::process::Command::new(BIN).args(["summary", "--json", "--top", "5"]).arg(snaps.join(&newest[0])).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("\"Session\""), "Session (the leaking class) not in the top classes: {summary}");
}

/// Without room on the disk (here: --snapshot-min-free larger than any
/// disk), the restart goes on and the snapshot is skipped with the reason.
#[test]
fn snapshot_is_skipped_without_disk_space() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    let mut sup = Supervised::start(
        &["--max-heap", "20MB", "--snapshot-before-restart", &d, "--snapshot-min-free", "1000000GB"],
        &[("LEAK_HEAP_KB_PER_S", "4000")],
        &[&fixture("app.js")],
    );
    let skipped = sup.wait_for("a skipped snapshot", Duration::from_secs(30), |e| e["event"] == "snapshot-skipped");
    let why = skipped["why"].as_str().unwrap();
    assert!(why.contains("free") && why.contains("--snapshot-min-free"), "{why}");
    sup.wait_for("the old worker's exit", Duration::from_secs(15), |e| e["event"] == "exited" && e["pid"] == skipped["pid"]);
    assert!(sup.stop().success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing may be written");
}

/// --restart-on-leak: a heap that keeps growing (post-GC floor rising at
/// every full GC, heap limit ~180 MB) is restarted for `leak` well before
/// it runs out of heap, with the slope and projection in the event.
#[test]
fn leak_verdict_restarts_before_the_heap_limit() {
    let _serial = serial();
    let mut sup = Supervised::start(
        &["--restart-on-leak", "--leak-horizon", "1h"],
        &[("LEAK_HEAP_KB_PER_S", "2000")],
        &["--max-old-space-size=128", &fixture("app.js")],
    );
    let t0 = Instant::now();
    let r = sup.wait_for("a leak restart", Duration::from_secs(50), |e| e["event"] == "restart");
    let after = t0.elapsed();
    assert_eq!(r["reason"], "leak", "{}", sup.transcript());
    let detail = r["detail"].as_str().unwrap();
    eprintln!("after {after:?}: {detail}");
    assert!(detail.contains("Mann-Kendall") && detail.contains("under --leak-horizon"), "{detail}");
    sup.wait_for("the replacement", Duration::from_secs(15), |e| e["event"] == "exited" && e["pid"] == r["pid"]);
    assert!(sup.stop().success(), "{}", sup.transcript());
    assert_eq!(sup.count(|e| e["event"] == "crashed"), 0, "the worker ran out of heap first:\n{}", sup.transcript());
}
