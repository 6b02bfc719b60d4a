//! What the supervisor reports, one event per line: text for people, JSON
//! lines (`--json`) for log pipelines.

use crate::units::{bytes, duration};
use crate::watch::Reason;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The shared listening socket is open.
    Listening { address: String, workers: usize, command: String },
    /// The container's memory limit and what the supervisor made of it.
    Container {
        limit: Option<u64>,
        /// Where the limit is set: `memory.max of /sys/fs/cgroup/...`.
        limit_source: Option<String>,
        /// The per-worker RSS limit in force (from `--max-rss` or `auto`).
        max_rss: Option<u64>,
        /// `--max-old-space-size` given to each worker, MiB.
        max_old_space_size_mb: Option<u64>,
        /// How the heap size was chosen, or why none was given.
        heap: String,
    },
    /// The kernel's OOM killer killed a worker (SIGKILL, and the cgroup's
    /// `oom_kill` counter rose); a `crashed` event follows.
    OomKilled { worker: usize, pid: u32, oom_kills: u64 },
    /// The Prometheus endpoint is up.
    Metrics { url: String },
    /// A worker process started. `replaces` is the pid it will take over from.
    Spawned { worker: usize, pid: u32, cause: SpawnCause, replaces: Option<u32> },
    /// A worker accepts connections (or said it is ready).
    Ready { worker: usize, pid: u32, ms: u64, via: String },
    /// A restart was decided.
    Restart { worker: usize, pid: u32, reason: Reason, detail: String, rss: Option<u64>, heap_used: Option<u64>, limit: Option<u64> },
    /// A worker no longer accepts; it finishes its requests in flight.
    Draining { worker: usize, pid: u32, grace_ms: u64 },
    /// A heap snapshot of a worker was written before it exited.
    Snapshot { worker: usize, pid: u32, path: String, bytes: u64, ms: u64, removed: Vec<String> },
    /// No snapshot this time, and why.
    SnapshotSkipped { worker: usize, pid: u32, why: String },
    /// A worker exited when asked to.
    Exited { worker: usize, pid: u32, status: String, uptime_ms: u64, drain_ms: Option<u64> },
    /// A worker exited on its own; it is started again after `backoff_ms`
    /// (none: its replacement was already starting, or leakhound gives up).
    Crashed { worker: usize, pid: u32, status: String, uptime_ms: u64, in_a_row: u32, backoff_ms: Option<u64>, giving_up: bool },
    /// A replacement did not become ready; the old worker keeps serving.
    ReplacementFailed { worker: usize, pid: u32, why: String, retry_ms: u64 },
    /// A worker was killed (SIGKILL) because it outlived a deadline.
    Killed { worker: usize, pid: u32, why: String },
    /// leakhound was asked to stop (or gives up); workers are drained.
    Stopping { why: String },
    /// Every worker has exited.
    Stopped {},
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SpawnCause {
    Start,
    Replace,
    AfterCrash,
}

fn ms(d: Duration) -> String {
    duration(d)
}

impl Event {
    /// One line for people (no prefix, no newline).
    pub fn text(&self) -> String {
        match self {
            Event::Listening { address, workers, command } => {
                format!("listening on {address}, {workers} worker{} of `{command}`", if *workers == 1 { "" } else { "s" })
            }
            Event::Metrics { url } => format!("metrics on {url}"),
            Event::Container { limit, limit_source, max_rss, max_old_space_size_mb, heap } => {
                let mut s = match (limit, limit_source) {
                    (Some(l), Some(src)) => format!("container memory limit {} ({src})", bytes(*l)),
                    (Some(l), None) => format!("container memory limit {}", bytes(*l)),
                    _ => "no container memory limit".to_string(),
                };
                if let Some(r) = max_rss {
                    s.push_str(&format!("; --max-rss {} per worker", bytes(*r)));
                }
                match max_old_space_size_mb {
                    Some(mb) => s.push_str(&format!("; workers get --max-old-space-size={mb} ({heap})")),
                    None => s.push_str(&format!("; heap: {heap}")),
                }
                s
            }
            Event::OomKilled { worker, pid, oom_kills } => {
                format!("worker {worker}: pid {pid} was killed by the kernel's OOM killer (container memory limit reached; cgroup oom_kill counter {oom_kills})")
            }
            Event::Spawned { worker, pid, cause, replaces } => match (cause, replaces) {
                (SpawnCause::Replace, Some(old)) => format!("worker {worker}: pid {pid} started to replace pid {old}"),
                (SpawnCause::AfterCrash, _) => format!("worker {worker}: pid {pid} started after a crash"),
                _ => format!("worker {worker}: pid {pid} started"),
            },
            Event::Ready { worker, pid, ms: t, via } => format!("worker {worker}: pid {pid} ready in {t} ms ({via})"),
            Event::Restart { worker, pid, reason, detail, .. } => {
                format!("worker {worker}: pid {pid} restart ({}): {detail}", reason.as_str())
            }
            Event::Draining { worker, pid, grace_ms } => format!(
                "worker {worker}: pid {pid} draining: no new connections, finishing requests in flight (grace {})",
                ms(Duration::from_millis(*grace_ms))
            ),
            Event::Snapshot { worker, pid, path, bytes: b, ms: t, removed } => {
                let mut s = format!("worker {worker}: pid {pid} heap snapshot {path} ({}, {t} ms)", bytes(*b));
                if !removed.is_empty() {
                    s.push_str(&format!("; removed {} older: {}", removed.len(), removed.join(", ")));
                }
                s
            }
            Event::SnapshotSkipped { worker, pid, why } => format!("worker {worker}: pid {pid} no heap snapshot: {why}"),
            Event::Exited { worker, pid, status, uptime_ms, drain_ms } => {
                let mut s = format!("worker {worker}: pid {pid} exited ({status}) after {}", ms(Duration::from_millis(*uptime_ms)));
                if let Some(d) = drain_ms {
                    s.push_str(&format!(", {} after SIGTERM", ms(Duration::from_millis(*d))));
                }
                s
            }
            Event::Crashed { worker, pid, status, uptime_ms, in_a_row, backoff_ms, giving_up } => {
                let then = match (backoff_ms, giving_up) {
                    (_, true) => "giving up".to_string(),
                    (Some(b), false) => format!("restarting in {}", ms(Duration::from_millis(*b))),
                    (None, false) => "its replacement is already starting".to_string(),
                };
                format!(
                    "worker {worker}: pid {pid} crashed ({status}) after {}; crash {in_a_row} in a row, {then}",
                    ms(Duration::from_millis(*uptime_ms))
                )
            }
            Event::ReplacementFailed { worker, pid, why, retry_ms } => format!(
                "worker {worker}: replacement pid {pid} failed: {why}; the old worker keeps serving, retry in {}",
                ms(Duration::from_millis(*retry_ms))
            ),
            Event::Killed { worker, pid, why } => format!("worker {worker}: pid {pid} killed: {why}"),
            Event::Stopping { why } => format!("stopping: {why}"),
            Event::Stopped {} => "stopped: every worker has exited".to_string(),
        }
    }

    /// One JSON object (no newline), with the time in Unix seconds.
    pub fn json(&self, at: SystemTime) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            time: f64,
            #[serde(flatten)]
            event: &'a Event,
        }
        let time = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let time = (time * 1000.0).round() / 1000.0;
        serde_json::to_string(&Line { time, event: self }).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_tag_and_time() {
        let e = Event::Crashed {
            worker: 1,
            pid: 42,
            status: "exit code 1".into(),
            uptime_ms: 120,
            in_a_row: 3,
            backoff_ms: Some(400),
            giving_up: false,
        };
        let v: serde_json::Value = serde_json::from_str(&e.json(UNIX_EPOCH + Duration::from_millis(1500))).unwrap();
        assert_eq!(v["event"], "crashed");
        assert_eq!(v["time"], 1.5);
        assert_eq!(v["backoff_ms"], 400);
        assert_eq!(e.text(), "worker 1: pid 42 crashed (exit code 1) after 120 ms; crash 3 in a row, restarting in 400 ms");
        let r =
            Event::Restart { worker: 0, pid: 7, reason: Reason::Rss, detail: "x".into(), rss: Some(1), heap_used: None, limit: Some(2) };
        let v: serde_json::Value = serde_json::from_str(&r.json(UNIX_EPOCH)).unwrap();
        assert_eq!(v["reason"], "rss");
    }
}
