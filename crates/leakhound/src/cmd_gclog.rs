//! `leakhound gclog FILE|-`: read `node --trace-gc` (or `--trace-gc-nvp`)
//! output and say whether the heap floor after full GCs grows.

use anyhow::{Context, Result};
use diagnose::gclog::{self, Analysis, Format, GcLog, Options, Verdict};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

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
    #[serde(flatten)]
    analysis: &'a Analysis,
}

fn read_log(file: &Path, shown: &str) -> Result<GcLog> {
    let input: Box<dyn Read> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("cannot read {shown}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut parser = gclog::Parser::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).with_context(|| format!("cannot read {shown}"))?;
        if n == 0 {
            break;
        }
        parser.feed(&String::from_utf8_lossy(&buf));
    }
    Ok(parser.finish(shown)?)
}

/// `--fail-on-leak` and `-q`, as in the other commands with a verdict.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gate {
    pub fail_on_leak: bool,
    pub quiet: bool,
}

pub fn run(file: &Path, json: bool, min_growth_mb_per_hour: f64, gate: Gate) -> Result<ExitCode> {
    let shown = if file.as_os_str() == "-" { "<stdin>".to_string() } else { file.display().to_string() };
    let log = read_log(file, &shown)?;
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
        "{shown}: {} lines, {} GC events ({}), {} other lines skipped, over {:.1} s\n",
        log.lines,
        a.gc_events,
        formats.join(", "),
        log.skipped_lines,
        a.elapsed_ms / 1000.0
    ));
    let kinds: Vec<String> = a.by_kind.iter().map(|k| format!("{} {}", k.label, k.count)).collect();
    o.push_str(&format!("GCs:        {}\n", kinds.join(", ")));
    if let (Some(s), Some(e), Some(lo), Some(hi)) = (a.floor_start_mb, a.floor_end_mb, a.floor_min_mb, a.floor_max_mb) {
        o.push_str(&format!("heap floor: {s:.1} MB -> {e:.1} MB after full GCs (min {lo:.1}, max {hi:.1})\n"));
    } else {
        o.push_str("heap floor: no full GCs (Mark-Compact/Mark-sweep) in the log\n");
    }
    if let Some(t) = &a.floor_trend {
        o.push_str(&format!(
            "growth:     {:+.1} MB/{unit} (Theil-Sen; Mann-Kendall z = {:.2}, p {}){}\n",
            t.per_hour(),
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
        Some(m) => o.push_str(&format!("GC time:    {:.0} ms per minute ({:.1}% of the time)\n", m, m / 600.0)),
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
