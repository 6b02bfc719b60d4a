//! Helpers shared by the integration tests: finding a Node.js binary of a
//! given major, writing real heap snapshots with it, and scratch directories.
//!
//! Node majors other than the system one are installed by
//! `scripts/install-nodes.sh` into `<repo>/.cache/node/<major>/bin/node`.
//! A test that needs a missing major fails (never skips) with a message
//! saying how to install it. Only on a machine with no Node.js at all (or,
//! for the Chromium test, no Chromium) do those tests skip, saying so on
//! the terminal, so that `cargo test -p heapsnap -p diagnose` runs
//! anywhere; `LEAKHOUND_TEST_REQUIRE_ALL=1` (set by scripts/test.sh) makes
//! them fail there too.
//!
//! Used from several test binaries (also `crates/leakhound/tests/cli.rs`
//! through `#[path]`), so some helpers are unused in some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The Node majors the suite checks snapshots of.
pub const NODE_MAJORS: [u32; 5] = [18, 20, 22, 24, 26];

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Both crates live in <root>/crates/<name>.
    here.parent().and_then(Path::parent).expect("crate is not inside <root>/crates").to_path_buf()
}

/// Where `scripts/install-nodes.sh` puts a major's binary.
pub fn cached_node_path(major: u32) -> PathBuf {
    repo_root().join(".cache").join("node").join(major.to_string()).join("bin").join("node")
}

/// The major version a node binary reports, if it runs.
pub fn node_major_of(node: &Path) -> Option<u32> {
    let out = Command::new(node).args(["-p", "process.versions.node.split('.')[0]"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The node binary of this major: the installed one under `.cache/node/`,
/// else `node` on PATH if it is that major.
pub fn find_node(major: u32) -> Result<PathBuf, String> {
    let cached = cached_node_path(major);
    if cached.is_file() {
        return match node_major_of(&cached) {
            Some(m) if m == major => Ok(cached),
            other => {
                Err(format!("{} reports major {other:?}, not {major}: run scripts/install-nodes.sh to reinstall it", cached.display()))
            }
        };
    }
    let system = PathBuf::from("node");
    if node_major_of(&system) == Some(major) {
        return Ok(system);
    }
    Err(format!(
        "Node {major} is not installed (looked for {} and `node` on PATH): \
         run scripts/install-nodes.sh to install Node 18, 20, 22, 24 and 26",
        cached.display()
    ))
}

/// Whether any Node.js is here: `node` on PATH or an installed major.
pub fn has_any_node() -> bool {
    node_major_of(Path::new("node")).is_some() || NODE_MAJORS.iter().any(|&m| cached_node_path(m).is_file())
}

/// True (skip) when `needs` is missing from this machine altogether and
/// `LEAKHOUND_TEST_REQUIRE_ALL` is not set. The notice goes straight to
/// the terminal's stderr, past the test harness's capture, so a skip is
/// never silent.
pub fn skip_unless(present: bool, test: &str, needs: &str) -> bool {
    if present {
        return false;
    }
    if std::env::var_os("LEAKHOUND_TEST_REQUIRE_ALL").is_some() {
        panic!("{test} needs {needs}, which is not installed (LEAKHOUND_TEST_REQUIRE_ALL is set)");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {needs}, not installed on this machine (set LEAKHOUND_TEST_REQUIRE_ALL=1 to fail instead)"
    );
    true
}

/// `skip_unless` for tests that need a Node.js binary.
pub fn skip_without_node(test: &str) -> bool {
    skip_unless(has_any_node(), test, "Node.js")
}

/// Like `find_node`, but failing the test when the binary is missing.
pub fn require_node(major: u32) -> PathBuf {
    find_node(major).unwrap_or_else(|e| panic!("{e}"))
}

/// Any Node for tests that do not care which: `node` on PATH, else an installed major.
pub fn any_node() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        if node_major_of(Path::new("node")).is_some() {
            return PathBuf::from("node");
        }
        for m in NODE_MAJORS.iter().rev() {
            if let Ok(p) = find_node(*m) {
                return p;
            }
        }
        panic!("no Node.js found: put `node` on PATH or run scripts/install-nodes.sh")
    })
    .clone()
}

/// Run `program` (JavaScript that builds some heap state) with `node`, then
/// write a heap snapshot of that heap to `out` with
/// `require('v8').writeHeapSnapshot(out)`. The program is saved next to `out`
/// as `<out>.js` (its path is the script name the snapshot records).
pub fn make_snapshot(node: &Path, program: &str, out: &Path) {
    let script = out.with_extension("js");
    let text = format!("'use strict';\n{program}\n;require('v8').writeHeapSnapshot(process.argv[2]);\n");
    std::fs::write(&script, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", script.display()));
    let started = Instant::now();
    let output = Command::new(node).arg(&script).arg(out).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
    assert!(
        output.status.success(),
        "{} {} failed ({}):\nstdout: {}\nstderr: {}",
        node.display(),
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let len = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0, "{} wrote no snapshot at {}", node.display(), out.display());
    if started.elapsed() > Duration::from_secs(60) {
        eprintln!("warning: writing {} took {:?}", out.display(), started.elapsed());
    }
}

/// A fresh scratch directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("heapsnap-test-").tempdir_in(scratch_base()).expect("cannot create a temporary directory")
}

/// Where scratch directories go: the target dir's `tmp` (cargo's
/// CARGO_TARGET_TMPDIR for integration tests) or the system temp dir.
fn scratch_base() -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).ok();
    base
}

/// A directory that lives as long as this test process, shared by all its
/// tests (for snapshots generated once per test binary). Statics are never
/// dropped, so its name carries the process id and directories left by
/// processes that no longer exist are removed when the next one starts.
pub fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = scratch_base();
        let me = std::process::id();
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(rest) = name.strip_prefix("snapshots-pid") else { continue };
                let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
                if pid != me && cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("snapshots-pid{me}-"))
            .tempdir_in(&base)
            .expect("cannot create the shared snapshot directory");
        dir.keep()
    })
}

/// Generate (once per process) the snapshot of `program` run by `node`,
/// under `name` in the process directory; later calls return the same path.
pub fn shared_snapshot(name: &str, node: &Path, program: &str) -> PathBuf {
    static MADE: OnceLock<Mutex<std::collections::HashMap<String, std::sync::Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = {
        let mut map = MADE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_default().clone()
    };
    cell.get_or_init(|| {
        let out = process_dir().join(format!("{name}.heapsnapshot"));
        make_snapshot(node, program, &out);
        out
    })
    .clone()
}

/// Parse a snapshot file with default options, failing the test on error.
pub fn read(path: &Path) -> heapsnap::HeapSnapshot {
    heapsnap::read_snapshot(path, heapsnap::ParseOptions::default()).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}
