//! Reaching a live Node process for the commands that talk to one
//! (`snapshot`, `watch`, `handles`): `--pid PID [--port P]`,
//! `--inspect ADDR` or `-- CMD...`, and what they share (a tokio runtime,
//! Ctrl-C, durations).

pub mod checkup;
pub mod evidence;
pub mod headroom;
pub mod interrupted;
pub mod load;
pub mod ports;
pub mod probe;
pub mod rates;
pub mod tracking;
pub mod watchdog;

use anyhow::{Context, Result};
use inspector::{ChildStdout, LaunchOptions, Launched, ProcessInfo, Session};
use std::ffi::OsString;
use std::time::Duration;

/// Which process to talk to. Exactly one of `--pid`, `--inspect`, `-- CMD`.
#[derive(clap::Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "inspect", "cmd"])))]
pub struct TargetArgs {
    /// A running Node process: leakhound sends it SIGUSR1 (Node then opens
    /// its inspector on 127.0.0.1) and finds the inspector on --port.
    #[arg(long, value_name = "PID", conflicts_with_all = ["inspect", "cmd"])]
    pub pid: Option<u32>,
    /// With --pid: the process's inspector port (its --inspect-port).
    #[arg(long, value_name = "PORT", default_value_t = inspector::DEFAULT_PORT)]
    pub port: u16,
    /// An inspector already listening: ws://127.0.0.1:PORT/ID, HOST:PORT or
    /// PORT (loopback only).
    #[arg(long, value_name = "ADDR", conflicts_with = "cmd")]
    pub inspect: Option<String>,
    /// Start this program with an inspector on a free loopback port, e.g.
    /// `-- node app.js`; it is stopped when leakhound is done. If the program
    /// is not `node` itself, --inspect goes through NODE_OPTIONS.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

/// A connected target.
pub struct Target {
    pub session: Session,
    /// Set when we started the process.
    pub launched: Option<Launched>,
    pub info: ProcessInfo,
    /// `process 1234 (node app.js, Node v20.11.1)`.
    pub label: String,
    /// The inspector leakhound opened with SIGUSR1 (`--pid` on a process
    /// whose inspector was closed): closed by `finish` and `fail`, or when
    /// the target is dropped on any other way out. None when it was open
    /// before (it is left open) or for `--inspect` / `-- CMD`.
    pub opened: Option<inspector::OpenedInspector>,
}

/// How to start a `-- CMD` target.
#[derive(Default)]
pub struct ConnectOptions {
    /// Where the started program's stdout goes (stderr when ours is JSON).
    pub child_stdout: ChildStdout,
}

/// Reach the process named by `args` and open a session with it.
pub async fn connect(args: &TargetArgs, opts: ConnectOptions) -> Result<Target> {
    connect_env(args, opts, Vec::new()).await
}

/// `connect`, with extra environment variables for a program we start.
pub async fn connect_env(args: &TargetArgs, opts: ConnectOptions, env: Vec<(OsString, OsString)>) -> Result<Target> {
    let mut launched = None;
    let mut opened = None;
    let url = if let Some(pid) = args.pid {
        let (attached, o) = inspector::attach_pid_guarded(pid, args.port, Duration::from_secs(10)).await?;
        // Dropped on the way out if connecting fails below: closes it.
        opened = o;
        attached.ws_url
    } else if let Some(addr) = &args.inspect {
        match inspector::parse_endpoint(addr)? {
            inspector::Endpoint::WebSocket { url, .. } => url,
            inspector::Endpoint::Http(sock) => inspector::discover::first_target_url(sock, Duration::from_secs(5)).await?,
        }
    } else {
        let l = inspector::launch_with(&args.cmd, &LaunchOptions { stdout: opts.child_stdout, env, ..Default::default() }).await?;
        let url = l.ws_url.clone();
        launched = Some(l);
        url
    };
    let attempt = async {
        let session = Session::connect(&url).await?;
        let info = session.process_info().await?;
        Ok::<_, inspector::Error>((session, info))
    };
    // On failure the session is dropped (disconnected) before `explain`
    // looks at the child: Node exits only once its debugger has left.
    let (session, info) = match attempt.await {
        Ok(x) => x,
        Err(e) => return Err(explain(e, launched.as_ref(), "before leakhound could connect to its inspector").await.into()),
    };
    let argv: Vec<String> = info.argv.iter().skip(1).map(|a| short_path(a)).collect();
    let label = if argv.is_empty() {
        format!("process {} (Node {})", info.pid, info.node_version)
    } else {
        format!("process {} (node {}, Node {})", info.pid, argv.join(" "), info.node_version)
    };
    Ok(Target { session, launched, info, label, opened })
}

/// The last path component of script paths, for short labels.
fn short_path(a: &str) -> String {
    if a.starts_with('/') {
        a.rsplit('/').next().unwrap_or(a).to_string()
    } else {
        a.to_string()
    }
}

/// Replace a failure caused by our child's program ending (connection
/// refused or closed, "Cannot find context" once Node waits for the
/// debugger to leave) with that fact.
pub async fn explain(e: inspector::Error, launched: Option<&Launched>, when: &str) -> inspector::Error {
    match launched {
        Some(l) => l.exit_error(when).await.unwrap_or(e),
        None => e,
    }
}

pub use crate::model::TargetJson;

impl Target {
    pub fn json(&self) -> TargetJson {
        TargetJson {
            pid: self.info.pid,
            node_version: self.info.node_version.clone(),
            argv: self.info.argv.clone(),
            started_by_leakhound: self.launched.is_some(),
        }
    }

    /// Resolves when the program we started has finished; never for a
    /// process we only attached to.
    pub async fn program_finished(&self) {
        match &self.launched {
            Some(l) => l.finished().await,
            None => std::future::pending().await,
        }
    }

    /// Give up on the target after `e`: disconnect, explain the error by
    /// the child's exit if that is what happened, stop the child.
    pub async fn fail(self, e: inspector::Error, when: &str) -> anyhow::Error {
        let Target { session, launched, label, opened, .. } = self;
        close_opened(opened, &session).await;
        session.close().await;
        let e = explain(e, launched.as_ref(), when).await;
        if let Some(mut l) = launched {
            l.stop(Duration::from_secs(5)).await;
        }
        match e {
            inspector::Error::Exited { .. } => e.into(),
            other => anyhow::Error::from(other).context(label),
        }
    }

    /// Close the session and stop the process if we started it.
    pub async fn finish(self) {
        let Target { session, launched, opened, .. } = self;
        close_opened(opened, &session).await;
        session.close().await;
        if let Some(mut l) = launched {
            l.stop(Duration::from_secs(5)).await;
        }
    }
}

/// Close the inspector we opened (if any), saying so on stderr if it
/// cannot be closed: the process must not be left listening unknowingly.
pub async fn close_opened(opened: Option<inspector::OpenedInspector>, session: &Session) {
    if let Some(o) = opened {
        if let Err(e) = o.close(Some(session)).await {
            eprintln!("leakhound: warning: {e}");
        }
    }
}

/// Run `f` on a single-threaded tokio runtime (on this, the main, thread:
/// a child's PR_SET_PDEATHSIG is tied to the thread that started it).
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    Ok(rt.block_on(f))
}

/// SIGINT and SIGTERM, listened to from creation on. Create it once, at
/// the start: once tokio handles a signal, the default action (exit) is
/// gone for good, and a listener only sees signals that come after it was
/// made, so one made anew in each loop turn would miss a Ctrl-C that
/// arrives between two turns.
pub struct Interrupts {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    /// Must be called inside the runtime.
    pub fn new() -> Interrupts {
        use tokio::signal::unix::{signal, SignalKind};
        Interrupts { int: signal(SignalKind::interrupt()).ok(), term: signal(SignalKind::terminate()).ok() }
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        let int = async {
            match &mut self.int {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let term = async {
            match &mut self.term {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = int => {}
            _ = term => {}
        }
    }
}

/// `12.3 s`, `4 min 05 s`, `3 h 20 min`, `2.5 days`.
pub fn human_duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{} min {:02} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else if secs < 86400.0 * 2.0 {
        format!("{} h {:02} min", (secs / 3600.0) as u64, ((secs % 3600.0) / 60.0) as u64)
    } else {
        format!("{:.1} days", secs / 86400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5.0), "5.0 s");
        assert_eq!(human_duration(245.0), "4 min 05 s");
        assert_eq!(human_duration(3.5 * 3600.0), "3 h 30 min");
    }
}
