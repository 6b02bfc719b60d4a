//! Leaks that the byte threshold alone misses, and bounded structures that
//! only look like leaks, on real snapshots of fixture apps taken by
//! `fixtures/harness.js` (a warm-up, then three rounds of 300 requests).

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;
#[path = "support/schema.rs"]
mod schema;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

fn snapshots(app: &str, dir: &Path, major: u32) -> Vec<PathBuf> {
    assert!(
        fixtures().join("node_modules/lru-cache/package.json").exists(),
        "fixtures/node_modules is missing: run `cd fixtures && npm ci` (scripts/test.sh does)"
    );
    let node = find_node(major).unwrap_or_else(|_| any_node());
    let out = Command::new(node)
        .arg(fixtures().join("harness.js"))
        .arg(fixtures().join(app))
        .arg(dir)
        .args(["--snapshots", "3", "--requests", "300", "--warmup", "300"])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run node");
    assert!(out.status.success(), "harness failed on {app}: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from).collect();
    assert_eq!(files.len(), 3, "harness wrote {files:?}");
    files
}

/// `leakhound diagnose --json` and the text form of the same snapshots.
fn diagnose(app: &str) -> (Value, String) {
    diagnose_on(app, 20)
}

fn diagnose_on(app: &str, major: u32) -> (Value, String) {
    let tmp = temp_dir();
    let files = snapshots(app, tmp.path(), major);
    let run = |json: bool| {
        let mut c = Command::new(BIN);
        c.arg("diagnose");
        if json {
            c.arg("--json");
        }
        let out = c.args(&files).stdin(Stdio::null()).output().expect("cannot run leakhound");
        assert!(out.status.success(), "diagnose {app}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let d: Value = serde_json::from_slice(&run(true)).expect("bad JSON");
    schema::check_schema("diagnose", &d);
    (d, String::from_utf8_lossy(&run(false)).into_owned())
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_u64().unwrap()).collect()
}

#[test]
fn buffers_kept_in_a_map_are_a_leak_counted_outside_the_js_heap() {
    let (d, text) = diagnose("leaks/buffers.js");
    assert_eq!(d["verdict"], "leak", "{text}");
    let s = &d["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "uploads", "{text}");
    assert_eq!(s["accumulator"]["class"], "Map", "{text}");
    // 300 requests per step, every 10th keeps a 64 KiB Buffer: 30 backing
    // stores of 65536 B each, exactly, plus the Buffers' own small objects.
    let native = u64s(&s["native_bytes_per_step"]);
    assert_eq!(native, vec![30 * 65536, 30 * 65536], "{s}");
    let total = u64s(&s["bytes_per_step"]);
    assert!(total.iter().zip(&native).all(|(t, n)| t > n && t - n < 30 * 1024), "{total:?} vs {native:?}");
    // The accumulator's retained size includes the backing stores (90 Buffers
    // over warm-up and two steps).
    let retained = s["accumulator"]["retained"][2].as_u64().unwrap();
    assert!(retained >= 90 * 65536, "retained {retained}");
    let note = s["outside_heap"].as_str().unwrap_or_default();
    assert_eq!(note, "Buffers held by uploads (Map): +2.0 MB per step outside the JS heap", "{s}");
    assert!(text.contains(&format!("native: {note}")), "{text}");
}

#[test]
fn buffers_created_and_dropped_are_no_leak() {
    let (d, text) = diagnose("controls/buffers-dropped.js");
    assert_eq!(d["verdict"], "no-leak", "{text}");
    assert_eq!(d["suspects"].as_array().unwrap().len(), 0, "{text}");
}

#[test]
fn an_lru_cache_still_filling_is_bounded_not_a_leak() {
    let (d, text) = diagnose("controls/lru-filling.js");
    assert_eq!(d["verdict"], "no-leak", "{text}");
    assert_eq!(d["suspects"].as_array().unwrap().len(), 0, "{text}");
    let b = d["bounded"].as_array().unwrap();
    assert_eq!(b.len(), 1, "{text}");
    let b = &b[0];
    // Named by the variable holding the cache, not lru-cache's private field.
    assert_eq!(b["name"], "pages", "{b}");
    assert_eq!(b["evidence"], "preallocated", "{b}");
    assert_eq!(b["max_entries"], 50000, "{b}");
    // One new page per request: warm-up and two steps of 300.
    assert_eq!(b["entries"], 900, "{b}");
    // About 400 B per page: between 10 and 40 MB at 50,000 pages.
    let max_bytes = b["max_bytes"].as_u64().unwrap();
    assert!((10_000_000..40_000_000).contains(&max_bytes), "{b}");
    let note = b["note"].as_str().unwrap();
    assert!(note.starts_with("bounded, still filling: will stop at about 50000 entries / "), "{note}");
    assert!(text.contains(&format!("Bounded: pages (Array): {note}")), "{text}");
}

#[test]
fn a_cache_with_ttl_only_stays_a_suspect() {
    let (d, text) = diagnose("leaks/ttl-only.js");
    assert_eq!(d["verdict"], "leak", "{text}");
    assert_eq!(d["bounded"].as_array().unwrap().len(), 0, "{text}");
    let s = &d["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "pages", "{text}");
    // The cache is lru-cache's: the leak is inside the package, and the
    // library table knows this use.
    assert_eq!(s["pattern"], "in-package", "{text}");
    assert_eq!(s["library"]["id"], "lru-cache-ttl-without-max", "{text}");
    // Each request of a step keeps a key (lru-cache's key list) and a value
    // (its value list): one group of the same shape, 2 x 300 objects.
    assert_eq!(u64s(&s["objects_per_step"]), vec![600, 600], "{s}");
    assert_eq!(s["accumulator"]["similar"], 1, "{s}");
}

#[test]
fn one_short_string_per_request_is_a_leak_by_count() {
    let (d, text) = diagnose("leaks/slow-strings.js");
    assert_eq!(d["verdict"], "leak", "{text}");
    let s = &d["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "seenIds", "{text}");
    assert_eq!(s["pattern"], "global-collection", "{text}");
    // One string per request, 300 requests per step: far under the byte threshold.
    assert_eq!(u64s(&s["objects_per_step"]), vec![300, 300], "{s}");
    let bytes = u64s(&s["bytes_per_step"]);
    assert!(bytes.iter().all(|&b| (300 * 16..300 * 64).contains(&b)), "{bytes:?}");
    let noise = d["noise_objects_per_step"].as_u64().unwrap();
    assert!(noise < 64, "noise {noise}");
    assert!(
        text.contains(&format!(
            "Growth by count: seenIds gained +300, +300 objects per step, steadily, above this run's noise of {noise} objects per step"
        )),
        "{text}"
    );
}

#[test]
fn a_cache_warming_up_sets_the_noise_floor_and_stays_no_leak() {
    // warm-cache fills 200 entries in one step only: that is the noise.
    let (d, text) = diagnose("controls/warm-cache.js");
    assert_eq!(d["verdict"], "no-leak", "{text}");
    assert_eq!(d["noise_objects_per_step"], 200, "{text}");
}

#[test]
fn bounded_and_ttl_only_on_node_18_24_and_26() {
    // Node 24 names an empty slot's oddball `undefined`, not `system / Oddball`.
    for major in [18, 24, 26] {
        find_node(major).unwrap_or_else(|e| panic!("Node {major} is needed (scripts/install-nodes.sh): {e}"));
        let (d, text) = diagnose_on("controls/lru-filling.js", major);
        assert_eq!(d["verdict"], "no-leak", "Node {major}: {text}");
        assert_eq!(d["bounded"][0]["name"], "pages", "Node {major}: {text}");
        assert_eq!(d["bounded"][0]["max_entries"], 50000, "Node {major}: {text}");
        let (d, text) = diagnose_on("leaks/ttl-only.js", major);
        assert_eq!(d["verdict"], "leak", "Node {major}: {text}");
        assert_eq!(d["suspects"][0]["accumulator"]["name"], "pages", "Node {major}: {text}");
        let (d, text) = diagnose_on("leaks/buffers.js", major);
        assert_eq!(d["suspects"][0]["native_bytes_per_step"], serde_json::json!([30 * 65536, 30 * 65536]), "Node {major}: {text}");
    }
}

/// `leakhound run` with its default rounds, loading one URL of the app.
fn run_app(app: &str) -> Value {
    run_with(app, true, &[]).1
}

#[test]
fn run_finds_buffer_and_slow_leaks_and_passes_dropped_buffers() {
    let v = run_app("leaks/buffers.js");
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    let s = &v["diagnosis"]["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "uploads", "{}", v["reason"]);
    // Every 10th request of a round keeps 65536 B outside the heap.
    let native = u64s(&s["native_bytes_per_step"]);
    assert!(native.iter().all(|&n| n >= 10 * 65536 && n % 65536 == 0), "{native:?}");
    let v = run_app("leaks/slow-strings.js");
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    let s = &v["diagnosis"]["suspects"][0];
    assert_eq!(s["accumulator"]["name"], "seenIds", "{}", v["reason"]);
    // One short string per request: each round's objects are its requests,
    // a few dozen bytes each.
    let objects = u64s(&s["objects_per_step"]);
    let bytes = u64s(&s["bytes_per_step"]);
    assert!(objects.iter().zip(&bytes).all(|(&k, &b)| k >= 100 && b < k * 64), "{objects:?} {bytes:?}");
    let v = run_app("controls/buffers-dropped.js");
    assert_eq!(v["verdict"], "no-leak", "{}", v["reason"]);
}

#[test]
fn a_raised_byte_threshold_turns_growth_by_count_off() {
    let tmp = temp_dir();
    let files = snapshots("leaks/slow-strings.js", tmp.path(), 20);
    let out = Command::new(BIN)
        .args(["diagnose", "--json", "--min-growth", "1MB"])
        .args(&files)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run leakhound");
    let d: Value = serde_json::from_slice(&out.stdout).expect("bad JSON");
    assert_eq!(d["verdict"], "no-leak", "{}", d["suspects"]);
}

/// `leakhound run --json` with default flags plus `extra`, loading
/// `/item?id=1` unless `load` is false; (exit code, report).
fn run_with(app: &str, load: bool, extra: &[&str]) -> (Option<i32>, Value) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let mut c = Command::new(BIN);
    c.args(["run", "--json"]);
    if load {
        c.args(["--load", "/item?id=1"]);
    }
    let out = c
        .args(extra)
        .arg("--")
        .arg(node)
        .arg(fixtures().join(app))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run leakhound");
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("run {app}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    schema::check_schema("run", &v);
    (out.status.code(), v)
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

type Case = (&'static str, bool, &'static [&'static str], fn(Option<i32>, &Value));

/// Every case of the time, rate and native checks through `run`, two apps
/// at a time (each run waits on its app much of the time).
#[test]
fn run_finds_time_driven_slow_and_native_growth_and_passes_bounded_caches() {
    let cases: Vec<Case> = vec![
        // A 2 ms timer keeps a sample whatever the traffic: found under load...
        ("leaks/background-samples.js", true, &[], |_, v| {
            assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
            assert_eq!(v["suspects"][0]["accumulator"]["name"], "latencySamples", "{}", v["reason"]);
            let r = &v["rates"]["suspects"][0];
            // Rounds last at least 1 s: a few hundred samples each, per second too.
            assert!(f64_of(&r["objects_per_s"]) > 100.0, "{r}");
            assert!(r["text"].as_str().unwrap().contains("/s over "), "{r}");
            assert_eq!(v["rates"]["traffic"]["source"], "measured", "{}", v["rates"]);
        }),
        // ... and with no load at all: growth by time is a finding, not inconclusive.
        ("leaks/background-samples.js", false, &[], |_, v| {
            assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
            assert_eq!(v["suspects"][0]["accumulator"]["name"], "latencySamples", "{}", v["reason"]);
            assert!(v["evidence_problem"].as_str().unwrap().starts_with("no load ran"), "{}", v["evidence_problem"]);
            let r = &v["rates"]["suspects"][0];
            assert!(r["bytes_per_request"].is_null() && v["rates"]["traffic"].is_null(), "{r}");
            assert!(f64_of(&r["objects_per_s"]) > 100.0, "{r}");
            assert!(r["text"].as_str().unwrap().contains(" objects per second over "), "{r}");
        }),
        // The same timer keeping its last 100 samples; a loose rate gate passes.
        ("controls/background-trimmed.js", true, &["--max-growth-rate", "10MB/h", "--at", "1000req/s"], |code, v| {
            assert_eq!(v["verdict"], "no-leak", "{}", v["reason"]);
            assert_eq!(v["rates"]["over_max_growth_rate"], false, "{}", v["rates"]);
            assert_eq!(v["rates"]["max_growth_rate_bytes_per_hour"], 10e6, "{}", v["rates"]);
            assert_eq!(code, Some(0));
        }),
        // Every third request keeps a 6-character id: 24 B of string (and an
        // 8 B slot the count does not see) per three requests.
        ("leaks/ten-bytes.js", true, &["--requests", "10000"], |_, v| {
            assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
            let s = &v["suspects"][0];
            assert_eq!(s["accumulator"]["name"], "auditIds", "{}", v["reason"]);
            assert!(u64s(&s["objects_per_step"]).iter().all(|&k| (3333..=3334).contains(&k)), "{}", s["objects_per_step"]);
            let r = &v["rates"]["suspects"][0];
            let b = f64_of(&r["bytes_per_request"]);
            assert!((7.0..=11.0).contains(&b), "{r}");
            assert!((f64_of(&r["objects_per_request"]) - 1.0 / 3.0).abs() < 0.01, "{r}");
            assert_eq!(r["requests"], 30000, "{r}");
        }),
        // 1 KiB per request outside the heap, the same 64 Buffer objects in it.
        ("leaks/growing-buffers.js", true, &[], |_, v| {
            assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
            let reason = v["reason"].as_str().unwrap();
            assert!(reason.starts_with("memory outside the JS heap grows in every round: external +2.0 MB per round"), "{reason}");
            let n = &v["native_growth"];
            for d in n["external_per_step"].as_array().unwrap() {
                assert!((2_000_000..2_200_000).contains(&d.as_i64().unwrap()), "{n}");
            }
            for d in n["heap_per_step"].as_array().unwrap() {
                assert!(d.as_i64().unwrap().abs() < 500_000, "the heap is not flat: {n}");
            }
            let r = &v["rates"]["native"];
            assert!((1000.0..1100.0).contains(&f64_of(&r["bytes_per_request"])), "{r}");
        }),
        // A cache bounded at 100,000 entries, larger than the whole run.
        ("controls/big-bounded-cache.js", true, &[], |_, v| {
            assert_eq!(v["verdict"], "no-leak", "{}", v["reason"]);
            let b = &v["diagnosis"]["bounded"][0];
            assert_eq!(b["name"], "profiles.entries", "{}", v["diagnosis"]["bounded"]);
            assert_eq!(b["evidence"], "field", "{b}");
            assert_eq!(b["max_entries"], 100000, "{b}");
            // One entry per request: warm-up and three rounds.
            assert!((8000..=8002).contains(&b["entries"].as_u64().unwrap()), "{b}");
        }),
        // A ttl and no size bound: a suspect, and over a tight rate gate (exit 1).
        ("leaks/ttl-cache.js", true, &["--max-growth-rate", "10MB/h", "--at", "100req/s"], |code, v| {
            assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
            assert_eq!(v["diagnosis"]["bounded"].as_array().unwrap().len(), 0, "{}", v["diagnosis"]["bounded"]);
            assert!(v["suspects"][0]["accumulator"]["name"].as_str().unwrap().ends_with("entries"), "{}", v["reason"]);
            let rates = &v["rates"];
            assert_eq!(rates["traffic"]["source"], "--at", "{rates}");
            assert_eq!(rates["over_max_growth_rate"], true, "{rates}");
            // About 150 B and 2 objects per request, at 100 req/s.
            assert!(f64_of(&rates["projected_bytes_per_hour"]) > 30e6, "{rates}");
            assert!(rates["suspects"][0]["text"].as_str().unwrap().contains("MB/h at 100 req/s"), "{rates}");
            assert!(v["reason"].as_str().unwrap().contains("more than --max-growth-rate 10.0 MB/h"), "{}", v["reason"]);
            assert_eq!(code, Some(1), "a leak over the rate gate exits 1 without --fail-on-leak");
        }),
    ];
    let next = std::sync::Mutex::new(0usize);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(&(app, load, extra, check)) = cases.get(i) else { break };
                let r = std::panic::catch_unwind(|| {
                    let (code, v) = run_with(app, load, extra);
                    check(code, &v);
                });
                if let Err(e) = r {
                    let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                    failures.lock().unwrap().push(format!("{app} (load: {load}): {}", msg.unwrap_or_default()));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn watch_names_memory_outside_the_js_heap() {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let watch = |app: &str| {
        let out = Command::new(BIN)
            .args(["watch", "--json", "--force-gc", "--duration", "6s", "--interval", "200ms", "--"])
            .arg(&node)
            .arg(fixtures().join(app))
            .stdin(Stdio::null())
            .output()
            .expect("cannot run leakhound");
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("watch {app}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        schema::check_schema("watch", &v);
        v
    };
    let (log, churn) = std::thread::scope(|s| {
        let a = s.spawn(|| watch("live/buffer-log.js"));
        let b = s.spawn(|| watch("live/buffer-churn.js"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(log["verdict"], "leak", "{}", log["reason"]);
    assert_eq!(log["outside_heap"], true);
    assert!(log["reason"].as_str().unwrap().starts_with("memory outside the JS heap grows: external +"), "{}", log["reason"]);
    // About 3 MB per second kept.
    assert!(f64_of(&log["external_growth_bytes_per_hour"]) > 1e9, "{}", log["external_growth_bytes_per_hour"]);
    assert_ne!(churn["verdict"], "leak", "{}", churn["reason"]);
    assert_eq!(churn["outside_heap"], false);
}
