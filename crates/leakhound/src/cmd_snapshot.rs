//! `leakhound snapshot (--pid PID | --inspect ADDR | -- CMD) -o FILE`: a
//! heap snapshot of a running process, streamed to disk (FILE.part, renamed
//! when complete), with a progress bar when stderr is a terminal.

use crate::live::{self, ConnectOptions, TargetArgs};
use crate::output;
use anyhow::Result;
use inspector::SnapshotOptions;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where to write the snapshot (`.heapsnapshot`).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Force a full garbage collection first, so the snapshot holds only
    /// live objects (DevTools does the same).
    #[arg(long)]
    pub gc: bool,
    /// Wait this long after connecting before the snapshot (e.g. to let a
    /// program started with `-- CMD` warm up): `500ms`, `5s`, `1m`.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::flags::parse_duration)]
    pub delay: Duration,
    #[arg(long, help = crate::flags::JSON_HELP)]
    pub json: bool,
    #[arg(short, long, help = crate::flags::QUIET_HELP)]
    pub quiet: bool,
    /// With --pid: take the snapshot even when it may not fit the process's
    /// memory headroom (a snapshot needs up to about 24 times the used heap).
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    schema_version: u32,
    command: &'static str,
    file: String,
    bytes: u64,
    seconds: f64,
    pid: u32,
    node_version: &'a str,
    gc: bool,
    heap_used_before: u64,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    live::block_on(run_async(args))?
}

async fn run_async(args: &Args) -> Result<ExitCode> {
    let mut interrupts = live::Interrupts::new();
    let out = &args.output;
    crate::report::check_output(out, "-o")?;
    let stdout = crate::flags::child_stdout(args.json, args.quiet);
    let target = tokio::select! {
        t = live::connect(&args.target, ConnectOptions { child_stdout: stdout }) => t?,
        _ = interrupts.recv() => return Ok(ExitCode::from(130)),
    };
    let work = async {
        tokio::time::sleep(args.delay).await;
        let before = target.session.memory().await?;
        // A process leakhound did not start: its memory is someone's service.
        if args.target.pid.is_some() && !args.force {
            if let Err(why) = crate::live::headroom::check(target.info.pid, before.heap_used) {
                return Ok(Err(why));
            }
        }
        if args.gc {
            target.session.collect_garbage().await?;
        }
        let started = Instant::now();
        let bar = crate::live::tracking::progress_bar(args.quiet || args.json);
        let bytes = target
            .session
            .take_heap_snapshot_with(out, &SnapshotOptions::default(), |p| {
                if let Some(bar) = &bar {
                    crate::live::tracking::show(bar, p)
                }
            })
            .await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        Ok::<_, inspector::Error>(Ok((bytes?, started.elapsed(), before.heap_used)))
    };
    let result = tokio::select! {
        r = work => Some(r),
        _ = interrupts.recv() => None,
    };
    let (bytes, took, heap_used_before) = match result {
        None => {
            target.finish().await;
            eprintln!("leakhound: interrupted; no snapshot written");
            return Ok(ExitCode::from(130));
        }
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(why))) => {
            target.finish().await;
            anyhow::bail!("{why}");
        }
        Some(Err(e)) => return Err(target.fail(e, "while leakhound was taking its heap snapshot").await),
    };
    let pid = target.info.pid;
    let version = target.info.node_version.clone();
    let label = target.label.clone();
    target.finish().await;
    if args.json {
        let j = JsonOut {
            schema_version: 1,
            command: "snapshot",
            file: out.display().to_string(),
            bytes,
            seconds: took.as_secs_f64(),
            pid,
            node_version: &version,
            gc: args.gc,
            heap_used_before,
        };
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        println!(
            "wrote {}: {} in {:.1} s ({label}; heap used {}{})",
            out.display(),
            output::bytes(bytes),
            took.as_secs_f64(),
            output::bytes(heap_used_before),
            if args.gc { ", then a full GC" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
