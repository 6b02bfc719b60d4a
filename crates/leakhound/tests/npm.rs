//! The npm packages end to end, through `npm/test/run.sh`: the tarballs
//! built from this test's binary install offline into a fresh project
//! (`npx leakhound --version`, a real `npx leakhound run`, the missing
//! platform package, `LEAKHOUND_BINARY`), the JS API on real runs with its
//! types compiled against the real JSON and docs/json.md, and leakhound/test
//! under node:test, Jest and Vitest (pinned in npm/test/runners, installed
//! with `npm ci`). With `LEAKHOUND_STATIC_BINARY` set (the release workflow
//! does, after `bash npm/build.sh`), the static musl package too.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

#[test]
fn npm_packages_api_and_leak_test_helpers() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("npm/test/run.sh")).arg(BIN).current_dir(&root);
    if let Some(s) = std::env::var_os("LEAKHOUND_STATIC_BINARY") {
        cmd.arg(s);
    }
    let out = cmd.output().expect("cannot run bash npm/test/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The step lines with their times, so `cargo test -- --nocapture` shows the cost.
    for line in stdout.lines().filter(|l| l.starts_with("== ")) {
        println!("{line}");
    }
    assert!(out.status.success(), "npm/test/run.sh failed ({}):\n{stdout}\n{stderr}", out.status);
}
