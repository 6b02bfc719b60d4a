//! Running the leakhound binary in tests: with a time limit (a hang fails
//! the test instead of the suite), and interrupted mid-way as Ctrl-C would.
//! Shared through `#[path = "support/bin.rs"] mod bin;`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

/// `leakhound ARGS` with stdin closed and both outputs captured.
pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Run `leakhound ARGS`, killed (and the test failed) after `limit`.
pub fn leakhound<S: AsRef<OsStr>>(args: &[S], limit: Duration) -> Output {
    output_within(&mut command(args), limit)
}

/// Run `cmd` (its stdio already set), killed (and the test failed) after `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let shown = format!("{cmd:?}");
    wait_within(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {shown}: {e}")), limit, &shown)
}

/// Wait for `child`, reading its output meanwhile (a full pipe would
/// otherwise stall it); kill it and fail after `limit`.
pub fn wait_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: a plain signal to our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} took more than {limit:?}");
        }
    }
}

/// Ctrl-C: SIGINT to `child` (leakhound), as a terminal sends it.
pub fn interrupt(child: &Child) {
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
}

/// Wait until `cond` holds, failing with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "{what} (waited {limit:?})");
        std::thread::sleep(Duration::from_millis(20));
    }
}
