//! Fitting the workers to the container they run in: `--max-rss auto`, a
//! `--max-old-space-size` per worker, telling an OOM kill from a crash, and
//! reaping orphans when leakhound is PID 1.
//!
//! The memory limit is the one the supervisor itself lives under (its
//! workers are in the same cgroup), read with the `container` crate: the
//! smallest limit from its cgroup up the hierarchy.

use container::doctor::{self, MIB};
use std::path::Path;

/// `--max-rss auto` gives the workers this share of the container limit...
pub const AUTO_RSS_SHARE: f64 = 0.8;
/// ...minus room for one replacement worker, which starts (an idle Node
/// process is 41-45 MB) before the worker it replaces has drained.
pub const REPLACEMENT_ALLOWANCE: u64 = 64 * MIB;

/// Per-worker RSS limit for `--max-rss auto`: (80% of the limit − 64 MiB) / N.
/// None when that leaves less than 32 MiB a worker.
pub fn auto_max_rss(limit: u64, workers: usize) -> Option<u64> {
    let total = limit as f64 * AUTO_RSS_SHARE - REPLACEMENT_ALLOWANCE as f64;
    let each = total / workers.max(1) as f64;
    (each >= 32.0 * MIB as f64).then_some(each as u64)
}

/// What the supervisor knows of its container.
#[derive(Debug, Clone)]
pub struct Fit {
    pub memory: Option<container::Memory>,
    /// The effective limit, bytes.
    pub limit: Option<u64>,
    /// `--max-old-space-size` given to every worker, MiB (None: the user
    /// set one, there is no limit, or it is too small).
    pub old_space_mb: Option<u64>,
    /// Why (or why not).
    pub heap_note: String,
}

/// Whether `args` or `NODE_OPTIONS` already size the heap.
pub fn user_heap_flags(args: &[std::ffi::OsString]) -> Vec<String> {
    let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let env = std::env::var("NODE_OPTIONS").unwrap_or_default();
    doctor::heap_flags(words.iter().map(String::as_str).chain(env.split_whitespace()))
}

/// Read the container of this process and decide the workers' heap size.
pub fn fit(cgroup_root: Option<&Path>, command: &[std::ffi::OsString], workers: usize, fit_heap: bool) -> Fit {
    let memory = container::Memory::of_pid(std::process::id(), cgroup_root).ok();
    let limit = memory.as_ref().and_then(|m| m.limit.as_ref().map(|b| b.bytes));
    let user = user_heap_flags(command);
    let (old_space_mb, heap_note) = match limit {
        _ if !fit_heap => (None, "--no-fit-heap: Node sizes the heap".to_string()),
        _ if !user.is_empty() => (None, format!("the command sets {}: kept", user.join(" "))),
        None => (None, "no memory limit: Node sizes the heap".to_string()),
        Some(l) => match doctor::recommended_old_space_mb(l, workers) {
            Some(mb) => (Some(mb), doctor::rule_text(l, workers)),
            None => (None, format!("{} per worker is too small for a Node heap: Node sizes it", doctor::size(l / workers.max(1) as u64))),
        },
    };
    Fit { memory, limit, old_space_mb, heap_note }
}

/// Writing a heap snapshot costs memory in the worker, and the file's
/// dirty pages are charged to the container too. The Node docs say about
/// twice the used heap; measured, the target's peak was 6-10 times its
/// heap for records split over many small Maps, 7-9 times for deep
/// closures, about 1.2-3 times for large strings and Buffers, and for one
/// big Map of small records 16x at 69 MB, 20x at 302 MB and 23.2x at
/// 1,010 MB (`python3 bench/snapshot_cost.py`, Node 24). A supervised
/// worker restarted at a 50 MB heap in a 192 MiB cgroup was OOM-killed
/// while writing with 2x allowed. The replacement worker is already
/// running then. Running out OOM-kills the worker (on Kubernetes 1.28+
/// with cgroup v2, the whole container), so the worst measured factor,
/// rounded up, is used: a missing snapshot is the lesser loss.
pub const SNAPSHOT_HEAP_FACTOR: u64 = 24;

/// Whether a snapshot of a `heap_used` heap fits the container's
/// headroom (`limit - usage`); the reason when not.
pub fn snapshot_fits(limit: Option<u64>, usage: Option<u64>, heap_used: u64) -> Result<(), String> {
    let (Some(limit), Some(usage)) = (limit, usage) else { return Ok(()) };
    let headroom = limit.saturating_sub(usage);
    let need = heap_used.saturating_mul(SNAPSHOT_HEAP_FACTOR);
    if headroom < need {
        return Err(format!(
            "the container has {} left of its {} memory limit; writing a snapshot of a {} heap needs up to {} (measured: up to about {SNAPSHOT_HEAP_FACTOR}x the used heap, the file's page cache included), and running out would OOM-kill the container",
            crate::units::bytes(headroom),
            crate::units::bytes(limit),
            crate::units::bytes(heap_used),
            crate::units::bytes(need)
        ));
    }
    Ok(())
}

/// The machine's available memory (`MemAvailable` in /proc/meminfo), bytes.
pub fn machine_available() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    container::cgroup::keyed(&t.replace(':', " "), "MemAvailable").map(|kib| kib * 1024)
}

/// Where a snapshot's memory would come from: the container's headroom
/// when the process has a memory limit, else the machine's available memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headroom {
    Container { limit: u64, usage: u64 },
    Machine { available: u64 },
}

impl Headroom {
    /// The headroom of process `pid` now (None when nothing can be read).
    pub fn of_pid(pid: u32) -> Option<Headroom> {
        let memory = container::Memory::of_pid(pid, None).ok();
        let limit = memory.as_ref().and_then(|m| m.limit.as_ref().map(|b| b.bytes));
        match (limit, usage(memory.as_ref())) {
            (Some(limit), Some(usage)) => Some(Headroom::Container { limit, usage }),
            _ => machine_available().map(|available| Headroom::Machine { available }),
        }
    }

    pub fn bytes(self) -> u64 {
        match self {
            Headroom::Container { limit, usage } => limit.saturating_sub(usage),
            Headroom::Machine { available } => available,
        }
    }

    /// Whether a snapshot of a `heap_used` heap fits (the measured
    /// [`SNAPSHOT_HEAP_FACTOR`]); the reason, with both figures, when not.
    pub fn snapshot_fits(self, heap_used: u64) -> Result<(), String> {
        if let Headroom::Container { limit, usage } = self {
            return snapshot_fits(Some(limit), Some(usage), heap_used);
        }
        let need = heap_used.saturating_mul(SNAPSHOT_HEAP_FACTOR);
        if self.bytes() < need {
            return Err(format!(
                "the machine has {} of memory available; writing a snapshot of a {} heap needs up to {} (measured: up to about {SNAPSHOT_HEAP_FACTOR}x the used heap), and running out would get the process OOM-killed",
                crate::units::bytes(self.bytes()),
                crate::units::bytes(heap_used),
                crate::units::bytes(need)
            ));
        }
        Ok(())
    }
}

/// The container's charge now (`memory.current` / `memory.usage_in_bytes`).
pub fn usage(memory: Option<&container::Memory>) -> Option<u64> {
    let m = memory?;
    let file = match m.location.version {
        container::Version::V2 => "memory.current",
        container::Version::V1 => "memory.usage_in_bytes",
    };
    std::fs::read_to_string(m.location.dir.join(file)).ok()?.trim().parse().ok()
}

/// The OOM-kill counter of the container now.
pub fn oom_kills(memory: Option<&container::Memory>) -> Option<u64> {
    memory.and_then(|m| m.current_oom_kills())
}

/// As PID 1, every orphan of the container becomes our child: wait for
/// the ones that have exited (zombies), except our workers, whose exits
/// tokio collects.
pub fn reap_orphans(workers: &[u32]) -> usize {
    let me = std::process::id();
    let mut reaped = 0;
    let Ok(rd) = std::fs::read_dir("/proc") else { return 0 };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if workers.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if state == Some("Z") && ppid == Some(me) {
            let r = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            if r.is_ok() {
                reaped += 1;
            }
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_rule() {
        assert_eq!(auto_max_rss(1024 * MIB, 2), Some(((1024.0 * 0.8 - 64.0) / 2.0 * MIB as f64) as u64));
        assert_eq!(auto_max_rss(512 * MIB, 1).map(|b| b / MIB), Some(345));
        assert_eq!(auto_max_rss(128 * MIB, 2), None);
    }

    #[test]
    fn machine_headroom_counts_without_a_limit() {
        assert!(Headroom::Machine { available: 4096 * MIB }.snapshot_fits(100 * MIB).is_ok());
        let why = Headroom::Machine { available: 1024 * MIB }.snapshot_fits(100 * MIB).unwrap_err();
        assert!(why.contains("available") && why.contains("needs up to"), "{why}");
        assert!(Headroom::Container { limit: 1024 * MIB, usage: 400 * MIB }.snapshot_fits(50 * MIB).is_err());
    }

    #[test]
    fn snapshots_must_fit_the_headroom() {
        assert!(snapshot_fits(None, Some(1), 100 * MIB).is_ok(), "no limit: the disk check decides");
        assert!(snapshot_fits(Some(4096 * MIB), Some(500 * MIB), 140 * MIB).is_ok());
        let why = snapshot_fits(Some(1024 * MIB), Some(400 * MIB), 50 * MIB).unwrap_err();
        assert!(why.contains("654.3 MB left") && why.contains("needs up to 1.3 GB") && why.contains("OOM-kill"), "{why}");
    }
}
