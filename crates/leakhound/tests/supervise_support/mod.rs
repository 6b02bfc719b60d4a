//! Running `leakhound supervise --json` in tests: its events (JSON lines on
//! stderr) collected by a thread, waits on them, and a stop that leaves no
//! process behind.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> String {
    root().join("fixtures/supervise").join(name).to_string_lossy().into_owned()
}

pub struct Supervised {
    child: Child,
    /// Events in order, with the instant the test saw each.
    pub events: Arc<Mutex<Vec<(Instant, Value)>>>,
    /// Other stderr lines (the workers' own, stack traces, leakhound's error).
    pub other: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    pub port: u16,
}

impl Supervised {
    /// `leakhound supervise --json --listen 127.0.0.1:0 ARGS -- node FIXTURE`,
    /// waiting for the `listening` event.
    pub fn start(args: &[&str], env: &[(&str, &str)], node_args: &[&str]) -> Supervised {
        let mut cmd = Command::new(BIN);
        cmd.arg("supervise").args(["--json", "--listen", "127.0.0.1:0"]).args(args).arg("--").arg("node").args(node_args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::start_cmd(cmd)
    }

    /// Start a prepared command whose stderr carries leakhound supervise's
    /// `--json` events (e.g. wrapped in `unshare`, or in a cgroup).
    pub fn start_cmd(mut cmd: Command) -> Supervised {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start leakhound");
        let stderr = child.stderr.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let other = Arc::new(Mutex::new(Vec::new()));
        let (e, o) = (events.clone(), other.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v.get("event").is_some() => e.lock().unwrap().push((Instant::now(), v)),
                    _ => o.lock().unwrap().push(line),
                }
            }
        });
        let mut s = Supervised { child, events, other, reader: Some(reader), port: 0 };
        let listening = s.wait_for("the listening event", Duration::from_secs(10), |e| e["event"] == "listening");
        let addr = listening["address"].as_str().unwrap().to_string();
        s.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        s
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().iter().map(|(_, v)| v.clone()).collect()
    }

    pub fn timed_events(&self) -> Vec<(Instant, Value)> {
        self.events.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.events.lock().unwrap().iter().filter(|(_, v)| pred(v)).count()
    }

    /// The first event matching `pred`, waiting up to `timeout` (panics
    /// with everything seen so far).
    pub fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_until(what, timeout, |evs| evs.iter().find(|v| pred(v)).cloned())
    }

    /// Wait until `f` over all events so far returns something.
    pub fn wait_until<T>(&mut self, what: &str, timeout: Duration, f: impl Fn(&[Value]) -> Option<T>) -> T {
        let t0 = Instant::now();
        loop {
            if let Some(t) = f(&self.events()) {
                return t;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(t) = f(&self.events()) {
                    return t;
                }
                panic!("leakhound exited ({status}) before {what}:\n{}", self.transcript());
            }
            if t0.elapsed() > timeout {
                panic!("no {what} within {timeout:?}:\n{}", self.transcript());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn transcript(&self) -> String {
        let mut s = String::new();
        for v in self.events() {
            s.push_str(&v.to_string());
            s.push('\n');
        }
        let other = self.other.lock().unwrap();
        let tail = other.len().saturating_sub(30);
        for l in &other[tail..] {
            s.push_str("| ");
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for leakhound to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return st;
            }
            if t0.elapsed() > timeout {
                panic!("leakhound still running after {timeout:?}:\n{}", self.transcript());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait (leakhound drains its workers first).
    pub fn stop(&mut self) -> ExitStatus {
        signal(self.child.id(), libc::SIGTERM);
        self.wait_exit(Duration::from_secs(20))
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // A failed test must not leave leakhound running; its workers die
        // with it (PR_SET_PDEATHSIG).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a process this test started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

pub fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

pub fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_ascii_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    Some(pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64)
}

/// Pids of every worker leakhound started, from its events.
pub fn worker_pids(events: &[Value]) -> Vec<u32> {
    events.iter().filter(|e| e["event"] == "spawned").map(|e| e["pid"].as_u64().unwrap() as u32).collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
