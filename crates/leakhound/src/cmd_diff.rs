//! `leakhound diff BASE NEW`: the DevTools Comparison view, per class.

use crate::load::Terminal;
use crate::output::{bytes, terminal_width, Table};
use anyhow::Result;
use diagnose::diff::Comparison;
use diagnose::files::compare_files;
use diagnose::units::signed_bytes;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The older snapshot.
    pub base: PathBuf,
    /// The newer snapshot of the same process.
    pub new: PathBuf,
    /// How many classes to list.
    #[arg(long, default_value_t = 25)]
    pub top: usize,
    /// Use V8's raw self sizes instead of DevTools' shallow sizes.
    #[arg(long)]
    pub raw_sizes: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page with the sortable class table to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Threads for parsing (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    command: &'static str,
    base: String,
    new: String,
    #[serde(flatten)]
    comparison: &'a Comparison,
}

use crate::output::{count_of, int, signed_int as signed};

pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
    let cmp = compare_files(&args.base, &args.new, args.threads, args.raw_sizes, &mut Terminal::new())?;
    if let Some(path) = &args.html {
        let page = crate::report::html::diff_page(
            &cmp,
            &args.base.display().to_string(),
            &args.new.display().to_string(),
            &crate::report::html::command_line(),
        );
        crate::report::write_page(path, &page)?;
    }
    if args.json {
        let j = Json {
            schema_version: 1,
            command: "diff",
            base: args.base.display().to_string(),
            new: args.new.display().to_string(),
            comparison: &cmp,
        };
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} -> {}: {} ({}), {} deleted ({}), size delta {}\n",
        args.base.display(),
        args.new.display(),
        count_of(cmp.new_count as u64, "new object", "new objects"),
        bytes(cmp.alloc_size),
        int(cmp.deleted_count as u64),
        bytes(cmp.freed_size),
        signed_bytes(cmp.alloc_size as i64 - cmp.freed_size as i64)
    );
    let rows = cmp
        .rows
        .iter()
        .take(args.top)
        .map(|r| {
            vec![
                r.class.clone(),
                int(r.new_count),
                int(r.deleted_count),
                signed(r.delta_count),
                bytes(r.alloc_size),
                bytes(r.freed_size),
                signed_bytes(r.size_delta),
            ]
        })
        .collect();
    let t = Table { headers: vec!["Class", "# New", "# Deleted", "# Delta", "Alloc. Size", "Freed Size", "Size Delta"], rows };
    print!("{}", t.render(terminal_width()));
    if cmp.rows.len() > args.top {
        println!("… {} (--top N to list more)", count_of((cmp.rows.len() - args.top) as u64, "more class", "more classes"));
    }
    Ok(ExitCode::SUCCESS)
}
