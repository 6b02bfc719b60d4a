//! `run --mode tracking`: one full snapshot at the end instead of one per
//! round. Object tracking (`HeapProfiler.startTrackingHeapObjects`) starts
//! before the warm-up's load; at the end of the warm-up and of each round
//! but the last, a full GC and the next heap statistics update give the
//! largest object id then (a *boundary*); tracking ends with one snapshot,
//! whose own update is the last round's boundary. An object of that snapshot whose id is
//! in round k's range was allocated in round k and, alive at the end, was
//! alive at every later boundary: the N-snapshot diagnosis from one
//! snapshot (see `diagnose::files::diagnose_tracked`).
//!
//! The statistics V8 sends meanwhile (live bytes per id range) also give
//! a cheap timeline: at each boundary, the live bytes allocated in each
//! earlier round.

use crate::model::run::SnapshotTaken;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inspector::{Boundary, Session, SnapshotOptions, SnapshotProgress, Tracking};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

/// How `run` captures the heap.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `tracking` on Node 22 and later, `snapshots` before (or `tracking`
    /// with --track-allocations).
    Auto,
    /// One full snapshot after the warm-up and after each round (the
    /// files `diagnose S1 S2 S3` reads).
    Snapshots,
    /// Object tracking: an id boundary per round, one full snapshot at the end.
    Tracking,
}

/// The first Node whose inspector slows its heap statistics updates down
/// on big heaps. Before it (V8 <= 11.3, Node 20) an update, a full GC and
/// a heap walk, runs every 50 ms whatever it costs: measured, a busy
/// loop on an 86 MB heap got 1.3% of its CPU under ids-only tracking, and
/// two fixtures (ajv, handlebars) did not finish their run in 180 s.
pub const TRACKING_FROM_NODE: u32 = 22;

impl Mode {
    /// What `auto` means for a target of this Node major version.
    pub fn resolve(self, node_major: Option<u32>, track_allocations: bool) -> Mode {
        match self {
            Mode::Auto if track_allocations || node_major.is_some_and(|m| m >= TRACKING_FROM_NODE) => Mode::Tracking,
            Mode::Auto => Mode::Snapshots,
            m => m,
        }
    }
}

/// The longest wait for V8's heap statistics after a GC. V8 updates them
/// on a timer that slows down on big heaps (each update is a full GC and a
/// heap walk).
const BOUNDARY_TIMEOUT: Duration = Duration::from_secs(120);

/// Tracking across the rounds of one run.
pub struct Capture {
    tracking: Option<Tracking>,
    track_allocations: bool,
    boundaries: Vec<Boundary>,
}

impl Capture {
    pub fn new(track_allocations: bool) -> Capture {
        Capture { tracking: None, track_allocations, boundaries: Vec::new() }
    }

    /// Start tracking, before the warm-up's load: the walk that gives
    /// every object its first id (seconds on a big heap) and V8's first
    /// updates then overlap the warm-up instead of delaying its boundary.
    pub async fn start(&mut self, session: &Session) -> Result<()> {
        if self.tracking.is_none() {
            self.tracking = Some(session.start_tracking(self.track_allocations).await?);
        }
        Ok(())
    }

    /// The end of a phase (the warm-up, a round) but the last: a full GC
    /// and a boundary.
    pub async fn boundary(&mut self, session: &Session) -> Result<()> {
        self.start(session).await?;
        let t = self.tracking.as_ref().expect("started above");
        self.boundaries.push(t.boundary(session, BOUNDARY_TIMEOUT).await?);
        Ok(())
    }

    /// End tracking with the one full snapshot, written to `file`.
    pub async fn snapshot(&mut self, session: &Session, file: &Path, t: f64, quiet: bool) -> Result<SnapshotTaken> {
        let tracking = self.tracking.take().ok_or_else(|| anyhow::anyhow!("tracking was not started"))?;
        let bar = progress_bar(quiet);
        let stopped = tracking
            .stop_to_file(session, file, &SnapshotOptions { capture_numeric_value: true, ..Default::default() }, |p| {
                if let Some(bar) = &bar {
                    show(bar, p)
                }
            })
            .await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        // The snapshot is the last round's boundary.
        let (bytes, boundary) = stopped?;
        self.boundaries.push(boundary);
        Ok(SnapshotTaken { file: file.display().to_string(), t, bytes })
    }

    /// What the diagnosis and the report need: every boundary but the last
    /// (the snapshot stands for it), and the timeline of all.
    pub fn finish(self) -> Tracked {
        Tracked { track_allocations: self.track_allocations, boundaries: self.boundaries }
    }
}

pub struct Tracked {
    pub track_allocations: bool,
    pub boundaries: Vec<Boundary>,
}

/// Names of the phases whose end each boundary marks.
fn phase_name(k: usize) -> String {
    if k == 0 {
        "warm-up".to_string()
    } else {
        format!("round {k}")
    }
}

impl Tracked {
    /// The boundaries the diagnosis compares (oldest first): all but the last.
    pub fn for_diagnosis(&self) -> Vec<diagnose::files::TrackedBoundary> {
        let n = self.boundaries.len().saturating_sub(1);
        self.boundaries[..n]
            .iter()
            .enumerate()
            .map(|(k, b)| diagnose::files::TrackedBoundary {
                label: format!("end of {}", phase_name(k)),
                max_id: b.last_seen_object_id,
                live_bytes: b.state.live_bytes(),
            })
            .collect()
    }

    pub fn view(&self) -> TrackingView {
        let ids: Vec<u32> = self.boundaries.iter().map(|b| b.last_seen_object_id).collect();
        let boundaries = self
            .boundaries
            .iter()
            .enumerate()
            .map(|(j, b)| {
                // Live bytes at boundary j of the objects allocated in each phase up to j.
                let by_phase = (0..=j)
                    .map(|k| {
                        let after = if k == 0 { 0 } else { ids[k - 1] };
                        b.state.live_bytes_between(after, ids[k])
                    })
                    .collect();
                BoundaryView {
                    after: phase_name(j),
                    last_seen_object_id: b.last_seen_object_id,
                    live_bytes: b.state.live_bytes(),
                    live_bytes_by_phase: by_phase,
                }
            })
            .collect();
        TrackingView { track_allocations: self.track_allocations, boundaries }
    }
}

/// The tracking part of `run`'s report.
#[derive(Clone, Debug, Serialize)]
pub struct TrackingView {
    /// Whether allocation stacks were recorded (`--track-allocations`).
    pub track_allocations: bool,
    pub boundaries: Vec<BoundaryView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BoundaryView {
    /// The phase this boundary ends: `warm-up`, `round 1`, ...
    pub after: String,
    pub last_seen_object_id: u32,
    /// Live bytes of the JS heap after the GC (V8's heap statistics).
    pub live_bytes: u64,
    /// Of those, allocated in each phase so far (the warm-up, with
    /// everything before it, first).
    pub live_bytes_by_phase: Vec<u64>,
}

/// A bar on stderr for a snapshot being built then streamed, only on a
/// terminal and not under --json / -q.
pub fn progress_bar(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} building snapshot {bar:30} {pos}/{len} objects, {eta} left").expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// V8's own progress (objects done of total), then the bytes streamed.
pub fn show(bar: &ProgressBar, p: SnapshotProgress) {
    match p {
        SnapshotProgress::Building { done, total } => {
            bar.set_length(total);
            bar.set_position(done);
        }
        SnapshotProgress::Writing { bytes } => {
            if bar.length().is_some() {
                bar.set_style(
                    ProgressStyle::with_template("{spinner} writing snapshot {bytes} ({bytes_per_sec})").expect("valid template"),
                );
                bar.unset_length();
                bar.reset();
            }
            bar.set_position(bytes);
        }
    }
}
