//! `leakhound run [--load URL ...] -- node app.js`: the one-command hunt.
//! (Capture modes: `live::tracking`.)
//!
//! Start the app with an inspector on loopback, wait until the load URL
//! answers, warm up, then repeat: load, force a full GC, snapshot; keep
//! the memory series (and a post-GC floor every `--gc-every`) all along;
//! stop the app; diagnose the snapshots and combine the diagnosis with the
//! floor trend into one verdict. The app is stopped on every path: the
//! normal end, an error, Ctrl-C, and leakhound's own death (the child has
//! PR_SET_PDEATHSIG).

use crate::flags::{parse_duration, parse_size};
use crate::live::evidence;
use crate::live::interrupted::{self, Interrupted};
use crate::live::load::{Load, LoadArgs};
use crate::live::rates;
use crate::live::watchdog::{self, Alarm, Progress};
use crate::live::{self, ConnectOptions, TargetArgs};
use crate::load::Terminal;
use crate::model::memory::{OutsideHeap, T};
use crate::model::run::{Floor, LoadSummary, Phase, RunReport, Sample, SnapshotTaken, Verdict};
use crate::report::text;
use anyhow::{bail, Context, Result};
use diagnose::files::{compare_files, diagnose_files, FileOptions};
use diagnose::leaks::{Diagnosis, Options};
use diagnose::verdict::{run_verdict, RunVerdict};
use inspector::{ChildStdout, MemorySample};
use loadgen::{LoadReport, Stop};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
#[command(after_help = RUN_HELP)]
pub struct Args {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Requests per round (each round ends with a GC and a snapshot).
    #[arg(short = 'n', long, default_value_t = 2000, conflicts_with = "round_duration")]
    pub requests: u64,
    /// Load each round for this long instead of a number of requests
    /// (`-d` as in `load`, whose one phase is one round).
    #[arg(short = 'd', long, visible_alias = "duration", value_parser = parse_duration)]
    pub round_duration: Option<Duration>,
    /// Shortest round: after its requests a round waits until it has
    /// lasted this long, so growth driven by time (a timer, a background
    /// job) shows as well as growth driven by requests. Without load a
    /// round lasts 3 s. --round-duration sets a round's length instead.
    #[arg(long, default_value = "1.5s", value_parser = parse_duration, value_name = "DURATION")]
    pub min_round: Duration,
    /// Warm-up requests before the first snapshot (caches fill, code gets compiled).
    #[arg(long, default_value_t = 2000)]
    pub warmup: u64,
    /// Snapshots to take (at least 3): one after the warm-up and one after each round.
    #[arg(long, default_value_t = 4)]
    pub snapshots: usize,
    /// How to capture the heap: `snapshots` (one full snapshot after the
    /// warm-up and after each round), `tracking` (object tracking: an id
    /// boundary per round and one full snapshot at the end), or `auto`:
    /// tracking on Node 22 and later (their V8 paces its tracking updates),
    /// snapshots before.
    #[arg(long, value_enum, default_value_t = crate::live::tracking::Mode::Auto)]
    pub mode: crate::live::tracking::Mode,
    /// Also record each object's allocation stack (implies tracking), so
    /// each suspect names the code that allocated its objects. It slows
    /// allocation-heavy code down several times while the rounds run.
    #[arg(long)]
    pub track_allocations: bool,
    /// Memory sampling interval.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Force a full GC and record the heap floor this often during the load.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub gc_every: Duration,
    /// How long to wait for the app to answer the load URL.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Smallest growth per round that counts in the diagnosis (e.g. 64kB; kB/MB: powers of 1000, KiB/MiB: of 1024).
    #[arg(long, default_value = "64kB", value_parser = parse_size)]
    pub min_growth: u64,
    /// CI gate: also call it a leak when the post-GC heap grew more than this over the run (e.g. 10MB; MB = 10^6 bytes, MiB = 2^20).
    #[arg(long, value_parser = parse_size)]
    pub max_growth: Option<u64>,
    /// CI gate on the rate: a leak (exit 1) when what grows, projected to an
    /// hour at --at, exceeds this (e.g. 10MB/h). What grows: the suspects
    /// (backing stores included) and `external` rising in every round.
    #[arg(long, value_parser = crate::flags::parse_rate, value_name = "RATE")]
    pub max_growth_rate: Option<f64>,
    /// The traffic growth per request is projected to (e.g. 1000req/s);
    /// default: this run's measured traffic.
    #[arg(long, value_parser = rates::parse_traffic, value_name = "TRAFFIC")]
    pub at: Option<f64>,
    /// Exit with status 1 when the verdict is leak. An inconclusive verdict
    /// (no load, mostly non-2xx responses, a rising floor without a culprit)
    /// still exits 0: add --fail-on-inconclusive to fail on it too.
    #[arg(long)]
    pub fail_on_leak: bool,
    /// Exit with status 3 when the verdict is inconclusive (for CI: a run
    /// that proved nothing should not pass).
    #[arg(long)]
    pub fail_on_inconclusive: bool,
    /// Keep the snapshots in this folder (created); otherwise they are removed.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Print JSON. The app's own stdout goes to stderr under --json, -q, or
    /// when stdout is not a terminal.
    #[arg(long)]
    pub json: bool,
    /// `github`: after the text report, a GitHub Actions annotation
    /// (`::error file=…,line=…::…`) at the user's line of each suspect.
    #[arg(long, value_enum, default_value_t = crate::report::github::Format::Text)]
    pub format: crate::report::github::Format,
    /// Also write the verdict as JUnit XML to FILE (one failed test case per suspect).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report (timeline, suspects, class comparison, load) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub sources: crate::flags::SourceArgs,
    /// The app, e.g. `node app.js` (required).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

const RUN_HELP: &str = "\
Ports: the app gets PORT=<a free port> unless PORT is set; --load /orders
means http://127.0.0.1:$PORT/orders. An app that listens on another port is
found (leakhound asks it) and loaded there.

Rounds: each round sends --requests (2000) and lasts at least --min-round
(1.5s: 2000 requests take about 0.4 s, and a timer starved while they run
needs the rest of the round to show), so a timer that keeps data whatever
the traffic is found as well (from about 45 objects per second).
Growth is reported per request and per second over the rounds, and
projected to an hour at --at (default: this run's traffic). Without --load
the app runs alone for 3 s rounds: growth found then is driven by time and
is a leak; nothing found without load is inconclusive.

Exit status: 0 done (any verdict), 1 leak with --fail-on-leak (or above
--max-growth-rate), 3 inconclusive
with --fail-on-inconclusive, 2 error (the app exited or stopped answering, a
bad flag), 130 interrupted.

Examples:
  leakhound run --load /orders -- node server.js
  PORT=3000 leakhound run --load http://127.0.0.1:3000/api -n 5000 -- node server.js
  leakhound run --fail-on-leak --fail-on-inconclusive --load /orders -- node server.js
  leakhound run --max-growth-rate 10MB/h --at 100req/s --load /orders -- node server.js
  leakhound run --load-cmd 'autocannon -a 2000 http://127.0.0.1:$PORT/' -- node server.js";

struct Recorder {
    start: Instant,
    samples: Mutex<Vec<Sample>>,
    floors: Mutex<Vec<Floor>>,
    limit: Mutex<u64>,
}

impl Recorder {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    fn sample(&self, m: &MemorySample) {
        *self.limit.lock().unwrap() = m.heap_size_limit;
        self.samples.lock().unwrap().push(Sample {
            at: T { t: self.now() },
            heap_used: m.heap_used,
            heap_total: m.heap_total,
            rss: m.rss,
            external: m.external,
            more: (),
        });
    }
    fn floor(&self, m: &MemorySample) {
        self.sample(m);
        let more = OutsideHeap { external: m.external, array_buffers: m.array_buffers, rss: m.rss };
        self.floors.lock().unwrap().push(Floor { at: T { t: self.now() }, heap_used: m.heap_used, more });
    }
}

fn progress_line(quiet: bool, msg: &str) {
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!("leakhound: {msg}");
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let started = Instant::now();
    if args.snapshots < 3 {
        bail!("--snapshots must be at least 3 (a baseline and two rounds to compare)");
    }
    for (p, flag) in [(&args.html, "--html"), (&args.junit, "--junit")] {
        if let Some(p) = p {
            crate::report::check_output(p, flag)?;
        }
    }
    // A bad --libraries file is refused before the app starts.
    let mut view = args.sources.view()?;
    // The app's port: PORT, or a free one leakhound exports to it.
    let app_port = live::ports::AppPort::choose()?;
    if app_port.picked {
        // For a --load-cmd too ('autocannon http://127.0.0.1:$PORT/');
        // set while this is the only thread.
        std::env::set_var("PORT", app_port.port.to_string());
    }
    let load = args.load.prepare_on(Some(app_port.port))?;
    // Snapshots: the named folder, or a temporary one removed at the end.
    let tmp;
    let dir = match &args.keep {
        Some(d) => {
            inspector::private::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = inspector::private::temp_dir("leakhound-run-").context("cannot create a temporary folder")?;
            tmp.path().to_path_buf()
        }
    };
    let started_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let live = live::block_on(async {
        let mut interrupts = live::Interrupts::new();
        hunt(args, &load, &dir, app_port, &mut interrupts).await
    })?;
    let live = match live {
        Ok(l) => l,
        Err(e) => match e.downcast::<Interrupted>() {
            Ok(i) => return Ok(i.report(args.json)),
            Err(e) => return Err(e),
        },
    };
    // The app is stopped; diagnose offline.
    let files: Vec<PathBuf> = live.snapshots.iter().map(|s| PathBuf::from(&s.file)).collect();
    progress_line(args.quiet || args.json, "diagnosing the snapshots");
    interrupted::exit_on_ctrl_c(args.keep.is_none().then(|| dir.clone()), "the diagnosis");
    let opts = Options { min_growth: args.min_growth, max_suspects: 10 };
    let mut diagnosis = match &live.tracked {
        Some(t) => diagnose::files::diagnose_tracked(&files[0], &t.for_diagnosis(), &opts, 0, &mut Terminal::new())?,
        None => diagnose_files(&files, &opts, FileOptions { threads: 0, exact: false }, &mut Terminal::new())?,
    };
    let live_tracked_file = live.tracked.as_ref().and_then(|_| live.snapshots.last()).map(|s| s.file.clone());
    view.attribute(&mut diagnosis);
    let report = combine(args, live, diagnosis, started_at);
    // The JSON document with the suspects' packages and source-mapped lines:
    // what --json prints and what JUnit and the annotations are made from.
    let mut doc = serde_json::to_value(&report)?;
    view.enrich_document(&mut doc);
    if let Some(path) = &args.junit {
        let seconds = started.elapsed().as_secs_f64();
        crate::report::junit::write(path, &crate::report::junit::document(&doc, seconds, &crate::report::github::workspace()))?;
    }
    if let Some(path) = &args.html {
        // The class comparison needs the first and last snapshot in full;
        // only for the page, and before a temporary snapshot folder goes.
        let comparison = match (files.first(), files.last()) {
            (Some(a), Some(b)) if a != b => Some(compare_files(a, b, 0, false, &mut Terminal::new())?),
            _ => None,
        };
        let page = crate::report::html::run_page(&report, &crate::report::html::command_line(), comparison.as_ref(), Some(&doc));
        crate::report::write_page(path, &page)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if args.quiet {
        println!("{}", text::verdict_line(&report));
    } else {
        print!("{}", view.map_text(&text::run(&report)));
        print!("{}", crate::sources_view::text_notes(&doc));
        if let Some(d) = &args.keep {
            match &live_tracked_file {
                Some(f) => println!("\nSnapshot kept: {f} (leakhound summary {f})"),
                None => println!("\nSnapshots kept in {} (leakhound diagnose {}/s*.heapsnapshot)", d.display(), d.display()),
            }
        }
    }
    if args.format == crate::report::github::Format::Github && !args.json {
        print!("{}", crate::report::github::annotations(&doc, &crate::report::github::workspace()));
    }
    Ok(match report.verdict {
        Verdict::Leak if args.fail_on_leak || report.rates.over_max_growth_rate => ExitCode::from(1),
        Verdict::Inconclusive if args.fail_on_inconclusive => ExitCode::from(3),
        _ => ExitCode::SUCCESS,
    })
}

/// What the live part of the run gathered.
struct Live {
    app: String,
    node_version: String,
    pid: u32,
    samples: Vec<Sample>,
    floors: Vec<Floor>,
    phases: Vec<Phase>,
    snapshots: Vec<SnapshotTaken>,
    rounds: Vec<LoadReport>,
    heap_size_limit: u64,
    checkup: Option<crate::live::checkup::Checkup>,
    /// The URLs loaded (expanded, on the port the app listens on).
    urls: Vec<String>,
    /// The round boundaries of --mode tracking.
    tracked: Option<crate::live::tracking::Tracked>,
}

async fn hunt(
    args: &Args,
    load: &Load,
    dir: &std::path::Path,
    app_port: live::ports::AppPort,
    interrupts: &mut live::Interrupts,
) -> Result<Live> {
    let quiet = args.quiet || args.json;
    let targs = TargetArgs { pid: None, port: inspector::DEFAULT_PORT, inspect: None, cmd: args.cmd.clone() };
    // Our stdout carries the verdict: the app's own output goes to stderr
    // unless a person watches both on one terminal.
    let child_stdout =
        if args.json || args.quiet || !crate::output::stdout_is_terminal() { ChildStdout::ToStderr } else { ChildStdout::Inherit };
    let target = tokio::select! {
        t = live::connect_env(&targs, ConnectOptions { child_stdout }, app_port.env()) => t?,
        _ = interrupts.recv() => return Err(Interrupted::new("run", "start-up".into(), 0, 0.0, Vec::new(), Vec::new()).into()),
    };
    if app_port.picked {
        progress_line(quiet, &format!("PORT is not set: the app gets PORT={}", app_port.port));
    }
    progress_line(quiet, &format!("started {}", target.label));
    let rec =
        Arc::new(Recorder { start: Instant::now(), samples: Mutex::new(Vec::new()), floors: Mutex::new(Vec::new()), limit: Mutex::new(0) });
    let progress = Progress::default();
    let result = tokio::select! {
        r = drive(args, load, dir, &target, &rec, quiet, &progress) => r,
        alarm = watchdog::watch(&target, &progress, args.load.timeout) => {
            return Err(watchdog_error(target, alarm, &progress).await);
        }
        _ = interrupts.recv() => {
            // Ctrl-C: stop the app, keep what was gathered.
            target.finish().await;
            let floors = rec.floors.lock().unwrap().iter().map(|f| (f.at.t, f.heap_used)).collect();
            let snaps = interrupted::complete_snapshots(dir);
            return Err(Interrupted::new("run", progress.phase(), progress.total(), rec.now(), floors, snaps).into());
        }
    };
    let (app, node_version, pid) = (target.label.clone(), target.info.node_version.clone(), target.info.pid);
    let checkup;
    let (phases, snapshots, rounds, tracked) = match result {
        Ok(x) => {
            checkup = crate::live::checkup::check(&target, pid, None).await.ok();
            target.finish().await;
            x
        }
        Err(e) => {
            // The app died under us: an inspector call or the load failed
            // first. Say it in the app's terms, as the watchdog would.
            if let Some(l) = &target.launched {
                if tokio::time::timeout(Duration::from_secs(3), l.finished()).await.is_ok() {
                    return Err(watchdog_error(target, Alarm::Finished, &progress).await);
                }
            }
            // Say why in the app's terms (it exited, crashed) and stop it.
            return Err(match e.downcast::<inspector::Error>() {
                Ok(ie) => target.fail(ie, "during the run").await,
                Err(other) => {
                    target.finish().await;
                    other
                }
            });
        }
    };
    let samples = rec.samples.lock().unwrap().clone();
    let floors = rec.floors.lock().unwrap().clone();
    let heap_size_limit = *rec.limit.lock().unwrap();
    let urls = progress.urls();
    Ok(Live { app, node_version, pid, samples, floors, phases, snapshots, rounds, heap_size_limit, urls, checkup, tracked })
}

/// Close the session, learn the exit status, stop the app: the one line.
async fn watchdog_error(target: live::Target, alarm: Alarm, progress: &Progress) -> anyhow::Error {
    let live::Target { session, launched, .. } = target;
    session.close().await;
    let Some(mut l) = launched else { return anyhow::anyhow!(watchdog::describe(&alarm, None, progress, &[])) };
    // Once our connection is gone a finished Node exits.
    if matches!(alarm, Alarm::Finished) {
        let _ = tokio::time::timeout(Duration::from_secs(2), l.exited()).await;
    }
    let status = l.try_status().map(inspector::launch::describe_status);
    l.stop(Duration::from_secs(2)).await;
    anyhow::anyhow!(watchdog::describe(&alarm, status.as_deref(), progress, &l.last_stderr_lines(12)))
}

type Driven = (Vec<Phase>, Vec<SnapshotTaken>, Vec<LoadReport>, Option<crate::live::tracking::Tracked>);

async fn drive(
    args: &Args,
    load: &Load,
    dir: &std::path::Path,
    target: &live::Target,
    rec: &Arc<Recorder>,
    quiet: bool,
    progress: &Progress,
) -> Result<Driven> {
    let session = &target.session;
    progress.enter(&format!("the wait for {} to answer", load.args.urls.first().map_or("it", |u| u.as_str())));
    let moved;
    let load = match live::ports::ready(load, &args.load.urls, target, args.ready_timeout, quiet).await? {
        Some(l) => {
            moved = l;
            &moved
        }
        None => load,
    };
    progress.set_urls(&load.args.urls);
    let mut phases = Vec::new();
    let mut snapshots = Vec::new();
    let mut rounds = Vec::new();
    let mode = args.mode.resolve(target.info.node_major(), args.track_allocations);
    let mut capture = (mode == crate::live::tracking::Mode::Tracking).then(|| crate::live::tracking::Capture::new(args.track_allocations));
    // Background memory samples; stops when this future is dropped.
    let sampler = {
        let rec = rec.clone();
        let interval = args.interval;
        async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                if let Ok(m) = session.memory().await {
                    rec.sample(&m);
                }
            }
        }
    };
    let work = async {
        for k in 0..args.snapshots {
            let name = if k == 0 { "warm-up".to_string() } else { format!("round {k}") };
            let start = rec.now();
            let count = if k == 0 { args.warmup } else { args.requests };
            progress.enter(&name);
            let timing = RoundTiming::of(args, k == 0);
            if let Some(c) = capture.as_mut() {
                c.start(session).await?;
            }
            let report = load_round(args, load, count, timing, session, rec, quiet, &name, progress).await?;
            if let Some(r) = report {
                rounds.push(r);
            }
            phases.push(Phase { name: name.clone(), start, end: rec.now() });
            // A full GC, its floor, then the snapshot.
            progress.enter_inspector_phase(&if k == 0 {
                "the full GC after the warm-up".to_string()
            } else {
                format!("the full GC after {name}")
            });
            let start = rec.now();
            if let Some(c) = capture.as_mut() {
                // Tracking: the GC, an id boundary, and one snapshot at the
                // end, which is the last round's boundary.
                if k + 1 == args.snapshots {
                    session.collect_garbage().await?;
                } else {
                    c.boundary(session).await?;
                }
                rec.floor(&session.memory().await?);
                if k + 1 == args.snapshots {
                    let file = dir.join("tracked.heapsnapshot");
                    progress_line(quiet, &format!("snapshot -> {}", file.display()));
                    progress.enter_inspector_phase("the snapshot");
                    snapshots.push(c.snapshot(session, &file, rec.now(), quiet).await?);
                }
                phases.push(Phase {
                    name: if k + 1 == args.snapshots { "snapshot".into() } else { format!("boundary {}", k + 1) },
                    start,
                    end: rec.now(),
                });
                continue;
            }
            session.collect_garbage().await?;
            rec.floor(&session.memory().await?);
            let file = dir.join(format!("s{}.heapsnapshot", k + 1));
            progress_line(quiet, &format!("snapshot {} of {} -> {}", k + 1, args.snapshots, file.display()));
            progress.enter_inspector_phase(&format!("snapshot {}", k + 1));
            let t = rec.now();
            // Numeric values too: a cache's `max` field is its bound.
            let bar = crate::live::tracking::progress_bar(quiet);
            let size = session
                .take_heap_snapshot_with(&file, &snapshot_options(), |p| {
                    if let Some(bar) = &bar {
                        crate::live::tracking::show(bar, p)
                    }
                })
                .await;
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let size = size?;
            snapshots.push(SnapshotTaken { file: file.display().to_string(), t, bytes: size });
            phases.push(Phase { name: format!("snapshot {}", k + 1), start, end: rec.now() });
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::select! {
        r = work => r?,
        _ = sampler => unreachable!("the sampler never ends"),
    }
    Ok((phases, snapshots, rounds, capture.map(crate::live::tracking::Capture::finish)))
}

/// How long a round lasts, beside its requests.
#[derive(Clone, Copy)]
struct RoundTiming {
    /// After its load the round waits until it has lasted this long.
    min: Duration,
    /// Without load: the round's whole time.
    idle: Duration,
}

/// A round without load: long enough for a background job's growth to
/// show by count (64 objects per round at about 21 per second).
const NO_LOAD_ROUND: Duration = Duration::from_secs(3);

impl RoundTiming {
    /// The warm-up only fills caches: no minimum, and a short idle.
    fn of(args: &Args, warmup: bool) -> RoundTiming {
        match (warmup, args.round_duration) {
            (true, _) => RoundTiming { min: Duration::ZERO, idle: args.round_duration.unwrap_or(args.min_round) },
            // --round-duration sets the round's length itself.
            (false, Some(d)) => RoundTiming { min: Duration::ZERO, idle: d },
            (false, None) => RoundTiming { min: args.min_round, idle: NO_LOAD_ROUND.max(args.min_round) },
        }
    }
}

/// One load phase, with a forced GC and a floor every `--gc-every` meanwhile.
#[allow(clippy::too_many_arguments)]
async fn load_round(
    args: &Args,
    load: &Load,
    count: u64,
    timing: RoundTiming,
    session: &inspector::Session,
    rec: &Arc<Recorder>,
    quiet: bool,
    name: &str,
    progress: &Progress,
) -> Result<Option<LoadReport>> {
    let floors = async {
        let mut tick = tokio::time::interval(args.gc_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            if session.collect_garbage().await.is_ok() {
                if let Ok(m) = session.memory().await {
                    rec.floor(&m);
                }
            }
        }
    };
    let stop = match args.round_duration {
        Some(d) => Stop::Duration(d),
        None => Stop::Requests(count.max(1)),
    };
    progress_line(quiet, &format!("{name}: {}", load.describe(stop)));
    // Without load the app runs by itself for the round's time; with load
    // the round lasts at least `timing.min`, so that time-driven growth
    // (a timer's) is not lost in rounds of a fraction of a second.
    let started = Instant::now();
    let phase = async {
        let r = load.phase_watched(stop, timing.idle, name, Some(progress)).await?;
        let rest = timing.min.saturating_sub(started.elapsed());
        if !rest.is_zero() {
            tokio::time::sleep(rest).await;
        }
        Ok(r)
    };
    tokio::select! { r = phase => r, _ = floors => unreachable!("the GC ticker never ends") }
}

fn combine(args: &Args, live: Live, diagnosis: Diagnosis, started_at: u64) -> RunReport {
    let floors: Vec<(f64, u64)> = live.floors.iter().map(|f| (f.at.t, f.heap_used)).collect();
    let RunVerdict { mut verdict, mut reason, trend, heap_growth_bytes: growth } =
        run_verdict(&diagnosis, &floors, live.heap_size_limit, args.max_growth);
    // Memory outside the JS heap: a growing native figure over a flat heap
    // is a leak, not "no leak".
    let native_growth = diagnose::native::growth(&snapshot_points(&live), args.min_growth);
    if let (Some(n), false) = (&native_growth, verdict == Verdict::Leak) {
        verdict = Verdict::Leak;
        reason = n.note.clone();
    }
    let window = snapshot_growth(&live);
    let rates = growth_rates(args, &diagnosis, native_growth.as_ref(), &window);
    if let Some(gate) = rate_gate(&rates, args.max_growth_rate) {
        reason = if verdict == Verdict::Leak { format!("{reason}; {gate}") } else { gate };
        verdict = Verdict::Leak;
    }
    // No verdict without evidence: a load that never ran the handlers
    // proves nothing about them (a leak found is still a leak).
    let setup = evidence::LoadSetup { urls: &live.urls, command: args.load.load_cmd.is_some() };
    let evidence = evidence::missing(&setup, &live.rounds);
    if let Some(why) = &evidence {
        if verdict != Verdict::Leak {
            verdict = Verdict::Inconclusive;
            reason = why.clone();
        }
    }
    let load = LoadSummary::of_rounds(&live.rounds);
    let rss: Vec<(f64, f64, f64)> = live.samples.iter().map(|x| (x.at.t, x.rss as f64, x.external as f64)).collect();
    let container = crate::model::container::watch_view(
        live.checkup.as_ref(),
        &rss,
        trend.time_to_limit_s,
        trend.growth_bytes_per_hour,
        // A leak the snapshots found is no GC drift, whatever the floor says.
        trend.verdict == diagnose::verdict::Verdict::Leak || verdict == Verdict::Leak,
    );
    RunReport {
        rates,
        native_growth,
        evidence_problem: evidence,
        growth_per_round_bytes: window.per_round(),
        growth_per_request_bytes: window.per_request(),
        growth: window,
        schema_version: 1,
        command: "run",
        app: live.app,
        node_version: live.node_version,
        pid: live.pid,
        started_at,
        verdict,
        reason,
        growth_bytes_per_hour: trend.growth_bytes_per_hour,
        heap_growth_bytes: growth,
        heap_size_limit: live.heap_size_limit,
        time_to_limit_s: trend.time_to_limit_s,
        suspects: diagnosis.suspects.clone(),
        diagnosis,
        trend,
        load,
        samples: live.samples,
        floors: live.floors,
        phases: live.phases,
        snapshots: live.snapshots,
        container,
        tracking: live.tracked.as_ref().map(crate::live::tracking::Tracked::view),
    }
}

/// The floor at the first and the last snapshot, their distance in time,
/// the rounds and requests between them.
fn snapshot_growth(live: &Live) -> rates::Growth {
    let floor_at = |t: f64| live.floors.iter().rev().find(|f| f.at.t <= t + 1e-9).map(|f| f.heap_used as i64);
    // Tracking marks the rounds with boundaries, the snapshots otherwise.
    let marks: Vec<f64> = match live.tracked {
        Some(_) => live.phases.iter().filter(|p| p.name.starts_with("boundary ") || p.name == "snapshot").map(|p| p.end).collect(),
        None => live.snapshots.iter().map(|s| s.t).collect(),
    };
    let (Some(&first), Some(&last)) = (marks.first(), marks.last()) else { return rates::Growth::default() };
    let rounds = marks.len() - 1;
    rates::Growth {
        bytes: floor_at(last).unwrap_or(0) - floor_at(first).unwrap_or(0),
        window_s: last - first,
        rounds,
        // The warm-up's report comes first.
        requests: live.rounds.iter().skip(1).map(|r| r.requests).sum(),
    }
}

/// The readings of the GC before each snapshot (the latest floor at or
/// before it), for the memory outside the JS heap.
fn snapshot_points(live: &Live) -> Vec<diagnose::native::Point> {
    live.snapshots
        .iter()
        .filter_map(|s| live.floors.iter().rev().find(|f| f.at.t <= s.t + 1e-9))
        .map(|f| diagnose::native::Point {
            heap_used: f.heap_used,
            external: f.more.external,
            array_buffers: f.more.array_buffers,
            rss: f.more.rss,
        })
        .collect()
}

/// Each suspect's growth and the native growth as rates over the
/// snapshots' window, projected to `--at` (or the measured traffic).
fn growth_rates(
    args: &Args,
    diagnosis: &Diagnosis,
    native: Option<&diagnose::native::NativeGrowth>,
    window: &rates::Growth,
) -> rates::RunRates {
    let traffic = match args.at {
        Some(r) => Some(rates::Traffic { requests_per_s: r, source: "--at" }),
        None if window.requests > 0 && window.window_s > 0.0 => {
            Some(rates::Traffic { requests_per_s: window.requests as f64 / window.window_s, source: "measured" })
        }
        None => None,
    };
    let traffic = traffic.filter(|_| window.requests > 0);
    let suspects: Vec<rates::Rate> = diagnosis
        .suspects
        .iter()
        .map(|s| {
            let bytes: u64 = s.bytes_per_step.iter().sum();
            let objects: u64 = s.objects_per_step.iter().sum();
            rates::Rate::new(&s.accumulator.name, bytes as i64, Some(objects), window, traffic)
        })
        .collect();
    let native = native.map(|n| rates::Rate::new("external", n.external_per_step.iter().sum(), None, window, traffic));
    let summed: f64 = suspects.iter().map(|r| r.projected_bytes_per_hour).sum();
    let projected = summed.max(native.as_ref().map_or(0.0, |n| n.projected_bytes_per_hour));
    rates::RunRates {
        traffic,
        suspects,
        native,
        projected_bytes_per_hour: projected,
        max_growth_rate_bytes_per_hour: args.max_growth_rate,
        over_max_growth_rate: args.max_growth_rate.is_some_and(|m| projected > m),
    }
}

/// `--max-growth-rate`: why the projected growth fails the gate, or None.
fn rate_gate(rates: &rates::RunRates, max: Option<f64>) -> Option<String> {
    let max = max.filter(|_| rates.over_max_growth_rate)?;
    let at = match &rates.traffic {
        Some(t) => format!(" at {} req/s", crate::output::int(t.requests_per_s.round() as u64)),
        // No requests counted (no load, or --load-cmd): per second.
        None => String::new(),
    };
    Some(format!(
        "what grows would add {}/h{at}, more than --max-growth-rate {}/h",
        rates::signed(rates.projected_bytes_per_hour),
        crate::output::bytes(max.round() as u64)
    ))
}

/// Snapshots with numeric values (Node >= 20), so that a collection's
/// bound (`maxEntries: 100000` beside it) is readable.
fn snapshot_options() -> inspector::snapshot::SnapshotOptions {
    inspector::snapshot::SnapshotOptions { capture_numeric_value: true, ..Default::default() }
}
