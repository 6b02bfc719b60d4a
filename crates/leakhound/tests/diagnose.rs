//! `leakhound diagnose` and `leakhound diff` on real snapshots of the
//! fixture apps under `fixtures/`: each app is loaded by
//! `fixtures/harness.js`, which serves a warm-up and then three rounds of
//! 300 requests to itself and writes a heap snapshot after each round.
//! Every leak must be found with the right pattern, the right accumulator
//! first and its source line; every control must come out `no-leak`.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

struct Case {
    app: &'static str,
    /// (pattern, a substring of the accumulator's name, the source line) for a leak; None for a control.
    leak: Option<(&'static str, &'static str, Option<u32>)>,
    /// Leaked objects counted per step of 300 requests, (least, most): one
    /// per request, two where each request leaks a pair (a keyed entry's key
    /// and value, a socket and its handle); every one counted.
    per_step: (u64, u64),
}

const CASES: &[Case] = &[
    Case { app: "leaks/global-array.js", leak: Some(("global-collection", "requestLogs", Some(7))), per_step: (300, 300) },
    Case { app: "leaks/express-sessions.js", leak: Some(("global-collection", "sessions", Some(8))), per_step: (600, 600) },
    Case { app: "leaks/listeners.js", leak: Some(("event-listeners", "_events.tick", Some(13))), per_step: (300, 300) },
    Case { app: "leaks/interval.js", leak: Some(("timers", "timerListMap", Some(8))), per_step: (300, 300 + KEEP_ALIVE) },
    Case { app: "leaks/closure.js", leak: Some(("closure-capture", "pendingCallbacks", Some(12))), per_step: (300, 300) },
    Case { app: "leaks/object-keys.js", leak: Some(("object-keyed-map", "contextData", Some(8))), per_step: (600, 600) },
    Case { app: "leaks/async-context.js", leak: Some(("async-context", "timerListMap", Some(20))), per_step: (300, 300 + KEEP_ALIVE) },
    Case { app: "leaks/sockets.js", leak: Some(("sockets", "TCP", None)), per_step: (600, 600 + KEEP_ALIVE) },
    Case { app: "leaks/memo.js", leak: Some(("memoization", "renderPage.cache", Some(7))), per_step: (600, 600) },
    Case { app: "leaks/memo-wrapper.js", leak: Some(("memoization", "memo", Some(9))), per_step: (300, 300) },
    Case { app: "leaks/subscribers.js", leak: Some(("event-listeners", "feed.#subscribers", Some(25))), per_step: (300, 300) },
    Case { app: "controls/lru-cache.js", leak: None, per_step: (0, 0) },
    Case { app: "controls/warm-cache.js", leak: None, per_step: (0, 0) },
    Case { app: "controls/garbage.js", leak: None, per_step: (0, 0) },
    Case { app: "controls/listeners-removed.js", leak: None, per_step: (0, 0) },
    Case { app: "controls/subscribers-removed.js", leak: None, per_step: (0, 0) },
];

/// The harness's keep-alive connections (its default `--concurrency 8`).
/// Each holds a server socket with its idle Timeout; they are replaced
/// between snapshots and, for the timer and socket leaks, fall in the same
/// group as the leaked Timeouts and sockets, so a step may count up to this
/// many more.
const KEEP_ALIVE: u64 = 8;

fn node() -> PathBuf {
    find_node(20).unwrap_or_else(|_| any_node())
}

fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

/// express for the express fixture: installed by scripts/test.sh; here as a fallback.
fn ensure_fixture_modules() {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap();
    if *done {
        return;
    }
    if !fixtures().join("node_modules/express/package.json").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(fixtures())
            .status()
            .expect("npm is needed to install the fixtures' express");
        assert!(st.success(), "npm ci in fixtures/ failed");
    }
    *done = true;
}

/// Run the harness on one app: three snapshots in `dir`.
fn snapshots(app: &str, dir: &Path, count: usize) -> Vec<PathBuf> {
    ensure_fixture_modules();
    let out = Command::new(node())
        .arg(fixtures().join("harness.js"))
        .arg(fixtures().join(app))
        .arg(dir)
        .args(["--snapshots", &count.to_string(), "--requests", "300", "--warmup", "300"])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run node");
    assert!(out.status.success(), "harness failed on {app}: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from).collect();
    assert_eq!(files.len(), count, "harness wrote {files:?}");
    files
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("cannot run leakhound")
}

fn diagnose_json(files: &[PathBuf], extra: &[&str]) -> Value {
    let mut args: Vec<&str> = vec!["diagnose", "--json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(extra);
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "leakhound {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e})"))
}

/// One row of the confusion table: what the fixture got.
fn check(case: &Case) -> Result<String, String> {
    let tmp = temp_dir();
    let files = snapshots(case.app, tmp.path(), 3);
    let d = diagnose_json(&files, &[]);
    let verdict = d["verdict"].as_str().unwrap_or("?").to_string();
    let first = &d["suspects"][0];
    let pattern = first["pattern"].as_str().unwrap_or("-").to_string();
    let acc = first["accumulator"]["name"].as_str().unwrap_or("-").to_string();
    let line = first["location"]["line"].as_u64();
    let per_step: Vec<u64> = first["objects_per_step"].as_array().map_or(Vec::new(), |a| a.iter().filter_map(Value::as_u64).collect());
    let row =
        format!("| {} | {} | {} | {} | {} | {:?} |", case.app, verdict, pattern, acc, line.map_or("-".into(), |l| l.to_string()), per_step);
    match case.leak {
        None => {
            if verdict != "no-leak" {
                return Err(format!("{row}\ncontrol {} came out {verdict}: {}", case.app, first));
            }
        }
        Some((want_pattern, want_acc, want_line)) => {
            let mut why = Vec::new();
            if verdict != "leak" {
                why.push(format!("verdict {verdict}"));
            }
            if pattern != want_pattern {
                why.push(format!("pattern {pattern}, want {want_pattern}"));
            }
            if !acc.contains(want_acc) {
                why.push(format!("accumulator {acc:?}, want one containing {want_acc:?}"));
            }
            // The path names the accumulator and reaches a leaked object.
            let path = first["path_text"].as_str().unwrap_or("");
            let steps = first["retainer_path"].as_array().map_or(0, |v| v.len());
            if steps == 0 {
                why.push("empty retainer path".into());
            }
            if let Some(l) = want_line {
                let file = first["location"]["file"].as_str().unwrap_or("");
                if line != Some(l as u64) || !file.ends_with(case.app) {
                    why.push(format!("location {file}:{line:?}, want {}:{l}", case.app));
                }
            }
            // Every step grew, and every leaked object was counted.
            let (lo, hi) = case.per_step;
            if per_step.len() != 2 || per_step.iter().any(|&x| x < lo || x > hi) {
                why.push(format!("objects per step {per_step:?}, want {lo}..={hi} in each of 2 steps"));
            }
            if first["advice"].as_str().unwrap_or("").len() < 40 {
                why.push("no advice".into());
            }
            if !why.is_empty() {
                return Err(format!("{row}\n{}: {} (path: {path})", case.app, why.join("; ")));
            }
        }
    }
    Ok(row)
}

#[test]
fn fixtures_get_the_right_verdict_pattern_and_accumulator() {
    // Two at a time: each harness is one Node process.
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, Result<String, String>)>> = Mutex::new(Vec::new());
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
                let r = check(&CASES[i]);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    eprintln!("| fixture | verdict | pattern | accumulator | line | objects per step |\n|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (_, r) in &results {
        match r {
            Ok(row) => eprintln!("{row}"),
            Err(e) => {
                eprintln!("{}", e.lines().next().unwrap_or(""));
                failures.push(e.clone());
            }
        }
    }
    assert!(failures.is_empty(), "{} fixture(s) misdiagnosed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn diff_counts_new_and_deleted_objects_by_class() {
    let tmp = temp_dir();
    let files = snapshots("leaks/global-array.js", tmp.path(), 2);
    let out = run(&["diff", "--json", files[0].to_str().unwrap(), files[1].to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["schema_version"], 1);
    let rows = d["rows"].as_array().unwrap();
    let log = rows.iter().find(|r| r["class"] == "LogEntry").expect("no LogEntry row");
    // 300 requests between the snapshots, each kept one LogEntry; none freed.
    assert_eq!(log["new_count"], 300, "{log}");
    assert_eq!(log["deleted_count"], 0, "{log}");
    assert_eq!(log["delta_count"], 300, "{log}");
    assert!(log["alloc_size"].as_u64().unwrap() >= 300 * 32);
    // Sorted by size delta, and totals add up.
    let deltas: Vec<i64> = rows.iter().map(|r| r["size_delta"].as_i64().unwrap()).collect();
    assert!(deltas.windows(2).all(|w| w[0] >= w[1]));
    let new_total: u64 = rows.iter().map(|r| r["new_count"].as_u64().unwrap()).sum();
    assert_eq!(d["new_count"].as_u64().unwrap(), new_total);
    // The table form names the same row.
    let text = run(&["diff", files[0].to_str().unwrap(), files[1].to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().any(|l| l.starts_with("LogEntry") && l.contains("+300")), "{text}");
}

/// A count as the text output writes it: digits in groups of three
/// separated by commas (`20,983`), optionally signed.
fn is_count(t: &str) -> bool {
    let t = t.trim_start_matches(['+', '-']);
    let groups: Vec<&str> = t.split(',').collect();
    !t.is_empty()
        && groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn summary_and_diff_write_one_number_format() {
    let tmp = temp_dir();
    let files = snapshots("leaks/global-array.js", tmp.path(), 2);
    let (a, b) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
    let text = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // Header: `FILE: 52,052 nodes, 233,881 edges, 5.0 MB total`; a Node heap has over 1,000 of both.
    let summary = text(&["summary", b, "--top", "5"]);
    let head: Vec<&str> = summary.lines().next().unwrap().rsplit(": ").next().unwrap().split(' ').collect();
    assert!(is_count(head[0]) && head[0].contains(',') && head[1] == "nodes,", "{summary}");
    assert!(is_count(head[2]) && head[2].contains(',') && head[3] == "edges,", "{summary}");
    // The Count column, and the one-line tail with its plural.
    for row in summary.lines().skip(3).take(5) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        let count = cells[cells.len() - 6];
        assert!(is_count(count), "{count:?} in {row:?}");
        let n: u64 = count.replace(',', "").parse().unwrap();
        assert_eq!(n >= 1000, count.contains(','), "{row}");
    }
    assert!(summary.lines().last().unwrap().ends_with(" more classes (--top N to list more)"), "{summary}");
    // diff: `2,860 new objects (581.2 kB), 1,976 deleted (...)`, the # columns likewise.
    let diff = text(&["diff", a, b, "--top", "5"]);
    let head = diff.lines().next().unwrap().rsplit(".heapsnapshot: ").next().unwrap();
    let words: Vec<&str> = head.split(' ').collect();
    assert!(is_count(words[0]) && words[1] == "new" && words[2] == "objects", "{head}");
    let deleted = words.iter().position(|w| *w == "deleted").unwrap();
    assert!(is_count(words[deleted - 1]), "{head}");
    for row in diff.lines().skip(3).take(5) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        let n = cells.len();
        for c in &cells[n - 9..n - 6] {
            assert!(is_count(c), "{c:?} in {row:?}");
        }
    }
    // Sizes follow the unit rule: kB/MB are powers of 1000, never "KB" or "MiB" beside them.
    for t in [&summary, &diff] {
        assert!(!t.contains(" KB") && !t.contains("KiB") && !t.contains("MiB"), "{t}");
    }
}

#[test]
fn diagnose_refuses_too_few_or_misordered_snapshots() {
    let tmp = temp_dir();
    let files = snapshots("leaks/global-array.js", tmp.path(), 3);
    let f: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let one_line_error = |out: &Output, want: &str| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("leakhound: error: ") && err.contains(want), "{err}");
    };
    one_line_error(&run(&["diagnose", f[0], f[1]]), "three or more snapshots");
    one_line_error(&run(&["diagnose", f[2], f[1], f[0]]), "oldest first");
    let missing = tmp.path().join("nope.heapsnapshot");
    one_line_error(&run(&["diagnose", f[0], f[1], missing.to_str().unwrap()]), "nope.heapsnapshot");
    // --fail-on-leak gates CI: exit 1 on this leak.
    let out = run(&["diagnose", "--fail-on-leak", f[0], f[1], f[2]]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Verdict: LEAK"), "{text}");
    assert!(text.contains("requestLogs") && text.contains("fix:"), "{text}");
}

#[test]
fn verdict_is_coloured_on_a_terminal_unless_no_color() {
    // `script` gives leakhound a pseudo-terminal as stdout.
    if Command::new("script").arg("--version").output().is_err() {
        panic!("util-linux `script` is needed for this test");
    }
    let tmp = temp_dir();
    let files = snapshots("leaks/global-array.js", tmp.path(), 3);
    let cmd = format!("{BIN} diagnose --quiet {} {} {}", files[0].display(), files[1].display(), files[2].display());
    let on_tty = |no_color: bool| -> String {
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null()).env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).to_string()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("\x1b[1;31mLEAK\x1b[0m"), "{coloured:?}");
    let plain = on_tty(true);
    assert!(plain.contains("Verdict: LEAK —") && !plain.contains("\x1b[1;31m"), "{plain:?}");
    // Not a terminal: plain, and --quiet prints the verdict line only.
    let out = run(&["diagnose", "--quiet", files[0].to_str().unwrap(), files[1].to_str().unwrap(), files[2].to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("Verdict: LEAK —"), "{text}");
}
