//! Errors a snapshot can raise while it is read or checked.
//!
//! Every error names where the problem is (a byte offset into the input, or
//! the field that is inconsistent) so the CLI can print one useful line.

use std::fmt;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading the input failed (file missing, permission, broken gzip).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The bytes are not the JSON a heap snapshot is made of.
    #[error("{msg} at byte {offset}")]
    Syntax { offset: u64, msg: String },
    /// Valid JSON, but not a V8 heap snapshot (missing or malformed `snapshot.meta`, ...).
    #[error("not a V8 heap snapshot: {0}")]
    Foreign(String),
    /// A heap snapshot whose parts disagree (edge counts, node references).
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
    /// The input ends before the snapshot does.
    #[error("truncated snapshot: input ends at byte {offset} inside {inside}")]
    Truncated { offset: u64, inside: String },
}

impl SnapshotError {
    pub(crate) fn syntax(offset: u64, msg: impl fmt::Display) -> Self {
        SnapshotError::Syntax { offset, msg: msg.to_string() }
    }
}

pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;
