//! `leakhound gclog` end to end: real `node --trace-gc` output written by the
//! fixtures in fixtures/gc during the test, the old-format excerpt of seed
//! article 002, `--trace-gc-nvp` output, and foreign input.
//!
//! The verdicts do not depend on timing: the fixtures force a full GC every
//! 5th tick (`--expose-gc`), so each run has a dozen Mark-Compact lines
//! whatever the machine's speed, and the leak's floor grows ~0.6 MB per full
//! GC while the sawtooth's stays flat to 0.1 MB.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run a fixture under node with the given trace flag; its stdout (the
/// program's output interleaved with the GC lines) goes to a file.
fn node_log(dir: &Path, fixture: &str, flag: &str) -> PathBuf {
    let log = dir.join(format!("{fixture}{flag}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let status = Command::new("node")
        .args([flag, "--expose-gc"])
        .arg(root().join("fixtures/gc").join(format!("{fixture}.js")))
        .stdout(out)
        .status()
        .expect("cannot run node (Node 20 on PATH is needed)");
    assert!(status.success(), "node {fixture}.js failed: {status}");
    log
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run leakhound");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let out = run(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "leakhound {args:?} failed ({}): {stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn kind_count(v: &Value, kind: &str) -> u64 {
    v["by_kind"].as_array().unwrap().iter().find(|k| k["kind"] == kind).map_or(0, |k| k["count"].as_u64().unwrap())
}

#[test]
fn leaking_program_is_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    let log = node_log(dir.path(), "leak", "--trace-gc");
    let v = json(&["gclog", s(&log), "--json"], None);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["command"], "gclog");
    assert_eq!(v["verdict"], "leak", "{v:#}");
    assert!(v["full_gcs"].as_u64().unwrap() >= 12, "{v:#}");
    assert!(kind_count(&v, "mark-compact") >= 12);
    // The program's own lines ("leak.js start", "... done") are skipped.
    assert!(v["skipped_lines"].as_u64().unwrap() >= 2);
    assert!(v["floor_end_mb"].as_f64().unwrap() > v["floor_start_mb"].as_f64().unwrap() + 3.0, "{v:#}");
    assert!(v["floor_trend"]["significant_increasing"].as_bool().unwrap());
    assert!(v["floor_growth_mb_per_hour"].as_f64().unwrap() > 100.0, "{v:#}");
    assert_eq!(v["early_signal"], true);
    assert!(v["gc_ms_per_minute"].as_f64().unwrap() > 0.0);
    assert_eq!(v["timestamps"], true);

    // The human report ends with the verdict line.
    let out = run(&["gclog", s(&log)], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("verdict: leak — the heap floor after full GCs grows "), "{text}");
    assert!(last.contains("Mann-Kendall p < 0.001"), "{text}");
}

#[test]
fn sawtooth_is_not_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    let log = node_log(dir.path(), "sawtooth", "--trace-gc");
    let v = json(&["gclog", s(&log), "--json"], None);
    assert_eq!(v["verdict"], "no-leak", "{v:#}");
    assert!(v["full_gcs"].as_u64().unwrap() >= 12, "{v:#}");
    assert!(kind_count(&v, "scavenge") > 0, "{v:#}");
    assert!(!v["floor_trend"]["significant_increasing"].as_bool().unwrap(), "{v:#}");
    assert_eq!(v["early_signal"], false);
    let text = String::from_utf8(run(&["gclog", s(&log)], None).stdout).unwrap();
    assert!(text.lines().last().unwrap().starts_with("verdict: no-leak — "), "{text}");
}

#[test]
fn nvp_output_parses() {
    let dir = tempfile::tempdir().unwrap();
    let log = node_log(dir.path(), "leak", "--trace-gc-nvp");
    let v = json(&["gclog", s(&log), "--json"], None);
    assert_eq!(v["formats"], serde_json::json!(["trace-gc-nvp"]), "{v:#}");
    assert!(kind_count(&v, "mark-compact") >= 12, "{v:#}");
    assert!(kind_count(&v, "scavenge") > 0, "{v:#}");
    // Every line is either a GC event or the program's own output.
    let lines = std::fs::read_to_string(&log).unwrap().lines().count() as u64;
    assert_eq!(v["gc_events"].as_u64().unwrap() + v["skipped_lines"].as_u64().unwrap(), lines);
    assert_eq!(v["verdict"], "leak", "{v:#}");
}

#[test]
fn seed_article_excerpt() {
    let path = root().join("crates/leakhound/tests/data/seed-002-trace-gc.log");
    let v = json(&["gclog", s(&path), "--json"], None);
    assert_eq!(v["formats"], serde_json::json!(["trace-gc-old"]));
    assert_eq!(v["gc_events"], 7, "{v:#}");
    assert_eq!(kind_count(&v, "mark-sweep"), 7);
    assert_eq!(v["floor_start_mb"], 10.9);
    assert_eq!(v["floor_end_mb"], 235.7);
    assert_eq!(v["max_pause_ms"], 357.3);
    // Pauses grow from ~20 ms to ~350 ms as the heap grows.
    assert!(v["pause_growth_ms_per_hour"].as_f64().unwrap() > 0.0, "{v:#}");
    assert!(v["pause_trend"]["slope_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["floor_growth_mb_per_hour"].as_f64().unwrap() > 0.0);
    // 7 full GCs in two clusters: Mann-Kendall's p is ~0.05, not < 0.01,
    // but the floor grew twentyfold and stayed: a leak, by its size.
    assert!(v["floor_trend"]["p_value"].as_f64().unwrap() > 0.01, "{v:#}");
    assert_eq!(v["verdict"], "leak", "{v:#}");
    assert!(v["reason"].as_str().unwrap().contains("10.9 MiB to 235.7 MiB"), "{v:#}");
    // Same through stdin.
    let bytes = std::fs::read(&path).unwrap();
    let w = json(&["gclog", "-", "--json"], Some(&bytes));
    assert_eq!(w["gc_events"], 7);
    assert_eq!(w["file"], "<stdin>");
}

#[test]
fn old_format_without_timestamps_uses_line_order() {
    let text: String = (0..10).map(|i| format!("Mark-sweep {}.0 (48.5) -> {}.0 (48.5) MB, 25.0 ms [x]\n", 20 + i, 10 + i)).collect();
    let v = json(&["gclog", "-", "--json"], Some(text.as_bytes()));
    assert_eq!(v["timestamps"], false);
    assert_eq!(v["notes"].as_array().unwrap().len(), 1);
    assert_eq!(v["verdict"], "leak");
}

fn assert_one_error_line(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("leakhound: error: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("package.json");
    std::fs::write(&f, "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\"\n}\n").unwrap();
    let out = run(&["gclog", s(&f)], None);
    assert_one_error_line(&out, &format!("no --trace-gc lines found in {}", s(&f)));
    let out = run(&["gclog", s(&f), "--json"], None);
    assert_one_error_line(&out, "package.json");
    let missing = dir.path().join("nope.log");
    assert_one_error_line(&run(&["gclog", s(&missing)], None), "nope.log");
    assert_one_error_line(&run(&["gclog", "-"], Some(b"")), "<stdin>");
    let bad = run(&["gclog", s(&f), "--min-growth", "fast"], None);
    assert_eq!(bad.status.code(), Some(2));
}
