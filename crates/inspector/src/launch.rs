//! Starting a Node program with its inspector on a free loopback port.
//!
//! The child gets `--inspect=127.0.0.1:0` (port 0: the kernel picks a free
//! one, so parallel runs never collide) and prints
//! `Debugger listening on ws://127.0.0.1:PORT/ID` on its stderr, which we
//! read; every other stderr line is passed through to ours, and its stdout
//! goes where the caller says. It runs in its own process group with
//! `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with us however we die, and the
//! whole group is killed when it exits, on `stop`, or when the `Launched`
//! is dropped.
//!
//! `launch` returns once the program's own code is compiled (see
//! `wait_for_user_code`), so the caller may evaluate anything at once.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned the child ends:
//! call `launch` from a thread that lives as long as the child (the main
//! thread, or a tokio runtime worker), not from a `spawn_blocking` task.

use crate::addr::ws_url_addr;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{oneshot, watch};

/// Where the child's stdout goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChildStdout {
    /// Our stdout (the default).
    #[default]
    Inherit,
    /// Our stderr: when our stdout carries a machine-readable document.
    ToStderr,
    Null,
}

#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Extra Node flags, placed before the script (e.g. `--expose-gc`).
    pub extra_node_args: Vec<OsString>,
    pub stdout: ChildStdout,
    /// How long to wait for the "Debugger listening" line.
    pub url_timeout: Duration,
    /// Extra environment variables for the program (e.g. `PORT`).
    pub env: Vec<(OsString, OsString)>,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions { extra_node_args: Vec::new(), stdout: ChildStdout::Inherit, url_timeout: Duration::from_secs(30), env: Vec::new() }
    }
}

/// A Node process we started, with its inspector's websocket URL.
pub struct Launched {
    pub ws_url: String,
    pub pid: u32,
    /// The command as the user gave it, for messages.
    pub command: String,
    /// Whether `--inspect` went on the command line (node-like argv[0]) or
    /// through `NODE_OPTIONS`.
    pub via_node_options: bool,
    status: watch::Receiver<Option<ExitStatus>>,
    waiting_for_debugger: watch::Receiver<bool>,
    /// The program's last stderr lines (Node's inspector chatter left
    /// out), to say why it died.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// How many of the program's last stderr lines are kept.
const STDERR_TAIL: usize = 20;

/// Start `cmd` with an inspector on 127.0.0.1:<free port>. If `cmd[0]` is
/// node-like (`node`, `nodejs`, `node22`, `/path/to/node`) `--inspect=...`
/// and `extra_node_args` go right after it; otherwise (`npm start`, a shell
/// script) they go into `NODE_OPTIONS`, and the first Node process of the
/// tree to print its URL is the one attached to (with `npm start` that is
/// npm itself: prefer `-- node app.js`).
pub async fn launch(cmd: &[OsString], extra_node_args: &[OsString]) -> Result<Launched> {
    launch_with(cmd, &LaunchOptions { extra_node_args: extra_node_args.to_vec(), ..Default::default() }).await
}

/// Whether `argv0` names a Node binary.
pub fn is_node_like(argv0: &OsStr) -> bool {
    let base = std::path::Path::new(argv0).file_name().map(|b| b.as_bytes()).unwrap_or(b"");
    let base = std::str::from_utf8(base).unwrap_or("");
    // `node`, `nodejs`, `node22`, `node20.11`: not `nodemon`, `node-gyp`.
    let rest = base.strip_prefix("nodejs").or_else(|| base.strip_prefix("node"));
    rest.is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

const INSPECT_FLAG: &str = "--inspect=127.0.0.1:0";

pub async fn launch_with(cmd: &[OsString], opts: &LaunchOptions) -> Result<Launched> {
    let shown = cmd.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let Some(argv0) = cmd.first() else {
        return Err(Error::Spawn { cmd: shown, source: std::io::Error::other("empty command") });
    };
    let node_like = is_node_like(argv0);
    let mut command = tokio::process::Command::new(argv0);
    if node_like {
        command.arg(INSPECT_FLAG).args(&opts.extra_node_args).args(&cmd[1..]);
    } else {
        let mut node_options = OsString::from(INSPECT_FLAG);
        for a in &opts.extra_node_args {
            node_options.push(" ");
            node_options.push(a);
        }
        if let Some(existing) = std::env::var_os("NODE_OPTIONS") {
            node_options.push(" ");
            node_options.push(existing);
        }
        command.args(&cmd[1..]).env("NODE_OPTIONS", node_options);
    }
    // Own process group: our terminal's Ctrl-C reaches only us (we stop the
    // child cleanly), and the group can be killed whole. So stdin cannot be
    // the terminal (a background group reading it would be stopped).
    command.envs(opts.env.iter().map(|(k, v)| (k, v)));
    command.stdin(Stdio::null()).stderr(Stdio::piped());
    command.stdout(match opts.stdout {
        ChildStdout::Inherit => Stdio::inherit(),
        ChildStdout::Null => Stdio::null(),
        ChildStdout::ToStderr => {
            let fd = std::os::fd::AsFd::as_fd(&std::io::stderr())
                .try_clone_to_owned()
                .map_err(|e| Error::Spawn { cmd: shown.clone(), source: e })?;
            Stdio::from(fd)
        }
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // We died between fork and prctl: the signal will never come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| Error::Spawn { cmd: shown.clone(), source: e })?;
    let pid = child.id().expect("a just-spawned child has a pid");
    let stderr = child.stderr.take().expect("stderr is piped");

    let (status_tx, status_rx) = watch::channel(None);
    tokio::spawn(async move {
        let status = child.wait().await;
        // Take down what the child left in its group (e.g. `sh -c` leftovers)
        // while the group id cannot yet have been reused.
        // SAFETY: plain syscall.
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
        let _ = status_tx.send(Some(status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(0))));
    });

    let (url_tx, url_rx) = oneshot::channel::<String>();
    let (wait_tx, wait_rx) = watch::channel(false);
    let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
    let tail = stderr_tail.clone();
    tokio::spawn(async move {
        let mut url_tx = Some(url_tx);
        let mut lines = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let t = text.trim_end();
            if let Some(at) = t.find("Debugger listening on ws://") {
                if let Some(tx) = url_tx.take() {
                    let _ = tx.send(t[at + "Debugger listening on ".len()..].trim().to_string());
                }
                continue;
            }
            // Node's own inspector chatter is ours, not the program's output.
            if t.starts_with("For help, see: https://nodejs.org") || t == "Debugger attached." || t.starts_with("Debugger ending on ws://")
            {
                continue;
            }
            if t == "Waiting for the debugger to disconnect..." {
                let _ = wait_tx.send(true);
                continue;
            }
            if !t.trim().is_empty() {
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(t.to_string());
            }
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&line);
            let _ = err.flush();
        }
    });

    let mut launched = Launched {
        ws_url: String::new(),
        pid,
        command: shown.clone(),
        via_node_options: !node_like,
        status: status_rx,
        waiting_for_debugger: wait_rx,
        stderr_tail,
    };
    let mut status = launched.status.clone();
    let url = tokio::select! {
        url = url_rx => url.ok(),
        _ = status.wait_for(|s| s.is_some()) => None,
        _ = tokio::time::sleep(opts.url_timeout) => {
            return Err(Error::NoInspectorUrl { cmd: shown, secs: opts.url_timeout.as_secs_f64() });
        }
    };
    let Some(url) = url else {
        // The stderr reader ends at EOF, i.e. at exit: wait for the status.
        let st = launched.wait().await;
        return Err(Error::Exited { cmd: shown, status: describe_status(st), when: "before its inspector was listening".into() });
    };
    ws_url_addr(&url)?;
    let ready = tokio::select! {
        r = wait_for_user_code(&url, opts.url_timeout) => r,
        _ = status.wait_for(|s| s.is_some()) => Err(Error::Closed { during: String::new() }),
    };
    if let Err(e) = ready {
        // Most failures here mean the program we just started is ending (its
        // inspector closed, or its port already went to another process):
        // wait for that (slow to show on a loaded machine) to say so.
        let wait = if e.is_closed() { Duration::from_secs(10) } else { Duration::from_secs(5) };
        let _ = tokio::time::timeout(wait, launched.finished()).await;
        return Err(launched.exit_error("before its inspector was ready").await.unwrap_or(e));
    }
    launched.ws_url = url;
    Ok(launched)
}

/// Wait until the program's own code is compiled, i.e. Node has finished
/// bootstrapping. A process started with `--inspect` answers its inspector
/// from the start, while Node's library is half-loaded: evaluating Node
/// APIs then can throw, break a module for the program (requiring
/// `perf_hooks`), or crash the process (`setImmediate` segfaults Node 24 and
/// 26 now and then). The Debugger domain reports every script compiled,
/// those before it was enabled too; the first one not from Node itself
/// (`file://...`, `[eval]`) marks the end of bootstrap. The domain is on for
/// these few milliseconds only. Gives up quietly after `timeout` (a program
/// with no script of its own, e.g. a single-executable application).
async fn wait_for_user_code(url: &str, timeout: Duration) -> Result<()> {
    let session = crate::Session::connect(url).await?;
    let found = tokio::time::timeout(timeout, async {
        for _attempt in 0..3 {
            let mut events = session.subscribe();
            let _: serde_json::Value = session.call("Debugger.enable", ()).await?;
            loop {
                match events.recv().await {
                    Ok(ev) if ev.method == "Debugger.scriptParsed" => {
                        let script = ev.params.get("url").and_then(|u| u.as_str()).unwrap_or("");
                        if !script.is_empty() && !script.starts_with("node:") {
                            return Ok(());
                        }
                    }
                    Ok(_) => {}
                    // Events lost: enabling again reports every script again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(Error::Closed { during: String::new() }),
                }
            }
            let _: serde_json::Value = session.call("Debugger.disable", ()).await?;
        }
        Ok(())
    })
    .await;
    // A timeout is not an error: see above.
    if let Ok(Err(e)) = found {
        return Err(e);
    }
    let _: Result<serde_json::Value> = session.call("Debugger.disable", ()).await;
    session.close().await;
    Ok(())
}

/// `status 3`, `signal 9 (SIGKILL)`.
pub fn describe_status(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("status {c}"),
        (None, Some(s)) => {
            let name = match s {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGINT => " (SIGINT)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                _ => "",
            };
            format!("signal {s}{name}")
        }
        _ => "unknown status".into(),
    }
}

impl Launched {
    /// The exit status, if the child has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        *self.status.borrow()
    }

    /// The program's last `n` non-empty stderr lines, oldest first.
    pub fn last_stderr_lines(&self, n: usize) -> Vec<String> {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().skip(tail.len().saturating_sub(n)).cloned().collect()
    }

    /// Wait for the child to exit.
    pub async fn wait(&mut self) -> ExitStatus {
        let mut rx = self.status.clone();
        let st = rx.wait_for(|s| s.is_some()).await.map(|s| s.expect("checked")).ok();
        st.unwrap_or_else(|| std::os::unix::process::ExitStatusExt::from_raw(0))
    }

    /// Resolves when the child has exited.
    pub async fn exited(&self) {
        let mut rx = self.status.clone();
        let _ = rx.wait_for(|s| s.is_some()).await;
    }

    /// Node printed "Waiting for the debugger to disconnect...": the program
    /// has finished and only our connection keeps the process alive.
    pub fn finished_program(&self) -> bool {
        *self.waiting_for_debugger.borrow()
    }

    /// Resolves when the program has finished (exited, or waits only for
    /// the debugger to disconnect).
    pub async fn finished(&self) {
        let mut wait = self.waiting_for_debugger.clone();
        // The stderr reader drops its sender at EOF, which comes a moment
        // before the exit is reaped: that is not "finished" yet.
        let waiting = async {
            if wait.wait_for(|w| *w).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = self.exited() => {}
            _ = waiting => {}
        }
    }

    /// The error to show when talking to the target failed because its
    /// program ended: `` `node app.js` exited (status 1) <when> ``, or
    /// `` (its program finished) `` while Node still waits for the debugger
    /// to disconnect. `None` while the program runs.
    pub async fn exit_error(&self, when: &str) -> Option<Error> {
        // A closed socket or a destroyed context usually comes a little
        // before the exit is reaped or Node's "Waiting for the debugger" line.
        // On a loaded machine reaping can lag the refused connection by
        // seconds; only this failure path waits, so be generous.
        let _ = tokio::time::timeout(Duration::from_millis(3000), self.finished()).await;
        if self.finished_program() && self.try_status().is_none() {
            // Once our connection is gone Node exits: give it a moment.
            let _ = tokio::time::timeout(Duration::from_millis(1000), self.exited()).await;
        }
        let status = match self.try_status() {
            Some(st) => describe_status(st),
            None if self.finished_program() => "its program finished".to_string(),
            None => return None,
        };
        Some(Error::Exited { cmd: self.command.clone(), status, when: when.to_string() })
    }

    /// Stop the child: SIGTERM to its group, SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> ExitStatus {
        if let Some(st) = self.try_status() {
            return st;
        }
        self.signal_group(libc::SIGTERM);
        if let Ok(st) = tokio::time::timeout(grace, self.wait()).await {
            return st;
        }
        self.signal_group(libc::SIGKILL);
        self.wait().await
    }

    fn signal_group(&self, sig: libc::c_int) {
        if self.try_status().is_none() {
            // SAFETY: plain syscall on our own child's group.
            unsafe { libc::kill(-(self.pid as libc::pid_t), sig) };
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.signal_group(libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_like_names() {
        for yes in ["node", "nodejs", "/usr/bin/node", ".cache/node/20/bin/node", "node22", "node20.1"] {
            assert!(is_node_like(OsStr::new(yes)), "{yes}");
        }
        for no in ["npm", "nodemon", "sh", "node-gyp", "/bin/bash", "npx", "ts-node", ""] {
            assert!(!is_node_like(OsStr::new(no)), "{no}");
        }
    }
}
