//! `leakhound watch (--pid PID | --inspect ADDR | -- CMD)`: a live memory
//! time series of a Node process and a running verdict on its heap floor
//! (the heap used after full GCs): trend, growth per hour, projected time
//! to the heap limit, memwatch's early signal.
//!
//! Floors come from a GC observer installed in the target (see
//! `live::probe` for why), or with `--force-gc` from a full GC before each
//! sample. The verdict is `diagnose::series::floor_verdict`.

use crate::live::probe::{GcCounts, Probe};
use crate::live::{self, ConnectOptions, Target, TargetArgs};
use crate::model::memory::{HeapTotal, SampleGcs, Ts};
use crate::model::watch::{Ended, Floor, Sample, WatchReport};
use crate::output;
use anyhow::Result;
use diagnose::gclog::p_text;
use diagnose::series::{floor_verdict, FloorOptions, FloorVerdict};
use diagnose::verdict::Verdict;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Time between samples: `1s`, `200ms`, `1m`.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::flags::parse_duration)]
    pub interval: Duration,
    /// Stop after this long (default: until Ctrl-C or the target exits).
    #[arg(long, value_name = "DURATION", value_parser = crate::flags::parse_duration)]
    pub duration: Option<Duration>,
    /// Force a full GC before each sample (HeapProfiler.collectGarbage):
    /// an exact floor at every sample, at the cost of a full GC pause in
    /// the target each time. Default: the floors of the target's own GCs.
    #[arg(long)]
    pub force_gc: bool,
    /// Slowest floor growth rate called a leak, e.g. `1MB/h`, `500kB/h`, `10MB/d` (kB/MB/GB: powers of 1000; KiB/MiB/GiB: of 1024).
    /// (`--min-growth` is a size per round in run and diagnose; the old name is still accepted here.)
    #[arg(long = "min-rate", alias = "min-growth", value_name = "RATE", default_value = "1MB/h", value_parser = crate::flags::parse_rate)]
    pub min_growth: f64,
    /// Exit with status 1 when the verdict is `leak`.
    #[arg(long)]
    pub fail_on_leak: bool,
    /// Print one JSON document at the end (no per-sample lines).
    #[arg(long)]
    pub json: bool,
    /// No per-sample lines: only the final verdict.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write a self-contained HTML report (memory timeline, floors and
    /// their trend, the verdict) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
}

/// SI, as `output::bytes`.
const MB: f64 = 1e6;

pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
    live::block_on(run_async(args))?
}

struct Series {
    samples: Vec<Sample>,
    floors: Vec<Floor>,
    gcs: GcCounts,
    t0_ms: Option<f64>,
    dropped: u64,
}

async fn run_async(args: &Args) -> Result<ExitCode> {
    let mut interrupts = live::Interrupts::new();
    anyhow::ensure!(args.interval >= Duration::from_millis(10), "--interval must be at least 10ms");
    let stdout = crate::flags::child_stdout(args.json, args.quiet);
    let target = tokio::select! {
        t = live::connect(&args.target, ConnectOptions { child_stdout: stdout }) => t?,
        _ = interrupts.recv() => return Ok(ExitCode::from(130)),
    };
    // The probe removes itself if not polled for this long (we were killed).
    let stale_ms = (args.interval.as_millis() as u64 * 5).max(60_000);
    let installed = match Probe::install(&target.session, stale_ms).await {
        Ok(x) => x,
        Err(e) => return Err(target.fail(e, "before leakhound could start watching it").await),
    };
    let (probe, installed) = installed;
    let opts = FloorOptions { min_growth_bytes_per_hour: args.min_growth, ..Default::default() };
    let limit = installed.heap_size_limit;
    let lines = !args.json && !args.quiet;
    if lines {
        println!(
            "watching {} every {}; floors from {}; Ctrl-C to stop",
            target.label,
            human_interval(args.interval),
            if args.force_gc { "a forced full GC before each sample" } else { "the process's own full GCs" }
        );
        println!(
            "{:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  verdict so far",
            "time", "heap used", "heap total", "rss", "external", "minor/full", "floor"
        );
    }

    let started_at_unix = crate::report::now_unix();
    let mut s = Series { samples: Vec::new(), floors: Vec::new(), gcs: GcCounts::default(), t0_ms: None, dropped: 0 };
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut last_verdict: Option<FloorVerdict> = None;
    let mut error = None;
    let mut stopped_by: Option<String> = None;
    let mut last_sample_at: Option<tokio::time::Instant> = None;
    let ended = loop {
        let last = tokio::select! {
            _ = ticker.tick() => false,
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => true,
            _ = interrupts.recv() => break Ended::Interrupted,
            _ = target.program_finished() => break Ended::TargetExited,
            _ = target.session.closed() => break Ended::TargetExited,
        };
        // The deadline right after a tick: that sample was the last one.
        if last && last_sample_at.is_some_and(|t| t.elapsed() < args.interval / 2) {
            break Ended::Duration;
        }
        last_sample_at = Some(tokio::time::Instant::now());
        match sample(&target, &probe, args.force_gc, &mut s).await {
            Ok(new_floors) => {
                if new_floors || last_verdict.is_none() {
                    let (xs, ys) = floor_xy(&s.floors);
                    last_verdict = Some(floor_verdict(&xs, &ys, Some(limit as f64), opts));
                }
                if lines {
                    print_line(&s, last_verdict.as_ref());
                }
            }
            Err(e) => {
                let finished = target.session.is_closed()
                    || target.launched.as_ref().is_some_and(|l| l.finished_program() || l.try_status().is_some());
                if finished && !s.samples.is_empty() {
                    break Ended::TargetExited;
                }
                if s.samples.is_empty() {
                    error = Some(e);
                    break Ended::TargetExited;
                }
                // Report what was collected, then fail.
                stopped_by = Some(format!("{}: {e}", target.label));
                break Ended::Error;
            }
        }
        if last {
            break Ended::Duration;
        }
    };
    if let Some(e) = error {
        return Err(target.fail(e, "before leakhound took a first sample").await);
    }
    if matches!(ended, Ended::Duration | Ended::Interrupted) && !target.session.is_closed() {
        let _ = probe.remove(&target.session).await;
    }
    let exit_note = match (&target.launched, ended) {
        (Some(l), Ended::TargetExited) => match l.try_status() {
            Some(st) => format!("the program exited ({})", inspector::launch::describe_status(st)),
            None => "the program finished".to_string(),
        },
        (None, Ended::TargetExited) => "the process went away".to_string(),
        (_, Ended::Interrupted) => "interrupted".to_string(),
        (_, Ended::Duration) => "end of --duration".to_string(),
        (_, Ended::Error) => "stopped by an error".to_string(),
    };
    let info = target.info.clone();
    let target_json = target.json();
    let checkup = if target.session.is_closed() {
        None
    } else {
        crate::live::checkup::check(&target, args.target.pid.unwrap_or(info.pid), None).await.ok()
    };
    target.finish().await;

    let (xs, ys) = floor_xy(&s.floors);
    let mut v = floor_verdict(&xs, &ys, Some(limit as f64), opts);
    // Whether the JS heap floor itself leaks, before native growth may turn
    // the verdict to leak: the container lines explain RSS over a flat floor.
    let floor_leaks = v.verdict == Verdict::Leak;
    let outside = outside_heap(&s.samples, &v, opts, args.force_gc);
    if let Some(o) = &outside {
        if o.leak {
            v.verdict = Verdict::Leak;
            v.reason = o.note.clone();
        }
    }
    let elapsed = s.samples.last().map_or(0.0, |x| x.at.t);
    let summary = final_block(&info, args, &s, &v, limit, elapsed, &exit_note);
    let rss: Vec<(f64, f64, f64)> = s.samples.iter().map(|x| (x.at.t, x.rss as f64, x.external as f64)).collect();
    let container = crate::model::container::watch_view(checkup.as_ref(), &rss, v.time_to_limit_s, v.growth_bytes_per_hour, floor_leaks);
    let container_lines: String = crate::report::container::watch_lines(&container).iter().map(|l| format!("{l}\n")).collect();
    {
        let out = WatchReport {
            schema_version: 1,
            command: "watch",
            target: target_json,
            interval_s: args.interval.as_secs_f64(),
            elapsed_s: elapsed,
            ended,
            error: stopped_by.as_deref(),
            floor_source: if args.force_gc { "forced-gc" } else { "gc-observer" },
            heap_size_limit: limit,
            gcs: s.gcs,
            samples: &s.samples,
            floors: &s.floors,
            verdict: v.verdict,
            reason: &v.reason,
            growth_bytes_per_hour: v.growth_bytes_per_hour,
            recent_growth_bytes_per_hour: v.recent_growth_bytes_per_hour,
            external_growth_bytes_per_hour: outside.as_ref().map(|o| o.per_hour),
            outside_heap: outside.as_ref().is_some_and(|o| o.leak),
            p_value: v.p_value,
            time_to_limit_s: v.time_to_limit_s,
            early_signal: v.early_signal,
            longest_growth_run: v.longest_growth_run,
            min_growth_bytes_per_hour: opts.min_growth_bytes_per_hour,
            analysis: &v,
            floors_dropped: s.dropped,
            started_at: started_at_unix,
            container,
        };
        if let Some(path) = &args.html {
            let page = crate::report::html::watch_page(&out, &summary, &crate::report::html::command_line());
            crate::report::write_page(path, &page)?;
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else if args.quiet {
            println!("verdict: {} — {}", v.verdict.word(), v.reason);
        } else {
            print!("{summary}{container_lines}");
        }
    }
    let _ = std::io::stdout().flush();
    if let Some(e) = stopped_by {
        anyhow::bail!(e);
    }
    // Ctrl-C ends a watch as it ends every command: 130, after the report.
    Ok(if args.fail_on_leak && v.verdict == Verdict::Leak {
        ExitCode::from(1)
    } else if ended == Ended::Interrupted {
        ExitCode::from(crate::live::interrupted::EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `external` over the samples, beside the heap floor's verdict.
struct OutsideHeap {
    per_hour: f64,
    /// `external` grows as a leak would (same test as the floor) while the heap floor does not.
    leak: bool,
    note: String,
}

/// Memory outside the JS heap: the floor test (significant rise, also in
/// the latest half, by at least the resolution) on `external`'s samples.
/// A Buffer leak raises `external` by megabytes while the heap floor, which
/// holds only the small Buffer objects, stays flat.
fn outside_heap(samples: &[Sample], heap: &FloorVerdict, opts: FloorOptions, after_gc: bool) -> Option<OutsideHeap> {
    let xs: Vec<f64> = samples.iter().map(|x| x.at.t).collect();
    // Freed stores stay counted until a GC: without a forced GC before each
    // sample, the lower of two readings is `external`'s floor.
    let lows: Vec<(f64, f64)> = samples
        .chunks(if after_gc { 1 } else { 2 })
        .filter_map(|c| c.iter().min_by_key(|x| x.external).map(|x| (x.at.t, x.external as f64)))
        .collect();
    let (lx, ly): (Vec<f64>, Vec<f64>) = lows.into_iter().unzip();
    let v = floor_verdict(&lx, &ly, None, opts);
    let per_hour = v.growth_bytes_per_hour?;
    let fit = |ys: Vec<f64>| diagnose::trend::Trend::fit(&xs, &ys).map(|t| t.per_hour());
    let array_buffers = fit(samples.iter().map(|x| x.more.array_buffers as f64).collect());
    let rss = fit(samples.iter().map(|x| x.rss as f64).collect());
    // Backing stores are freed by a sweeper after the GC, so even forced-GC
    // readings carry some garbage and the latest half is noisy: a
    // significant rise of the whole series, by at least the resolution,
    // whose latest half has not levelled off, is growth.
    let span = lx.last().zip(lx.first()).map_or(0.0, |(b, a)| b - a);
    let rising = v.trend.as_ref().is_some_and(|t| t.significant_increasing)
        && per_hour >= opts.min_growth_bytes_per_hour
        && per_hour / 3600.0 * span >= opts.min_rise_bytes
        && v.recent_growth_bytes_per_hour.is_some_and(|r| r >= per_hour * diagnose::series::LEVELLED_OFF_RATIO);
    let leak = (v.verdict == Verdict::Leak || rising) && heap.verdict != Verdict::Leak;
    let note = diagnose::native::watch_note(per_hour, array_buffers, rss, heap.growth_bytes_per_hour.unwrap_or(0.0), span);
    Some(OutsideHeap { per_hour, leak, note })
}

/// One poll (after a forced GC with --force-gc); whether floors were added.
async fn sample(target: &Target, probe: &Probe, force_gc: bool, s: &mut Series) -> inspector::Result<bool> {
    if force_gc {
        target.session.collect_garbage().await?;
    }
    let p = probe.poll(&target.session).await?;
    let t0 = *s.t0_ms.get_or_insert(p.now);
    let t = |ms: f64| (ms - t0) / 1000.0;
    let before = s.floors.len();
    if force_gc {
        s.floors.push(Floor { at: Ts { t: t(p.now) }, heap_used: p.heap_used, more: HeapTotal { heap_total: p.heap_total } });
    } else {
        // Floors from GCs before our first sample would sit before t = 0.
        for &(ms, used, total) in &p.floors {
            s.floors.push(Floor { at: Ts { t: t(ms).max(0.0) }, heap_used: used as u64, more: HeapTotal { heap_total: total as u64 } });
        }
    }
    s.gcs.minor += p.minor;
    s.gcs.major += p.major;
    s.gcs.other += p.other;
    s.gcs.gc_ms += p.gc_ms;
    s.dropped += p.dropped;
    s.samples.push(Sample {
        at: Ts { t: t(p.now) },
        heap_used: p.heap_used,
        heap_total: p.heap_total,
        rss: p.rss,
        external: p.external,
        more: SampleGcs { array_buffers: p.array_buffers, minor_gcs: p.minor, major_gcs: p.major, gc_ms: p.gc_ms },
    });
    Ok(s.floors.len() > before)
}

fn floor_xy(floors: &[Floor]) -> (Vec<f64>, Vec<f64>) {
    (floors.iter().map(|f| f.at.t).collect(), floors.iter().map(|f| f.heap_used as f64).collect())
}

fn human_interval(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

fn print_line(s: &Series, v: Option<&FloorVerdict>) {
    let Some(x) = s.samples.last() else { return };
    let floor = s.floors.last().map_or("-".to_string(), |f| output::bytes(f.heap_used));
    let verdict = match v {
        Some(v) if v.floors < FloorOptions::default().min_floors => {
            format!("collecting ({})", crate::output::count(v.floors as u64, "floor"))
        }
        Some(v) => format!(
            "{} ({} floors, {:+.1} MB/h{})",
            v.verdict.word(),
            v.floors,
            v.growth_bytes_per_hour.unwrap_or(0.0) / MB,
            v.p_value.map_or(String::new(), |p| format!(", p {}", p_text(p)))
        ),
        None => "-".to_string(),
    };
    println!(
        "{:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {verdict}",
        format!("{:.1} s", x.at.t),
        output::bytes(x.heap_used),
        output::bytes(x.heap_total),
        output::bytes(x.rss),
        output::bytes(x.external),
        format!("{}/{}", x.more.minor_gcs, x.more.major_gcs),
        floor
    );
    let _ = std::io::stdout().flush();
}

fn final_block(
    info: &inspector::ProcessInfo,
    args: &Args,
    s: &Series,
    v: &FloorVerdict,
    limit: u64,
    elapsed: f64,
    exit_note: &str,
) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "\nwatched process {} (Node {}) for {} ({exit_note}): {} samples every {}, {} full GCs, {} minor GCs, {:.0} ms in GC\n",
        info.pid,
        info.node_version,
        live::human_duration(elapsed),
        s.samples.len(),
        human_interval(args.interval),
        s.gcs.major,
        s.gcs.minor,
        s.gcs.gc_ms
    ));
    if let (Some(first), Some(last)) = (s.samples.first(), s.samples.last()) {
        o.push_str(&format!(
            "heap used:  {} -> {} (heap total {}, rss {}, external {} at the end)\n",
            output::bytes(first.heap_used),
            output::bytes(last.heap_used),
            output::bytes(last.heap_total),
            output::bytes(last.rss),
            output::bytes(last.external)
        ));
    }
    let source = if args.force_gc { "forced full GCs" } else { "full GCs" };
    match (s.floors.first(), s.floors.last()) {
        (Some(a), Some(b)) => {
            let min = s.floors.iter().map(|f| f.heap_used).min().unwrap_or(0);
            let max = s.floors.iter().map(|f| f.heap_used).max().unwrap_or(0);
            o.push_str(&format!(
                "heap floor: {} -> {} after {} {source} (min {}, max {})\n",
                output::bytes(a.heap_used),
                output::bytes(b.heap_used),
                s.floors.len(),
                output::bytes(min),
                output::bytes(max)
            ));
        }
        _ => o.push_str(&format!(
            "heap floor: no full GC during the watch{}\n",
            if args.force_gc { "" } else { " (watch longer, or use --force-gc)" }
        )),
    }
    if let (Some(t), Some(r)) = (&v.trend, &v.recent_trend) {
        o.push_str(&format!(
            "growth:     {:+.1} MB/h (Theil-Sen; Mann-Kendall z = {:.2}, p {}){}; latest {} floors {:+.1} MB/h (p {})\n",
            t.per_hour() / MB,
            t.mann_kendall_z,
            p_text(t.p_value),
            if t.significant_increasing { ", significant" } else { "" },
            v.recent_floors,
            r.per_hour() / MB,
            p_text(r.p_value)
        ));
    }
    o.push_str(&format!(
        "streak:     the floor rose at {} consecutive full GCs at most{}\n",
        v.longest_growth_run,
        if v.early_signal { " (memwatch's early leak signal: 5 or more)" } else { "" }
    ));
    o.push_str(&format!(
        "limit:      heap limit {}{}\n",
        output::bytes(limit),
        match v.time_to_limit_s {
            Some(t) => format!(", reached in about {} at this rate", live::human_duration(t)),
            None => String::new(),
        }
    ));
    o.push_str(&format!("verdict: {} — {}\n", v.verdict.word(), v.reason));
    o
}
