//! Watching the app `run` started, in every phase: waiting for it to
//! answer, warm-up, rounds, GCs, snapshots.
//!
//! Why: each phase waits on something the app must do (answer a request,
//! reply to the inspector). When the app dies, Node does not always close
//! its sockets at once: with a debugger attached, `process.exit()` and an
//! uncaught exception leave the process waiting for the debugger to
//! disconnect, its server still bound, so requests and inspector calls
//! just wait. And an app whose event loop is blocked answers nothing, ever.
//! So a watchdog runs beside the phases: it ends the run within a second of
//! the program finishing, and when no request has finished for the request
//! timeout it asks the inspector for a trivial evaluation to tell a blocked
//! event loop from a stuck handler. In a GC or a snapshot, where no
//! request runs, it watches the app's main thread instead: V8 does that
//! work on it, so a main thread that used no CPU for two seconds while
//! leakhound waits on the inspector is blocked (Atomics.wait, a synchronous
//! child process, SIGSTOP) and would otherwise hold the run for the
//! inspector's 120 s timeout. Either way `run` says what happened, in which
//! phase, after how many requests, with the app's last stderr lines.

use super::Target;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the run is doing now, shared by the phases and the watchdog.
pub struct Progress {
    phase: Mutex<String>,
    /// Requests answered in the phases before this one.
    before: AtomicU64,
    /// Requests answered (any status) in this phase so far.
    in_phase: AtomicU64,
    /// A load phase is running: a stall means something.
    loading: AtomicBool,
    /// Since when leakhound waits on the app's inspector (a GC, a
    /// snapshot): a main thread that does nothing then means something.
    inspecting: Mutex<Option<Instant>>,
    /// When the request count last moved (or the load started).
    moved: Mutex<Instant>,
    /// The URLs the load goes to, once the app answered (the port it
    /// really listens on).
    urls: Mutex<Vec<String>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            phase: Mutex::new("start-up".into()),
            before: AtomicU64::new(0),
            in_phase: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            inspecting: Mutex::new(None),
            moved: Mutex::new(Instant::now()),
            urls: Mutex::new(Vec::new()),
        }
    }
}

impl Progress {
    /// A new phase (`while leakhound waited for …`, `warm-up`, `round 2`,
    /// `the GC after round 2`, `snapshot 3`).
    pub fn enter(&self, phase: &str) {
        let n = self.in_phase.swap(0, Ordering::Relaxed);
        self.before.fetch_add(n, Ordering::Relaxed);
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
        *self.inspecting.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A new phase in which the app works for the inspector (a full GC, a
    /// snapshot) rather than answering requests.
    pub fn enter_inspector_phase(&self, phase: &str) {
        self.enter(phase);
        *self.inspecting.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn inspecting_since(&self) -> Option<Instant> {
        *self.inspecting.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_urls(&self, urls: &[String]) {
        *self.urls.lock().unwrap_or_else(|e| e.into_inner()) = urls.to_vec();
    }

    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn phase(&self) -> String {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A load phase starts (`true`) or ends.
    pub fn loading(&self, on: bool) {
        *self.moved.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.loading.store(on, Ordering::Relaxed);
    }

    /// The load driver's progress: requests answered in this phase.
    pub fn requests(&self, done: u64) {
        if self.in_phase.swap(done, Ordering::Relaxed) != done {
            *self.moved.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
    }

    /// Requests answered over the whole run so far.
    pub fn total(&self) -> u64 {
        self.before.load(Ordering::Relaxed) + self.in_phase.load(Ordering::Relaxed)
    }

    pub fn in_phase(&self) -> u64 {
        self.in_phase.load(Ordering::Relaxed)
    }

    /// How long a running load has made no progress.
    fn stalled_for(&self) -> Option<Duration> {
        self.loading.load(Ordering::Relaxed).then(|| self.moved.lock().unwrap_or_else(|e| e.into_inner()).elapsed())
    }
}

/// Why the watchdog stopped the run.
#[derive(Debug)]
pub enum Alarm {
    /// The program ended (exited, crashed, or only waits for the debugger).
    Finished,
    /// No request finished for `secs`; whether the app's event loop still turns.
    Stalled { secs: f64, event_loop_runs: bool },
    /// In a GC or snapshot phase the app's main thread used no CPU for
    /// `secs`; `stopped`: the process is stopped (SIGSTOP, a debugger).
    Idle { secs: f64, stopped: bool },
}

/// How long the main thread may use no CPU while leakhound waits on the
/// inspector. A GC or a snapshot keeps it busy the whole time (on a loaded
/// 2-core machine it still gets CPU every few ms); between two calls it
/// idles for well under a millisecond.
pub const IDLE_LIMIT: Duration = Duration::from_secs(2);

/// A thread's CPU time so far (ns) and whether it is stopped, from
/// /proc. None where there is no /proc or the thread is gone.
fn main_thread_cpu(pid: u32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is
    // the first, utime and stime the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let stopped = matches!(fields.first(), Some(&"T") | Some(&"t"));
    // schedstat counts in ns; stat's clock ticks (10 ms) are the fallback.
    let ns = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .or_else(|| {
            let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 10_000_000)
        })?;
    Some((ns, stopped))
}

/// Resolves when the app we started has finished, or when a running load
/// made no progress for `stall`. Never resolves for a process we did not
/// start (nothing to watch but the load).
pub async fn watch(target: &Target, progress: &Progress, stall: Duration) -> Alarm {
    let finished = target.program_finished();
    tokio::pin!(finished);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The main thread's CPU time in this inspector phase, and when it last moved.
    let mut cpu: Option<(Instant, u64, Instant)> = None;
    loop {
        tokio::select! {
            _ = &mut finished => {
                // The load's count of finished requests comes every 100 ms:
                // let it catch up before it is quoted.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Alarm::Finished;
            }
            _ = tick.tick() => {}
        }
        match (progress.inspecting_since(), target.launched.is_some()) {
            (Some(since), true) => {
                if let Some((ns, stopped)) = main_thread_cpu(target.info.pid) {
                    let now = Instant::now();
                    match cpu {
                        Some((phase, last, _)) if phase == since && last != ns => cpu = Some((since, ns, now)),
                        Some((phase, _, moved)) if phase == since => {
                            if now.duration_since(moved) >= IDLE_LIMIT {
                                // A program that exits stops using CPU too: say that instead.
                                if tokio::time::timeout(Duration::from_millis(300), &mut finished).await.is_ok() {
                                    return Alarm::Finished;
                                }
                                return Alarm::Idle { secs: now.duration_since(moved).as_secs_f64(), stopped };
                            }
                        }
                        _ => cpu = Some((since, ns, now)),
                    }
                }
            }
            _ => cpu = None,
        }
        if progress.stalled_for().is_some_and(|d| d >= stall) {
            let secs = stall.as_secs_f64();
            // Is the event loop blocked, or only the requests?
            // The inspector answers even during a busy loop (V8 interrupts the
            // running JS for it): a deferred evaluation waits for the event loop.
            let opts = inspector::EvalOptions { defer: true, timeout: Some(Duration::from_secs(5)), ..Default::default() };
            let ping = tokio::time::timeout(Duration::from_secs(6), target.session.evaluate_with::<serde_json::Value>("1", &opts));
            let event_loop_runs = tokio::select! {
                r = ping => matches!(r, Ok(Ok(_))),
                _ = &mut finished => return Alarm::Finished,
            };
            // The load may have moved meanwhile (a slow app, not a dead one).
            if progress.stalled_for().is_some_and(|d| d >= stall) {
                return Alarm::Stalled { secs, event_loop_runs };
            }
        }
    }
}

/// The one line that says what happened to the app, after the session is
/// closed (`status` is the exit status once known).
pub fn describe(alarm: &Alarm, status: Option<&str>, progress: &Progress, stderr: &[String]) -> String {
    let phase = progress.phase();
    let total = progress.total();
    let reqs = crate::output::count(total, "answered request");
    let after = if total == 0 {
        String::new()
    } else if progress.in_phase() > 0 && progress.in_phase() < total {
        format!(" after {reqs} ({} in this phase)", crate::output::int(progress.in_phase()))
    } else {
        format!(" after {reqs}")
    };
    let what = match alarm {
        Alarm::Finished => match status {
            Some(s) => format!("the app exited ({s}) during {phase}{after}"),
            None => format!("the app's program finished during {phase}{after}"),
        },
        Alarm::Stalled { secs, event_loop_runs: false } => format!(
            "the app stopped answering during {phase}{after}: no response for {} (--timeout) and its event loop is blocked (a busy loop or long synchronous work?)",
            super::human_duration(*secs)
        ),
        Alarm::Stalled { secs, event_loop_runs: true } => format!(
            "the app stopped answering during {phase}{after}: no response for {} (--timeout) although its event loop runs (requests waiting on something that never completes? raise --timeout for slow requests)",
            super::human_duration(*secs)
        ),
        Alarm::Idle { secs, stopped: true } => format!(
            "the app stopped answering during {phase}{after}: its process has been stopped (SIGSTOP or a debugger) for {}",
            super::human_duration(*secs)
        ),
        Alarm::Idle { secs, stopped: false } => format!(
            "the app stopped answering during {phase}{after}: its main thread used no CPU for {} while the inspector's request waited, so its event loop is blocked where V8 cannot interrupt it (Atomics.wait, a synchronous child process or lock?)",
            super::human_duration(*secs)
        ),
    };
    let tail = stderr_summary(stderr);
    if tail.is_empty() {
        what
    } else {
        format!("{what}; its last stderr lines: {tail}")
    }
}

/// The useful part of the app's last stderr lines, on one line: an
/// uncaught error's message and first frame when there is one, else the
/// last two lines; Node's `Node.js v20.1.0` trailer left out.
pub fn stderr_summary(lines: &[String]) -> String {
    let lines: Vec<&str> =
        lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty() && (!l.starts_with("Node.js v") || l.contains(' '))).collect();
    let is_error = |l: &str| {
        let head = l.split(':').next().unwrap_or("");
        !head.contains(' ') && (head.ends_with("Error") || head.ends_with("Exception") || head == "Uncaught")
    };
    let picked: Vec<&str> = match lines.iter().rposition(|l| is_error(l)) {
        Some(i) => {
            let mut v = vec![lines[i]];
            if let Some(frame) = lines[i + 1..].iter().find(|l| l.starts_with("at ")) {
                v.push(frame);
            }
            v
        }
        None => lines[lines.len().saturating_sub(2)..].to_vec(),
    };
    crate::output::clip(&picked.join(" | "), 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncaught_error_is_summarized_by_its_message_and_first_frame() {
        let lines: Vec<String> = [
            "/app/dies.js:27",
            "    if (how === 'throw') throw new Error(`failed`);",
            "                         ^",
            "Error: failed on purpose at request 3000",
            "    at Server.<anonymous> (/app/dies.js:27:32)",
            "    at Server.emit (node:events:517:28)",
            "Node.js v20.20.2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(stderr_summary(&lines), "Error: failed on purpose at request 3000 | at Server.<anonymous> (/app/dies.js:27:32)");
        let plain: Vec<String> = ["a", "b", "dies.js: request 3000"].iter().map(|s| s.to_string()).collect();
        assert_eq!(stderr_summary(&plain), "b | dies.js: request 3000");
        assert_eq!(stderr_summary(&[]), "");
    }
}
