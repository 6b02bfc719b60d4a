//! `heapsnap`: reads V8 `.heapsnapshot` files of any size, streaming, into
//! flat columns indexed by node ordinal, and answers the questions people
//! ask of a heap: what holds the memory (dominators, retained sizes, class
//! summaries) and why it is kept (retainer paths from the roots).
//!
//! A pure library: no CLI, no network. One module per question:
//! `dominators`, `distances`, `classes`, `summary`, `retainers`, `source`.

pub mod analysis;
pub mod bits;
pub mod classes;
mod columns;
pub mod distances;
pub mod dominators;
pub mod error;
pub mod flags;
pub mod mem;
pub mod meta;
mod numbers;
mod parse;
mod records;
pub mod recycle;
pub mod retainers;
mod scan;
pub mod shallow;
pub mod snapshot;
pub mod source;
pub mod summary;

pub use analysis::{analyze, Analysis, AnalysisOptions};
pub use error::{Result, SnapshotError};
pub use meta::{EdgeKind, Meta, NodeKind};
pub use parse::{open_input, parse_input, parse_nodes_only, parse_snapshot, read_snapshot, Input, ParseOptions};
pub use snapshot::{EdgeIndex, EdgeName, HeapSnapshot, Location, NodeIndex, Strings};
