//! Pointed at a production process, leakhound leaves it no less safe than
//! it found it. With real Node processes (18 to 26) reached by `--pid`:
//! - the inspector leakhound opened with SIGUSR1 is closed when it leaves,
//!   after `snapshot`, `watch`, `handles`, `listeners`, `allocations` and
//!   `doctor`,
//!   on success, on an error after connecting, and on Ctrl-C: nothing
//!   listens on the port afterwards and the process runs on;
//! - an inspector that was open before leakhound came stays open;
//! - every file holding heap contents is 0600 (snapshot, heap profile, HTML
//!   reports) and every folder leakhound makes for snapshots is 0700
//!   (`run --keep`), whatever the umask.

#[path = "support/bin.rs"]
mod bin;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

/// Run leakhound (umask 000, so only leakhound's own modes protect the
/// files), killing it if it takes longer than `limit`.
fn leakhound(args: &[String], limit: Duration) -> Output {
    let mut cmd = bin::command(args);
    umask0(&mut cmd);
    bin::output_within(&mut cmd, limit)
}

fn umask0(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).mode() & 0o777
}

fn private_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A Node process with its inspector closed, SIGUSR1 opening it on `port`.
fn holder(major: u32, port: u16) -> NodeProc {
    let p = start_node(
        &node(major),
        &[&format!("--inspect-port=127.0.0.1:{port}"), fixture("holder.js").to_str().unwrap(), "120"],
        "holder ready",
    );
    assert!(!listening(port), "the inspector is open before leakhound came");
    p
}

/// After leakhound: the process runs on, and nothing listens on its port.
fn assert_closed_and_alive(p: &NodeProc, port: u16, what: &str) {
    assert!(alive(p.pid), "{what}: leakhound must leave the process running");
    assert!(!listening(port), "{what}: the inspector leakhound opened on port {port} is still listening");
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("could not close"), "{what}: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn snapshot_by_pid_closes_the_inspector_and_writes_0600_on_node_18() {
    let port = free_port();
    let p = holder(18, port);
    let dir = private_dir();
    let out = dir.path().join("prod.heapsnapshot");
    let o = leakhound(
        &strings(&["snapshot", "--pid", &p.pid.to_string(), "--port", &port.to_string(), "-o", out.to_str().unwrap()]),
        Duration::from_secs(120),
    );
    ok(&o, "snapshot");
    assert_eq!(mode(&out), 0o600, "the snapshot file");
    assert_eq!(count_class(&out, "LiveMarker"), 1000);
    assert_closed_and_alive(&p, port, "snapshot");

    // A second time: SIGUSR1 opens it again, leakhound closes it again; an
    // existing world-readable output file is narrowed to 0600.
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let o = leakhound(
        &strings(&["snapshot", "--pid", &p.pid.to_string(), "--port", &port.to_string(), "-o", out.to_str().unwrap()]),
        Duration::from_secs(120),
    );
    ok(&o, "second snapshot");
    assert_eq!(mode(&out), 0o600, "the overwritten snapshot file");
    assert_closed_and_alive(&p, port, "second snapshot");
}

#[test]
fn watch_by_pid_closes_the_inspector_on_node_20_at_the_end_and_on_ctrl_c() {
    let port = free_port();
    let p = holder(20, port);
    let dir = private_dir();
    let html = dir.path().join("watch.html");
    let o = leakhound(
        &strings(&[
            "watch",
            "--pid",
            &p.pid.to_string(),
            "--port",
            &port.to_string(),
            "--interval",
            "100ms",
            "--duration",
            "1s",
            "--html",
            html.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    ok(&o, "watch");
    assert_eq!(mode(&html), 0o600, "the watch report");
    assert_closed_and_alive(&p, port, "watch");

    // Ctrl-C in the middle of a watch with no end.
    let mut child = Command::new(BIN)
        .args(["watch", "--pid", &p.pid.to_string(), "--port", &port.to_string(), "--interval", "100ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !listening(port) {
        assert!(started.elapsed() < Duration::from_secs(20), "the watch never opened the inspector");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(20), "watch did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&o.stderr).contains("could not close"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_closed_and_alive(&p, port, "watch interrupted by SIGINT");
}

#[test]
fn handles_by_pid_closes_the_inspector_on_node_22() {
    let port = free_port();
    let p = holder(22, port);
    let o = leakhound(&strings(&["handles", "--pid", &p.pid.to_string(), "--port", &port.to_string()]), Duration::from_secs(60));
    ok(&o, "handles");
    assert_closed_and_alive(&p, port, "handles");
}

#[test]
fn doctor_by_pid_closes_the_inspector_on_node_20() {
    let port = free_port();
    let p = holder(20, port);
    let o = leakhound(&strings(&["doctor", "--json", "--pid", &p.pid.to_string(), "--port", &port.to_string()]), Duration::from_secs(60));
    let out = ok(&o, "doctor");
    let v: serde_json::Value = serde_json::from_str(&out).expect("doctor --json prints one document");
    assert_eq!(v["command"], "doctor");
    assert!(v["heap_limit_bytes"].as_u64().unwrap_or(0) > 0, "doctor read the heap limit: {v}");
    assert_closed_and_alive(&p, port, "doctor");
}

#[test]
fn listeners_by_pid_closes_the_inspector_on_node_24() {
    let port = free_port();
    let p = holder(24, port);
    let o = leakhound(&strings(&["listeners", "--pid", &p.pid.to_string(), "--port", &port.to_string()]), Duration::from_secs(120));
    ok(&o, "listeners");
    assert_closed_and_alive(&p, port, "listeners");
    // Its temporary snapshot folder is gone.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("leakhound-listeners-"))
        .filter(|e| e.metadata().map(|m| m.modified().unwrap().elapsed().unwrap_or_default() < Duration::from_secs(60)).unwrap_or(false))
        .collect();
    assert!(left.iter().all(|e| mode(&e.path()) == 0o700), "a temporary snapshot folder is not private: {left:?}");
}

#[test]
fn allocations_by_pid_closes_the_inspector_on_node_26_on_success_and_on_error() {
    let port = free_port();
    let p = holder(26, port);
    let dir = private_dir();
    let (html, raw) = (dir.path().join("alloc.html"), dir.path().join("alloc.heapprofile"));
    let o = leakhound(
        &strings(&[
            "allocations",
            "--pid",
            &p.pid.to_string(),
            "--port",
            &port.to_string(),
            "--duration",
            "1s",
            "--html",
            html.to_str().unwrap(),
            "--heapprofile",
            raw.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    ok(&o, "allocations");
    assert_eq!(mode(&html), 0o600, "the allocations report");
    assert_eq!(mode(&raw), 0o600, "the .heapprofile");
    assert_closed_and_alive(&p, port, "allocations");

    // An error after connecting: the load URL answers nothing.
    let dead = free_port();
    let o = leakhound(
        &strings(&[
            "allocations",
            "--pid",
            &p.pid.to_string(),
            "--port",
            &port.to_string(),
            "--load",
            &format!("http://127.0.0.1:{dead}/"),
            "--ready-timeout",
            "1s",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_closed_and_alive(&p, port, "allocations that failed");
}

#[test]
fn an_inspector_open_before_stays_open() {
    let port = free_port();
    let node = node(22);
    let p = start_node(&node, &[&format!("--inspect=127.0.0.1:{port}"), fixture("holder.js").to_str().unwrap(), "120"], "holder ready");
    assert!(listening(port));
    let dir = private_dir();
    let out = dir.path().join("open.heapsnapshot");
    let o = leakhound(
        &strings(&["snapshot", "--pid", &p.pid.to_string(), "--port", &port.to_string(), "-o", out.to_str().unwrap()]),
        Duration::from_secs(120),
    );
    ok(&o, "snapshot");
    assert!(alive(p.pid));
    assert!(listening(port), "leakhound closed an inspector it did not open");
    let o = leakhound(&strings(&["handles", "--pid", &p.pid.to_string(), "--port", &port.to_string()]), Duration::from_secs(60));
    ok(&o, "handles");
    assert!(listening(port), "leakhound closed an inspector it did not open");
}

#[test]
fn run_keep_makes_a_private_folder_of_private_snapshots() {
    let dir = private_dir();
    let keep = dir.path().join("new/snaps");
    let html = dir.path().join("run.html");
    let port = free_port();
    let mut cmd = Command::new(BIN);
    umask0(&mut cmd);
    let o = cmd
        .args(["run", "--json", "--load", &format!("http://127.0.0.1:{port}/item?id=1"), "--snapshots", "3", "--requests", "300"])
        .args(["--warmup", "100", "--keep", keep.to_str().unwrap(), "--html", html.to_str().unwrap(), "--"])
        .arg(node(20))
        .arg(repo_root().join("fixtures/leaks/global-array.js"))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success() || o.status.code() == Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&keep), 0o700);
    let files: Vec<_> = std::fs::read_dir(&keep).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(f.extension().is_some_and(|e| e == "heapsnapshot"), "{}", f.display());
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&html), 0o600);
}

#[test]
fn run_whose_app_dies_mid_snapshot_leaves_no_part_and_no_orphan() {
    let dir = private_dir();
    let keep = dir.path().join("snaps");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["run", "--load", &format!("http://127.0.0.1:{port}/item?id=1"), "--snapshots", "5", "--requests", "20000"])
        .args(["--keep", keep.to_str().unwrap(), "--"])
        .arg(node(22))
        .arg(repo_root().join("fixtures/leaks/global-array.js"))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The app is leakhound's child; kill it as soon as a snapshot is being written.
    let t0 = Instant::now();
    let app = loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "no snapshot under way");
        let part = std::fs::read_dir(&keep)
            .ok()
            .and_then(|rd| rd.filter_map(|e| e.ok()).find(|e| e.file_name().to_string_lossy().ends_with(".part")));
        if part.is_some() {
            let kids: Vec<u32> = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .ok()
                        .and_then(|s| s.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok()))
                        == Some(child.id())
                })
                .collect();
            break kids[0];
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // SAFETY: a plain signal to a process this test started (through leakhound).
    unsafe { libc::kill(app as libc::pid_t, libc::SIGKILL) };
    let t = Instant::now();
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(10), "run did not stop after its app died");
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.lines().last().unwrap_or("").contains("signal 9"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    assert!(!alive(app));
    let parts: Vec<_> =
        std::fs::read_dir(&keep).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".part")).collect();
    assert!(parts.is_empty(), "a .part file is left: {parts:?}");
}
