//! `diagnose` refuses a series whose snapshots do not come from one
//! process (and one inspector session): two real runs of the same leaking
//! app, mixed, must give one line and exit 2, while each run's own series
//! is diagnosed.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn run_keep(dir: &Path) {
    let node = find_node(20).unwrap_or_else(|_| any_node());
    let out = Command::new(BIN)
        .args(["run", "-q", "--warmup", "500", "-n", "1000", "--load", "/item", "--keep"])
        .arg(dir)
        .arg("--")
        .arg(&node)
        .arg(repo_root().join("fixtures/leaks/global-array.js"))
        .env_remove("PORT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn snapshots_of_two_processes_are_refused_and_one_process_is_diagnosed() {
    let tmp = temp_dir();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_keep(&a);
    run_keep(&b);
    let diagnose = |files: [&Path; 3]| Command::new(BIN).arg("diagnose").args(files).output().unwrap();
    let own = diagnose([&a.join("s1.heapsnapshot"), &a.join("s2.heapsnapshot"), &a.join("s3.heapsnapshot")]);
    let text = String::from_utf8_lossy(&own.stdout);
    assert_eq!(own.status.code(), Some(0), "{}", String::from_utf8_lossy(&own.stderr));
    assert!(text.starts_with("Verdict: LEAK"), "{text}");
    // The first snapshot of run a, then two of run b: same app, same
    // startup, ids in order, and yet another process.
    let mixed = diagnose([&a.join("s1.heapsnapshot"), &b.join("s3.heapsnapshot"), &b.join("s4.heapsnapshot")]);
    let err = String::from_utf8_lossy(&mixed.stderr);
    assert_eq!(mixed.status.code(), Some(2), "{err}\n{}", String::from_utf8_lossy(&mixed.stdout));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("are not snapshots of one process taken in one inspector session"), "{err}");
    assert!(mixed.stdout.is_empty(), "{}", String::from_utf8_lossy(&mixed.stdout));
}
