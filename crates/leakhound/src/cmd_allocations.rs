//! `leakhound allocations (--pid PID | --inspect ADDR | -- CMD)`: which
//! functions allocated the memory that is still alive after a load phase.
//!
//! V8's sampling heap profiler runs during the phase (one sample per
//! `--interval` bytes allocated, on average, with the JS stack of the
//! moment); then a full GC, and the profile is read: V8 drops the sample of
//! every object that died, so what is left is an estimate of the live bytes
//! by allocating call stack. Shown top-down (the call tree, with total and
//! self bytes), bottom-up (allocation sites: self bytes per function), and
//! per function of the user's own code (the innermost one on each stack),
//! and in the HTML page as a flame graph.
//!
//! A node of V8's profile is a function, located where the function is
//! defined, not at the allocating line; a function that V8 inlined into
//! its caller is not on the stack, so its allocations count toward the
//! caller (`--no-inlining` asks V8 not to inline, when leakhound starts node).

use crate::live::load::LoadArgs;
use crate::live::{self, ConnectOptions, Target, TargetArgs, TargetJson};
use crate::output::{bytes, clip, paint, terminal_width, Colour};
use anyhow::{bail, Result};
use diagnose::allocations::{location, percent, sites, tree_rows, user_code, CodeKind, ProfileNode, Site, TreeNode};
use inspector::{ChildStdout, SamplingNode, SamplingProfile};
use loadgen::{LoadReport, Stop};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    /// How long to sample (and load, with --load). With --load-cmd the phase
    /// lasts as long as the command, at most this long if given. Ctrl-C ends
    /// it early and still reports. [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = crate::flags::parse_duration)]
    pub duration: Option<Duration>,
    /// Mean bytes allocated between two samples (V8's default 32KiB); smaller
    /// is more precise and costs the app more.
    #[arg(long, value_name = "SIZE", default_value = "32KiB", value_parser = crate::flags::parse_size)]
    pub interval: u64,
    /// How many allocation sites to list.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Call-tree rows: the call paths that hold at least this percentage of the live sampled bytes.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub min_percent: f64,
    /// With `-- node ...`: start node with --max-inlined-bytecode-size=0 so
    /// that V8 inlines no function into its caller and every allocation is
    /// charged to the function that made it (the app runs slower).
    #[arg(long)]
    pub no_inlining: bool,
    /// With --load: how long to wait for the app to answer the first URL.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::flags::parse_duration)]
    pub ready_timeout: Duration,
    /// Print JSON (the app's own stdout then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page (flame graph, call tree, sites, load) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also save V8's raw profile to FILE (a .heapprofile that Chrome DevTools' Memory panel loads).
    #[arg(long, value_name = "FILE")]
    pub heapprofile: Option<PathBuf>,
}

const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// V8 flag that stops it inlining (every Node version 18-26 knows it; it
/// also bounds Maglev's inlining). Not allowed in NODE_OPTIONS.
const NO_INLINING_FLAG: &str = "--max-inlined-bytecode-size=0";

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

pub fn run(args: &Args) -> Result<ExitCode> {
    let load = args.load.prepare()?;
    if args.interval == 0 {
        bail!("--interval must be at least 1 byte");
    }
    if !(args.min_percent >= 0.0 && args.min_percent <= 100.0) {
        bail!("--min-percent must be between 0 and 100");
    }
    let mut target_args = args.target.clone();
    if args.no_inlining {
        let cmd = &mut target_args.cmd;
        if cmd.is_empty() || !inspector::launch::is_node_like(&cmd[0]) {
            bail!("--no-inlining needs leakhound to start node itself (`-- node app.js`): V8 flags cannot be changed in a running process nor passed through NODE_OPTIONS");
        }
        cmd.insert(1, OsString::from(NO_INLINING_FLAG));
    }
    let started_at = crate::report::now_unix();
    let Some(report) = live::block_on(profile(args, &target_args, &load, started_at))?? else {
        return Ok(ExitCode::from(130));
    };
    if let Some(path) = &args.html {
        let page = crate::report::flame::allocations_page(&report, &crate::report::html::command_line(), args.top, args.min_percent);
        crate::report::write_page(path, &page)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, args.top, args.min_percent, &cwd()));
    }
    Ok(ExitCode::SUCCESS)
}

const DURING: &str = "during the allocation sampling";

/// Connect, sample over the load phase, read the profile, let the target
/// go. `None`: interrupted before there was anything to report.
async fn profile(args: &Args, targs: &TargetArgs, load: &live::load::Load, started_at: u64) -> Result<Option<AllocReport>> {
    let mut interrupts = live::Interrupts::new();
    let stdout = if args.json { ChildStdout::ToStderr } else { ChildStdout::Inherit };
    let target = tokio::select! {
        t = live::connect(targs, ConnectOptions { child_stdout: stdout }) => t?,
        _ = interrupts.recv() => return Ok(None),
    };
    let ready = tokio::select! {
        r = load.wait_until_ready(args.ready_timeout) => r,
        _ = target.program_finished() => {
            return Err(target.fail(inspector::Error::Closed { during: String::new() }, "before it answered the load URL").await);
        }
        _ = interrupts.recv() => {
            target.finish().await;
            return Ok(None);
        }
    };
    if let Err(e) = ready {
        target.finish().await;
        return Err(e);
    }
    if let Err(e) = target.session.start_sampling(args.interval).await {
        return Err(target.fail(e, "before leakhound could start sampling").await);
    }
    let start = Instant::now();
    let duration = args.duration.unwrap_or(DEFAULT_DURATION);
    // The built-in driver and the idle wait stop by themselves at the
    // duration; a --load-cmd runs to its end, or until an explicit
    // --duration (then its process group is killed).
    let cap = if args.load.load_cmd.is_some() { args.duration } else { None };
    let deadline = async {
        match cap {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let ended = if args.load.load_cmd.is_some() { Ended::LoadFinished } else { Ended::Duration };
    let phase = tokio::select! {
        r = load.phase(Stop::Duration(duration), duration, "load phase") => r.map(|rep| (rep, ended)),
        _ = deadline => Ok((None, Ended::Duration)),
        _ = interrupts.recv() => Ok((None, Ended::Interrupted)),
        _ = target.program_finished() => Err(inspector::Error::Closed { during: format!(" {DURING}") }.into()),
        _ = target.session.closed() => Err(inspector::Error::Closed { during: format!(" {DURING}") }.into()),
    };
    let duration_s = start.elapsed().as_secs_f64();
    let (load_report, ended) = match phase {
        Ok(x) => x,
        Err(e) => return Err(give_up(target, e).await),
    };
    // What survives a full GC is what the profile should show.
    let read = async {
        target.session.collect_garbage().await?;
        let p = target.session.sampling_profile().await?;
        target.session.stop_sampling().await?;
        Ok::<_, inspector::Error>(p)
    };
    let profile = tokio::select! {
        r = read => r,
        _ = interrupts.recv() => {
            target.finish().await;
            return Ok(None);
        }
    };
    let profile = match profile {
        Ok(p) => p,
        Err(e) => return Err(target.fail(e, "while leakhound read the allocation profile").await),
    };
    let target_json = target.json();
    let label = target.label.clone();
    target.finish().await;
    if let Some(path) = &args.heapprofile {
        write_heapprofile(path, &profile)?;
    }
    let tree = build_tree(&profile);
    let total = tree.total_bytes;
    let sites = sites(&tree);
    let user_code = user_code(&tree);
    Ok(Some(AllocReport {
        schema_version: 1,
        command: "allocations",
        target: target_json,
        started_at,
        duration_s,
        ended,
        sampling_interval: args.interval,
        live_only: true,
        no_inlining: args.no_inlining,
        total_bytes: total,
        samples: profile.samples.len() as u64,
        user_code_bytes: user_code.iter().filter(|s| s.kind == CodeKind::User).map(|s| s.bytes).sum(),
        tree,
        sites,
        user_code,
        load: load_report,
        label,
    }))
}

/// The phase failed: explain it by the target's end if that is what
/// happened (crashed, exited, went away), and stop what we started.
async fn give_up(target: Target, e: anyhow::Error) -> anyhow::Error {
    let gone = target.session.is_closed() || target.launched.as_ref().is_some_and(|l| l.finished_program() || l.try_status().is_some());
    match e.downcast::<inspector::Error>() {
        Ok(ie) => target.fail(ie, DURING).await,
        Err(other) if gone => target.fail(inspector::Error::Closed { during: format!(" {DURING}") }, DURING).await.context(other),
        Err(other) => {
            target.finish().await;
            other
        }
    }
}

fn write_heapprofile(path: &Path, p: &SamplingProfile) -> Result<()> {
    use anyhow::Context;
    let part = inspector::part_path(path);
    let text = serde_json::to_vec(p)?;
    std::fs::write(&part, text).with_context(|| format!("cannot write {}", part.display()))?;
    std::fs::rename(&part, path).with_context(|| format!("cannot rename {} to {}", part.display(), path.display()))?;
    Ok(())
}

pub fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

/// V8's profile node as `diagnose::allocations` reads it.
struct V8Node<'a>(&'a SamplingNode);

impl ProfileNode for V8Node<'_> {
    fn function_name(&self) -> &str {
        &self.0.call_frame.function_name
    }
    fn url(&self) -> &str {
        &self.0.call_frame.url
    }
    fn line_number(&self) -> i64 {
        self.0.call_frame.line_number
    }
    fn column_number(&self) -> i64 {
        self.0.call_frame.column_number
    }
    fn self_size(&self) -> f64 {
        self.0.self_size
    }
    fn id(&self) -> u64 {
        self.0.id
    }
    fn children(&self) -> Vec<Self> {
        self.0.children.iter().map(V8Node).collect()
    }
}

/// The call tree of V8's profile (see `diagnose::allocations::build_tree`).
pub fn build_tree(p: &SamplingProfile) -> TreeNode {
    diagnose::allocations::build_tree(&V8Node(&p.head), p.samples.iter().map(|s| s.node_id))
}

/// `32 KiB` for multiples of 1024, else bytes.
pub fn interval_text(n: u64) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

fn ended_text(e: Ended) -> &'static str {
    match e {
        Ended::Duration => "end of --duration",
        Ended::LoadFinished => "the load command finished",
        Ended::Interrupted => "interrupted",
    }
}

/// The first lines of the report (text and HTML alike).
pub fn header_lines(r: &AllocReport, cwd: &Path) -> Vec<String> {
    let mut v = vec![format!(
        "{}: sampled {} ({}), one sample per {} allocated on average{}",
        r.label,
        live::human_duration(r.duration_s),
        ended_text(r.ended),
        interval_text(r.sampling_interval),
        if r.sampling_interval == inspector::DEFAULT_SAMPLING_INTERVAL { " (V8's default)" } else { "" }
    )];
    let mut live = format!(
        "live after a full GC: {} (estimated from {} live samples); {} ({:.1}%) allocated under your code",
        bytes(r.total_bytes),
        r.samples,
        bytes(r.user_code_bytes),
        percent(r.user_code_bytes, r.total_bytes)
    );
    if let Some(s) = r.sites.iter().find(|s| s.kind == CodeKind::User) {
        live.push_str(&format!("; top site of yours: {} {}", s.function, location(&s.url, s.line, s.column, cwd)));
    }
    v.push(live);
    if let Some(l) = &r.load {
        v.push(load_line(l));
    }
    v
}

pub fn load_line(l: &LoadReport) -> String {
    format!(
        "load: {} requests ({} ok, {} non-2xx, {} errors) over {} connections, {:.0} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        l.requests,
        l.ok,
        l.non_2xx,
        l.errors,
        l.connections,
        l.requests_per_s,
        l.latency_ms.p50,
        l.latency_ms.p99,
        l.latency_ms.max
    )
}

/// Indentation of a tree row: two spaces a level, then `·N ` past 24
/// levels so deep stacks stay readable.
fn indent(depth: usize) -> String {
    if depth <= 24 {
        "  ".repeat(depth)
    } else {
        format!("{}·{depth} ", "  ".repeat(20))
    }
}

pub const MAX_TREE_ROWS: usize = 200;

/// The text report.
pub fn render(r: &AllocReport, top: usize, min_percent: f64, cwd: &Path) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for l in header_lines(r, cwd) {
        let _ = writeln!(o, "{l}");
    }
    if r.total_bytes == 0 {
        let _ = writeln!(
            o,
            "\nNothing allocated during the sampling is alive any more (or too little was allocated for a sample: try a longer --duration, load, or a smaller --interval)."
        );
        return o;
    }
    let width = terminal_width();
    let (rows, hidden) = tree_rows(&r.tree, min_percent, MAX_TREE_ROWS);
    let _ = writeln!(o, "\nCall tree, top-down (call paths holding at least {min_percent}% of the live bytes)");
    let _ = writeln!(o, "{:>9} {:>6} {:>9}  Function  Location", "Total", "%", "Self");
    for row in &rows {
        let n = row.node;
        let name = format!("{}{}", indent(row.depth), row.name());
        let loc = location(&n.url, n.line, n.column, cwd);
        let fixed = 9 + 1 + 6 + 1 + 9 + 2;
        let room = width.saturating_sub(fixed + 2 + loc.chars().count()).max(20);
        let name = clip(&name, room);
        let name = if n.kind == CodeKind::User { paint(&name, Colour::Yellow) } else { name };
        let line = format!(
            "{:>9} {:>5.1}% {:>9}  {name}  {loc}",
            bytes(n.total_bytes),
            percent(n.total_bytes, r.total_bytes),
            bytes(row.self_bytes)
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    if hidden > 0 {
        let _ = writeln!(o, "({hidden} more rows not shown)");
    }
    let _ = writeln!(o, "\nAllocation sites by self size (live bytes allocated with the function on top of the stack)");
    let _ = writeln!(o, "{}", sites_table(&r.sites, top, r.total_bytes, cwd, true));
    let _ = writeln!(
        o,
        "Your code (live bytes by the innermost function of yours on the allocating stack, node and node_modules frames above it included)"
    );
    let _ = writeln!(o, "{}", sites_table(&r.user_code, top.min(10), r.total_bytes, cwd, false));
    if !r.no_inlining {
        let _ = writeln!(
            o,
            "note: V8 charges a function it inlined to its caller; to see each function's own allocations, run with --no-inlining (with `-- node ...`) or start node with {NO_INLINING_FLAG}"
        );
    }
    o
}

fn sites_table(sites: &[Site], top: usize, total: u64, cwd: &Path, with_kind: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let shown = &sites[..sites.len().min(top)];
    let fw = shown.iter().map(|s| s.function.chars().count()).max().unwrap_or(8).clamp(8, 48);
    if with_kind {
        let _ = writeln!(o, "{:>9} {:>6} {:>7}  {:<12}  {:<fw$}  Location", "Self", "%", "Samples", "Code", "Function");
    } else {
        let _ = writeln!(o, "{:>9} {:>6} {:>7}  {:<fw$}  Location", "Bytes", "%", "Samples", "Function");
    }
    for s in shown {
        let f = clip(&s.function, fw);
        let f = format!("{f:<fw$}");
        let f = if s.kind == CodeKind::User { paint(&f, Colour::Yellow) } else { f };
        let loc = location(&s.url, s.line, s.column, cwd);
        let kind = if with_kind { format!("{:<12}  ", s.kind.word()) } else { String::new() };
        let line = format!("{:>9} {:>5.1}% {:>7}  {kind}{f}  {loc}", bytes(s.bytes), percent(s.bytes, total), s.samples);
        let _ = writeln!(o, "{}", line.trim_end());
    }
    if sites.len() > shown.len() {
        let rest: u64 = sites[shown.len()..].iter().map(|s| s.bytes).sum();
        let _ = writeln!(o, "{:>9} {:>5.1}% {:>7}  ({} more)", bytes(rest), percent(rest, total), "", sites.len() - shown.len());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_texts() {
        assert_eq!(interval_text(32768), "32 KiB");
        assert_eq!(interval_text(1000), "1000 bytes");
        assert_eq!(serde_json::to_string(&CodeKind::NodeModules).unwrap(), r#""node-modules""#);
    }
}
