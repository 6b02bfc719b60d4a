//! `leakhound diagnose S1 S2 S3 [...]`: what leaks, which container
//! accumulates it, why it is kept, which pattern it is and how to fix it.

use crate::load::Terminal;
use crate::output::{bytes, paint, Colour};
use anyhow::Result;
use diagnose::files::{diagnose_files, FileOptions};
use diagnose::leaks::{Diagnosis, Options, Suspect, Verdict};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Three or more snapshots of one process, oldest first, taken under the same repeated workload.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Smallest growth per step that counts, e.g. `64kB`, `1MB` (objects that appeared in a step and are still alive;
    /// kB/MB: powers of 1000, KiB/MiB: of 1024).
    #[arg(long, default_value = "64kB", value_parser = crate::flags::parse_size)]
    pub min_growth: u64,
    /// How many suspects to report.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Exit with status 1 when the verdict is leak (for CI).
    #[arg(long)]
    pub fail_on_leak: bool,
    /// Also show groups below the threshold and every step of the paths.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print only the verdict line (for CI logs).
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write a self-contained HTML page (suspect cards with retainer paths and advice) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Threads for parsing (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Read the earlier snapshots in full, to show each accumulator's entries
    /// and retained size in every snapshot (about twice the time). By default
    /// only their object ids are read.
    #[arg(long)]
    pub exact: bool,
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    command: &'static str,
    #[serde(flatten)]
    diagnosis: &'a Diagnosis,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let opts = Options { min_growth: args.min_growth, max_suspects: args.top };
    let fopts = FileOptions { threads: args.threads, exact: args.exact };
    let d = diagnose_files(&args.files, &opts, fopts, &mut Terminal::new())?;
    if let Some(path) = &args.html {
        crate::report::write_page(path, &crate::report::html::diagnose_page(&d, &crate::report::html::command_line()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Json { schema_version: 1, command: "diagnose", diagnosis: &d })?);
    } else if args.quiet {
        print!("{}", render(&d, false).lines().next().map(|l| format!("{l}\n")).unwrap_or_default());
    } else {
        print!("{}", render(&d, args.verbose));
    }
    Ok(if args.fail_on_leak && d.verdict == Verdict::Leak { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn series<T: Copy>(v: &[Option<T>], f: impl Fn(T) -> String) -> String {
    v.iter().map(|x| x.map(&f).unwrap_or_else(|| "-".into())).collect::<Vec<_>>().join(" → ")
}

fn per_step_text(v: &[u64], f: impl Fn(u64) -> String) -> String {
    v.iter().map(|&x| format!("+{}", f(x))).collect::<Vec<_>>().join(", ")
}

/// The text report: verdict first, then where to fix, then each suspect.
pub fn render(d: &Diagnosis, verbose: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let n = d.snapshots.len();
    let threshold = bytes(d.min_growth_bytes_per_step);
    match d.verdict {
        Verdict::Leak => {
            let s = &d.suspects[0];
            let _ = writeln!(
                o,
                "Verdict: {} — {} suspect{}; the largest, {}, grows by {} per step ({} snapshots, threshold {threshold} per step)",
                paint("LEAK", Colour::Red),
                d.suspects.len(),
                if d.suspects.len() == 1 { "" } else { "s" },
                s.accumulator.name,
                bytes(avg(&s.bytes_per_step)),
                n
            );
        }
        // A snapshot diagnosis is never inconclusive.
        Verdict::NoLeak | Verdict::Inconclusive => {
            let _ = writeln!(
                o,
                "Verdict: {} — nothing grew by {threshold} or more in every step ({n} snapshots; set the threshold with --min-growth)",
                paint("no leak", Colour::Green)
            );
        }
    }
    let _ = writeln!(
        o,
        "Survivors: {} objects ({}) allocated after the first snapshot are alive in every later one",
        d.survivors,
        bytes(d.survivor_bytes)
    );
    for w in &d.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    if !d.suspects.is_empty() {
        let _ = writeln!(o, "\nAccumulators (where the fix goes)");
        for (i, s) in d.suspects.iter().enumerate() {
            let a = &s.accumulator;
            let counted = a.entries.iter().all(|x| x.is_some());
            let alive = a.alive.iter().filter(|&&x| x).count();
            if counted {
                let _ = writeln!(
                    o,
                    "  {}. {} ({}, @{}): entries {}; retained {}",
                    i + 1,
                    a.name,
                    a.class,
                    a.id,
                    series(&a.entries, |x| x.to_string()),
                    series(&a.retained, bytes)
                );
            } else {
                let _ = writeln!(
                    o,
                    "  {}. {} ({}, @{}): the same object in {alive} of {n} snapshots; now {} entries, retains {}; gained {} objects per step",
                    i + 1,
                    a.name,
                    a.class,
                    a.id,
                    a.entries.last().copied().flatten().unwrap_or(0),
                    bytes(a.retained.last().copied().flatten().unwrap_or(0)),
                    per_step_text(&s.objects_per_step, |x| x.to_string()),
                );
            }
        }
        let _ = writeln!(o, "\nSuspects");
        for (i, s) in d.suspects.iter().enumerate() {
            suspect(&mut o, i + 1, s, verbose);
        }
    }
    if verbose && !d.below_threshold.is_empty() {
        let _ = writeln!(o, "\nBelow the threshold (not growing by {threshold} in every step)");
        for (i, s) in d.below_threshold.iter().enumerate() {
            suspect(&mut o, i + 1, s, verbose);
        }
    }
    o
}

fn avg(v: &[u64]) -> u64 {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<u64>() / v.len() as u64
    }
}

fn suspect(o: &mut String, i: usize, s: &Suspect, verbose: bool) {
    use std::fmt::Write;
    let what: Vec<String> = s.classes.iter().take(3).map(|c| format!("{} {}", c.count, c.class)).collect();
    let _ = writeln!(o, "  {i}. {} [{}]: {}", s.title, s.pattern, s.accumulator.name);
    let _ = writeln!(
        o,
        "     grows:  {} per step ({}); leaked: {}; {} survivors in all ({})",
        per_step_text(&s.objects_per_step, |x| x.to_string()),
        per_step_text(&s.bytes_per_step, bytes),
        what.join(", "),
        s.survivors,
        bytes(s.survivor_bytes),
    );
    if s.accumulator.similar > 0 {
        let _ = writeln!(o, "     and {} more containers of the same shape", s.accumulator.similar);
    }
    let path = if verbose { s.path_text.clone() } else { short_path(s) };
    let _ = writeln!(o, "     path:   {path}");
    if let Some(l) = &s.location {
        let _ = writeln!(o, "     source: {l}");
    }
    let _ = writeln!(o, "     fix:    {}", s.advice);
}

/// The path without V8's internal links, clipped to the last steps that
/// people read: how the accumulator is reached and what it holds.
fn short_path(s: &Suspect) -> String {
    let text = &s.path_text;
    let parts: Vec<&str> = text.split(" -> ").collect();
    if parts.len() <= 8 {
        return text.clone();
    }
    format!("{} -> … -> {}", parts[0], parts[parts.len() - 6..].join(" -> "))
}
