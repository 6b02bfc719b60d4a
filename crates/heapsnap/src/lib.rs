//! `heapsnap`: reads V8 `.heapsnapshot` files of any size, streaming, into
//! flat columns indexed by node ordinal, and answers the questions people
//! ask of a heap: what holds the memory (dominators, retained sizes, class
//! summaries) and why it is kept (retainer paths from the roots).
//!
//! A pure library: no CLI, no network, no environment variables, nothing
//! printed. The caller passes what it wants computed and how many threads
//! it may use ([`AnalysisOptions`], [`ParseOptions`], [`Limits`]), and an
//! [`Observer`] for progress and debug laps. One module per question:
//! `dominators`, `distances`, `classes`, `summary`, `retainers`, `source`.

pub mod analysis;
pub mod bits;
pub mod classes;
mod columns;
pub mod distances;
pub mod dominators;
pub mod error;
pub mod flags;
pub mod limits;
pub mod mem;
pub mod meta;
mod numbers;
pub mod observe;
mod parse;
mod records;
pub mod retainers;
mod scan;
pub mod shallow;
pub mod snapshot;
pub mod source;
pub mod summary;
pub mod traces;

pub use analysis::{analyze, Analysis, AnalysisOptions};
pub use error::{Result, SnapshotError};
pub use limits::{with_limits, with_threads, Limits};
pub use meta::{EdgeKind, Meta, NodeKind};
pub use observe::{Observer, Stage};
pub use parse::{open_input, parse_input, parse_nodes_only, parse_snapshot, read_file_windowed, read_snapshot, Input, ParseOptions};
pub use snapshot::{EdgeIndex, EdgeName, HeapSnapshot, Location, NodeIndex, Strings};
