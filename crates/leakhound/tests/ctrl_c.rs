//! Ctrl-C in every long-running command gives exit 130 (128 + SIGINT, as
//! shells expect), the report of what was gathered when there is one, a
//! line on stderr saying it was interrupted, and no process left behind.
//! `run`, `watch`, `load` and `snapshot` are covered beside their other
//! tests (first_ten_minutes, live_safety, live_watch, load_cli); here:
//! `allocations` (a partial profile), `handles` and `doctor` (nothing
//! gathered yet), `gclog` reading a live `node --trace-gc` through a pipe,
//! and `supervise` (drains its workers, then 130).
//! Real Node processes; the SIGINT goes to leakhound.

#[path = "support/bin.rs"]
mod bin;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Start `leakhound ARGS`; its stderr lines are forwarded to a channel (and
/// kept for the end).
fn start(args: &[String], env: &[(&str, String)]) -> (Child, std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<String>) {
    let mut child = bin::command(args).envs(env.iter().map(|(k, v)| (k, v))).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let all = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    (child, rx, all)
}

/// Wait for a stderr line containing `needle`; the line.
fn line_with(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return l,
            Ok(_) => {}
            Err(_) => panic!("no stderr line with {needle:?} within 60 s"),
        }
    }
}

/// SIGINT, then the exit within `limit`: (status code, stdout, stderr).
fn interrupt_and_wait(mut child: Child, all: std::thread::JoinHandle<String>, limit: Duration) -> (Option<i32>, String, String) {
    bin::interrupt(&child);
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("leakhound did not end within {limit:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let code = child.wait().unwrap().code();
    (code, stdout, all.join().unwrap())
}

#[test]
fn allocations_reports_the_profile_so_far_and_exits_130() {
    let node = node(22);
    let port = free_port();
    let app = repo_root().join("fixtures/alloc/server.js");
    let args: Vec<String> = ["allocations", "--json", "--duration", "60s", "--load", &format!("http://127.0.0.1:{port}/"), "--"]
        .iter()
        .map(|s| s.to_string())
        .chain([node.display().to_string(), app.display().to_string()])
        .collect();
    let (child, rx, all) = start(&args, &[("PORT", port.to_string())]);
    // The app's stdout goes to stderr under --json.
    line_with(&rx, "listening on http://127.0.0.1:");
    std::thread::sleep(Duration::from_secs(3));
    let (code, stdout, stderr) = interrupt_and_wait(child, all, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(v["ended"], "interrupted", "{v}");
    assert!(v["samples"].as_u64().unwrap() > 0, "{v}");
    // The load's figures so far, marked as cut short.
    assert!(v["load"]["requests"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["load"]["interrupted"], true, "{v}");
    assert!(v["duration_s"].as_f64().unwrap() < 30.0, "{v}");
    assert!(stderr.lines().last().unwrap_or("").starts_with("leakhound: interrupted after "), "{stderr}");
    let pid = v["target"]["pid"].as_u64().unwrap() as u32;
    assert!(gone_within(pid, Duration::from_secs(5)), "the app {pid} was left running");
}

#[test]
fn handles_interrupted_before_looking_says_so_and_stops_the_app() {
    let node = node(20);
    let args = vec![
        "handles".to_string(),
        "--delay".into(),
        "60s".into(),
        "--".into(),
        node.display().to_string(),
        fixture("handles.js").display().to_string(),
    ];
    let (child, rx, all) = start(&args, &[]);
    // stdout is a pipe: the app's own output goes to stderr.
    let ready = line_with(&rx, "handles ready ");
    let pid: u32 = ready.rsplit(' ').next().unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, stdout, stderr) = interrupt_and_wait(child, all, Duration::from_secs(15));
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stdout, "", "nothing gathered, nothing on stdout");
    assert!(stderr.contains("leakhound: interrupted before the handles were listed; nothing to report"), "{stderr}");
    assert!(gone_within(pid, Duration::from_secs(5)), "the app {pid} was left running");
}

#[test]
fn doctor_interrupted_while_the_app_is_blocked_exits_130_and_stops_it() {
    let node = node(20);
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    // The app blocks its main thread at once: the inspector never answers,
    // so doctor waits, and Ctrl-C is the way out.
    let script = "require('fs').writeFileSync(process.env.PID_FILE, String(process.pid)); \
                  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000)";
    let args = vec!["doctor".to_string(), "--".into(), node.display().to_string(), "-e".into(), script.into()];
    let (child, _rx, all) = start(&args, &[("PID_FILE", pid_file.display().to_string())]);
    bin::wait_until(Duration::from_secs(30), "the app never started", || std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.is_empty()));
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (code, stdout, stderr) = interrupt_and_wait(child, all, Duration::from_secs(15));
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("leakhound: interrupted "), "{stderr}");
    assert!(gone_within(pid, Duration::from_secs(5)), "the app {pid} was left running");
}

#[test]
fn gclog_on_a_live_pipe_gives_the_verdict_on_what_it_read() {
    // A program that makes garbage for a minute, its --trace-gc lines piped in.
    let mut app = Command::new(node(20))
        .args(["--trace-gc", "-e", "let k = []; setInterval(() => { k.push(new Array(2e4).fill(k.length)); if (k.length > 40) k = []; }, 5); setTimeout(() => process.exit(0), 60000)"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lh = Command::new(bin::BIN)
        .args(["gclog", "-"])
        .stdin(app.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    bin::interrupt(&lh);
    let t = Instant::now();
    while lh.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = lh.kill();
            let _ = app.kill();
            panic!("gclog did not end on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = lh.wait_with_output().unwrap();
    let _ = app.kill();
    let _ = app.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(stdout.starts_with("<stdin>: "), "{stdout}");
    assert!(stdout.contains("\nverdict: "), "{stdout}");
    let lines: u64 = stdout["<stdin>: ".len()..].split(' ').next().unwrap().replace(',', "").parse().unwrap();
    assert!(lines > 0, "{stdout}");
    assert!(stderr.contains(&format!("leakhound: interrupted after {lines} line")), "{stderr}");
}

/// `supervise` drains its workers on Ctrl-C and exits 130 like every other
/// command (SIGTERM, an orchestrator's stop, stays a clean exit 0).
#[test]
fn supervise_drains_on_ctrl_c_and_exits_130() {
    let node = node(20);
    let app = repo_root().join("fixtures/supervise/app.js");
    let args = vec![
        "supervise".to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--".into(),
        node.display().to_string(),
        app.display().to_string(),
    ];
    let (child, rx, all) = start(&args, &[]);
    let ready = line_with(&rx, " ready in ");
    let pid: u32 = ready.split("pid ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    let (code, _stdout, stderr) = interrupt_and_wait(child, all, Duration::from_secs(20));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("stopping: SIGINT: draining every worker"), "{stderr}");
    assert!(gone_within(pid, Duration::from_secs(5)), "the worker {pid} was left running");
}
