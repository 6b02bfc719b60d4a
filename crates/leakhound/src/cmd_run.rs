//! `leakhound run [--load URL ...] -- node app.js`: the one-command hunt.
//!
//! Start the app with an inspector on loopback, wait until the load URL
//! answers, warm up, then repeat: load, force a full GC, snapshot; keep
//! the memory series (and a post-GC floor every `--gc-every`) all along;
//! stop the app; diagnose the snapshots and combine the diagnosis with the
//! floor trend into one verdict. The app is stopped on every path: the
//! normal end, an error, Ctrl-C, and leakhound's own death (the child has
//! PR_SET_PDEATHSIG).

use crate::cmd_diagnose::{self, parse_size};
use crate::cmd_load::parse_duration;
use crate::live::evidence;
use crate::live::interrupted::{self, Interrupted};
use crate::live::load::{Load, LoadArgs};
use crate::live::rates;
use crate::live::watchdog::{self, Alarm, Progress};
use crate::live::{self, ConnectOptions, TargetArgs};
use crate::output::{bytes, int, paint, Colour};
use anyhow::{bail, Context, Result};
use diagnose::leaks::{Diagnosis, Options, Verdict as SnapVerdict};
use diagnose::series::{floor_verdict, FloorOptions, FloorVerdict};
use inspector::{ChildStdout, MemorySample};
use loadgen::{LoadReport, Stop};
use serde::Serialize;
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
    /// Load each round for this long instead of a number of requests.
    #[arg(long, value_parser = parse_duration)]
    pub round_duration: Option<Duration>,
    /// Warm-up requests before the first snapshot (caches fill, code gets compiled).
    #[arg(long, default_value_t = 2000)]
    pub warmup: u64,
    /// Snapshots to take (at least 3): one after the warm-up and one after each round.
    #[arg(long, default_value_t = 4)]
    pub snapshots: usize,
    /// Memory sampling interval.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// Force a full GC and record the heap floor this often during the load.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub gc_every: Duration,
    /// How long to wait for the app to answer the load URL.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Smallest growth per round that counts in the diagnosis (e.g. 64kB).
    #[arg(long, default_value = "64kB", value_parser = parse_size)]
    pub min_growth: u64,
    /// CI gate: also call it a leak when the post-GC heap grew more than this over the run (e.g. 10MB).
    #[arg(long, value_parser = parse_size)]
    pub max_growth: Option<u64>,
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
    /// Also write a self-contained HTML report (timeline, suspects, class comparison, load) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print only the verdict line.
    #[arg(long, short)]
    pub quiet: bool,
    /// The app, e.g. `node app.js` (required).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

const RUN_HELP: &str = "\
Ports: the app gets PORT=<a free port> unless PORT is set; --load /orders
means http://127.0.0.1:$PORT/orders. An app that listens on another port is
found (leakhound asks it) and loaded there.

Exit status: 0 done (any verdict), 1 leak with --fail-on-leak, 3 inconclusive
with --fail-on-inconclusive, 2 error (the app exited or stopped answering, a
bad flag), 130 interrupted.

Examples:
  leakhound run --load /orders -- node server.js
  PORT=3000 leakhound run --load http://127.0.0.1:3000/api -n 5000 -- node server.js
  leakhound run --fail-on-leak --fail-on-inconclusive --load /orders -- node server.js
  leakhound run --load-cmd 'autocannon -a 2000 http://127.0.0.1:$PORT/' -- node server.js";

/// One memory reading, seconds since the run started.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub t: f64,
    pub heap_used: u64,
    pub heap_total: u64,
    pub rss: u64,
    pub external: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub t: f64,
    pub heap_used: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotTaken {
    pub file: String,
    pub t: f64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    pub requests: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub requests_per_s: f64,
    pub latency_ms: loadgen::Percentiles,
    /// Each round's own report (warm-up first).
    pub rounds: Vec<LoadReport>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Leak,
    NoLeak,
    Inconclusive,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub command: &'static str,
    pub app: String,
    pub node_version: String,
    pub pid: u32,
    /// Unix time the run started, seconds.
    pub started_at: u64,
    pub verdict: Verdict,
    pub reason: String,
    /// Why the load is no evidence about the app (no load, mostly non-2xx
    /// responses, none answered), or null.
    pub evidence_problem: Option<String>,
    /// Post-GC heap growth rate (Theil-Sen over the floors), bytes per hour.
    pub growth_bytes_per_hour: Option<f64>,
    /// Post-GC heap: last floor minus first floor, bytes.
    pub heap_growth_bytes: i64,
    /// The post-GC heap's change from the first snapshot to the last, with
    /// its window (seconds, rounds, requests).
    pub growth: rates::Growth,
    /// That change per load round, bytes (null without rounds).
    pub growth_per_round_bytes: Option<f64>,
    /// That change per request of those rounds, bytes (null without the built-in load).
    pub growth_per_request_bytes: Option<f64>,
    pub heap_size_limit: u64,
    pub time_to_limit_s: Option<f64>,
    pub suspects: Vec<diagnose::leaks::Suspect>,
    pub diagnosis: Diagnosis,
    pub trend: FloorVerdict,
    pub load: Option<LoadSummary>,
    pub samples: Vec<Sample>,
    pub floors: Vec<Floor>,
    pub phases: Vec<Phase>,
    pub snapshots: Vec<SnapshotTaken>,
}

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
            t: self.now(),
            heap_used: m.heap_used,
            heap_total: m.heap_total,
            rss: m.rss,
            external: m.external,
        });
    }
    fn floor(&self, m: &MemorySample) {
        self.sample(m);
        self.floors.lock().unwrap().push(Floor { t: self.now(), heap_used: m.heap_used });
    }
}

fn progress_line(quiet: bool, msg: &str) {
    if !quiet && std::io::stderr().is_terminal() {
        eprintln!("leakhound: {msg}");
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if args.snapshots < 3 {
        bail!("--snapshots must be at least 3 (a baseline and two rounds to compare)");
    }
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
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
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("leakhound-run-").tempdir().context("cannot create a temporary folder")?;
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
    let diagnosis = cmd_diagnose::diagnose_files(&files, 0, &Options { min_growth: args.min_growth, max_suspects: 10 }, false)?;
    let report = combine(args, live, diagnosis, started_at);
    if let Some(path) = &args.html {
        // The class comparison needs the first and last snapshot in full;
        // only for the page, and before a temporary snapshot folder goes.
        let comparison = match (files.first(), files.last()) {
            (Some(a), Some(b)) if a != b => Some(crate::cmd_diff::compare_files(a, b, 0, false)?),
            _ => None,
        };
        let page = crate::report::html::run_page(&report, &crate::report::html::command_line(), comparison.as_ref());
        crate::report::write_page(path, &page)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.quiet {
        println!("{}", verdict_line(&report));
    } else {
        print!("{}", render(&report));
        if let Some(d) = &args.keep {
            println!("\nSnapshots kept in {} (leakhound diagnose {}/s*.heapsnapshot)", d.display(), d.display());
        }
    }
    Ok(match report.verdict {
        Verdict::Leak if args.fail_on_leak => ExitCode::from(1),
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
    /// The URLs loaded (expanded, on the port the app listens on).
    urls: Vec<String>,
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
            let floors = rec.floors.lock().unwrap().iter().map(|f| (f.t, f.heap_used)).collect();
            let snaps = interrupted::complete_snapshots(dir);
            return Err(Interrupted::new("run", progress.phase(), progress.total(), rec.now(), floors, snaps).into());
        }
    };
    let (app, node_version, pid) = (target.label.clone(), target.info.node_version.clone(), target.info.pid);
    let (phases, snapshots, rounds) = match result {
        Ok(x) => {
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
    Ok(Live { app, node_version, pid, samples, floors, phases, snapshots, rounds, heap_size_limit, urls })
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

type Driven = (Vec<Phase>, Vec<SnapshotTaken>, Vec<LoadReport>);

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
            let report = load_round(args, load, count, session, rec, quiet, &name, progress).await?;
            if let Some(r) = report {
                rounds.push(r);
            }
            phases.push(Phase { name: name.clone(), start, end: rec.now() });
            // A full GC, its floor, then the snapshot.
            progress.enter(&if k == 0 { "the full GC after the warm-up".to_string() } else { format!("the full GC after {name}") });
            let start = rec.now();
            session.collect_garbage().await?;
            rec.floor(&session.memory().await?);
            let file = dir.join(format!("s{}.heapsnapshot", k + 1));
            progress_line(quiet, &format!("snapshot {} of {} -> {}", k + 1, args.snapshots, file.display()));
            progress.enter(&format!("snapshot {}", k + 1));
            let t = rec.now();
            let size = session.take_heap_snapshot(&file, |_| {}).await?;
            snapshots.push(SnapshotTaken { file: file.display().to_string(), t, bytes: size });
            phases.push(Phase { name: format!("snapshot {}", k + 1), start, end: rec.now() });
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::select! {
        r = work => r?,
        _ = sampler => unreachable!("the sampler never ends"),
    }
    Ok((phases, snapshots, rounds))
}

/// One load phase, with a forced GC and a floor every `--gc-every` meanwhile.
async fn load_round(
    args: &Args,
    load: &Load,
    count: u64,
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
    // Without load the app runs by itself for the round's time.
    let idle = args.round_duration.unwrap_or(Duration::from_secs(5));
    tokio::select! { r = load.phase_watched(stop, idle, name, Some(progress)) => r, _ = floors => unreachable!("the GC ticker never ends") }
}

fn combine(args: &Args, live: Live, diagnosis: Diagnosis, started_at: u64) -> RunReport {
    let secs: Vec<f64> = live.floors.iter().map(|f| f.t).collect();
    let ys: Vec<f64> = live.floors.iter().map(|f| f.heap_used as f64).collect();
    let limit = (live.heap_size_limit > 0).then_some(live.heap_size_limit as f64);
    let trend = floor_verdict(&secs, &ys, limit, FloorOptions::default());
    let growth = match (live.floors.first(), live.floors.last()) {
        (Some(a), Some(b)) => b.heap_used as i64 - a.heap_used as i64,
        _ => 0,
    };
    let (mut verdict, mut reason) = if diagnosis.verdict == SnapVerdict::Leak {
        let s = &diagnosis.suspects[0];
        (
            Verdict::Leak,
            format!("{} grows in every round ({}), and the heap after GC grew {}", s.accumulator.name, s.title, signed_bytes(growth)),
        )
    } else if let Some(max) = args.max_growth.filter(|&m| growth > m as i64) {
        (Verdict::Leak, format!("the heap after GC grew {} over the run, more than --max-growth {}", signed_bytes(growth), bytes(max)))
    } else if trend.verdict == diagnose::gclog::Verdict::Leak {
        (
            Verdict::Inconclusive,
            format!(
                "the heap floor rises ({}), but no object group grew in every round: {}",
                trend.reason, "run longer or with more requests per round"
            ),
        )
    } else {
        (
            Verdict::NoLeak,
            format!(
                "nothing grew by {} or more in every round; the heap after GC changed {}",
                bytes(diagnosis.min_growth_bytes_per_step),
                signed_bytes(growth)
            ),
        )
    };
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
    let load = (!live.rounds.is_empty()).then(|| {
        let total: u64 = live.rounds.iter().map(|r| r.requests).sum();
        let dur: f64 = live.rounds.iter().map(|r| r.duration_s).sum();
        let ok: u64 = live.rounds.iter().map(|r| r.ok).sum();
        let non: u64 = live.rounds.iter().map(|r| r.non_2xx).sum();
        let last = live.rounds.last().unwrap();
        LoadSummary {
            requests: total,
            ok,
            non_2xx: non,
            errors: live.rounds.iter().map(|r| r.errors).sum(),
            requests_per_s: if dur > 0.0 { (ok + non) as f64 / dur } else { 0.0 },
            // The latest round's latency: warmed up, the app at its largest.
            latency_ms: last.latency_ms.clone(),
            rounds: live.rounds.clone(),
        }
    });
    let window = snapshot_growth(&live);
    RunReport {
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
        evidence_problem: evidence,
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
    }
}

/// The floor at the first and the last snapshot, their distance in time,
/// the rounds and requests between them.
fn snapshot_growth(live: &Live) -> rates::Growth {
    let floor_at = |t: f64| live.floors.iter().rev().find(|f| f.t <= t + 1e-9).map(|f| f.heap_used as i64);
    let (Some(first), Some(last)) = (live.snapshots.first(), live.snapshots.last()) else { return rates::Growth::default() };
    let rounds = live.snapshots.len() - 1;
    rates::Growth {
        bytes: floor_at(last.t).unwrap_or(0) - floor_at(first.t).unwrap_or(0),
        window_s: last.t - first.t,
        rounds,
        // The warm-up's report comes first.
        requests: live.rounds.iter().skip(1).map(|r| r.requests).sum(),
    }
}

fn signed_bytes(n: i64) -> String {
    if n >= 0 {
        format!("+{}", bytes(n as u64))
    } else {
        format!("-{}", bytes(n.unsigned_abs()))
    }
}

fn verdict_line(r: &RunReport) -> String {
    let v = match r.verdict {
        Verdict::Leak => paint("LEAK", Colour::Red),
        Verdict::NoLeak => paint("no leak", Colour::Green),
        Verdict::Inconclusive => paint("inconclusive", Colour::Yellow),
    };
    // The change with its window, not an hourly extrapolation of seconds.
    let rate = if r.snapshots.len() >= 2 { format!(" ({})", r.growth.describe(r.growth_bytes_per_hour)) } else { String::new() };
    format!("Verdict: {v} — {}{rate}", r.reason)
}

/// The text report.
pub fn render(r: &RunReport) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{}", verdict_line(r));
    if let (Some(why), Verdict::Leak) = (&r.evidence_problem, r.verdict) {
        let _ = writeln!(o, "{} {why}", paint("Warning:", Colour::Yellow));
    }
    let _ = writeln!(o, "App: {}; {} snapshots, {:.1} s", r.app, r.snapshots.len(), r.samples.last().map_or(0.0, |s| s.t));
    if let Some(l) = &r.load {
        let _ = writeln!(
            o,
            "Load: {} ({} ok, {} non-2xx, {} errors), {} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            crate::output::count(l.requests, "request"),
            int(l.ok),
            int(l.non_2xx),
            int(l.errors),
            int(l.requests_per_s.round() as u64),
            l.latency_ms.p50,
            l.latency_ms.p99,
            l.latency_ms.max
        );
    }
    let floors: Vec<String> =
        r.snapshots.iter().filter_map(|s| r.floors.iter().rev().find(|f| f.t <= s.t + 1e-9)).map(|f| bytes(f.heap_used)).collect();
    let _ = writeln!(o, "Heap after GC at each snapshot: {}", floors.join(" → "));
    if r.diagnosis.verdict == SnapVerdict::Leak || !r.diagnosis.below_threshold.is_empty() {
        let _ = writeln!(o);
        // The diagnosis' own report, minus its verdict line (ours is above).
        let text = cmd_diagnose::render(&r.diagnosis, false);
        for line in text.lines().skip(1) {
            let _ = writeln!(o, "{line}");
        }
    }
    o
}
