//! Memory outside the JS heap in a run's verdict: `external` (Buffers'
//! and ArrayBuffers' backing stores, native add-ons' reported memory),
//! `arrayBuffers` (the part of it that ArrayBuffers hold) and RSS, read
//! right after each forced full GC, at the snapshots.
//!
//! Why: a Buffer leak can keep megabytes per round while the JS heap stays
//! flat (a Buffer object is about 100 B; its 64 KiB store is outside the
//! heap). Heap floors and object counts miss it when the objects are few
//! or replaced (one growing Buffer per tenant). After a forced GC freed
//! stores are gone, so `external` rising in every round by more than the
//! noise threshold is memory kept, not garbage.
//!
//! The rule: `external` rose in every step by at least `min_step_bytes`,
//! and by more over the run than the JS heap did: a leak outside the JS
//! heap. RSS is reported beside it; alone it is not a verdict (the
//! allocator keeps freed pages: see `container::operator::gc_drift`).

use crate::units::signed_bytes;
use serde::Serialize;

/// One reading right after a forced full GC.
#[derive(Clone, Copy, Debug, Default)]
pub struct Point {
    pub heap_used: u64,
    pub external: u64,
    pub array_buffers: u64,
    pub rss: u64,
}

/// Memory outside the JS heap that grew in every step.
#[derive(Clone, Debug, Serialize)]
pub struct NativeGrowth {
    /// `external`'s change per step (snapshot to snapshot), bytes.
    pub external_per_step: Vec<i64>,
    /// `arrayBuffers`' change per step, bytes.
    pub array_buffers_per_step: Vec<i64>,
    /// RSS's change per step, bytes.
    pub rss_per_step: Vec<i64>,
    /// The JS heap's (after GC) change per step, bytes.
    pub heap_per_step: Vec<i64>,
    /// In words: "memory outside the JS heap grows in every round: …".
    pub note: String,
}

fn steps(v: &[u64]) -> Vec<i64> {
    v.windows(2).map(|w| w[1] as i64 - w[0] as i64).collect()
}

fn mean(v: &[i64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<i64>() as f64 / v.len() as f64
    }
}

/// The growth outside the JS heap over `points` (one per snapshot, oldest
/// first), or `None` when `external` did not rise in every step by at
/// least `min_step_bytes`, or rose less than the heap.
pub fn growth(points: &[Point], min_step_bytes: u64) -> Option<NativeGrowth> {
    if points.len() < 3 {
        return None;
    }
    let ext = steps(&points.iter().map(|p| p.external).collect::<Vec<_>>());
    let heap = steps(&points.iter().map(|p| p.heap_used).collect::<Vec<_>>());
    let min = min_step_bytes.max(1) as i64;
    if !ext.iter().all(|&d| d >= min) || ext.iter().sum::<i64>() <= heap.iter().sum::<i64>() {
        return None;
    }
    let ab = steps(&points.iter().map(|p| p.array_buffers).collect::<Vec<_>>());
    let rss = steps(&points.iter().map(|p| p.rss).collect::<Vec<_>>());
    let per = |v: &[i64]| signed_bytes(mean(v).round() as i64);
    let note = format!(
        "memory outside the JS heap grows in every round: external {} per round (arrayBuffers {}, RSS {}), while the JS heap after GC changed {} per round: Buffers or native memory kept",
        per(&ext),
        per(&ab),
        per(&rss),
        per(&heap)
    );
    Some(NativeGrowth { external_per_step: ext, array_buffers_per_step: ab, rss_per_step: rss, heap_per_step: heap, note })
}

/// For a watch: `external`'s fitted rate (bytes/h) beside the heap floor's,
/// in words, when `external` grows and the heap does not.
pub fn watch_note(
    external_per_hour: f64,
    array_buffers_per_hour: Option<f64>,
    rss_per_hour: Option<f64>,
    heap_per_hour: f64,
    window_s: f64,
) -> String {
    let h = |x: f64| format!("{}/h", signed_bytes(x.round() as i64));
    let mut s = format!("memory outside the JS heap grows: external {}", h(external_per_hour));
    let mut beside = Vec::new();
    if let Some(a) = array_buffers_per_hour {
        beside.push(format!("arrayBuffers {}", h(a)));
    }
    if let Some(r) = rss_per_hour {
        beside.push(format!("RSS {}", h(r)));
    }
    if !beside.is_empty() {
        s.push_str(&format!(" ({})", beside.join(", ")));
    }
    s.push_str(&format!(
        ", while the heap floor changes {} (rates fitted over {window_s:.1} s): Buffers or native memory kept",
        h(heap_per_hour)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(ext: &[u64], heap: &[u64]) -> Vec<Point> {
        ext.iter().zip(heap).map(|(&e, &h)| Point { heap_used: h, external: e, array_buffers: e / 2, rss: 50_000_000 + e }).collect()
    }

    #[test]
    fn external_rising_every_round_over_a_flat_heap() {
        let g = growth(&pts(&[1_000_000, 3_000_000, 5_000_000, 7_000_000], &[4_000_000, 4_001_000, 4_000_500, 4_002_000]), 65536).unwrap();
        assert_eq!(g.external_per_step, vec![2_000_000, 2_000_000, 2_000_000]);
        assert!(
            g.note.starts_with("memory outside the JS heap grows in every round: external +2.0 MB per round (arrayBuffers +1.0 MB"),
            "{}",
            g.note
        );
    }

    #[test]
    fn one_flat_step_small_steps_or_heap_growth_are_not_native_growth() {
        assert!(growth(&pts(&[1_000_000, 3_000_000, 3_000_000, 5_000_000], &[4_000_000; 4]), 65536).is_none());
        assert!(growth(&pts(&[1_000_000, 1_010_000, 1_020_000, 1_030_000], &[4_000_000; 4]), 65536).is_none());
        // The heap grew more: a JS leak (the snapshots' business), not a native one.
        assert!(growth(&pts(&[1_000_000, 1_100_000, 1_200_000, 1_300_000], &[4_000_000, 5_000_000, 6_000_000, 7_000_000]), 65536).is_none());
        assert!(growth(&pts(&[1_000_000, 3_000_000], &[4_000_000; 2]), 65536).is_none());
    }
}
