//! Helpers for the tests that drive real Node processes (used by the
//! inspector crate's tests and, through `#[path]`, by leakhound's
//! `live_*` tests): Node binaries per major (installed by
//! `scripts/install-nodes.sh` when missing), fixtures, free ports, and
//! checks that processes are gone.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("crate is in <root>/crates").to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/live").join(name)
}

fn major_of(node: &Path) -> Option<u32> {
    let out = Command::new(node).args(["-p", "process.versions.node.split('.')[0]"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// `.cache/node/<major>/bin/node`, installed by scripts/install-nodes.sh if
/// missing (one install at a time).
pub fn node(major: u32) -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let path = repo_root().join(format!(".cache/node/{major}/bin/node"));
    if major_of(&path) == Some(major) {
        return path;
    }
    let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if major_of(&path) != Some(major) {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/install-nodes.sh"))
            .arg(major.to_string())
            .stdout(Stdio::null())
            .status()
            .expect("cannot run scripts/install-nodes.sh");
        assert!(status.success(), "scripts/install-nodes.sh {major} failed");
    }
    assert_eq!(major_of(&path), Some(major), "{} is not Node {major}", path.display());
    path
}

/// A port nobody listens on right now (bound then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Alive and not a zombie.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

/// Wait up to `within` for `pid` to be gone.
pub fn gone_within(pid: u32, within: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

/// Pids of live processes whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if String::from_utf8_lossy(&cmd).contains(marker) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// A unique marker to put in a command line.
pub fn marker(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("lhmark-{tag}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// A Node process we start for a test, killed on drop.
pub struct NodeProc {
    pub child: Child,
    pub pid: u32,
    /// The websocket URL it printed, if started with --inspect.
    pub ws_url: Option<String>,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `node <args>` and wait for `ready` on its stdout (and, if it was
/// given --inspect, for the URL on its stderr).
pub fn start_node(node: &Path, args: &[&str], ready: &str) -> NodeProc {
    let mut child = Command::new(node)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
    let pid = child.id();
    let inspect = args.iter().any(|a| a.starts_with("--inspect=") || *a == "--inspect");
    let stderr = child.stderr.take().unwrap();
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("ws://") {
                let _ = url_tx.send(line[at..].trim().to_string());
            }
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let wanted = ready.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && line.contains(&wanted) {
                let _ = ready_tx.send(());
                sent = true;
            }
        }
    });
    let mut p = NodeProc { child, pid, ws_url: None };
    if inspect {
        p.ws_url = Some(url_rx.recv_timeout(Duration::from_secs(60)).expect("node printed no inspector URL"));
    }
    ready_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("node {args:?} never printed {ready:?}"));
    p
}

/// The `host:port` of a ws:// URL.
pub fn url_host_port(url: &str) -> String {
    url.trim_start_matches("ws://").split('/').next().unwrap().to_string()
}

/// A throwaway HTTP server on loopback that answers every request with
/// `response` (raw bytes) and closes; `None` accepts and never answers.
/// Returns its port; the thread lives as long as the test process.
pub fn fake_server(response: Option<&'static str>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            match response {
                Some(r) => {
                    use std::io::{Read, Write};
                    let mut s = s;
                    let mut buf = [0u8; 4096];
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(r.as_bytes());
                }
                None => held.push(s),
            }
        }
    });
    port
}

/// Count objects whose constructor name is `class` in a snapshot file.
pub fn count_class(path: &Path, class: &str) -> usize {
    let s = heapsnap::read_snapshot(path, heapsnap::ParseOptions::default())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    s.nodes().filter(|&n| s.kind(n) == heapsnap::NodeKind::Object && s.name(n) == class).count()
}

/// A failed leakhound run as users must see it: exit 2, nothing on stdout,
/// one stderr line `leakhound: error: ...` containing `expected`. Returns that line.
#[allow(dead_code)]
pub fn assert_one_line_error(o: &std::process::Output, what: &str, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("leakhound: error: "), "{stderr}");
    assert!(stderr.contains(expected), "{what}: expected {expected:?} in {stderr}");
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    stderr
}
