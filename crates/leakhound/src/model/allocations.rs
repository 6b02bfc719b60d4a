//! What `leakhound allocations` found: printed as `--json`, read by the
//! text renderer and the flame-graph page.

use super::TargetJson;
use diagnose::allocations::{Site, TreeNode};
use loadgen::LoadReport;
use serde::Serialize;

/// V8 flag that stops it inlining (every Node version 18-26 knows it; it
/// also bounds Maglev's inlining). Not allowed in NODE_OPTIONS.
pub const NO_INLINING_FLAG: &str = "--max-inlined-bytecode-size=0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// The --duration elapsed.
    Duration,
    /// The --load-cmd finished.
    LoadFinished,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct AllocReport {
    pub schema_version: u32,
    pub command: &'static str,
    pub target: TargetJson,
    /// Unix time sampling started, seconds.
    pub started_at: u64,
    pub duration_s: f64,
    pub ended: Ended,
    /// Mean bytes between samples.
    pub sampling_interval: u64,
    /// Always true: only objects still alive after a full GC are counted
    /// (V8's includeObjectsCollectedBy*GC flags are left unset).
    pub live_only: bool,
    /// Whether node was started with inlining off (--no-inlining).
    pub no_inlining: bool,
    /// Estimated live bytes over all samples.
    pub total_bytes: u64,
    pub samples: u64,
    /// Bytes whose allocating stack has a function of the app's own code.
    pub user_code_bytes: u64,
    /// Printed compact even in pretty JSON: it nests two levels per stack
    /// frame, and indenting that would take most of the output.
    #[serde(serialize_with = "compact")]
    pub tree: TreeNode,
    /// Bottom-up: self bytes per function, largest first.
    pub sites: Vec<Site>,
    /// Bytes per innermost function of the app's own code on the
    /// allocating stack (allocations made inside node or node_modules count
    /// toward the user function that called them), largest first.
    pub user_code: Vec<Site>,
    /// The built-in load driver's figures, when it ran.
    pub load: Option<LoadReport>,
    /// `process 123 (node app.js, Node v20.1.0)`.
    #[serde(skip)]
    pub label: String,
}

fn compact<S: serde::Serializer>(tree: &TreeNode, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let text = serde_json::to_string(tree).map_err(S::Error::custom)?;
    serde_json::value::RawValue::from_string(text).map_err(S::Error::custom)?.serialize(s)
}
