//! `leakhound diagnose S1 S2 S3 [...]`: what leaks, which container
//! accumulates it, why it is kept, which pattern it is and how to fix it.

use crate::output::{bytes, paint, Colour, Timer};
use crate::{load, SnapshotArgs};
use anyhow::{bail, Result};
use diagnose::leaks::{self, Census, Diagnosis, Last, Options, PathTree, Suspect, Verdict};
use heapsnap::analysis::analyze_with_early;
use heapsnap::source::ScriptNames;
use heapsnap::{analyze, classes, AnalysisOptions, HeapSnapshot};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Three or more snapshots of one process, oldest first, taken under the same repeated workload.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Smallest growth per step that counts, e.g. `64kB`, `1MB` (objects that appeared in a step and are still alive).
    #[arg(long, default_value = "64kB", value_parser = parse_size)]
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

/// `64kB`, `1.5MB`, `2MiB`, `1000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("not a size: {s:?} (try 64kB or 1MB)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        _ => return Err(format!("unknown unit in {s:?} (use B, kB, MB, GB, KiB, MiB, GiB)")),
    };
    Ok((v * mult).round() as u64)
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    command: &'static str,
    #[serde(flatten)]
    diagnosis: &'a Diagnosis,
}

/// Parse and analyse every snapshot (keeping only a census of the earlier
/// ones) and diagnose. The analysis of one snapshot runs while the next one
/// parses, so both cores stay busy and at most two graphs are alive.
pub fn diagnose_files(files: &[PathBuf], threads: usize, opts: &Options, exact: bool) -> Result<Diagnosis> {
    if files.len() < 3 {
        bail!("diagnose needs three or more snapshots of one process (oldest first); got {}", files.len());
    }
    let mut timer = Timer::new();
    let load_one = |f: &PathBuf| load::load(&SnapshotArgs { file: f.clone(), threads, raw_sizes: false, json: false });
    let census = |f: &PathBuf, mut snap: HeapSnapshot| {
        if !exact {
            return Census::ids_only(&f.display().to_string(), &snap);
        }
        let a = analyze(&mut snap, AnalysisOptions { fold_shallow_sizes: true, ..Default::default() });
        Census::take(&f.display().to_string(), &snap, a.retained)
    };
    let load_earlier = |f: &PathBuf| if exact { load_one(f) } else { load::load_nodes_only(f, threads) };
    let (earlier, mut snap) = std::thread::scope(|scope| -> Result<(Vec<Census>, HeapSnapshot)> {
        let mut earlier = Vec::new();
        let mut pending: Option<std::thread::ScopedJoinHandle<'_, Census>> = None;
        for f in &files[..files.len() - 1] {
            let snap = load_earlier(f)?;
            if let Some(h) = pending.take() {
                earlier.push(h.join().map_err(|_| anyhow::anyhow!("analysis thread panicked"))?);
            }
            pending = Some(scope.spawn(move || census(f, snap)));
        }
        let last = load_one(&files[files.len() - 1])?;
        if let Some(h) = pending.take() {
            earlier.push(h.join().map_err(|_| anyhow::anyhow!("analysis thread panicked"))?);
        }
        Ok((earlier, last))
    })?;
    timer.phase("parse all, census of the earlier snapshots");
    let f = &files[files.len() - 1];
    let (a, (classes, scripts, tree)) = analyze_with_early(
        &mut snap,
        AnalysisOptions { fold_shallow_sizes: true, ..Default::default() },
        |s| (classes::compute(s), ScriptNames::build(s)),
        |s, (classes, scripts)| (classes, scripts, PathTree::compute(s)),
    );
    timer.phase("analysis of the last snapshot");
    let name = f.display().to_string();
    let last = Last { file: &name, snapshot: &snap, retained: &a.retained, classes: &classes, scripts: &scripts, tree: &tree };
    let d = leaks::diagnose(&earlier, &last, opts).map_err(anyhow::Error::msg)?;
    timer.phase("diagnosis");
    Ok(d)
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
    let opts = Options { min_growth: args.min_growth, max_suspects: args.top };
    let d = diagnose_files(&args.files, args.threads, &opts, args.exact)?;
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
        Verdict::NoLeak => {
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
