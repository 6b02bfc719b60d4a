//! The reports commands build and renderers read: one type per command
//! result, the same value printed as JSON, text and HTML. The serde field
//! names are the JSON format (docs/json.md); renaming one is a breaking
//! change. Nothing here does I/O.

pub mod allocations;
pub mod memory;
pub mod run;
pub mod watch;

/// Who was watched, as the live commands' JSON says it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetJson {
    pub pid: u32,
    pub node_version: String,
    pub argv: Vec<String>,
    pub started_by_leakhound: bool,
}
