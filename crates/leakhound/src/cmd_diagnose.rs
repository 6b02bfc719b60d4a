//! `leakhound diagnose S1 S2 S3 [...]`: what leaks, which container
//! accumulates it, why it is kept, which pattern it is and how to fix it.

use crate::load::Terminal;
use crate::report::text;
use anyhow::Result;
use diagnose::files::{diagnose_files, FileOptions};
use diagnose::leaks::{Diagnosis, Options, Verdict};
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
    /// `github`: after the text report, a GitHub Actions annotation
    /// (`::error file=…,line=…::…`) at the user's line of each suspect.
    #[arg(long, value_enum, default_value_t = crate::report::github::Format::Text)]
    pub format: crate::report::github::Format,
    /// Also write the verdict as JUnit XML to FILE (one failed test case per suspect).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
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
    #[command(flatten)]
    pub sources: crate::flags::SourceArgs,
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    command: &'static str,
    #[serde(flatten)]
    diagnosis: &'a Diagnosis,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    use crate::report::github::{self, Format};
    for (p, flag) in [(&args.html, "--html"), (&args.junit, "--junit")] {
        if let Some(p) = p {
            crate::report::check_output(p, flag)?;
        }
    }
    let started = std::time::Instant::now();
    let opts = Options { min_growth: args.min_growth, max_suspects: args.top };
    // A bad --libraries file is refused before the snapshots are read.
    let mut view = args.sources.view()?;
    let fopts = FileOptions { threads: args.threads, exact: args.exact };
    let mut d = diagnose_files(&args.files, &opts, fopts, &mut Terminal::new())?;
    // Leaks inside a package get their pattern and advice from the files.
    view.attribute(&mut d);
    // The JSON document with the suspects' packages and source-mapped lines:
    // what --json prints and what JUnit and the annotations are made from.
    let mut doc = serde_json::to_value(Json { schema_version: 1, command: "diagnose", diagnosis: &d })?;
    view.enrich_document(&mut doc);
    if let Some(path) = &args.junit {
        crate::report::junit::write(path, &crate::report::junit::document(&doc, started.elapsed().as_secs_f64(), &github::workspace()))?;
    }
    if let Some(path) = &args.html {
        crate::report::write_page(path, &crate::report::html::diagnose_page(&d, &crate::report::html::command_line(), Some(&doc)))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if args.quiet {
        print!("{}", text::diagnosis(&d, false).lines().next().map(|l| format!("{l}\n")).unwrap_or_default());
    } else {
        // Locations in the report at their original (source-mapped) lines.
        print!("{}", view.map_text(&text::diagnosis(&d, args.verbose)));
        print!("{}", crate::sources_view::text_notes(&doc));
    }
    if args.format == Format::Github && !args.json {
        print!("{}", github::annotations(&doc, &github::workspace()));
    }
    Ok(if args.fail_on_leak && d.verdict == Verdict::Leak { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
