//! `run` watches the app in every phase: an app that exits, throws, dies
//! in a GC or a snapshot, or stops answering ends the run quickly with one
//! line naming the phase, exit 2, and no process left behind. The apps are
//! real (fixtures/broken/dies.js), the failures real.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn dies_js() -> PathBuf {
    repo_root().join("fixtures/broken/dies.js")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pid_alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// `run` on dies.js with `HOW`/`DIE_AT`; small rounds, no GC ticker.
fn run_dies(how: &str, die_at: u32, extra: &[&str], env: &[(&str, &str)], pid_file: &Path) -> Command {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--warmup", "500", "-n", "500", "--gc-every", "1h", "--load", &format!("http://127.0.0.1:{port}/")])
        .args(extra)
        .arg("--")
        .arg(&node)
        .arg(dies_js())
        .env("PORT", port.to_string())
        .env("HOW", how)
        .env("DIE_AT", die_at.to_string())
        .env("PID_FILE", pid_file)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Its last stderr line, after checking exit 2, one `leakhound: error:`
/// line, no panic, and the app gone.
fn failed_line(out: &Output, pid_file: &Path) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let last = err.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("leakhound: error: "), "{err}");
    assert_eq!(err.matches("leakhound: error:").count(), 1, "{err}");
    let pid: u64 = std::fs::read_to_string(pid_file).expect("the app wrote its pid").trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!pid_alive(pid), "the app {pid} was left running");
    last
}

#[test]
fn an_exit_during_the_warm_up_ends_the_run_at_once() {
    let tmp = temp_dir();
    let pid_file = tmp.path().join("pid");
    let t = Instant::now();
    let out = run_dies("exit", 100, &[], &[], &pid_file).output().unwrap();
    let line = failed_line(&out, &pid_file);
    assert!(line.contains("the app exited (status 3) during warm-up after "), "{line}");
    assert!(line.contains("its last stderr lines: dies.js: request 100, failing with HOW=exit"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(25), "took {:?}", t.elapsed());
}

#[test]
fn a_throw_in_a_round_is_reported_with_the_error_and_the_request_count() {
    let tmp = temp_dir();
    let pid_file = tmp.path().join("pid");
    // Request 800: the 300th of round 1.
    let out = run_dies("throw", 800, &[], &[], &pid_file).output().unwrap();
    let line = failed_line(&out, &pid_file);
    assert!(line.contains("the app exited (status 1) during round 1 after "), "{line}");
    // About 799 answered (a few may be in flight when it dies).
    let n: u64 = line.split(" after ").nth(1).unwrap().split(' ').next().unwrap().replace(',', "").parse().unwrap();
    assert!((780..=799).contains(&n), "{line}");
    assert!(line.contains("Error: failed on purpose at request 800 | at "), "{line}");
}

#[test]
fn an_exit_right_after_a_full_gc_names_that_phase() {
    let tmp = temp_dir();
    let pid_file = tmp.path().join("pid");
    // Armed at request 700 (round 1); exits at the next full GC: the
    // one leakhound forces after round 1.
    let out = run_dies("gc", 700, &[], &[], &pid_file).output().unwrap();
    let line = failed_line(&out, &pid_file);
    assert!(line.contains("the app exited (status 5) during "), "{line}");
    // The GC observer's callback runs on the event loop's next turn: after
    // the GC, during the snapshot, or as round 2 starts (then before any
    // request of it was answered: 500 warm-up + 500 of round 1).
    assert!(
        line.contains("during the full GC after round 1")
            || line.contains("during snapshot 2")
            || line.contains("during round 2 after 1,000 answered requests;"),
        "{line}"
    );
}

/// Start a run that keeps its snapshots, send the app `signal` once
/// snapshot 2 has begun: (leakhound's output, when the signal went, the
/// kept snapshot 2's path, the app's pid file).
fn signal_during_snapshot_2(tmp: &tempfile::TempDir, signal: i32) -> (Output, Instant, PathBuf, PathBuf) {
    let pid_file = tmp.path().join("pid");
    let keep = tmp.path().join("snaps");
    let keep_s = keep.to_str().unwrap().to_string();
    // Never dies by itself; a heap big enough for the snapshot to take a while.
    let child = run_dies("none", 0, &["--keep", &keep_s], &[("BALLAST", "300000")], &pid_file).spawn().expect("cannot start leakhound");
    let part = keep.join("s2.heapsnapshot.part");
    let t = Instant::now();
    while !part.exists() {
        assert!(t.elapsed() < Duration::from_secs(60), "snapshot 2 never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    // SAFETY: plain syscall on the app this test had leakhound start.
    unsafe { libc::kill(pid, signal) };
    let sent = Instant::now();
    (child.wait_with_output().unwrap(), sent, keep.join("s2.heapsnapshot"), pid_file)
}

#[test]
fn a_crash_during_a_snapshot_ends_the_run_and_leaves_no_part_file_as_complete() {
    let tmp = temp_dir();
    let (out, killed, s2, pid_file) = signal_during_snapshot_2(&tmp, libc::SIGKILL);
    let line = failed_line(&out, &pid_file);
    assert!(line.contains("the app exited (signal 9 (SIGKILL)) during snapshot 2"), "{line}");
    assert!(killed.elapsed() < Duration::from_secs(10), "took {:?} after the kill", killed.elapsed());
    assert!(!s2.exists(), "a half snapshot presented as complete");
}

#[test]
fn an_app_that_stops_answering_is_detected_within_the_request_timeout() {
    let tmp = temp_dir();
    let pid_file = tmp.path().join("pid");
    let t = Instant::now();
    let out = run_dies("hang", 800, &["--timeout", "2s"], &[], &pid_file).output().unwrap();
    let line = failed_line(&out, &pid_file);
    assert!(line.contains("the app stopped answering during round 1 after "), "{line}");
    assert!(line.contains("no response for 2.0 s (--timeout) and its event loop is blocked"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(28), "took {:?}", t.elapsed());
}

#[test]
fn a_main_thread_blocked_in_the_gc_phase_is_found_in_seconds_not_at_the_inspector_timeout() {
    let tmp = temp_dir();
    let pid_file = tmp.path().join("pid");
    // Request 1,001 is the last of round 1 (1 readiness probe + 500 + 500):
    // the app answers it, then blocks in Atomics.wait, where the inspector
    // cannot reach it. Before this watchdog, the GC waited 120 s.
    let t = Instant::now();
    let out = run_dies("block", 1001, &[], &[], &pid_file).output().unwrap();
    let line = failed_line(&out, &pid_file);
    assert!(
        line.contains(
            "the app stopped answering during the full GC after round 1 after 1,000 answered requests: its main thread used no CPU for "
        ) || line.contains("the app stopped answering during snapshot 2 after 1,000 answered requests: its main thread used no CPU for "),
        "{line}"
    );
    assert!(line.contains("its last stderr lines: dies.js: request 1001, failing with HOW=block"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(25), "took {:?}", t.elapsed());
}

#[test]
fn an_app_stopped_during_a_snapshot_is_found_in_seconds() {
    let tmp = temp_dir();
    let (out, stopped, s2, pid_file) = signal_during_snapshot_2(&tmp, libc::SIGSTOP);
    let line = failed_line(&out, &pid_file);
    assert!(
        line.contains("the app stopped answering during snapshot 2 after 1,000 answered requests: its process has been stopped"),
        "{line}"
    );
    assert!(stopped.elapsed() < Duration::from_secs(10), "took {:?} after the stop", stopped.elapsed());
    assert!(!s2.exists(), "a half snapshot presented as complete");
}
