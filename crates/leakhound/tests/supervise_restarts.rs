//! `leakhound supervise`: memory-triggered rolling restarts under load lose
//! no request, and a crash-looping app is restarted with doubling backoff
//! until leakhound gives up.

mod supervise_support;

use serde_json::Value;
use std::time::{Duration, Instant};
use supervise_support::*;

/// Two workers of a service that keeps 32 kB per request, limited to
/// 110 MB of RSS: each worker passes the limit every ~2,000 requests, so a
/// bounded stream of 15,000 requests over 16 keep-alive connections sees
/// several restarts. Each response takes 5 ms, so requests are in flight
/// whenever a worker is drained. Every request must succeed.
#[test]
fn memory_restarts_under_load_lose_no_request() {
    let mut sup = Supervised::start(
        &["--workers", "2", "--max-rss", "110MB"],
        &[("LEAK_PER_REQUEST_KB", "32"), ("RESPONSE_DELAY_MS", "5")],
        &[&fixture("app.js")],
    );
    sup.wait_until("two ready workers", Duration::from_secs(20), |evs| {
        (evs.iter().filter(|e| e["event"] == "ready").count() >= 2).then_some(())
    });

    let url = format!("http://127.0.0.1:{}/", sup.port);
    let requests = 15_000;
    let mut cfg = loadgen::LoadConfig::new(vec![loadgen::Request::get(&url).unwrap()], 16, loadgen::Stop::Requests(requests));
    cfg.timeout = Duration::from_secs(10);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let t0 = Instant::now();
    let report = rt.block_on(loadgen::run(&cfg, None, None)).expect("load run");
    let took = t0.elapsed();
    // Let the restarts decided during the run complete (the leak grows with
    // traffic only, so no new ones come).
    sup.wait_until("the restarts to complete", Duration::from_secs(20), |evs| {
        let done =
            evs.iter().filter(|r| r["event"] == "restart").all(|r| evs.iter().any(|e| e["event"] == "exited" && e["pid"] == r["pid"]));
        done.then_some(())
    });
    let status = sup.stop();
    let events = sup.events();
    let restarts: Vec<&Value> = events.iter().filter(|e| e["event"] == "restart").collect();
    let drained: Vec<&Value> = events.iter().filter(|e| e["event"] == "exited" && e["drain_ms"].is_u64()).collect();
    eprintln!(
        "{} requests in {:.1} s ({:.0}/s): {} ok, {} errors {:?}, {} non-2xx; {} restarts",
        report.requests,
        took.as_secs_f64(),
        report.requests_per_s,
        report.ok,
        report.errors,
        report.errors_by_kind,
        report.non_2xx,
        restarts.len()
    );
    for r in &restarts {
        eprintln!("  restart pid {} ({}): {}", r["pid"], r["reason"], r["detail"]);
    }
    eprintln!("  drain times (ms): {:?}", drained.iter().map(|e| e["drain_ms"].as_u64().unwrap()).collect::<Vec<_>>());

    assert!(status.success(), "leakhound exit {status}:\n{}", sup.transcript());
    assert_eq!(report.requests, requests);
    assert_eq!(report.errors, 0, "errors: {:?} {:?}\n{}", report.errors_by_kind, report.error_examples, sup.transcript());
    assert_eq!(report.non_2xx, 0);
    assert_eq!(report.ok, requests);
    assert!(
        restarts.iter().filter(|r| r["reason"] == "rss").count() >= 2,
        "fewer than 2 memory restarts during the run:\n{}",
        sup.transcript()
    );
    // Every replaced worker finished its requests and exited by itself,
    // well within the grace period (nobody was killed).
    assert_eq!(sup.count(|e| e["event"] == "killed"), 0, "{}", sup.transcript());
    assert_eq!(sup.count(|e| e["event"] == "crashed"), 0, "{}", sup.transcript());
    for e in &drained {
        assert_eq!(e["status"], "exit code 0", "{e}");
        assert!(e["drain_ms"].as_u64().unwrap() < 10_000, "{e}");
    }
    // Each restart: the replacement was ready before its predecessor drained.
    for r in restarts {
        let old = r["pid"].as_u64().unwrap();
        let slot = r["worker"].as_u64().unwrap();
        let pos = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred);
        let spawned = pos(&|e| e["event"] == "spawned" && e["replaces"] == old).expect("replacement spawned");
        let new = events[spawned]["pid"].as_u64().unwrap();
        assert_eq!(events[spawned]["worker"], slot);
        let ready = pos(&|e| e["event"] == "ready" && e["pid"] == new).expect("replacement ready");
        let draining = pos(&|e| e["event"] == "draining" && e["pid"] == old).expect("old drained");
        assert!(spawned < ready && ready < draining, "order of restart of pid {old}:\n{}", sup.transcript());
    }
    for pid in worker_pids(&events) {
        assert!(!alive(pid), "worker {pid} outlived leakhound");
    }
}

/// An app that throws 100 ms after it starts: each worker is restarted
/// after 100, 200, 400, 800 ms (doubling), and after the 5th crash in a
/// row leakhound stops and exits 2 naming the worker and the exit status.
#[test]
fn crash_loop_backs_off_then_gives_up() {
    let mut sup = Supervised::start(
        &["--workers", "2", "--backoff", "100ms", "--max-crash-restarts", "4"],
        &[("CRASH_AFTER_MS", "100")],
        &[&fixture("crash.js")],
    );
    let status = sup.wait_exit(Duration::from_secs(40));
    let timed = sup.timed_events();
    assert_eq!(status.code(), Some(2), "{}", sup.transcript());
    let other = sup.other.lock().unwrap().clone();
    let last = other.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("leakhound: error: worker ") && last.ends_with("crashed 5 times in a row (last: exit code 1); giving up"),
        "last stderr line: {last}"
    );
    assert!(other.iter().any(|l| l.contains("boom: the database is unreachable")), "the app's own error reaches stderr");

    // Per worker: crash k is followed by a spawn after backoff 100 * 2^(k-1) ms
    // (unless leakhound was stopping by then).
    let stop_at = timed.iter().find(|(_, e)| e["event"] == "stopping").expect("stopping event").0;
    let mut checked = 0;
    for slot in 0..2u64 {
        let mine: Vec<&(Instant, Value)> = timed.iter().filter(|(_, e)| e["worker"] == slot).collect();
        let crashes: Vec<&(Instant, Value)> = mine.iter().copied().filter(|(_, e)| e["event"] == "crashed").collect();
        for (k, (at, c)) in crashes.iter().enumerate() {
            assert_eq!(c["in_a_row"], (k + 1) as u64, "{c}");
            if c["giving_up"] == true {
                continue;
            }
            let want = 100u64 << k;
            assert_eq!(c["backoff_ms"], want, "{c}");
            if *at + Duration::from_millis(want) >= stop_at {
                continue;
            }
            // The next start of this worker, seen by the test.
            let next = mine
                .iter()
                .find(|(t, e)| t > at && e["event"] == "spawned" && e["cause"] == "after-crash")
                .unwrap_or_else(|| panic!("no restart after {c}"));
            let gap = next.0.duration_since(*at);
            assert!(gap >= Duration::from_millis(want), "restart {gap:?} after crash {k} of worker {slot}, backoff {want} ms");
            assert!(gap < Duration::from_millis(want + 1500), "restart {gap:?} after crash {k} of worker {slot}, backoff {want} ms");
            checked += 1;
        }
    }
    // One worker was restarted 4 times, the other at least twice.
    assert!(checked >= 6, "only {checked} backoffs checked:\n{}", sup.transcript());
    assert_eq!(sup.count(|e| e["event"] == "crashed" && e["giving_up"] == true), 1);
    assert_eq!(sup.count(|e| e["event"] == "stopped"), 1);
    std::thread::sleep(Duration::from_millis(100));
    for pid in worker_pids(&sup.events()) {
        assert!(!alive(pid), "worker {pid} outlived leakhound");
    }
}
