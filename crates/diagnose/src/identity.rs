//! Are two snapshots of one process, numbered by one id map? `diagnose`
//! compares objects by their ids, so a series that is not would give a
//! confident answer about nothing.
//!
//! Why this test: V8 numbers heap objects in heap order when it first
//! sees them in a snapshot, and keeps each object's id for the life of
//! the id map. Two processes of the same app number their (alike) heaps
//! alike, so id ranges and their order prove nothing; and closing the
//! inspector session that took a snapshot clears the map, so the next
//! session numbers the same process anew. What does not survive either is
//! identity: an id must name an object of the same type in both. Checked
//! on real snapshots (Node 20, fixtures/leaks/global-array.js): one
//! session, 3 pairs, 0 of 74,667 / 101,129 / 127,336 shared ids changed
//! type; two processes: 37,327 of 61,749; one process, separate sessions:
//! 39,604 of 61,752. A deterministic sample of ids (1 in 64) is enough.

use heapsnap::{HeapSnapshot, NodeKind};
use std::collections::HashMap;

/// One id in this many is sampled (by value, so both sides pick the same).
const EVERY: u32 = 128;
/// Shared sampled ids needed to judge.
const MIN_SHARED: usize = 50;
/// More than this fraction of shared ids changing type: not one map.
const MAX_CHANGED: f64 = 0.02;

/// The sampled ids of one snapshot and their node types.
#[derive(Debug, Clone, Default)]
pub struct IdSample {
    kinds: HashMap<u32, NodeKind>,
}

impl IdSample {
    /// From `(id, kind)` of every node (V8 heap objects have odd ids).
    pub fn from_nodes(nodes: impl Iterator<Item = (u32, NodeKind)>) -> IdSample {
        IdSample { kinds: nodes.filter(|(id, _)| id % EVERY == 1).collect() }
    }

    pub fn of(s: &HeapSnapshot) -> IdSample {
        IdSample::from_nodes(s.nodes().map(|n| (s.id(n), s.kind(n))))
    }
}

/// `Err` with one sentence when `later` cannot be the same process and id
/// map as `earlier`.
pub fn check(earlier: &IdSample, earlier_file: &str, later: &IdSample, later_file: &str) -> Result<(), String> {
    let mut shared = 0usize;
    let mut changed = 0usize;
    for (id, k) in &later.kinds {
        if let Some(e) = earlier.kinds.get(id) {
            shared += 1;
            if e != k {
                changed += 1;
            }
        }
    }
    if shared >= MIN_SHARED && changed as f64 > MAX_CHANGED * shared as f64 {
        return Err(format!(
            "{later_file} and {earlier_file} are not snapshots of one process taken in one inspector session: {:.0}% of the objects with the same id differ in type \
             ({changed} of {shared} sampled). Take every snapshot of a series from one process in one inspector session \
             (leakhound run, or one DevTools window): separate sessions renumber the objects",
            100.0 * changed as f64 / shared as f64
        ));
    }
    Ok(())
}
