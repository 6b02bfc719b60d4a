//! Memory readings over time, one type for every command that records
//! them (`run`, `watch`). Each command keeps its JSON names: the time is
//! `t` in run's and `t_s` in watch's (both seconds since the start), and
//! watch's readings carry GC counts as well.

use serde::Serialize;

/// One memory reading, in bytes. `At` is the time field as the command's
/// JSON names it; `More` adds fields after the memory ones.
#[derive(Clone, Debug, Serialize)]
pub struct Sample<At, More = ()> {
    #[serde(flatten)]
    pub at: At,
    pub heap_used: u64,
    pub heap_total: u64,
    pub rss: u64,
    pub external: u64,
    #[serde(flatten)]
    pub more: More,
}

/// The heap used right after a full GC: the floor a leak raises.
#[derive(Clone, Debug, Serialize)]
pub struct Floor<At, More = ()> {
    #[serde(flatten)]
    pub at: At,
    pub heap_used: u64,
    #[serde(flatten)]
    pub more: More,
}

/// What run's floors add: the memory outside the JS heap at the same GC.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OutsideHeap {
    pub external: u64,
    pub array_buffers: u64,
    pub rss: u64,
}

/// Seconds since the start, as `t` (run's JSON).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct T {
    pub t: f64,
}

/// Seconds since the start, as `t_s` (watch's JSON).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ts {
    #[serde(rename = "t_s")]
    pub t: f64,
}

/// What watch's samples add: array buffers and the GCs since the previous sample.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SampleGcs {
    pub array_buffers: u64,
    /// GCs since the previous sample.
    pub minor_gcs: u64,
    pub major_gcs: u64,
    pub gc_ms: f64,
}

/// What watch's floors add.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HeapTotal {
    pub heap_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The JSON of run and watch as it was when each defined its own types.
    #[test]
    fn json_names_per_command() {
        let run = Sample { at: T { t: 1.5 }, heap_used: 1, heap_total: 2, rss: 3, external: 4, more: () };
        assert_eq!(
            serde_json::to_string_pretty(&run).unwrap(),
            "{\n  \"t\": 1.5,\n  \"heap_used\": 1,\n  \"heap_total\": 2,\n  \"rss\": 3,\n  \"external\": 4\n}"
        );
        let floor = Floor { at: T { t: 2.0 }, heap_used: 7, more: () };
        assert_eq!(serde_json::to_string(&floor).unwrap(), r#"{"t":2.0,"heap_used":7}"#);
        let gcs = SampleGcs { array_buffers: 5, minor_gcs: 6, major_gcs: 7, gc_ms: 0.25 };
        let watch = Sample { at: Ts { t: 0.5 }, heap_used: 1, heap_total: 2, rss: 3, external: 4, more: gcs };
        assert_eq!(
            serde_json::to_string(&watch).unwrap(),
            r#"{"t_s":0.5,"heap_used":1,"heap_total":2,"rss":3,"external":4,"array_buffers":5,"minor_gcs":6,"major_gcs":7,"gc_ms":0.25}"#
        );
        let floor = Floor { at: Ts { t: 3.0 }, heap_used: 8, more: HeapTotal { heap_total: 9 } };
        assert_eq!(serde_json::to_string(&floor).unwrap(), r#"{"t_s":3.0,"heap_used":8,"heap_total":9}"#);
    }
}
