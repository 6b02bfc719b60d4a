//! The Linux side of supervision: starting a worker with the shared
//! listening socket and its control socket as inherited descriptors, in its
//! own process group, bound to die with leakhound; signals; RSS from /proc;
//! free disk space.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

/// Descriptor numbers the worker finds its sockets at.
pub const LISTEN_FD: RawFd = 3;
pub const CONTROL_FD: RawFd = 4;

pub struct Spawn<'a> {
    pub program: &'a OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub listener: RawFd,
    pub control: RawFd,
}

/// Start the worker. Its stdout and stderr are leakhound's; stdin is empty.
pub fn spawn(s: Spawn<'_>) -> std::io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(s.program);
    cmd.args(&s.args).envs(s.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
    // Its own group: a Ctrl-C at the terminal reaches leakhound only, which
    // drains the workers; and a kill of the group also ends what the worker
    // started.
    cmd.process_group(0);
    let (listener, control) = (s.listener, s.control);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, fcntl, dup2,
    // _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Dies with leakhound, even when leakhound is SIGKILLed. (The
            // signal follows the thread that forked: the supervisor forks
            // from its one runtime thread, which lives as long as it does.)
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1); // leakhound died before the prctl
            }
            // Through high temporaries, so that neither source is clobbered
            // when it already sits at 3 or 4; dup2 clears close-on-exec.
            let l = libc::fcntl(listener, libc::F_DUPFD_CLOEXEC, 10);
            let c = libc::fcntl(control, libc::F_DUPFD_CLOEXEC, 10);
            if l < 0 || c < 0 || libc::dup2(l, LISTEN_FD) < 0 || libc::dup2(c, CONTROL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.kill_on_drop(false).spawn()
}

fn send(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid leakhound started and has not reaped.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// SIGTERM to the worker itself (the shim drains it).
pub fn terminate(pid: u32) {
    send(pid as i32, libc::SIGTERM);
}

/// SIGKILL to the worker's whole process group.
pub fn kill_group(pid: u32) {
    send(-(pid as i32), libc::SIGKILL);
}

/// Resident set size, from /proc/PID/statm. `None` once the process is gone.
pub fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Bytes available to unprivileged users on the filesystem of `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// `exit code 1`, `signal 9 (SIGKILL)`.
pub fn status_text(status: &ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    if let Some(sig) = status.signal() {
        let name = nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
        return format!("signal {sig} ({name})");
    }
    "unknown status".to_string()
}

/// Make the listening socket drop every new connection attempt (a socket
/// filter that accepts no packet: SYNs are dropped, so a client retries and
/// then finds the port closed), while the connections already in its
/// accept queue stay there for the workers to accept. Without it, stopping
/// resets the connections the kernel had queued but no worker had accepted
/// yet: requests lost at every SIGTERM under load.
pub fn refuse_new_connections<T: AsRawFd>(listener: &T) -> std::io::Result<()> {
    let mut drop_all = [libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: 0 }];
    let prog = libc::sock_fprog { len: 1, filter: drop_all.as_mut_ptr() };
    // SAFETY: a valid program for the duration of the call; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &prog as *const libc::sock_fprog as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn raw_fd<T: AsRawFd>(t: &T) -> RawFd {
    t.as_raw_fd()
}
