//! leakhound: find, explain and survive memory leaks in Node.js services.

mod cmd_allocations;
mod cmd_diagnose;
mod cmd_diff;
mod cmd_doctor;
mod cmd_gclog;
mod cmd_handles;
mod cmd_listeners;
mod cmd_load;
mod cmd_node;
mod cmd_retainers;
mod cmd_run;
mod cmd_snapshot;
mod cmd_summary;
mod cmd_supervise;
mod cmd_watch;
mod debug_laps;
mod flags;
mod live;
mod load;
mod model;
mod output;
mod pipe;
mod recycle;
mod report;
mod sources_view;
mod suggest;

use clap::{Parser, Subcommand};

/// Big freed arrays keep their pages for the next big array (see `recycle`).
#[global_allocator]
static ALLOC: recycle::Recycler = recycle::Recycler;
use std::path::PathBuf;
use std::process::ExitCode;

/// The top-level help, commands grouped by workflow, `run` first (clig.dev:
/// lead with the common case, show examples). A test checks that every
/// command is listed.
const HELP_TEMPLATE: &str = "\
{before-help}{about-with-newline}
{usage-heading} {usage}

Hunt a leak (start here):
  run          The one-command hunt: start the app, load it, snapshot between rounds, diagnose, give a verdict
  load         Drive HTTP load at a server on this machine: requests/s, latency percentiles, errors

Inspect snapshots:
  diagnose     What leaks across 3+ snapshots: accumulators, suspects with retainer paths, pattern and fix
  summary      What holds the memory: totals and the class table, biggest retainers first
  diff         Compare two snapshots of one process: objects new and deleted per class
  retainers    Why an object is kept: the shortest retainer paths from the roots
  node         One object: type, name, sizes, distance, dominator, its edges and retainers
  listeners    Every EventEmitter's listener counts per event (from a snapshot or a live process)

Live process (--pid, --inspect or -- CMD):
  snapshot     Take a heap snapshot of a running Node process, streamed to a file
  watch        Watch a process's memory: heap floor trend, growth, time to the heap limit
  allocations  Which functions allocated the memory still alive after a load phase
  handles      What keeps a Node process alive: timers, sockets, servers, with callback locations
  doctor       A process's memory against its container's limit: findings, a --max-old-space-size that fits

Production:
  supervise    Run a Node service as N workers on one socket: memory limits, lossless restarts, metrics
  gclog        Read `node --trace-gc` output: does the heap floor after full GCs grow?

  help         Print this message or the help of the given command

Options:
{options}

Examples:
  leakhound run --load /orders -- node server.js          hunt: PORT is set for the app, /orders loaded
  leakhound run -q --fail-on-leak --fail-on-inconclusive --load /orders -- node server.js   (CI)
  leakhound diagnose s1.heapsnapshot s2.heapsnapshot s3.heapsnapshot
  leakhound watch --pid 1234 --duration 10m
  leakhound <command> --help                              every flag of one command
{after-help}";

#[derive(Parser)]
#[command(
    name = "leakhound",
    version,
    about = "Find, explain and survive memory leaks in Node.js services",
    help_template = HELP_TEMPLATE,
    after_help = flags::UNITS_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Replace heap strings in the output (text, JSON, HTML) by a short
    /// stable hash such as ‹h:3f9a2c01›, so a report can be shared: string
    /// values, Map/Set string keys, and property names that are not plain
    /// code identifiers or belong to a dictionary-like object (over 32
    /// keys). Class, function and variable names, V8's own names, indexes,
    /// sizes and source locations stay. Same text, same hash (HMAC-SHA-256,
    /// keyed by LEAKHOUND_REDACT_KEY if set). Commands that print no heap
    /// strings (load, supervise, gclog, watch) are unchanged.
    #[arg(long, global = true)]
    redact: bool,
}

/// Options shared by the commands that read one snapshot.
#[derive(clap::Args, Clone)]
pub struct SnapshotArgs {
    /// A .heapsnapshot file (.gz works too; `-` reads stdin).
    pub file: PathBuf,
    /// Threads for parsing and analysis (default: all cores; 1 starts no other thread).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Use V8's raw self sizes instead of DevTools' shallow sizes (which fold
    /// single-owner internal arrays into their owner).
    #[arg(long)]
    pub raw_sizes: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// What holds the memory: totals and the class table, biggest retainers first.
    Summary {
        #[command(flatten)]
        snap: SnapshotArgs,
        /// How many classes to list.
        #[arg(long, default_value_t = 25)]
        top: usize,
        /// Order of the class table.
        #[arg(long, value_enum, default_value_t = cmd_summary::SortBy::Retained)]
        sort: cmd_summary::SortBy,
        /// Also write a self-contained HTML page with the sortable class table to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Why an object is kept: the shortest retainer paths from the roots.
    Retainers {
        #[command(flatten)]
        snap: SnapshotArgs,
        /// The object's id (the @id DevTools shows; `@114879` or `114879`).
        #[arg(long, conflicts_with = "class", required_unless_present = "class", value_parser = suggest::parse_object_id)]
        id: Option<u32>,
        /// A class name: explain its largest objects.
        #[arg(long)]
        class: Option<String>,
        /// How many paths per object.
        #[arg(long, default_value_t = 3)]
        paths: usize,
        /// With --class: how many of its largest objects.
        #[arg(long, default_value_t = 3)]
        objects: usize,
        #[command(flatten)]
        sources: flags::SourceArgs,
    },
    /// One object: type, name, sizes, distance, dominator, its edges and retainers.
    Node {
        #[command(flatten)]
        snap: SnapshotArgs,
        /// The object's id (`@114879` or `114879`).
        #[arg(long, value_parser = suggest::parse_object_id)]
        id: u32,
        /// How many edges and retainers to list.
        #[arg(long, default_value_t = 40)]
        limit: usize,
        #[command(flatten)]
        sources: flags::SourceArgs,
    },
    /// The one-command hunt: start the app, load it, snapshot between rounds, diagnose, give a verdict.
    Run(cmd_run::Args),
    /// Compare two snapshots of one process: objects new and deleted per class (DevTools Comparison).
    Diff(cmd_diff::Args),
    /// Drive HTTP load at a server on this machine: requests/s, latency percentiles, errors.
    Load(cmd_load::Args),
    /// What leaks across 3+ snapshots: accumulators, suspects with retainer paths, pattern and fix.
    Diagnose(cmd_diagnose::Args),
    /// Run a Node service as N workers on one socket: memory limits, lossless restarts, metrics.
    Supervise(cmd_supervise::Args),
    /// Take a heap snapshot of a running Node process (--pid, --inspect or -- CMD), streamed to a file.
    Snapshot(cmd_snapshot::Args),
    /// Watch a running Node process's memory: heap floor trend, growth per hour, time to the heap limit.
    Watch(cmd_watch::Args),
    /// Which functions allocated the memory still alive after a load phase: V8's sampling heap profiler, top-down, by site, as a flame graph.
    Allocations(cmd_allocations::Args),
    /// What keeps a Node process alive: timers, sockets, servers, watchers, child processes, with callback locations.
    Handles(cmd_handles::Args),
    /// Every EventEmitter's listener counts per event, flagged above a threshold (from a snapshot or a live process).
    Listeners(cmd_listeners::Args),
    /// A Node process's memory against its container's limit: findings and a --max-old-space-size that fits.
    Doctor(cmd_doctor::Args),
    /// Read `node --trace-gc` output: does the heap floor after full GCs grow?
    Gclog {
        /// The log (`--trace-gc`, old-format or `--trace-gc-nvp` lines); `-` reads stdin.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Slowest floor growth called a leak, e.g. `1MiB/h`, `500kB/h`, `10MB/d` (kB/MB: powers of 1000,
        /// KiB/MiB: of 1024). The default is in MiB because V8's `--trace-gc` "MB" are MiB.
        #[arg(long = "min-rate", alias = "min-growth", value_name = "RATE", default_value = "1MiB/h", value_parser = flags::parse_rate)]
        min_growth: f64,
        /// Exit with status 1 when the verdict is leak.
        #[arg(long)]
        fail_on_leak: bool,
        /// Print only the verdict line.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// Serve every allocation of 1 MiB or more with its own mapping, returned to
/// the system when freed. glibc otherwise raises that threshold to 32 MiB
/// after the first large free and keeps freed arrays resident, which costs
/// tens of MB of peak RSS on a large snapshot.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    // A reader that goes away (`| head`): see `pipe`, which ends us
    // quietly after cleanup; SIGPIPE stays ignored.
}

fn main() -> ExitCode {
    tune_allocator();
    pipe::quiet_on_broken_pipe(dispatch)
}

fn dispatch() -> ExitCode {
    let cli: Cli = suggest::parse_cli();
    if cli.redact {
        diagnose::redact::enable(std::env::var("LEAKHOUND_REDACT_KEY").ok().as_deref());
    }
    let result = match cli.command {
        // --threads bounds every phase: parsing and all of the analysis.
        Command::Summary { snap, top, sort, html } => {
            heapsnap::with_threads(snap.threads, || cmd_summary::run(&snap, top, sort, html.as_deref()))
        }
        Command::Retainers { snap, id, class, paths, objects, sources } => {
            heapsnap::with_threads(snap.threads, || cmd_retainers::run(&snap, id, class.as_deref(), paths, objects, &sources))
        }
        Command::Node { snap, id, limit, sources } => heapsnap::with_threads(snap.threads, || cmd_node::run(&snap, id, limit, &sources)),
        Command::Diff(a) => heapsnap::with_threads(a.threads, || cmd_diff::run(&a)),
        Command::Listeners(a) => cmd_listeners::run(&a),
        Command::Run(a) => cmd_run::run(&a),
        Command::Load(a) => cmd_load::run(&a),
        Command::Diagnose(a) => heapsnap::with_threads(a.threads, || cmd_diagnose::run(&a)),
        // The log counts in V8's "MB" (2^20 bytes).
        Command::Gclog { file, json, min_growth, fail_on_leak, quiet } => {
            cmd_gclog::run(&file, json, min_growth / (1024.0 * 1024.0), cmd_gclog::Gate { fail_on_leak, quiet })
        }
        Command::Supervise(a) => cmd_supervise::run(&a),
        Command::Snapshot(a) => cmd_snapshot::run(&a),
        Command::Watch(a) => cmd_watch::run(&a),
        Command::Handles(a) => cmd_handles::run(&a),
        Command::Allocations(a) => cmd_allocations::run(&a),
        Command::Doctor(a) => cmd_doctor::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) if pipe::is_broken_pipe(&e) => ExitCode::from(pipe::EXIT_BROKEN_PIPE),
        Err(e) => {
            output::error_line(&e);
            ExitCode::from(2)
        }
    }
}
