//! `leakhound gclog FILE|-`: read `node --trace-gc` (or `--trace-gc-nvp`)
//! output and say whether the heap floor after full GCs grows.

use anyhow::{Context, Result};
use diagnose::gclog::{self, Analysis, Format, GcLog, Options, Verdict};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Serialize)]
struct JsonOut<'a> {
    schema_version: u32,
    command: &'static str,
    file: String,
    lines: u64,
    skipped_lines: u64,
    formats: &'a [Format],
    timestamps: bool,
    notes: &'a [String],
    interrupted: bool,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

/// Set by SIGINT: `node --trace-gc app.js | leakhound gclog -` stopped
/// with Ctrl-C still gets the verdict on what was read.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT without SA_RESTART, so a read blocked on a pipe returns
/// (EINTR) and the loop sees the flag.
fn catch_ctrl_c() {
    // SAFETY: installs a handler that only stores to an atomic (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as *const () as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

/// The log, and whether Ctrl-C cut the reading short.
fn read_log(file: &Path, shown: &str) -> Result<(GcLog, bool)> {
    let input: Box<dyn Read> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("cannot read {shown}"))?)
    };
    catch_ctrl_c();
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut parser = gclog::Parser::new();
    let mut line = Vec::new();
    // read_until would retry on EINTR: fill_buf does not.
    let interrupted = loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            break true;
        }
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::from(e).context(format!("cannot read {shown}"))),
        };
        if chunk.is_empty() {
            break false;
        }
        let used = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&chunk[..=i]);
                i + 1
            }
            None => {
                line.extend_from_slice(chunk);
                chunk.len()
            }
        };
        reader.consume(used);
        if line.last() == Some(&b'\n') {
            parser.feed(&String::from_utf8_lossy(&line));
            line.clear();
        }
    };
    if !line.is_empty() {
        parser.feed(&String::from_utf8_lossy(&line));
    }
    Ok((parser.finish(shown)?, interrupted))
}

/// `--fail-on-leak` and `-q`, as in the other commands with a verdict.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gate {
    pub fail_on_leak: bool,
    pub quiet: bool,
}

pub fn run(file: &Path, json: bool, min_growth_mb_per_hour: f64, gate: Gate) -> Result<ExitCode> {
    let shown = if file.as_os_str() == "-" { "<stdin>".to_string() } else { file.display().to_string() };
    let (log, interrupted) = read_log(file, &shown)?;
    let a = gclog::analyze(&log, Options { min_growth_mb_per_hour, ..Default::default() });
    if json {
        let out = JsonOut {
            schema_version: 1,
            command: "gclog",
            file: shown,
            lines: log.lines,
            skipped_lines: log.skipped_lines,
            formats: &log.formats,
            timestamps: log.timestamps,
            notes: &log.notes,
            interrupted,
            analysis: &a,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if gate.quiet {
        let text = human(&shown, &log, &a);
        if let Some(line) = text.lines().find(|l| l.starts_with("verdict: ")) {
            println!("{line}");
        }
    } else {
        print!("{}", human(&shown, &log, &a));
    }
    if interrupted {
        eprintln!("leakhound: interrupted after {}; the verdict covers them", crate::output::count(log.lines, "line"));
        return Ok(ExitCode::from(crate::live::interrupted::EXIT_INTERRUPTED));
    }
    Ok(if gate.fail_on_leak && a.verdict == diagnose::gclog::Verdict::Leak { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn human(shown: &str, log: &GcLog, a: &Analysis) -> String {
    let mut o = String::new();
    let unit = if log.timestamps { "h" } else { "3600 GCs" };
    let formats: Vec<&str> = log
        .formats
        .iter()
        .map(|f| match f {
            Format::TraceGc => "--trace-gc",
            Format::TraceGcOld => "--trace-gc (old)",
            Format::TraceGcNvp => "--trace-gc-nvp",
        })
        .collect();
    o.push_str(&format!(
        "{shown}: {}, {} ({}), {} skipped, over {:.1} s\n",
        crate::output::count(log.lines, "line"),
        crate::output::count(a.gc_events as u64, "GC event"),
        formats.join(", "),
        crate::output::count(log.skipped_lines, "other line"),
        a.elapsed_ms / 1000.0
    ));
    let kinds: Vec<String> = a.by_kind.iter().map(|k| format!("{} {}", k.label, crate::output::int(k.count as u64))).collect();
    o.push_str(&format!("GCs:        {}\n", kinds.join(", ")));
    if let (Some(s), Some(e), Some(lo), Some(hi)) = (a.floor_start_mb, a.floor_end_mb, a.floor_min_mb, a.floor_max_mb) {
        o.push_str(&format!("heap floor: {s:.1} MiB -> {e:.1} MiB after full GCs (min {lo:.1}, max {hi:.1})\n"));
    } else {
        o.push_str("heap floor: no full GCs (Mark-Compact/Mark-sweep) in the log\n");
    }
    if let Some(t) = &a.floor_trend {
        o.push_str(&format!(
            "growth:     {:+.1} MiB/{unit} over {} (Theil-Sen; Mann-Kendall z = {:.2}, p {}){}\n",
            t.per_hour(),
            if log.timestamps {
                crate::live::human_duration(a.elapsed_ms / 1000.0)
            } else {
                crate::output::count(a.full_gcs as u64, "full GC")
            },
            t.mann_kendall_z,
            gclog::p_text(t.p_value),
            if t.significant_increasing { ", significant" } else { "" }
        ));
    }
    o.push_str(&format!(
        "streak:     the floor rose at {} consecutive full GCs at most{}\n",
        a.longest_floor_growth_run,
        if a.early_signal { " (memwatch's early leak signal: 5 or more)" } else { "" }
    ));
    if let Some(t) = &a.pause_trend {
        o.push_str(&format!(
            "pauses:     full GC mean {:.1} ms, max {:.1} ms (any GC); trend {:+.1} ms/{unit} (p {})\n",
            a.mean_full_gc_pause_ms.unwrap_or(0.0),
            a.max_pause_ms,
            t.per_hour(),
            gclog::p_text(t.p_value)
        ));
    } else {
        o.push_str(&format!("pauses:     max {:.1} ms\n", a.max_pause_ms));
    }
    match a.gc_ms_per_minute {
        Some(m) => {
            o.push_str(&format!("GC time:    {} ms per minute ({:.1}% of the time)\n", crate::output::int(m.round() as u64), m / 600.0))
        }
        None => o.push_str(&format!("GC time:    {:.1} ms in all\n", a.total_pause_ms)),
    }
    for n in &log.notes {
        o.push_str(&format!("note: {n}\n"));
    }
    let v = match a.verdict {
        Verdict::Leak => "leak",
        Verdict::NoLeak => "no-leak",
        Verdict::Inconclusive => "inconclusive",
    };
    o.push_str(&format!("verdict: {v} — {}\n", a.reason));
    o
}
