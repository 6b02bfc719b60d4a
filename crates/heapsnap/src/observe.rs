//! Progress and debug laps, reported to an observer the caller passes in
//! (as DevTools' heap snapshot worker reports to a progress object): the
//! library itself prints nothing and reads no environment.

use std::time::{Duration, Instant};

/// Which part of the engine a lap comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the snapshot's top-level sections.
    Parse,
    /// The analysis steps (folding, essential edges, dominators, retained sizes).
    Analyze,
    /// Inside the dominator pass.
    Dominators,
    /// Work the analysis runs beside its main steps (class distances, path tree).
    Side,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Analyze => "analyze",
            Stage::Dominators => "dominators",
            Stage::Side => "side",
        }
    }
}

/// Receives laps while the engine works. Called from the engine's own
/// threads too, hence `Sync`.
pub trait Observer: Sync {
    /// `what` was done `elapsed` after `stage` began.
    fn lap(&self, stage: Stage, what: &str, elapsed: Duration);
    /// A fact about the work (counts of nodes, edges), for debugging.
    fn note(&self, stage: Stage, text: &str) {
        let _ = (stage, text);
    }
}

/// The laps of one stage, timed from its start; nothing is formatted
/// unless an observer listens.
pub(crate) struct Laps<'a> {
    observer: Option<&'a dyn Observer>,
    stage: Stage,
    start: Instant,
}

impl<'a> Laps<'a> {
    pub(crate) fn new(observer: Option<&'a dyn Observer>, stage: Stage) -> Self {
        Laps { observer, stage, start: Instant::now() }
    }

    pub(crate) fn lap(&self, what: &str) {
        if let Some(o) = self.observer {
            o.lap(self.stage, what, self.start.elapsed());
        }
    }

    /// A lap whose text costs something to build.
    pub(crate) fn lap_with(&self, what: impl FnOnce() -> String) {
        if let Some(o) = self.observer {
            o.lap(self.stage, &what(), self.start.elapsed());
        }
    }

    pub(crate) fn note(&self, text: impl FnOnce() -> String) {
        if let Some(o) = self.observer {
            o.note(self.stage, &text());
        }
    }
}
