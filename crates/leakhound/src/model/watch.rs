//! What `leakhound watch` found: printed as `--json`, drawn by `--html`.
//! The field names are the JSON format (docs/json.md).

use super::TargetJson;
use diagnose::series::FloorVerdict;
use diagnose::verdict::Verdict;
use serde::Serialize;

/// A GC count summary.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GcCounts {
    pub minor: u64,
    pub major: u64,
    pub other: u64,
    pub gc_ms: f64,
}

/// One memory reading with the GCs since the previous one, `t_s` seconds since the watch began.
pub type Sample = super::memory::Sample<super::memory::Ts, super::memory::SampleGcs>;

/// A post-GC heap floor, `t_s` seconds since the watch began.
pub type Floor = super::memory::Floor<super::memory::Ts, super::memory::HeapTotal>;

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    Duration,
    Interrupted,
    TargetExited,
    /// Talking to the target failed after some samples (see `error`).
    Error,
}

/// Everything a watch found: printed as `--json`, drawn by `--html`.
#[derive(Serialize)]
pub struct WatchReport<'a> {
    pub schema_version: u32,
    pub command: &'static str,
    pub target: TargetJson,
    pub interval_s: f64,
    pub elapsed_s: f64,
    pub ended: Ended,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    pub floor_source: &'static str,
    pub heap_size_limit: u64,
    pub gcs: GcCounts,
    pub samples: &'a [Sample],
    pub floors: &'a [Floor],
    pub verdict: Verdict,
    pub reason: &'a str,
    pub growth_bytes_per_hour: Option<f64>,
    pub recent_growth_bytes_per_hour: Option<f64>,
    /// `external` (Buffers, ArrayBuffers, native memory) fitted over the
    /// samples, bytes per hour; null with too few samples.
    pub external_growth_bytes_per_hour: Option<f64>,
    /// The verdict rests on `external`, which grew while the heap floor did not.
    pub outside_heap: bool,
    pub p_value: Option<f64>,
    pub time_to_limit_s: Option<f64>,
    pub early_signal: bool,
    pub longest_growth_run: usize,
    pub min_growth_bytes_per_hour: f64,
    pub analysis: &'a FloorVerdict,
    pub floors_dropped: u64,
    /// Unix seconds when the watch began.
    pub started_at: u64,
    /// The container limit, the limit reached first, GC drift, the doctor's findings.
    pub container: crate::model::container::WatchContainer,
}
