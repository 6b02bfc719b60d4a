//! `HEAPSNAP_DEBUG=1`: the engine's laps on stderr, each with CPU time,
//! resident and peak memory (wall time alone hides an idle core), and what
//! the recycling allocator holds.

use heapsnap::{Observer, Stage};
use std::time::Duration;

/// Prints every lap the engine reports.
pub struct DebugLaps;

impl Observer for DebugLaps {
    fn lap(&self, stage: Stage, what: &str, elapsed: Duration) {
        let indent = if stage == Stage::Dominators { "    " } else { "  " };
        eprintln!("{indent}{}: {what} at {elapsed:.2?} ({})", stage.name(), usage());
    }

    fn note(&self, stage: Stage, text: &str) {
        eprintln!("{}: {text}", stage.name());
    }
}

/// The observer to pass to the engine: the debug laps when `HEAPSNAP_DEBUG` is set.
pub fn observer() -> Option<&'static dyn Observer> {
    static LAPS: DebugLaps = DebugLaps;
    std::env::var_os("HEAPSNAP_DEBUG").is_some().then_some(&LAPS as &dyn Observer)
}

/// CPU seconds this process has used so far (all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time, resident and peak resident memory now.
fn usage() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .map_or("?".to_string(), |kb| (kb / 1024).to_string())
    };
    let (fresh, reused) = (
        crate::recycle::FRESH.load(std::sync::atomic::Ordering::Relaxed),
        crate::recycle::REUSED.load(std::sync::atomic::Ordering::Relaxed),
    );
    format!(
        "cpu {:.2} s, rss {} MiB (file {}), peak {} MiB, big fresh {} reused {} kept {} MiB",
        cpu_seconds(),
        field("VmRSS:"),
        field("RssFile:"),
        field("VmHWM:"),
        fresh >> 20,
        reused >> 20,
        crate::recycle::kept_bytes() >> 20
    )
}
