//! `leakhound watch` against real Node processes with a known answer
//! (fixtures/live): a leak (Node 20) is `leak`, a sawtooth (Node 18) and a
//! warm-up plateau (Node 24) are `no-leak`. The fixtures run with a small
//! heap (`--max-old-space-size=128 --max-semi-space-size=1`) so V8 runs full
//! GCs on its own about once a second and a 20-second watch sees 15-30 heap
//! floors; the floors come from the GC observer, not from forced GCs. Also:
//! --fail-on-leak, human output through --pid with --force-gc (Node 22),
//! Node 26, a program that ends during the watch, and no process left behind.

#[path = "support/bin.rs"]
mod bin;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const MB: f64 = 1024.0 * 1024.0;

use bin::leakhound;

/// `watch --json` a fixture started by leakhound on Node `major`.
fn watch_fixture(major: u32, fixture_name: &str, extra: &[&str]) -> (Output, Value) {
    let node = node(major);
    let mut args: Vec<String> = ["watch", "--json", "--interval", "200ms", "--duration", "20s"].iter().map(|s| s.to_string()).collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.push(node.display().to_string());
    args.extend(["--max-old-space-size=128".to_string(), "--max-semi-space-size=1".to_string()]);
    args.push(fixture(fixture_name).display().to_string());
    args.push("60".into());
    let o = leakhound(&args, Duration::from_secs(150));
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}); stderr: {}", String::from_utf8_lossy(&o.stderr)));
    let pid = v["target"]["pid"].as_u64().unwrap() as u32;
    assert!(gone_within(pid, Duration::from_secs(5)), "the watched program {pid} is still running");
    (o, v)
}

fn floors_mb(v: &Value) -> Vec<f64> {
    v["floors"].as_array().unwrap().iter().map(|f| f["heap_used"].as_f64().unwrap() / MB).collect()
}

/// Shape checks every watch document passes.
fn check_document(v: &Value, major: u32) {
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["command"], "watch");
    assert_eq!(v["floor_source"], "gc-observer");
    assert!(v["target"]["node_version"].as_str().unwrap().starts_with(&format!("v{major}.")), "{}", v["target"]);
    assert_eq!(v["target"]["started_by_leakhound"], true);
    assert_eq!(v["ended"], "duration");
    let samples = v["samples"].as_array().unwrap();
    // 100 at 200 ms in 20 s; fewer on a loaded machine, never a handful.
    assert!(samples.len() >= 40, "{} samples", samples.len());
    let times: Vec<f64> = samples.iter().map(|s| s["t_s"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]) && times[0] == 0.0 && *times.last().unwrap() > 15.0, "{times:?}");
    for s in samples {
        let (used, total, rss) = (s["heap_used"].as_u64().unwrap(), s["heap_total"].as_u64().unwrap(), s["rss"].as_u64().unwrap());
        assert!(used > 0 && used <= total && total < rss, "{s}");
    }
    // --max-old-space-size=128 plus the young generation.
    let limit = v["heap_size_limit"].as_f64().unwrap() / MB;
    assert!((128.0..200.0).contains(&limit), "{limit}");
    assert!(v["floors"].as_array().unwrap().len() >= 10, "too few full GCs for a verdict: {}", v["floors"]);
    assert_eq!(v["floors"].as_array().unwrap().len() as u64, v["analysis"]["floors"].as_u64().unwrap());
}

#[test]
fn a_leak_is_a_leak() {
    let (o, v) = watch_fixture(20, "leak.js", &["--fail-on-leak"]);
    check_document(&v, 20);
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    assert_eq!(o.status.code(), Some(1), "--fail-on-leak exits 1 on a leak");
    // The fixture keeps ~2 MB/s (7000 MB/h) at full speed.
    let growth = v["growth_bytes_per_hour"].as_f64().unwrap() / MB;
    assert!(growth > 1000.0, "{growth} MB/h");
    assert!(v["p_value"].as_f64().unwrap() < 0.01);
    assert_eq!(v["early_signal"], true);
    let f = floors_mb(&v);
    assert!(f.last().unwrap() - f.first().unwrap() > 10.0, "{f:?}");
    // Heading for the 128 MB limit within minutes.
    let ttl = v["time_to_limit_s"].as_f64().unwrap();
    assert!(ttl > 0.0 && ttl < 600.0, "{ttl}");
}

#[test]
fn a_sawtooth_is_no_leak() {
    let (o, v) = watch_fixture(18, "sawtooth.js", &["--fail-on-leak"]);
    check_document(&v, 18);
    assert_eq!(v["verdict"], "no-leak", "{} floors {:?}", v["reason"], floors_mb(&v));
    assert_eq!(o.status.code(), Some(0));
    assert!(v["time_to_limit_s"].is_null());
    // heapUsed really saws: samples spread well beyond the floors.
    let used: Vec<f64> = v["samples"].as_array().unwrap().iter().map(|s| s["heap_used"].as_f64().unwrap() / MB).collect();
    let floors = floors_mb(&v);
    let max_floor = floors.iter().cloned().fold(0.0, f64::max);
    assert!(used.iter().any(|u| *u > max_floor + 5.0), "no sawtooth in {used:?}");
}

#[test]
fn a_warm_up_plateau_is_no_leak() {
    let (_, v) = watch_fixture(24, "plateau.js", &[]);
    check_document(&v, 24);
    let f = floors_mb(&v);
    assert_eq!(v["verdict"], "no-leak", "{} floors {f:?}", v["reason"]);
    // The floor really rose during the warm-up: the verdict is not about a flat line.
    let (lo, hi) = f.iter().fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    assert!(hi - lo > 3.0, "no warm-up rise in {f:?}");
    // Either the rise is seen and found to have levelled off, or the
    // warm-up was over before most floors and what remains is flat.
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("levelled off") || reason.contains("within the") || reason.contains("no significant growth"), "{reason}");
}

#[test]
fn human_output_by_pid_with_forced_gcs_leaves_the_process_as_it_was() {
    let node = node(22);
    let port = free_port();
    let p = start_node(&node, &[&format!("--inspect-port={port}"), fixture("sawtooth.js").to_str().unwrap(), "120"], "sawtooth.js running");
    let args: Vec<String> =
        ["watch", "--pid", &p.pid.to_string(), "--port", &port.to_string(), "--interval", "300ms", "--duration", "4s", "--force-gc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let o = leakhound(&args, Duration::from_secs(120));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.starts_with(&format!("watching process {} (node sawtooth.js 120, Node v22.", p.pid)), "{out}");
    assert!(out.contains("floors from a forced full GC before each sample"), "{out}");
    // One line per sample: `  1.2 s   30.1 MB ...`, each with a floor (forced GC).
    let sample_lines: Vec<&str> = out.lines().filter(|l| l.trim_start().split(' ').nth(1) == Some("s")).collect();
    assert!(sample_lines.len() >= 8, "{out}");
    assert!(out.contains(&format!("\nwatched process {} (Node v22.", p.pid)), "{out}");
    assert!(out.contains("(end of --duration)"), "{out}");
    let floor_line = out.lines().find(|l| l.starts_with("heap floor:")).unwrap();
    assert!(floor_line.contains("forced full GCs"), "{floor_line}");
    let verdict = out.lines().find(|l| l.starts_with("verdict: ")).unwrap();
    assert!(verdict.starts_with("verdict: no-leak") || verdict.starts_with("verdict: inconclusive"), "{verdict}");
    assert!(alive(p.pid), "leakhound must not stop a process it did not start");

    // The probe is gone from the target.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let left: usize = rt.block_on(async {
        let url = inspector::attach_pid(p.pid, port).await.unwrap();
        let s = inspector::Session::connect(&url).await.unwrap();
        s.evaluate("Object.getOwnPropertySymbols(globalThis).filter((k) => String(k).includes('leakhound')).length").await.unwrap()
    });
    assert_eq!(left, 0, "the watch probe was left in the target");
}

#[test]
fn a_program_that_ends_ends_the_watch_on_node_26() {
    let node = node(26);
    let m = marker("ends");
    let args: Vec<String> = [
        "watch",
        "--json",
        "--interval",
        "100ms",
        "--duration",
        "120s",
        "--",
        node.to_str().unwrap(),
        "-e",
        "setTimeout(() => {}, 1500)",
        &m,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let started = Instant::now();
    let o = leakhound(&args, Duration::from_secs(60));
    assert!(started.elapsed() < Duration::from_secs(30), "the watch did not end with the program");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ended"], "target-exited");
    assert!(v["target"]["node_version"].as_str().unwrap().starts_with("v26."));
    assert!(v["samples"].as_array().unwrap().len() >= 3, "{v}");
    assert_eq!(v["verdict"], "inconclusive");
    assert!(pids_with(&m).is_empty());
}

/// Start `leakhound watch -- node holder.js` and return it with the
/// program's pid (from the "watching process PID" header).
fn watch_in_background(m: &str) -> (std::process::Child, std::io::Lines<std::io::BufReader<std::process::ChildStdout>>, u32) {
    use std::io::BufRead;
    let node = node(20);
    let mut lh = Command::new(BIN)
        .args(["watch", "--interval", "200ms", "--", node.to_str().unwrap(), fixture("holder.js").to_str().unwrap(), "60", "0", m])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(lh.stdout.take().unwrap()).lines();
    let pid = loop {
        let Some(line) = lines.next() else {
            let o = lh.wait_with_output().unwrap();
            panic!("leakhound ended early ({}): {}", o.status, String::from_utf8_lossy(&o.stderr));
        };
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("watching process ") {
            break rest.split(' ').next().unwrap().parse::<u32>().unwrap();
        }
    };
    // A couple of sample lines, so the watch is under way.
    for _ in 0..3 {
        lines.next().unwrap().unwrap();
    }
    (lh, lines, pid)
}

#[test]
fn ctrl_c_ends_the_watch_with_a_verdict_and_stops_the_program() {
    let m = marker("sigint");
    let (mut lh, lines, pid) = watch_in_background(&m);
    assert!(alive(pid));
    // SAFETY: our own child.
    unsafe { libc::kill(lh.id() as libc::pid_t, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = lh.wait().unwrap();
    // 130, as every command ends on Ctrl-C, after the full report.
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(rest.iter().any(|l| l.contains("(interrupted)")), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("verdict: ")), "{rest:?}");
    assert!(gone_within(pid, Duration::from_secs(5)), "the program outlived leakhound");
    assert!(pids_with(&m).is_empty());
}

#[test]
fn the_program_dies_with_leakhound_even_on_sigkill() {
    let m = marker("sigkill");
    let (mut lh, _lines, pid) = watch_in_background(&m);
    lh.kill().unwrap();
    lh.wait().unwrap();
    assert!(gone_within(pid, Duration::from_secs(5)), "the program outlived a killed leakhound");
    assert!(pids_with(&m).is_empty());
}
