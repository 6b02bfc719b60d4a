//! What a suspect is made of: the container that accumulates, the leaked
//! classes, and the retainer path's steps. `leaks` finds them and
//! `patterns` reads them; neither imports the other's internals.

use serde::Serialize;

/// One step of a retainer path: edge, edge type, node id, label, class, location.
pub type Step = crate::describe::JsonStep;

/// The container that accumulates, followed through every snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Accumulator {
    pub id: u32,
    /// How the code names it: `requestLogs`, `_events.tick`, `renderPage.cache`.
    pub name: String,
    pub class: String,
    /// The same object (by id) was alive in each snapshot.
    pub alive: Vec<bool>,
    /// Entries (elements, properties, Map/Set entries) in each snapshot;
    /// null where it was not alive or not counted (earlier snapshots are
    /// counted only with `--exact`).
    pub entries: Vec<Option<u32>>,
    /// Retained size in each snapshot (null as for `entries`).
    pub retained: Vec<Option<u64>>,
    /// Whether it grew in every step: its entries or retained size with an
    /// exact census, else the leaked objects it gained in each step.
    pub grows_every_step: bool,
    /// Other accumulators of the same shape folded into this suspect.
    pub similar: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassCount {
    pub class: String,
    pub count: u64,
    pub bytes: u64,
}
