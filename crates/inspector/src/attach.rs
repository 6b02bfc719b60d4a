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
//! Node keeps an inspector open until code in the process closes it, and
//! an open inspector lets any local user run code as the service. So an
//! inspector that *we* opened is closed again before we leave:
//! [`attach_pid_guarded`] returns an [`OpenedInspector`] that closes it on
//! [`OpenedInspector::close`] or, failing that, when dropped (error paths,
//! Ctrl-C). One that was open before we came is left open.
//!
//! How it is closed (checked on Node 18, 20, 22, 24 and 26): evaluating
//! `require('inspector').close()` (command-line API) in the target. It
//! closes every inspector connection, ours included, so no reply comes;
//! the call returns at once (it does not wait for the connections to
//! close) and the port stops listening; the process runs on, and SIGUSR1
//! opens the inspector again. `process._debugEnd()` (the same, undocumented)
//! is the fallback. The expression first checks `process.pid`, so another
//! process's inspector on the same port is never closed.

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

/// `attach_pid` waiting at most `timeout` for the inspector to open. The
/// inspector is left open (see [`attach_pid_guarded`] to close it).
pub async fn attach_pid_with(pid: u32, port: u16, timeout: Duration) -> Result<Attached> {
    let (attached, opened) = attach_pid_guarded(pid, port, timeout).await?;
    if let Some(o) = opened {
        o.leave_open();
    }
    Ok(attached)
}

/// `attach_pid_with`, plus the inspector to close when we opened it (None
/// when it was open before). If attaching fails after the signal (timeout,
/// the future dropped), the inspector is closed before this returns.
pub async fn attach_pid_guarded(pid: u32, port: u16, timeout: Duration) -> Result<(Attached, Option<OpenedInspector>)> {
    check_exists(pid)?;
    let sock = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let probe = Duration::from_secs(3);
    match url_of(sock, probe).await {
        Ok(Some(url)) => {
            verify_pid(&url, sock, pid).await?;
            return Ok((Attached { ws_url: url, signalled: false }, None));
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
    // From here on the inspector may be open: closed on every way out but success.
    let opened = OpenedInspector { pid, port, armed: true };
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match url_of(sock, probe).await {
            Ok(Some(url)) => {
                verify_pid(&url, sock, pid).await?;
                return Ok((Attached { ws_url: url, signalled: true }, Some(opened)));
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

/// An inspector leakhound opened with SIGUSR1 and must close: by
/// [`close`](OpenedInspector::close) on the normal ways out, else when
/// dropped (a blocking close from a thread of its own, a few seconds at
/// most). [`leave_open`](OpenedInspector::leave_open) keeps it open.
#[derive(Debug)]
pub struct OpenedInspector {
    pid: u32,
    port: u16,
    armed: bool,
}

/// How long closing may take: the reply (none comes when it works), then
/// the port going quiet.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl OpenedInspector {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Close the inspector, through `session` when it is connected to it
    /// (else through a new connection), and wait until the port no longer
    /// accepts connections. A process that is gone counts as closed.
    pub async fn close(mut self, session: Option<&Session>) -> Result<()> {
        self.armed = false;
        close_inspector(self.pid, self.port, session).await
    }

    /// Leave the inspector open (the caller takes charge of it).
    pub fn leave_open(mut self) {
        self.armed = false;
    }
}

impl Drop for OpenedInspector {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (pid, port) = (self.pid, self.port);
        // We may be inside a runtime (a dropped future): run the close on a
        // thread with a runtime of its own, and wait for it.
        let closer = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            let _ = rt.block_on(async { tokio::time::timeout(CLOSE_TIMEOUT * 2, close_inspector(pid, port, None)).await });
        });
        let _ = closer.join();
    }
}

/// What closes the inspector from inside, only in process `pid`.
fn close_expr(pid: u32) -> String {
    format!(
        "(() => {{ if (process.pid !== {pid}) return 'another process'; \
         try {{ require('inspector').close(); }} catch (e) {{ process._debugEnd(); }} return 'still open'; }})()"
    )
}

async fn close_inspector(pid: u32, port: u16, session: Option<&Session>) -> Result<()> {
    let sock = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    async fn evaluate(s: &Session, pid: u32) -> Result<String> {
        let opts = crate::session::EvalOptions { timeout: Some(CLOSE_TIMEOUT), ..Default::default() };
        s.evaluate_with::<String>(&close_expr(pid), &opts).await
    }
    let outcome = match session.filter(|s| !s.is_closed()) {
        Some(s) => evaluate(s, pid).await,
        None => {
            if check_exists(pid).is_err() {
                return Ok(());
            }
            match url_of(sock, Duration::from_secs(2)).await {
                Ok(Some(url)) => match Session::connect(&url).await {
                    Ok(s) => {
                        let r = evaluate(&s, pid).await;
                        drop(s);
                        r
                    }
                    Err(Error::Refused { .. }) => return Ok(()),
                    Err(e) => Err(e),
                },
                // Nobody listens: nothing to close.
                Ok(None) | Err(Error::Refused { .. }) => return Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    match outcome {
        // The inspector dropped every connection, ours first: that is the close.
        Err(Error::Closed { .. }) => {}
        Ok(what) if what == "another process" => return Ok(()),
        Ok(what) => return Err(Error::CloseFailed { pid, addr: sock.to_string(), why: format!("the close call returned ({what})") }),
        Err(e) if check_exists(pid).is_err() => {
            let _ = e;
            return Ok(());
        }
        Err(e) => return Err(Error::CloseFailed { pid, addr: sock.to_string(), why: e.to_string() }),
    }
    // The listening socket goes away with the connections; make sure.
    let started = Instant::now();
    loop {
        match tokio::net::TcpStream::connect(sock).await {
            Err(_) => return Ok(()),
            Ok(_) if started.elapsed() >= CLOSE_TIMEOUT => {
                return Err(Error::CloseFailed { pid, addr: sock.to_string(), why: "the port still accepts connections".into() })
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
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
