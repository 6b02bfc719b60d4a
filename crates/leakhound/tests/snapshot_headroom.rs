//! Before a snapshot of a process leakhound did not start (`--pid`), the
//! snapshot's memory (up to about 24 times the used heap, measured) is compared
//! with the process's headroom: a real Node process with a 40 MB heap in a
//! real 256 MiB memory cgroup (v1) is refused with one line giving both
//! figures and the alternatives, no file is written and the process runs
//! on. Without root or a writable memory controller the test prints SKIP.

#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

struct Cgroup(std::path::PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let t = Instant::now();
        while std::fs::remove_dir(&self.0).is_err() && self.0.exists() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn snapshot_that_would_not_fit_the_cgroup_is_refused() {
    let dir = Path::new("/sys/fs/cgroup/memory").join(format!("leakhound-test-{}-headroom", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("SKIP: cannot create the cgroup {} ({e}); needs root and a writable cgroup v1 memory controller", dir.display());
        return;
    }
    let cg = Cgroup(dir);
    std::fs::write(cg.0.join("memory.limit_in_bytes"), (256u64 << 20).to_string()).unwrap();
    let script = "globalThis.keep = []; for (let i = 0; i < 400000; i++) keep.push({ i, s: 'item ' + i }); \
                  console.log('ready', process.memoryUsage().heapUsed); setInterval(() => {}, 1000);";
    let port = free_port();
    let app = start_node(&node(20), &[&format!("--inspect-port=127.0.0.1:{port}"), "-e", script], "ready");
    std::fs::write(cg.0.join("cgroup.procs"), app.pid.to_string()).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("s.heapsnapshot");
    let o = Command::new(BIN)
        .args(["snapshot", "--pid", &app.pid.to_string(), "--port", &port.to_string(), "-o"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = assert_one_line_error(&o, "snapshot --pid in a 256 MiB cgroup", "not taking a snapshot");
    for want in ["left of its 268.4 MB memory limit", "needs up to", "leakhound allocations --pid", "watch --pid", "--force"] {
        assert!(line.contains(want), "{want:?} in {line}");
    }
    assert!(!file.exists() && !inspector::part_path(&file).exists(), "no snapshot file, not even a partial one");
    assert!(alive(app.pid), "the process runs on");
    // The inspector leakhound opened is closed again.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the inspector port is closed");
    drop(app);
}
