//! What leakhound knows about one worker's memory, and the decisions taken
//! on it: over a limit, about to pass one, or leaking. Pure logic, no I/O.

use crate::units::{bytes, duration};
use diagnose::trend::Trend;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Why a worker is restarted (the `reason` label of the restart counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Resident set size over --max-rss.
    Rss,
    /// V8 heap used over --max-heap.
    Heap,
    /// The post-GC floor grows and reaches the heap limit within --leak-horizon.
    Leak,
    /// The worker exited on its own, or never became ready.
    Crash,
    /// Rolling restart asked for with SIGHUP (a deploy).
    Reload,
}

impl Reason {
    pub const ALL: [Reason; 5] = [Reason::Rss, Reason::Heap, Reason::Leak, Reason::Crash, Reason::Reload];

    /// Restarts for memory, which a heap snapshot can explain.
    pub fn is_memory(self) -> bool {
        matches!(self, Reason::Rss | Reason::Heap | Reason::Leak)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rss => "rss",
            Reason::Heap => "heap",
            Reason::Leak => "leak",
            Reason::Crash => "crash",
            Reason::Reload => "reload",
        }
    }
}

/// The limits a worker is held to.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_rss: Option<u64>,
    pub max_heap: Option<u64>,
    pub restart_on_leak: bool,
    /// Restart on a leak when the heap limit is projected within this.
    pub leak_horizon: Duration,
    /// Floors older than this are forgotten (a warm-up leaves the window).
    pub leak_window: Duration,
    /// Slowest floor growth called a leak, bytes per hour.
    pub min_growth_per_hour: f64,
}

/// Fewest post-GC floors for a leak verdict: six strictly rising floors are
/// the shortest series Mann-Kendall calls significant at p < 0.01.
pub const MIN_FLOORS: usize = 6;

/// RSS samples are kept this long, and rates are taken over at least RATE_SPAN.
const RSS_HISTORY: Duration = Duration::from_secs(5);
const RATE_SPAN: Duration = Duration::from_millis(900);

/// Most floors kept (the trend subsamples beyond 2000 anyway).
const MAX_FLOORS: usize = 2000;

/// A memory report from the worker's shim.
#[derive(Debug, Clone, Default)]
pub struct HeapReport {
    pub heap_used: u64,
    pub heap_total: u64,
    pub external: u64,
    pub heap_limit: u64,
    /// Heap used after each full GC since the last report.
    pub floors: Vec<f64>,
}

/// The leak assessment of the floor series.
#[derive(Debug, Clone, Serialize)]
pub struct LeakAssessment {
    /// Theil-Sen slope of the floor, bytes per hour.
    pub slope_per_hour: f64,
    /// Mann-Kendall two-sided p-value.
    pub p_value: f64,
    pub floors: usize,
    /// Latest floor, bytes.
    pub floor: f64,
    /// Heap limit the projection aims at (the smaller of V8's and --max-heap).
    pub limit: Option<u64>,
    /// Time until the floor reaches `limit` at this slope.
    pub time_to_limit: Option<Duration>,
    /// Significant growth of at least the minimum rate.
    pub leaking: bool,
}

#[derive(Debug)]
pub struct MemState {
    started: Instant,
    rss_samples: VecDeque<(Instant, u64)>,
    pub heap: Option<HeapReport>,
    /// (seconds since the worker started, bytes)
    floors: VecDeque<(f64, f64)>,
    pub leak: Option<LeakAssessment>,
}

impl MemState {
    pub fn new(started: Instant) -> Self {
        MemState { started, rss_samples: VecDeque::new(), heap: None, floors: VecDeque::new(), leak: None }
    }

    pub fn rss(&self) -> Option<u64> {
        self.rss_samples.back().map(|s| s.1)
    }

    pub fn floor(&self) -> Option<f64> {
        self.floors.back().map(|f| f.1)
    }

    pub fn push_rss(&mut self, at: Instant, rss: u64) {
        self.rss_samples.push_back((at, rss));
        while self.rss_samples.len() > 2 && self.rss_samples.front().is_some_and(|s| at.duration_since(s.0) > RSS_HISTORY) {
            self.rss_samples.pop_front();
        }
    }

    /// The newest sample taken at least RATE_SPAN before `before`.
    fn sample_before(&self, before: Instant) -> Option<(Instant, u64)> {
        self.rss_samples.iter().rev().find(|s| before.duration_since(s.0) >= RATE_SPAN).copied()
    }

    /// The last two growth rates, each over about a second, so that an extra
    /// sample taken a few milliseconds after another (where an app that
    /// allocates in steps shows no growth) does not count as a rate.
    fn rates(&self) -> (Option<f64>, Option<f64>) {
        let rate = |a: (Instant, u64), b: (Instant, u64)| (b.1 as f64 - a.1 as f64) / b.0.duration_since(a.0).as_secs_f64();
        let Some(&last) = self.rss_samples.back() else { return (None, None) };
        let Some(mid) = self.sample_before(last.0) else { return (None, None) };
        let first = self.sample_before(mid.0);
        (first.map(|f| rate(f, mid)), Some(rate(mid, last)))
    }

    /// RSS growth in bytes per second: the smaller of the last two rates, and
    /// only when both are positive, so that one burst does not count as a
    /// trend.
    pub fn rss_growth(&self) -> Option<f64> {
        match self.rates() {
            (Some(r1), Some(r2)) if r1 > 0.0 && r2 > 0.0 => Some(r1.min(r2)),
            _ => None,
        }
    }

    /// Bytes per second over the last second or so.
    pub fn last_rss_rate(&self) -> Option<f64> {
        self.rates().1
    }

    pub fn push_heap(&mut self, at: Instant, report: HeapReport, limits: &Limits) {
        let t = at.duration_since(self.started).as_secs_f64();
        for &f in &report.floors {
            self.floors.push_back((t, f));
        }
        let oldest = t - limits.leak_window.as_secs_f64();
        while self.floors.front().is_some_and(|f| f.0 < oldest) || self.floors.len() > MAX_FLOORS {
            self.floors.pop_front();
        }
        let v8_limit = (report.heap_limit > 0).then_some(report.heap_limit);
        let limit = match (v8_limit, limits.max_heap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.heap = Some(report);
        if !report_has_new_floors(&self.heap) && self.leak.is_some() {
            return;
        }
        self.leak = assess(&self.floors, limit, limits.min_growth_per_hour);
    }
}

fn report_has_new_floors(h: &Option<HeapReport>) -> bool {
    h.as_ref().is_some_and(|h| !h.floors.is_empty())
}

/// Slope, significance and projection of a floor series. `None` with
/// fewer than 3 floors (or all at one instant).
pub fn assess(floors: &VecDeque<(f64, f64)>, limit: Option<u64>, min_growth_per_hour: f64) -> Option<LeakAssessment> {
    if floors.len() < 3 {
        return None;
    }
    // Floors reported in one batch share a timestamp; spread them over the
    // report interval in order, so that their order still counts.
    let mut xs = Vec::with_capacity(floors.len());
    let mut ys = Vec::with_capacity(floors.len());
    let mut i = 0;
    while i < floors.len() {
        let mut j = i;
        while j < floors.len() && floors[j].0 == floors[i].0 {
            j += 1;
        }
        let n = (j - i) as f64;
        for (k, f) in floors.range(i..j).enumerate() {
            xs.push(f.0 - 1.0 + (k as f64 + 1.0) / n);
            ys.push(f.1);
        }
        i = j;
    }
    let trend = Trend::fit(&xs, &ys)?;
    let slope_per_hour = trend.per_hour();
    let floor = *ys.last()?;
    let leaking = floors.len() >= MIN_FLOORS && trend.significant_increasing && slope_per_hour >= min_growth_per_hour;
    let time_to_limit = match limit {
        Some(l) if slope_per_hour > 0.0 => {
            let left = (l as f64 - floor).max(0.0);
            Some(Duration::from_secs_f64(left / slope_per_hour * 3600.0))
        }
        _ => None,
    };
    Some(LeakAssessment { slope_per_hour, p_value: trend.p_value, floors: floors.len(), floor, limit, time_to_limit, leaking })
}

/// A decision to restart, with the numbers behind it.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub reason: Reason,
    pub detail: String,
}

/// Should this worker be restarted now? `ready_latency` is how long a
/// replacement takes to become ready: a worker whose RSS would pass the
/// limit before then is restarted now rather than a second too late.
pub fn check(mem: &MemState, limits: &Limits, ready_latency: Duration) -> Option<Trigger> {
    if let (Some(max), Some(rss)) = (limits.max_rss, mem.rss()) {
        if rss > max {
            return Some(Trigger { reason: Reason::Rss, detail: format!("rss {} over the limit {}", bytes(rss), bytes(max)) });
        }
        if let Some(g) = mem.rss_growth() {
            let projected = rss as f64 + g * ready_latency.as_secs_f64();
            if projected > max as f64 {
                return Some(Trigger {
                    reason: Reason::Rss,
                    detail: format!(
                        "rss {} growing {}/s passes the limit {} before a replacement is ready ({})",
                        bytes(rss),
                        bytes(g as u64),
                        bytes(max),
                        duration(ready_latency)
                    ),
                });
            }
        }
    }
    if let (Some(max), Some(h)) = (limits.max_heap, mem.heap.as_ref()) {
        if h.heap_used > max {
            return Some(Trigger {
                reason: Reason::Heap,
                detail: format!("heap used {} over the limit {}", bytes(h.heap_used), bytes(max)),
            });
        }
    }
    if limits.restart_on_leak {
        if let Some(a) = &mem.leak {
            if let (true, Some(ttl)) = (a.leaking, a.time_to_limit) {
                if ttl < limits.leak_horizon {
                    return Some(Trigger {
                        reason: Reason::Leak,
                        detail: format!(
                            "heap floor {} grows {}/h (Mann-Kendall p = {:.1e}, {} full GCs): heap limit {} in {}, under --leak-horizon {}",
                            bytes(a.floor as u64),
                            bytes(a.slope_per_hour as u64),
                            a.p_value,
                            a.floors,
                            bytes(a.limit.unwrap_or(0)),
                            duration(ttl),
                            duration(limits.leak_horizon)
                        ),
                    });
                }
            }
        }
    }
    None
}

/// When to look at this worker's RSS again before the regular sample: at
/// the moment its current growth would bring it within one replacement
/// start of the limit. `None` when the regular sample is soon enough.
pub fn early_check(mem: &MemState, limits: &Limits, ready_latency: Duration, interval: Duration) -> Option<Duration> {
    let max = limits.max_rss? as f64;
    let rss = mem.rss()? as f64;
    // The latest rate alone: this only brings the next look forward.
    let g = mem.last_rss_rate().filter(|g| *g > 0.0)?;
    let until = (max - rss) / g - ready_latency.as_secs_f64();
    if until < interval.as_secs_f64() {
        Some(Duration::from_secs_f64(until.max(0.02)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_rss: Some(200_000_000),
            max_heap: Some(100_000_000),
            restart_on_leak: true,
            leak_horizon: Duration::from_secs(3600),
            leak_window: Duration::from_secs(1800),
            min_growth_per_hour: 1e6,
        }
    }

    #[test]
    fn rss_over_the_limit() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        m.push_rss(t0, 150_000_000);
        assert!(check(&m, &limits(), Duration::from_millis(300)).is_none());
        m.push_rss(t0 + Duration::from_secs(1), 201_000_000);
        let t = check(&m, &limits(), Duration::from_millis(300)).unwrap();
        assert_eq!(t.reason, Reason::Rss);
        assert!(t.detail.contains("over the limit 200.0 MB"), "{}", t.detail);
    }

    #[test]
    fn steady_growth_restarts_before_the_limit_and_checks_early() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        let s = Duration::from_secs(1);
        // 50 MB/s.
        m.push_rss(t0, 60_000_000);
        m.push_rss(t0 + s, 110_000_000);
        m.push_rss(t0 + 2 * s, 160_000_000);
        assert!((m.rss_growth().unwrap() - 50e6).abs() < 1.0);
        // 40 MB left, 0.8 s at this rate: over the limit before the next
        // sample, so check again when 0.5 s (a replacement's start) is left.
        assert!(check(&m, &limits(), Duration::from_millis(500)).is_none());
        let at = early_check(&m, &limits(), Duration::from_millis(500), s).unwrap();
        assert!((at.as_secs_f64() - 0.3).abs() < 1e-6, "{at:?}");
        m.push_rss(t0 + 2 * s + at, 176_000_000);
        let t = check(&m, &limits(), Duration::from_millis(500)).unwrap();
        assert!(t.detail.contains("before a replacement is ready"), "{}", t.detail);
    }

    #[test]
    fn a_sample_right_after_another_keeps_the_rate() {
        // An app that grows in steps: a look 20 ms after a sample sees no
        // change, and the rate over the last second still holds.
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        let s = Duration::from_secs(1);
        m.push_rss(t0, 130_000_000);
        m.push_rss(t0 + s, 180_000_000);
        m.push_rss(t0 + 2 * s, 230_000_000);
        m.push_rss(t0 + 2 * s + Duration::from_millis(20), 230_000_000);
        assert!((m.rss_growth().unwrap() - 50e6).abs() < 2e6, "{:?}", m.rss_growth());
        assert!(check(&m, &limits(), Duration::from_millis(500)).is_some());
    }

    #[test]
    fn a_burst_is_not_a_trend() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        let s = Duration::from_secs(1);
        m.push_rss(t0, 150_000_000);
        m.push_rss(t0 + s, 148_000_000);
        m.push_rss(t0 + 2 * s, 190_000_000);
        assert!(m.rss_growth().is_none());
        assert!(check(&m, &limits(), Duration::from_secs(1)).is_none());
        // ...but it is worth a closer look.
        assert!(early_check(&m, &limits(), Duration::from_secs(1), s).is_some());
        // A worker that shrinks is not looked at early.
        m.push_rss(t0 + 3 * s, 120_000_000);
        assert!(early_check(&m, &limits(), Duration::from_secs(1), s).is_none());
    }

    fn report(used: u64, floors: &[f64]) -> HeapReport {
        HeapReport { heap_used: used, heap_total: used * 2, external: 0, heap_limit: 80_000_000, floors: floors.to_vec() }
    }

    #[test]
    fn heap_over_the_limit() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        m.push_heap(t0, report(120_000_000, &[]), &limits());
        let t = check(&m, &limits(), Duration::ZERO).unwrap();
        assert_eq!(t.reason, Reason::Heap);
    }

    #[test]
    fn a_rising_floor_is_a_leak_with_a_projection() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        for i in 0..8u64 {
            // 1 MB per 10 s = 360 MB/h toward a 80 MB limit from ~20 MB.
            let f = 20e6 + i as f64 * 1e6;
            m.push_heap(t0 + Duration::from_secs(10 * i), report(f as u64 + 5_000_000, &[f]), &limits());
        }
        let a = m.leak.clone().unwrap();
        assert!(a.leaking, "{a:?}");
        assert!((a.slope_per_hour - 360e6).abs() < 1.0, "{a:?}");
        assert_eq!(a.limit, Some(80_000_000));
        let ttl = a.time_to_limit.unwrap().as_secs_f64();
        assert!((ttl - 530.0).abs() < 1.0, "{ttl}");
        let t = check(&m, &limits(), Duration::ZERO).unwrap();
        assert_eq!(t.reason, Reason::Leak);
        // A horizon shorter than the projection: no restart.
        let short = Limits { leak_horizon: Duration::from_secs(60), ..limits() };
        assert!(check(&m, &short, Duration::ZERO).is_none());
    }

    #[test]
    fn a_flat_floor_is_no_leak() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        for i in 0..20u64 {
            let f = 20e6 + ((i * 7919) % 13) as f64 * 1e4;
            m.push_heap(t0 + Duration::from_secs(10 * i), report(f as u64, &[f]), &limits());
        }
        let a = m.leak.clone().unwrap();
        assert!(!a.leaking, "{a:?}");
        assert!(check(&m, &limits(), Duration::ZERO).is_none());
    }

    #[test]
    fn floors_in_one_report_keep_their_order() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        m.push_heap(t0 + Duration::from_secs(1), report(0, &[10e6, 11e6, 12e6]), &limits());
        m.push_heap(t0 + Duration::from_secs(2), report(0, &[13e6, 14e6, 15e6]), &limits());
        let a = m.leak.clone().unwrap();
        assert!(a.leaking, "{a:?}");
        assert!(a.slope_per_hour > 0.0);
    }

    #[test]
    fn old_floors_leave_the_window() {
        let t0 = Instant::now();
        let mut m = MemState::new(t0);
        let l = Limits { leak_window: Duration::from_secs(30), ..limits() };
        // A warm-up: rising for 10 floors, then flat for 40 s.
        for i in 0..10u64 {
            m.push_heap(t0 + Duration::from_secs(i), report(0, &[10e6 + i as f64 * 1e6]), &l);
        }
        for i in 10..50u64 {
            m.push_heap(t0 + Duration::from_secs(i), report(0, &[20e6]), &l);
        }
        assert!(!m.leak.clone().unwrap().leaking);
    }
}
