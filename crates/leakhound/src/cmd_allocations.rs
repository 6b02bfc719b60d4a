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
use crate::live::{self, ConnectOptions, Target, TargetArgs};
use crate::model::allocations::{AllocReport, Ended, NO_INLINING_FLAG};
use crate::report::allocations::{cwd, render};
use anyhow::{bail, Result};
use diagnose::allocations::{sites, user_code, CodeKind, ProfileNode, TreeNode};
use inspector::{SamplingNode, SamplingProfile};
use loadgen::Stop;
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
    /// (`--interval` is a duration everywhere else; the old name is still accepted.)
    #[arg(long = "sampling-interval", alias = "interval", value_name = "SIZE", default_value = "32KiB", value_parser = crate::flags::parse_size)]
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
    #[arg(long, help = crate::flags::JSON_HELP)]
    pub json: bool,
    #[arg(short, long, help = crate::flags::QUIET_HELP)]
    pub quiet: bool,
    /// Also write a self-contained HTML report (flame graph, call tree, sites, load) to FILE
    /// (0600; the path is checked before any work and printed once written).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also save V8's raw profile to FILE (a .heapprofile that Chrome DevTools' Memory panel loads).
    #[arg(long, value_name = "FILE")]
    pub heapprofile: Option<PathBuf>,
    #[command(flatten)]
    pub sources: crate::flags::SourceArgs,
}

const DEFAULT_DURATION: Duration = Duration::from_secs(10);

pub fn run(args: &Args) -> Result<ExitCode> {
    for (p, flag) in [(&args.html, "--html"), (&args.heapprofile, "--heapprofile")] {
        if let Some(p) = p {
            crate::report::check_output(p, flag)?;
        }
    }
    // A bad --libraries file is refused before the app starts.
    let mut view = args.sources.view()?;
    let load = args.load.prepare()?;
    if args.interval == 0 {
        bail!("--sampling-interval must be at least 1 byte");
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
        // The flame graph and tables at the original (source-mapped) lines.
        let mut mapped = report.clone();
        map_frames(&mut view, &mut mapped);
        let page = crate::report::flame::allocations_page(&mapped, &crate::report::html::command_line(), args.top, args.min_percent);
        crate::report::write_page(path, &page)?;
    }
    // Frames at their original (source-mapped) lines: JSON frames gain
    // `location` and `generated_location`, the text shows the original.
    if args.json {
        // Through text: the call tree is deeper (129 frames) than
        // serde_json's default nesting limit for building a Value.
        let text = serde_json::to_string(&report)?;
        let mut de = serde_json::Deserializer::from_str(&text);
        de.disable_recursion_limit();
        let mut doc = <serde_json::Value as serde::Deserialize>::deserialize(&mut de)?;
        view.map_json(&mut doc);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if args.quiet {
        println!("{}", crate::report::allocations::headline(&report, &cwd()));
    } else {
        print!("{}", view.map_text(&render(&report, args.top, args.min_percent, &cwd())));
    }
    // Ctrl-C during the load phase: the profile so far was reported; the
    // status says it was cut short, as every command's does.
    if report.ended == crate::model::allocations::Ended::Interrupted {
        eprintln!("leakhound: interrupted after {}; the report covers that much", crate::live::human_duration(report.duration_s));
        return Ok(ExitCode::from(crate::live::interrupted::EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

const DURING: &str = "during the allocation sampling";

/// Connect, sample over the load phase, read the profile, let the target
/// go. `None`: interrupted before there was anything to report.
async fn profile(args: &Args, targs: &TargetArgs, load: &live::load::Load, started_at: u64) -> Result<Option<AllocReport>> {
    let mut interrupts = live::Interrupts::new();
    let stdout = crate::flags::child_stdout(args.json, args.quiet);
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
    let cancel = tokio_util::sync::CancellationToken::new();
    let driving = load.phase_cancellable(Stop::Duration(duration), duration, "load phase", cancel.clone());
    tokio::pin!(driving);
    // The built-in driver stops on cancel with its figures so far; a load
    // command or the idle wait have none to give.
    let built_in = args.load.load_cmd.is_none() && !load.requests.is_empty();
    let phase = tokio::select! {
        r = &mut driving => r.map(|rep| (rep, ended)),
        _ = deadline => Ok((None, Ended::Duration)),
        _ = interrupts.recv() => {
            cancel.cancel();
            let so_far = if built_in {
                tokio::time::timeout(Duration::from_secs(5), &mut driving).await.ok().and_then(|r| r.ok()).flatten()
            } else {
                None
            };
            Ok((so_far, Ended::Interrupted))
        }
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
    let text = serde_json::to_vec(p)?;
    Ok(inspector::private::write_file(path, &text)?)
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

/// Every frame of the report (call tree, sites, user code) moved to its
/// original line where its script has a source map. Iterative: V8's call
/// trees run over a hundred frames deep.
fn map_frames(view: &mut crate::sources_view::SourcesView, r: &mut crate::model::allocations::AllocReport) {
    let mut stack: Vec<&mut diagnose::allocations::TreeNode> = vec![&mut r.tree];
    while let Some(n) = stack.pop() {
        if let Some((url, line, column)) = view.map_frame(&n.url, n.line, n.column) {
            (n.url, n.line, n.column) = (url, Some(line), Some(column));
        }
        stack.extend(n.children.iter_mut());
    }
    for s in r.sites.iter_mut().chain(r.user_code.iter_mut()) {
        if let Some((url, line, column)) = view.map_frame(&s.url, s.line, s.column) {
            (s.url, s.line, s.column) = (url, Some(line), Some(column));
        }
    }
}
