//! `leakhound listeners (FILE.heapsnapshot | --pid PID | --inspect ADDR | -- CMD)`:
//! every EventEmitter with its listener count per event, flagged above a
//! threshold, with where the listener functions are defined. From a live
//! process it takes a heap snapshot over the inspector first (into a
//! temporary file, removed after).

use crate::live::{self, ConnectOptions, TargetArgs};
use crate::output::{terminal_width, Table};
use crate::{load, SnapshotArgs};
use anyhow::{bail, Context, Result};
use diagnose::listeners::{emitters, Emitter};
use heapsnap::source::ScriptNames;
use heapsnap::{classes, HeapSnapshot};
use serde::Serialize;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A heap snapshot to read (instead of a live process).
    #[arg(value_name = "FILE", conflicts_with_all = ["pid", "inspect", "cmd"])]
    pub file: Option<PathBuf>,
    /// A running Node process (leakhound sends it SIGUSR1 to open its inspector).
    #[arg(long, value_name = "PID", conflicts_with_all = ["inspect", "cmd"])]
    pub pid: Option<u32>,
    /// With --pid: the process's inspector port.
    #[arg(long, value_name = "PORT", default_value_t = inspector::DEFAULT_PORT)]
    pub port: u16,
    /// An inspector already listening: ws://127.0.0.1:PORT/ID, HOST:PORT or PORT.
    #[arg(long, value_name = "ADDR", conflicts_with = "cmd")]
    pub inspect: Option<String>,
    /// With `-- CMD`: let the program run this long before looking.
    #[arg(long, default_value = "1s", value_parser = crate::flags::parse_duration)]
    pub delay: Duration,
    /// Flag events with more listeners than this (Node's default max is 10).
    #[arg(long, default_value_t = 10)]
    pub threshold: u64,
    /// How many emitters to list (the most listeners first).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sources: crate::flags::SourceArgs,
    /// Start this program and look at it (it is stopped after).
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    command: &'static str,
    source: String,
    threshold: u64,
    flagged: usize,
    emitters: &'a [Emitter],
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut view = args.sources.view()?;
    let tmp;
    let (file, source) = match &args.file {
        Some(f) => (f.clone(), f.display().to_string()),
        None => {
            if args.pid.is_none() && args.inspect.is_none() && args.cmd.is_empty() {
                bail!("give a snapshot FILE, --pid PID, --inspect ADDR or -- CMD");
            }
            tmp = inspector::private::temp_dir("leakhound-listeners-").context("cannot create a temporary folder")?;
            let f = tmp.path().join("live.heapsnapshot");
            let label = live::block_on(snapshot_live(args, f.clone()))??;
            (f, label)
        }
    };
    let mut snap: HeapSnapshot = load::load(&SnapshotArgs { file, threads: 0, raw_sizes: false, json: false })?;
    heapsnap::shallow::fold_shallow_sizes(&mut snap);
    let classes = classes::compute(&snap);
    let scripts = ScriptNames::build(&snap);
    let all = emitters(&snap, &classes, &scripts, args.threshold);
    let flagged = all.iter().filter(|e| e.events.iter().any(|v| v.flagged)).count();
    if args.json {
        let j = Json { schema_version: 1, command: "listeners", source, threshold: args.threshold, flagged, emitters: &all };
        let mut doc = serde_json::to_value(&j)?;
        view.map_json(&mut doc);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: u64 = all.iter().map(|e| e.total).sum();
    println!(
        "{source}: {} with {}; {} with an event above {}",
        crate::output::count(all.len() as u64, "emitter"),
        crate::output::count(total as u64, "listener"),
        crate::output::int(flagged as u64),
        crate::output::count(args.threshold, "listener")
    );
    // One row per emitter: its events, largest first, and where the
    // largest one's listeners come from.
    let mut rows = Vec::new();
    for e in all.iter().take(args.top) {
        let mut events: Vec<String> =
            e.events.iter().take(4).map(|v| format!("{} {}{}", v.event, v.count, if v.flagged { " (> max)" } else { "" })).collect();
        if e.events.len() > 4 {
            events.push(format!("+{} more", e.events.len() - 4));
        }
        let top = &e.events[0];
        let site = top.sites.first().map(|s| match &s.location {
            Some(l) => format!("{}× {}() {}", s.count, s.function, view.map_text(&l.to_string())),
            None => format!("{}× {}()", s.count, s.function),
        });
        rows.push(vec![format!("{} @{}", e.class, e.id), e.total.to_string(), events.join(", "), site.unwrap_or_default()]);
    }
    println!();
    let t = Table { headers: vec!["Emitter", "Listeners", "Events", "Largest event's listeners defined at"], rows };
    print!("{}", t.render(terminal_width()));
    if all.len() > args.top {
        println!("… {} (--top N to list more)", crate::output::count((all.len() - args.top) as u64, "more emitter"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn snapshot_live(args: &Args, out: PathBuf) -> Result<String> {
    let targs = TargetArgs { pid: args.pid, port: args.port, inspect: args.inspect.clone(), cmd: args.cmd.clone() };
    let child_stdout = crate::flags::child_stdout(args.json, false);
    let target = live::connect(&targs, ConnectOptions { child_stdout }).await?;
    if target.launched.is_some() {
        tokio::time::sleep(args.delay).await;
    }
    let label = target.label.clone();
    match target.session.take_heap_snapshot(&out, |_| {}).await {
        Ok(_) => {
            target.finish().await;
            Ok(label)
        }
        Err(e) => Err(target.fail(e, "while taking the heap snapshot").await),
    }
}
