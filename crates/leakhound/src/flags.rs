//! How the command line reads values: every size, duration and rate flag of
//! every command parses through these (the parsers live in
//! `diagnose::units`, which `supervise` shares), so `300MB` means the same
//! thing in every flag.

pub use diagnose::units::{parse_duration, parse_positive_size, parse_rate, parse_size};

/// The unit rule, shown after the top-level `--help`.
pub const UNITS_HELP: &str = "Sizes: kB, MB, GB are powers of 1000; KiB, MiB, GiB powers of 1024; a bare K, M or G is refused \
(write 300MB or 300MiB). Durations: 500ms, 10s, 5m, 2h, 1d. Rates: a size per /h, /min or /d, e.g. 1MB/h.";

/// `-q, --quiet` on every command that has it: the one result line only.
pub const QUIET_HELP: &str = "Print only the one result line (the verdict, or what was written or found): no tables, no progress. \
Under -q a started app's own stdout goes to stderr.";

/// `--json` on the live commands: one document on stdout.
pub const JSON_HELP: &str = "Print one JSON document on stdout instead of text (every field: docs/json.md); \
a started app's own stdout goes to stderr.";

/// `--html FILE` on every command that has it.
pub const HTML_HELP: &str =
    "Also write a self-contained HTML report to FILE (0600; the path is checked before any work and printed once written).";

/// Where a program leakhound starts writes its stdout: ours carries the
/// result, so the app's output goes to stderr unless a person watches both
/// on one terminal (as `run` does).
pub fn child_stdout(json: bool, quiet: bool) -> inspector::ChildStdout {
    if json || quiet || !crate::output::stdout_is_terminal() {
        inspector::ChildStdout::ToStderr
    } else {
        inspector::ChildStdout::Inherit
    }
}

/// Where printed locations come from: every command that prints a location
/// in a script (`run`, `diagnose`, `retainers`, `node`, `listeners`,
/// `allocations`, `handles`) takes these, with one meaning.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SourceArgs {
    /// Where the snapshot's scripts, source maps and node_modules are on this
    /// machine, when it was taken on another (mapped locations, package versions).
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<std::path::PathBuf>,
    /// Extra library table (TOML, the format of crates/sources/data/libraries.toml), tried before the built-in one.
    #[arg(long, value_name = "FILE")]
    pub libraries: Option<std::path::PathBuf>,
}

impl SourceArgs {
    /// The view that maps locations and names packages; a bad `--libraries`
    /// file is refused here, before any work starts.
    pub fn view(&self) -> anyhow::Result<crate::sources_view::SourcesView> {
        crate::sources_view::SourcesView::new(self.source_root.clone(), self.libraries.as_deref())
    }
}
