//! `leakhound snapshot` against real Node processes, reached the three
//! ways: `-- CMD` (Node 18), `--inspect` (Node 24, as HOST:PORT and as the
//! ws:// URL), `--pid` (Node 20, SIGUSR1). Each written file parses with
//! heapsnap and holds the fixture's 1000 `LiveMarker` objects; processes we
//! started through leakhound are gone afterwards, processes we only pointed
//! it at are left running. Also: the target dying mid-transfer.

#[path = "support/bin.rs"]
mod bin;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

use bin::leakhound;

fn ok_json(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "leakhound failed ({}): {stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn check_file(path: &std::path::Path, json: &Value) {
    assert!(!inspector::part_path(path).exists(), "the .part file is left");
    let len = std::fs::metadata(path).unwrap().len();
    assert_eq!(json["bytes"].as_u64(), Some(len));
    assert_eq!(count_class(path, "LiveMarker"), 1000);
}

#[test]
fn snapshot_of_a_program_it_starts() {
    let node = node(18);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("started.heapsnapshot");
    let holder = fixture("holder.js");
    let o = leakhound(
        &[
            "snapshot",
            "--json",
            "--gc",
            "--delay",
            "300ms",
            "-o",
            out.to_str().unwrap(),
            "--",
            node.to_str().unwrap(),
            holder.to_str().unwrap(),
            "60",
        ],
        Duration::from_secs(120),
    );
    let j = ok_json(&o);
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["command"], "snapshot");
    assert!(j["node_version"].as_str().unwrap().starts_with("v18."), "{j}");
    assert_eq!(j["gc"], true);
    check_file(&out, &j);
    // The program's stdout went to our stderr (stdout carries the JSON).
    let pid = j["pid"].as_u64().unwrap() as u32;
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("holder ready {pid}")));
    assert!(gone_within(pid, Duration::from_secs(5)), "the started program {pid} is still running");
}

#[test]
fn snapshot_through_an_open_inspector_leaves_the_process_running() {
    let node = node(24);
    let dir = tempfile::tempdir().unwrap();
    let p = start_node(&node, &["--inspect=127.0.0.1:0", fixture("holder.js").to_str().unwrap(), "120"], "holder ready");
    let url = p.ws_url.clone().unwrap();
    for (i, addr) in [url_host_port(&url), url.clone()].iter().enumerate() {
        let out = dir.path().join(format!("inspect{i}.heapsnapshot"));
        let o = leakhound(&["snapshot", "--inspect", addr, "-o", out.to_str().unwrap(), "--json"], Duration::from_secs(120));
        let j = ok_json(&o);
        assert_eq!(j["pid"].as_u64(), Some(p.pid as u64));
        assert!(j["node_version"].as_str().unwrap().starts_with("v24."), "{j}");
        check_file(&out, &j);
    }
    assert!(alive(p.pid), "leakhound must not stop a process it did not start");
}

#[test]
fn snapshot_by_pid_opens_the_inspector_with_sigusr1() {
    let node = node(20);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No inspector yet: leakhound sends SIGUSR1 and finds it on --port.
    let p = start_node(&node, &[&format!("--inspect-port={port}"), fixture("holder.js").to_str().unwrap(), "120"], "holder ready");
    let out = dir.path().join("pid.heapsnapshot");
    let o = leakhound(
        &["snapshot", "--pid", &p.pid.to_string(), "--port", &port.to_string(), "-o", out.to_str().unwrap()],
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `wrote FILE: 4.2 MB in 0.5 s (process PID (node holder.js 120, Node v20...); heap used ...)`
    assert!(stdout.starts_with(&format!("wrote {}: ", out.display())), "{stdout}");
    assert!(stdout.contains(&format!("process {} (node holder.js 120, Node v20.", p.pid)), "{stdout}");
    assert_eq!(count_class(&out, "LiveMarker"), 1000);
    assert!(alive(p.pid));
}

#[test]
fn a_target_killed_mid_transfer_leaves_no_file() {
    let node = node(20);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.heapsnapshot");
    let part = inspector::part_path(&out);
    let holder = fixture("holder.js");
    // ~60 MB of objects: many chunks. Our stdout is a pipe, so the
    // program's own output goes to our stderr (stdout carries results only).
    let mut lh = Command::new(BIN)
        .args([
            "snapshot",
            "--delay",
            "1s",
            "-o",
            out.to_str().unwrap(),
            "--",
            node.to_str().unwrap(),
            holder.to_str().unwrap(),
            "120",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(lh.stderr.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let pid: u32 = ready.strip_prefix("holder ready ").expect("the program's output goes to stderr").parse().unwrap();
    let started = Instant::now();
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 1_000_000 {
        assert!(started.elapsed() < Duration::from_secs(60), "no 1 MB of snapshot in 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: the program leakhound started for this test.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let o = lh.wait_with_output().unwrap();
    let stderr = rest.join("\n");
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    // After the program's own lines, exactly one line of ours: the error.
    assert_eq!(stderr.matches("leakhound:").count(), 1, "{stderr}");
    let stderr = rest.iter().find(|l| l.starts_with("leakhound:")).cloned().unwrap_or_default();
    assert!(
        stderr.starts_with("leakhound: error: `")
            && stderr.contains("exited (signal 9 (SIGKILL)) while leakhound was taking its heap snapshot"),
        "{stderr}"
    );
    assert!(!out.exists() && !part.exists(), "a partial snapshot was left");
}
