//! Snapshot files in, analyses out: the one place in leakhound that opens
//! heap snapshot files (through heapsnap). Paths and options go in; a
//! [`Diagnosis`] or a [`Comparison`] comes out. Every front end (the
//! command line, an npm API, a test helper) calls these instead of
//! loading snapshots itself.
//!
//! Reading a file is the only I/O here; what a person sees while it runs
//! (a progress bar, phase timings) is the caller's [`Progress`].

use crate::diff::{compare, Comparison};
use crate::leaks::{self, Census, DiagnoseError, Diagnosis, Last, Options};
use heapsnap::{analyze, classes, AnalysisOptions, HeapSnapshot, Observer, ParseOptions, SnapshotError};
use std::path::{Path, PathBuf};

/// What the caller shows while files are read and analysed. Every method
/// does nothing by default.
pub trait Progress {
    /// A full parse of `path` starts; `len` is its size when known.
    fn parsing(&mut self, _path: &Path, _len: Option<u64>) {}
    /// Input bytes of the current file read so far.
    fn read(&mut self, _done: u64) {}
    /// The current file is parsed (or failed).
    fn parsed(&mut self) {}
    /// A named step of the work ended (for timings).
    fn phase(&mut self, _name: &str) {}
    /// Who receives the engine's laps (debug timings), if anyone.
    fn observer(&self) -> Option<&'static dyn Observer> {
        None
    }
}

/// No progress shown.
pub struct Silent;
impl Progress for Silent {}

/// Why files could not be turned into an analysis. The messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: SnapshotError,
    },
    #[error("{path}")]
    Parse {
        path: String,
        #[source]
        source: SnapshotError,
    },
    #[error("diagnose needs three or more snapshots of one process (oldest first); got {0}")]
    TooFewSnapshots(usize),
    #[error("analysis thread panicked")]
    AnalysisPanicked,
    #[error(transparent)]
    Diagnosis(#[from] DiagnoseError),
}

/// Parse a whole snapshot (`.gz` works too; `-` reads stdin).
pub fn open(path: &Path, threads: usize, progress: &mut dyn Progress) -> Result<HeapSnapshot, FilesError> {
    let shown = path.display().to_string();
    let (input, len) = heapsnap::open_input(path).map_err(|source| FilesError::Read { path: shown.clone(), source })?;
    progress.parsing(path, len);
    let observer = progress.observer();
    let mut report = |done: u64| progress.read(done);
    let opts = ParseOptions { threads, progress: Some(&mut report), observer };
    let snap = heapsnap::parse_input(input, opts).map_err(|source| FilesError::Parse { path: shown, source });
    progress.parsed();
    snap
}

/// Only the node table of a snapshot (ids, types, sizes): see
/// `heapsnap::parse_nodes_only`.
pub fn open_nodes_only(path: &Path, threads: usize, observer: Option<&dyn Observer>) -> Result<HeapSnapshot, FilesError> {
    let shown = path.display().to_string();
    let (input, _) = heapsnap::open_input(path).map_err(|source| FilesError::Read { path: shown.clone(), source })?;
    heapsnap::parse_nodes_only(input, ParseOptions { threads, progress: None, observer })
        .map_err(|source| FilesError::Parse { path: shown, source })
}

/// How to read the files of a diagnosis.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileOptions {
    /// Threads for parsing and analysis (0: all cores; 1 starts no other thread).
    pub threads: usize,
    /// Read the earlier snapshots in full, to show each accumulator's
    /// entries and retained size in every snapshot (about twice the time).
    /// By default only their object ids are read.
    pub exact: bool,
}

/// Parse and analyse every snapshot (keeping only a census of the earlier
/// ones) and diagnose. The analysis of one snapshot runs while the next one
/// parses, so both cores stay busy and at most two graphs are alive.
pub fn diagnose_files(files: &[PathBuf], opts: &Options, fopts: FileOptions, progress: &mut dyn Progress) -> Result<Diagnosis, FilesError> {
    if files.len() < 3 {
        return Err(FilesError::TooFewSnapshots(files.len()));
    }
    let FileOptions { threads, exact } = fopts;
    let observer = progress.observer();
    let census = |f: &PathBuf, mut snap: HeapSnapshot| {
        if !exact {
            return Census::ids_only(&f.display().to_string(), &snap);
        }
        let a = analyze(&mut snap, AnalysisOptions { fold_shallow_sizes: true, threads, observer, ..Default::default() });
        Census::take(&f.display().to_string(), &snap, a.retained)
    };
    let (earlier, mut snap) = std::thread::scope(|scope| -> Result<(Vec<Census>, HeapSnapshot), FilesError> {
        let mut earlier = Vec::new();
        let mut pending: Option<std::thread::ScopedJoinHandle<'_, Census>> = None;
        for f in &files[..files.len() - 1] {
            let snap = if exact { open(f, threads, progress)? } else { open_nodes_only(f, threads, observer)? };
            if threads == 1 {
                // One thread: no census beside the next parse.
                earlier.push(census(f, snap));
                continue;
            }
            if let Some(h) = pending.take() {
                earlier.push(h.join().map_err(|_| FilesError::AnalysisPanicked)?);
            }
            pending = Some(scope.spawn(move || census(f, snap)));
        }
        let last = open(&files[files.len() - 1], threads, progress)?;
        if let Some(h) = pending.take() {
            earlier.push(h.join().map_err(|_| FilesError::AnalysisPanicked)?);
        }
        Ok((earlier, last))
    })?;
    progress.phase("parse all, census of the earlier snapshots");
    diagnose_last(&files[files.len() - 1], &mut snap, &earlier, opts, threads, progress)
}

/// One round boundary recorded by object tracking: a label for reports
/// ("boundary 1"), the largest object id then, and the live bytes.
#[derive(Debug, Clone)]
pub struct TrackedBoundary {
    pub label: String,
    pub max_id: u32,
    pub live_bytes: u64,
}

/// The diagnosis of one snapshot taken at the end of object tracking and
/// the round boundaries recorded meanwhile (oldest first; at least two:
/// the end of the warm-up and of each round but the last, whose end is the
/// snapshot). The same diagnosis as from one snapshot per boundary: only
/// their largest ids are used for the steps.
pub fn diagnose_tracked(
    file: &Path,
    boundaries: &[TrackedBoundary],
    opts: &Options,
    threads: usize,
    progress: &mut dyn Progress,
) -> Result<Diagnosis, FilesError> {
    if boundaries.len() < 2 {
        return Err(FilesError::TooFewSnapshots(boundaries.len() + 1));
    }
    let earlier: Vec<Census> = boundaries.iter().map(|b| Census::boundary(&b.label, b.max_id, b.live_bytes)).collect();
    let mut snap = open(file, threads, progress)?;
    progress.phase("parse");
    diagnose_last(file, &mut snap, &earlier, opts, threads, progress)
}

fn diagnose_last(
    f: &Path,
    snap: &mut HeapSnapshot,
    earlier: &[Census],
    opts: &Options,
    threads: usize,
    progress: &mut dyn Progress,
) -> Result<Diagnosis, FilesError> {
    let observer = progress.observer();
    let a = analyze(
        snap,
        AnalysisOptions {
            fold_shallow_sizes: true,
            classes: true,
            script_names: true,
            path_tree: true,
            threads,
            observer,
            ..Default::default()
        },
    );
    let (classes, scripts, tree) = (
        a.classes.as_ref().expect("asked for classes"),
        a.scripts.as_ref().expect("asked for script names"),
        a.path_tree.as_ref().expect("asked for the path tree"),
    );
    progress.phase("analysis of the last snapshot");
    let name = f.display().to_string();
    let last = Last { file: &name, snapshot: snap, retained: &a.retained, classes, scripts, tree };
    let d = leaks::diagnose(earlier, &last, opts)?;
    progress.phase("diagnosis");
    Ok(d)
}

/// Load both snapshots and compare them per class (DevTools' Comparison);
/// `raw_sizes` keeps V8's self sizes instead of DevTools' folded ones.
pub fn compare_files(
    base: &Path,
    new: &Path,
    threads: usize,
    raw_sizes: bool,
    progress: &mut dyn Progress,
) -> Result<Comparison, FilesError> {
    let mut load_one = |f: &Path| -> Result<_, FilesError> {
        let mut s = open(f, threads, progress)?;
        if !raw_sizes {
            heapsnap::shallow::fold_shallow_sizes(&mut s);
        }
        let c = classes::compute(&s);
        Ok((s, c))
    };
    let (a, ac) = load_one(base)?;
    let (b, bc) = load_one(new)?;
    Ok(compare(&a, &ac, &b, &bc))
}
