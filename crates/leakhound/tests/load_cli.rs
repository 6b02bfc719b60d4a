//! `leakhound load` end to end against a real Node http server that counts
//! what it receives (crates/loadgen/tests/common/server.js): exact counts,
//! JSON and human output, and each bad input giving exit 2 with one line.

#[path = "../../loadgen/tests/common/node.rs"]
mod node;

use node::{dead_port, NodeServer};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn leakhound(args: &[&str]) -> Output {
    Command::new(BIN).arg("load").args(args).stdin(Stdio::null()).output().expect("cannot run leakhound")
}

fn ok_stdout(args: &[&str]) -> String {
    let out = leakhound(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "leakhound load {args:?} failed ({}): {stderr}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

/// Exit 2 and exactly one line on stderr, `leakhound: error: ...`; returns it.
fn error_line(args: &[&str]) -> String {
    let out = leakhound(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "leakhound load {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("leakhound: error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn json_counts_match_the_server() {
    let node = NodeServer::start();
    let (a, b) = (node.url("/a"), node.url("/b?x=1"));
    let text = ok_stdout(&[&a, &b, "-c", "8", "--requests", "2000", "--json"]);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["command"], "load");
    assert_eq!(v["requests"], 2000);
    assert_eq!(v["ok"], 2000);
    assert_eq!((v["errors"].as_u64(), v["non_2xx"].as_u64()), (Some(0), Some(0)));
    assert_eq!(v["connections"], 8);
    assert!(v["requests_per_s"].as_f64().unwrap() > 0.0);
    for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(v["latency_ms"][key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    let stats = node.stats();
    assert_eq!(stats["total"], 2000);
    assert_eq!((stats["counts"]["GET /a"].as_u64(), stats["counts"]["GET /b"].as_u64()), (Some(1000), Some(1000)));
}

#[test]
fn human_summary_method_headers_body_file() {
    let node = NodeServer::start();
    let dir = std::env::temp_dir().join(format!("leakhound-load-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body.json");
    std::fs::write(&body, "{\"items\": [1, 2, 3]}").unwrap();
    let url = node.url("/echo");
    let at = format!("@{}", body.display());
    let text = ok_stdout(&[
        &url,
        "-m",
        "PATCH",
        "-H",
        "X-Run: cli test",
        "-H",
        "content-type: application/json",
        "--body",
        &at,
        "-n",
        "50",
        "-c",
        "2",
    ]);
    assert!(text.starts_with(&format!("2 connections, 50 requests, PATCH {url}\n")), "{text}");
    assert!(text.contains("latency (ms)") && text.contains("p99.9"), "{text}");
    assert!(text.contains("50 requests in ") && text.contains(" req/s"), "{text}");
    assert!(text.contains("responses: 50 2xx, 0 non-2xx"), "{text}");
    assert!(text.contains("errors: 0"), "{text}");
    let stats = node.stats();
    assert_eq!(stats["counts"]["PATCH /echo"], 50);
    let echo = &stats["echo"];
    assert_eq!(echo["headers"]["x-run"], "cli test");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(echo["body"], "{\"items\": [1, 2, 3]}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn non_2xx_listed_by_status() {
    let node = NodeServer::start();
    let text = ok_stdout(&[&node.url("/"), &node.url("/status/500"), "-n", "100", "-c", "4"]);
    assert!(text.contains("responses: 50 2xx, 50 non-2xx (50 × 500)"), "{text}");
}

#[test]
fn duration_is_bounded() {
    let node = NodeServer::start();
    let t = Instant::now();
    let text = ok_stdout(&[&node.url("/"), "-d", "1s", "-c", "4", "--json"]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(4), "{took:?}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let d = v["duration_s"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&d), "{d}");
    assert_eq!(node.stats()["total"].as_u64(), v["requests"].as_u64());
}

#[test]
fn port_nobody_listens_on() {
    let port = dead_port();
    let url = format!("http://127.0.0.1:{port}/");
    let t = Instant::now();
    let line = error_line(&[&url, "-d", "10s"]);
    assert_eq!(line.trim_end(), format!("leakhound: error: connection refused to 127.0.0.1:{port}"));
    assert!(t.elapsed() < Duration::from_secs(3), "said at once, not after the run: {:?}", t.elapsed());
}

#[test]
fn bad_urls_and_foreign_hosts() {
    let line = error_line(&["http://10.1.2.3:8080/"]);
    assert!(line.contains("10.1.2.3 is not a loopback address"), "{line}");
    let line = error_line(&["http://example.com/"]);
    assert!(line.contains("example.com is not a loopback address"), "{line}");
    let line = error_line(&["not a url"]);
    assert!(line.contains("not a url: no scheme"), "{line}");
    let line = error_line(&["http://127.0.0.1:99999/"]);
    assert!(line.contains("http://127.0.0.1:99999/: invalid port `99999`"), "{line}");
    let line = error_line(&["127.0.0.1:3000/"]);
    assert!(line.contains("127.0.0.1:3000/: no scheme (write it as http://"), "{line}");
    let line = error_line(&["https://127.0.0.1/"]);
    assert!(line.contains("https is not supported"), "{line}");
    let line = error_line(&["http://127.0.0.1:1/", "-H", "no colon here"]);
    assert!(line.contains("not `Name: value`"), "{line}");
    let line = error_line(&["http://127.0.0.1:1/", "--body", "@/nonexistent/body.json"]);
    assert!(line.contains("/nonexistent/body.json"), "{line}");
    let line = error_line(&["http://127.0.0.1:1/", "-c", "0"]);
    assert!(line.contains("--connections"), "{line}");
    // clap's own usage errors also exit 2.
    let out = leakhound(&["http://127.0.0.1:1/", "-n", "5", "-d", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let out = leakhound(&["http://127.0.0.1:1/", "-d", "5 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ctrl_c_prints_the_partial_report_marked_interrupted() {
    let node = NodeServer::start();
    let child = Command::new(BIN)
        .args(["load", &node.url("/"), "-d", "60s", "-c", "4", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let t = Instant::now();
    // SAFETY: signalling the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interrupted"], true);
    assert!(v["ok"].as_u64().unwrap() > 0, "{v}");
    // Requests in flight at Ctrl-C may or may not have reached the server;
    // they are counted apart, not as done.
    let (done, cancelled) = (v["requests"].as_u64().unwrap(), v["cancelled"].as_u64().unwrap());
    let received = node.stats()["total"].as_u64().unwrap();
    assert!(cancelled <= 4 && done <= received && received <= done + cancelled, "server saw {received}: {v}");
}
