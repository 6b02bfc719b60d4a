//! `leakhound run -- node app.js` end to end: every fixture of the
//! diagnosis tests, started by leakhound with its inspector on loopback,
//! loaded by the built-in driver, snapshotted between rounds, diagnosed.
//! Leaks must come out `leak` with the right pattern, controls `no-leak`
//! (a false alarm in CI costs more than a miss), each in a default run;
//! the app must be gone afterwards, on success and on failure.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

const CASES: &[(&str, Option<(&str, &str)>)] = &[
    ("leaks/global-array.js", Some(("global-collection", "requestLogs"))),
    ("leaks/express-sessions.js", Some(("global-collection", "sessions"))),
    ("leaks/listeners.js", Some(("event-listeners", "_events.tick"))),
    ("leaks/interval.js", Some(("timers", "timerListMap"))),
    ("leaks/closure.js", Some(("closure-capture", "pendingCallbacks"))),
    ("leaks/object-keys.js", Some(("object-keyed-map", "contextData"))),
    ("leaks/async-context.js", Some(("async-context", "timerListMap"))),
    ("leaks/sockets.js", Some(("sockets", "TCP"))),
    ("leaks/memo.js", Some(("memoization", "renderPage.cache"))),
    ("leaks/memo-wrapper.js", Some(("memoization", "memo"))),
    ("leaks/subscribers.js", Some(("event-listeners", "feed.#subscribers"))),
    ("controls/lru-cache.js", None),
    // The control of leaks/audit-trail.mjs (see a_field_of_a_map_value_is_named_through_the_map).
    ("controls/audit-trail-trimmed.mjs", None),
    ("controls/warm-cache.js", None),
    ("controls/garbage.js", None),
    ("controls/listeners-removed.js", None),
    ("controls/subscribers-removed.js", None),
];

fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ensure_fixture_modules() {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap();
    if !*done && !fixtures().join("node_modules/express/package.json").exists() {
        let st = Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(fixtures()).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "npm ci in fixtures/ failed");
    }
    *done = true;
}

fn pid_alive(pid: u64) -> bool {
    // A zombie is dead for our purpose; /proc/PID/stat's state says which.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// `leakhound run --json` on one app with `node`; the parsed report.
fn run_app(node: &std::path::Path, app: &str, extra: &[&str]) -> (Output, Option<Value>, Duration) {
    ensure_fixture_modules();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/item?id=1");
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(["run", "--json", "--load", &url])
        .args(extra)
        .arg("--")
        .arg(node)
        .arg(fixtures().join(app))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run leakhound");
    let took = t.elapsed();
    let v = serde_json::from_slice(&out.stdout).ok();
    (out, v, took)
}

fn check(node: &std::path::Path, app: &str, want: Option<(&str, &str)>) -> Result<String, String> {
    let (out, v, took) = run_app(node, app, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let Some(v) = v else {
        return Err(format!("{app}: no JSON report (exit {:?}): {stderr}", out.status.code()));
    };
    let verdict = v["verdict"].as_str().unwrap_or("?");
    let pattern = v["suspects"][0]["pattern"].as_str().unwrap_or("-");
    let acc = v["suspects"][0]["accumulator"]["name"].as_str().unwrap_or("-");
    let row = format!("| {app} | {verdict} | {pattern} | {acc} | {:.1} s |", took.as_secs_f64());
    let mut why = Vec::new();
    if out.status.code() != Some(0) {
        why.push(format!("exit {:?}", out.status.code()));
    }
    if took > Duration::from_secs(60) {
        why.push(format!("took {took:?}, more than 60 s"));
    }
    match want {
        // The header's promise: a control is `no-leak`, not merely "not leak".
        None if verdict != "no-leak" => why.push(format!("control came out {verdict}: {}", v["reason"])),
        None => {}
        Some((p, a)) => {
            if verdict != "leak" {
                why.push(format!("verdict {verdict}: {}", v["reason"]));
            }
            if pattern != p {
                why.push(format!("pattern {pattern}, want {p}"));
            }
            if !acc.contains(a) {
                why.push(format!("accumulator {acc}, want {a}"));
            }
            let s = &v["suspects"][0];
            for key in ["retainer_path", "advice", "accumulator"] {
                if s[key].is_null() {
                    why.push(format!("suspect has no {key}"));
                }
            }
        }
    }
    // The report's own parts: load figures, memory series, snapshots.
    let load = &v["load"];
    if load["requests"].as_u64().unwrap_or(0) < 8000 || load["errors"].as_u64() != Some(0) {
        why.push(format!("load: {load}"));
    }
    if v["samples"].as_array().map_or(0, |a| a.len()) < 4 || v["snapshots"].as_array().map_or(0, |a| a.len()) != 4 {
        why.push("too few samples or snapshots".into());
    }
    let pid = v["pid"].as_u64().unwrap_or(0);
    if pid == 0 || pid_alive(pid) {
        why.push(format!("the app (pid {pid}) is still running"));
    }
    if why.is_empty() {
        Ok(row)
    } else {
        Err(format!("{row} {}\n{}", why.join("; "), stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ")))
    }
}

#[test]
fn every_fixture_gets_the_right_verdict_through_run() {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                if i >= CASES.len() {
                    break;
                }
                let (app, want) = CASES[i];
                let r = check(&node, app, want);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    eprintln!("| fixture | verdict | pattern | accumulator | time |\n|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (_, r) in results {
        match r {
            Ok(row) => eprintln!("{row}"),
            Err(e) => {
                eprintln!("{e}");
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} fixture(s) failed through run:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn run_works_on_node_18_and_24_and_gates_ci() {
    for major in [18, 24] {
        let node = require_node(major);
        let (out, v, _) = run_app(&node, "leaks/global-array.js", &["--fail-on-leak"]);
        let v = v.unwrap_or_else(|| panic!("Node {major}: no report: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(v["verdict"], "leak", "Node {major}: {}", v["reason"]);
        assert!(v["node_version"].as_str().unwrap().starts_with(&format!("v{major}.")), "{}", v["node_version"]);
        assert_eq!(v["suspects"][0]["accumulator"]["name"], "requestLogs");
        // --fail-on-leak: exit 1 on a leak.
        assert_eq!(out.status.code(), Some(1), "Node {major}");
    }
    // A control with --fail-on-leak passes the gate; --max-growth tight enough trips it.
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let (out, v, _) = run_app(&node, "controls/garbage.js", &["--fail-on-leak"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", v.map(|v| v["reason"].clone()));
    let (out, v, _) = run_app(&node, "leaks/global-array.js", &["--fail-on-leak", "--min-growth", "1GB", "--max-growth", "100kB"]);
    let v = v.unwrap();
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    assert!(v["reason"].as_str().unwrap().contains("--max-growth"), "{}", v["reason"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_fails_cleanly_when_the_app_crashes_or_never_answers() {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let tmp = temp_dir();
    // Crashes at start.
    let crash = tmp.path().join("crash.js");
    std::fs::write(&crash, "throw new Error('boom at start');").unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = Command::new(BIN)
        .args(["run", "--load", &url, "--ready-timeout", "10s", "--"])
        .arg(&node)
        .arg(&crash)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("leakhound: error: ") && (last.contains("exit") || last.contains("crash")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Runs but never listens: a clear time-out, and the app is stopped.
    let idle = tmp.path().join("idle.js");
    std::fs::write(&idle, "console.log('pid', process.pid); setInterval(() => {}, 1000);").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--load", &url, "--ready-timeout", "3s", "--"])
        .arg(&node)
        .arg(&idle)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.lines().last().unwrap_or("").contains("did not answer"), "{err}");
    // The app's stdout goes to stderr when ours is not a terminal.
    let pid: u64 = err.lines().find_map(|l| l.strip_prefix("pid ").and_then(|p| p.trim().parse().ok())).expect("the app printed its pid");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!pid_alive(pid), "the app {pid} was left running");
}

/// A Map's value has no name of its own (its table slot is a number): the
/// accumulator is named through the Map the user holds, with the value's
/// private field, and the advice is for a collection kept per key.
#[test]
fn a_field_of_a_map_value_is_named_through_the_map() {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let (out, v, _) = run_app(&node, "leaks/audit-trail.mjs", &[]);
    let v = v.unwrap_or_else(|| panic!("no report: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    let s = &v["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "trails.get(…).#events", "{s}");
    assert_eq!(s["pattern"], "per-key-collection", "{s}");
    // Ten tenants: one trail is the suspect, the nine others are the same shape.
    assert_eq!(s["accumulator"]["similar"], 9, "{s}");
    let advice = s["advice"].as_str().unwrap();
    assert!(advice.starts_with("trails.get(…).#events (Array): every value of trails (Map) keeps its own collection"), "{advice}");
    assert!(advice.contains("evict the keys too"), "{advice}");
    assert!(v["reason"].as_str().unwrap().starts_with("trails.get(…).#events grows in every round"), "{}", v["reason"]);
    assert!(s["location"]["file"].as_str().unwrap().ends_with("fixtures/leaks/audit-trail.mjs"), "{}", s["location"]);
}
