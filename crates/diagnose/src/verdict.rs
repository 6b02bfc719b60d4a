//! The one verdict every analysis gives (snapshots, GC logs, memory
//! floors, a whole `run`), and the rules that combine a snapshot diagnosis
//! with the heap-floor trend into the verdict of a run.

use crate::leaks::Diagnosis;
use crate::series::{floor_verdict, FloorOptions, FloorVerdict};
use crate::units::{bytes, signed_bytes};
use serde::Serialize;

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Leak,
    NoLeak,
    /// Not enough evidence either way (too few floors, no significance);
    /// a snapshot diagnosis alone never gives it.
    Inconclusive,
}

impl Verdict {
    /// As in JSON: `leak`, `no-leak`, `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::NoLeak => "no-leak",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// A run's verdict and what it rests on.
#[derive(Clone, Debug)]
pub struct RunVerdict {
    pub verdict: Verdict,
    pub reason: String,
    /// The post-GC floors' trend.
    pub trend: FloorVerdict,
    /// Post-GC heap: last floor minus first floor, bytes.
    pub heap_growth_bytes: i64,
}

/// Combine the snapshots' diagnosis with the post-GC floors `(seconds,
/// heap used)` of the same run: a group that grew in every round is a leak;
/// so is floor growth above `max_growth` (the CI gate); a rising floor
/// without such a group is inconclusive; anything else is no leak.
pub fn run_verdict(diagnosis: &Diagnosis, floors: &[(f64, u64)], heap_size_limit: u64, max_growth: Option<u64>) -> RunVerdict {
    let secs: Vec<f64> = floors.iter().map(|f| f.0).collect();
    let ys: Vec<f64> = floors.iter().map(|f| f.1 as f64).collect();
    let limit = (heap_size_limit > 0).then_some(heap_size_limit as f64);
    let trend = floor_verdict(&secs, &ys, limit, FloorOptions::default());
    let growth = match (floors.first(), floors.last()) {
        (Some(a), Some(b)) => b.1 as i64 - a.1 as i64,
        _ => 0,
    };
    let (verdict, reason) = if diagnosis.verdict == Verdict::Leak {
        let s = &diagnosis.suspects[0];
        (
            Verdict::Leak,
            format!("{} grows in every round ({}), and the heap after GC grew {}", s.accumulator.name, s.title, signed_bytes(growth)),
        )
    } else if let Some(max) = max_growth.filter(|&m| growth > m as i64) {
        (Verdict::Leak, format!("the heap after GC grew {} over the run, more than --max-growth {}", signed_bytes(growth), bytes(max)))
    } else if trend.verdict == Verdict::Leak {
        (
            Verdict::Inconclusive,
            format!(
                "the heap floor rises ({}), but no object group grew in every round: {}",
                trend.reason, "run longer or with more requests per round"
            ),
        )
    } else {
        (
            Verdict::NoLeak,
            format!(
                "nothing grew by {} or more in every round; the heap after GC changed {}",
                bytes(diagnosis.min_growth_bytes_per_step),
                signed_bytes(growth)
            ),
        )
    };
    RunVerdict { verdict, reason, trend, heap_growth_bytes: growth }
}
