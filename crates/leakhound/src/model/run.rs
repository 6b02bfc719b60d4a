//! What `leakhound run` found: printed as `--json`, read by the text and
//! HTML renderers. The field names are the JSON format (docs/json.md).

use diagnose::leaks::Diagnosis;
use diagnose::series::FloorVerdict;
use loadgen::LoadReport;
use serde::Serialize;

pub use diagnose::verdict::Verdict;

/// One memory reading, `t` seconds since the run started.
pub type Sample = super::memory::Sample<super::memory::T>;

/// A post-GC heap floor, `t` seconds since the run started.
pub type Floor = super::memory::Floor<super::memory::T, super::memory::OutsideHeap>;

#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotTaken {
    pub file: String,
    pub t: f64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    pub requests: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub latency_ms: loadgen::Percentiles,
    /// Each round's own report (warm-up first).
    pub rounds: Vec<LoadReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub command: &'static str,
    pub app: String,
    pub node_version: String,
    pub pid: u32,
    /// Unix time the run started, seconds.
    pub started_at: u64,
    pub verdict: Verdict,
    pub reason: String,
    /// Why the load is no evidence about the app (no load, mostly non-2xx
    /// responses, none answered), or null.
    pub evidence_problem: Option<String>,
    /// Post-GC heap growth rate (Theil-Sen over the floors), bytes per hour.
    pub growth_bytes_per_hour: Option<f64>,
    /// Post-GC heap: last floor minus first floor, bytes.
    pub heap_growth_bytes: i64,
    /// The post-GC heap's change from the first snapshot to the last, with
    /// its window (seconds, rounds, requests).
    pub growth: crate::live::rates::Growth,
    /// That change per load round, bytes (null without rounds).
    pub growth_per_round_bytes: Option<f64>,
    /// That change per request of those rounds, bytes (null without the built-in load).
    pub growth_per_request_bytes: Option<f64>,
    /// Growth as rates per request and per second over the window, each
    /// projected to an hour at a stated traffic; the rate gate.
    pub rates: crate::live::rates::RunRates,
    /// Memory outside the JS heap (`external`) that grew in every round,
    /// read after each snapshot's GC, or null.
    pub native_growth: Option<diagnose::native::NativeGrowth>,
    pub heap_size_limit: u64,
    pub time_to_limit_s: Option<f64>,
    pub suspects: Vec<diagnose::leaks::Suspect>,
    pub diagnosis: Diagnosis,
    pub trend: FloorVerdict,
    pub load: Option<LoadSummary>,
    pub samples: Vec<Sample>,
    pub floors: Vec<Floor>,
    pub phases: Vec<Phase>,
    pub snapshots: Vec<SnapshotTaken>,
    /// The container limit, the limit reached first, RSS drift, the doctor's findings (as `watch`).
    pub container: crate::model::container::WatchContainer,
    /// `--mode tracking`: the round boundaries and the live bytes by phase
    /// of allocation at each (null with `--mode snapshots`).
    pub tracking: Option<crate::live::tracking::TrackingView>,
}

impl LoadSummary {
    /// The rounds' totals, or `None` without load.
    pub fn of_rounds(rounds: &[LoadReport]) -> Option<LoadSummary> {
        let last = rounds.last()?;
        let total: u64 = rounds.iter().map(|r| r.requests).sum();
        let dur: f64 = rounds.iter().map(|r| r.duration_s).sum();
        let ok: u64 = rounds.iter().map(|r| r.ok).sum();
        let non: u64 = rounds.iter().map(|r| r.non_2xx).sum();
        Some(LoadSummary {
            requests: total,
            ok,
            non_2xx: non,
            errors: rounds.iter().map(|r| r.errors).sum(),
            requests_per_s: if dur > 0.0 { (ok + non) as f64 / dur } else { 0.0 },
            // The latest round's latency: warmed up, the app at its largest.
            latency_ms: last.latency_ms.clone(),
            rounds: rounds.to_vec(),
        })
    }
}
