//! The user's own load driver (`--load-cmd 'autocannon -c 50 -d 30 URL'`):
//! run through `sh -c` in a process group of its own, output passed
//! through, the whole group killed on timeout or when the future is dropped.

use crate::Error;
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct CommandReport {
    pub command: String,
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// It ran past the timeout and was killed.
    pub timed_out: bool,
    pub duration_s: f64,
}

impl CommandReport {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// Kills the command's process group unless it was reaped: on timeout, on
/// error, and when the future running it is dropped (Ctrl-C).
struct GroupGuard {
    pgid: Option<i32>,
}

impl GroupGuard {
    fn kill(&mut self, sig: i32) {
        if let Some(pgid) = self.pgid {
            // SAFETY: signals our own child's process group.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill(libc::SIGKILL);
    }
}

pub async fn run_command(cmd: &str, timeout: Duration) -> Result<CommandReport, Error> {
    use std::os::unix::process::ExitStatusExt;
    let mut command = tokio::process::Command::new("sh");
    command.arg("-c").arg(cmd).process_group(0).kill_on_drop(true);
    // The driver's own report goes to our stderr: stdout is leakhound's
    // result (a JSON document with --json), never to be mixed with it.
    if let Ok(fd) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
        command.stdout(std::process::Stdio::from(fd));
    }
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // Die with leakhound even if it is killed without a chance to clean up.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = command.spawn().map_err(|e| Error::Io { what: format!("cannot run `sh -c {cmd}`"), source: e })?;
    let mut guard = GroupGuard { pgid: child.id().map(|p| p as i32) };
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status.map_err(|e| Error::Io { what: format!("waiting for `{cmd}`"), source: e })?, false),
        Err(_) => {
            // Ask politely first, so that a driver can print its summary.
            guard.kill(libc::SIGTERM);
            let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    guard.kill(libc::SIGKILL);
                    child.wait().await
                }
            };
            (status.map_err(|e| Error::Io { what: format!("waiting for `{cmd}`"), source: e })?, true)
        }
    };
    // Whatever the command left running in its group goes too (the guard's
    // drop). Linux does not hand out a pid still in use as a group id, so the
    // group is either still ours or gone (ESRCH).
    drop(guard);
    Ok(CommandReport {
        command: cmd.to_string(),
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        duration_s: start.elapsed().as_secs_f64(),
    })
}
