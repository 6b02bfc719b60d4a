//! Attaching to a running Node process by pid: SIGUSR1 makes Node open its
//! inspector on 127.0.0.1 at its `--inspect-port` (9229 unless set), then
//! `/json/list` on that port gives the websocket URL.
//!
//! Checks before and after, because the signal is the only thing we do to a
//! process we did not start:
//! - the process exists, runs a Node executable (`nodeproc`), and handles SIGUSR1 (the default action of SIGUSR1
//!   terminates a process, so a non-Node process is never signalled);
//! - an inspector already listening on the port is used without a signal;
//! - the inspector found answers `process.pid` with the pid asked for
//!   (another Node process may hold the port).
//!
//! Node keeps the inspector open after we leave (it cannot be closed from
//! outside without running code in the process).

use crate::discover::discover_at;
use crate::error::{Error, Result};
use crate::session::Session;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Node's default `--inspect-port`.
pub const DEFAULT_PORT: u16 = 9229;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub ws_url: String,
    /// False when the inspector was already open (no signal sent).
    pub signalled: bool,
}

/// SIGUSR1 to `pid` (unless its inspector is already open on `port`),
/// then the websocket URL from `127.0.0.1:port/json/list`.
pub async fn attach_pid(pid: u32, port: u16) -> Result<String> {
    Ok(attach_pid_with(pid, port, Duration::from_secs(10)).await?.ws_url)
}

/// `attach_pid` waiting at most `timeout` for the inspector to open.
pub async fn attach_pid_with(pid: u32, port: u16, timeout: Duration) -> Result<Attached> {
    check_exists(pid)?;
    let sock = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let probe = Duration::from_secs(3);
    match url_of(sock, probe).await {
        Ok(Some(url)) => {
            verify_pid(&url, sock, pid).await?;
            return Ok(Attached { ws_url: url, signalled: false });
        }
        Ok(None) | Err(Error::Refused { .. }) => {}
        Err(e) => return Err(e),
    }
    let name = check_handles_sigusr1(pid)?;
    // A handler is not enough: a shell's `trap ... USR1` handles it too.
    crate::nodeproc::check_is_node(pid)?;
    // SAFETY: plain syscall; the user asked for this process.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) } != 0 {
        return Err(signal_error(pid));
    }
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match url_of(sock, probe).await {
            Ok(Some(url)) => {
                verify_pid(&url, sock, pid).await?;
                return Ok(Attached { ws_url: url, signalled: true });
            }
            Ok(None) | Err(Error::Refused { .. }) => {}
            Err(e) => return Err(e),
        }
        if check_exists(pid).is_err() {
            return Err(Error::Exited {
                cmd: format!("process {pid} ({name})"),
                status: "gone".into(),
                when: "after SIGUSR1, before its inspector was listening".into(),
            });
        }
        if started.elapsed() >= timeout {
            return Err(Error::AttachTimeout { pid, addr: sock.to_string(), secs: timeout.as_secs_f64() });
        }
    }
}

async fn url_of(sock: SocketAddr, timeout: Duration) -> Result<Option<String>> {
    let targets = discover_at(sock, timeout).await?;
    Ok(targets.into_iter().find_map(|t| t.web_socket_debugger_url))
}

async fn verify_pid(url: &str, sock: SocketAddr, pid: u32) -> Result<()> {
    let session = Session::connect(url).await?;
    let found: u32 = session.evaluate("process.pid").await?;
    session.close().await;
    if found != pid {
        return Err(Error::WrongProcess { addr: sock.to_string(), pid, found });
    }
    Ok(())
}

fn signal_error(pid: u32) -> Error {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) => Error::NotPermitted { pid },
        _ => Error::NoSuchProcess { pid },
    }
}

/// `kill(pid, 0)`: does it exist, may we signal it. Zombies count as gone.
pub fn check_exists(pid: u32) -> Result<()> {
    if pid == 0 || pid > i32::MAX as u32 {
        return Err(Error::NoSuchProcess { pid });
    }
    // SAFETY: signal 0 only checks.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return Err(signal_error(pid));
    }
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        if stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()) == Some('Z') {
            return Err(Error::NoSuchProcess { pid });
        }
    }
    Ok(())
}

/// The process's name if it catches SIGUSR1 (`SigCgt` in /proc/PID/status).
fn check_handles_sigusr1(pid: u32) -> Result<String> {
    let status = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => s,
        Err(_) => return Err(Error::NoSuchProcess { pid }),
    };
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
    let name = field("Name:").unwrap_or_else(|| "?".into());
    let caught = field("SigCgt:").and_then(|h| u64::from_str_radix(&h, 16).ok()).unwrap_or(0);
    if caught & (1 << (libc::SIGUSR1 - 1)) == 0 {
        return Err(Error::NoSigusr1Handler { pid, name });
    }
    Ok(name)
}
