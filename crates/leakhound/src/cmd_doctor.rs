//! `leakhound doctor (--pid PID | --inspect ADDR | -- CMD)`: a Node
//! process's memory against the limit it really lives under. The limit is
//! read from the process's memory cgroup up the hierarchy (the `container`
//! crate), the figures over the inspector; the findings and the
//! recommended `--max-old-space-size` are `container::doctor`'s.

use crate::live::{self, ConnectOptions, Target, TargetArgs};
use anyhow::{Context, Result};
use container::doctor::{self, Facts, Finding};
use container::Memory;
use inspector::ChildStdout;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Read cgroups from this directory instead of the mounts the process
    /// sees: a cgroup v2 hierarchy (it has `cgroup.controllers`) or a v1
    /// directory holding `memory/` (for tests and unusual mounts).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the doctor found about one process.
pub struct Checkup {
    pub pid: u32,
    pub facts: Facts,
    pub memory: Option<Memory>,
    pub assessment: container::Assessment,
}

#[derive(Deserialize)]
struct Extra {
    node_options: String,
    constrained: Option<f64>,
}

const EXTRA_EXPR: &str = "({ node_options: process.env.NODE_OPTIONS || '', \
constrained: typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : null })";

/// Gather the facts of a connected target (its figures over the
/// inspector, its cgroup from /proc) and assess them. `pid` is the
/// process's id as this machine's /proc sees it.
pub async fn check(target: &Target, pid: u32, cgroup_root: Option<&Path>) -> Result<Checkup> {
    let m = target.session.memory().await?;
    let extra: Extra = target.session.evaluate(EXTRA_EXPR).await?;
    let memory = match Memory::of_pid(pid, cgroup_root) {
        Ok(m) => Some(m),
        Err(container::Error::NoMemoryCgroup { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let words = target.info.exec_argv.iter().map(String::as_str).chain(extra.node_options.split_whitespace());
    let node_processes =
        memory.as_ref().map_or(1, |mem| mem.pids_sharing().into_iter().filter(|&p| container::cgroup::is_node(p)).count()).max(1);
    let facts = Facts {
        node_version: target.info.node_version.clone(),
        heap_size_limit: m.heap_size_limit,
        heap_used: m.heap_used,
        heap_total: m.heap_total,
        external: m.external,
        array_buffers: m.array_buffers,
        rss: m.rss,
        heap_flags: doctor::heap_flags(words),
        constrained_memory: extra.constrained,
        host_memory: container::cgroup::host_memory(),
        limit: memory.as_ref().and_then(|m| m.limit.as_ref().map(|b| b.bytes)),
        own_level_limit: memory.as_ref().and_then(|m| m.own_level_limit),
        usage_bytes: memory.as_ref().and_then(|m| m.usage_bytes),
        node_processes,
        oom_kills: memory.as_ref().and_then(|m| m.oom_kills),
    };
    let assessment = container::assess(&facts);
    Ok(Checkup { pid, facts, memory, assessment })
}

#[derive(Serialize)]
struct CgroupJson<'a> {
    version: &'static str,
    path: &'a str,
    dir: String,
    fell_back_to_mount: bool,
    /// Where the binding limit is set.
    limit_dir: Option<String>,
    limit_file: Option<&'a str>,
    usage_bytes: Option<u64>,
    oom_kills: Option<u64>,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    schema_version: u32,
    command: &'static str,
    pid: u32,
    node_version: &'a str,
    container_limit_bytes: Option<u64>,
    heap_limit_bytes: u64,
    heap_used_bytes: u64,
    heap_total_bytes: u64,
    external_bytes: u64,
    array_buffers_bytes: u64,
    rss_bytes: u64,
    headroom_bytes: Option<i64>,
    host_memory_bytes: Option<u64>,
    constrained_memory: Option<f64>,
    heap_flags: &'a [String],
    node_processes: usize,
    cgroup: Option<CgroupJson<'a>>,
    recommended_max_old_space_size_mb: Option<u64>,
    rule: &'a str,
    findings: &'a [Finding],
}

pub fn run(args: &Args) -> Result<ExitCode> {
    live::block_on(run_async(args))?
}

async fn run_async(args: &Args) -> Result<ExitCode> {
    if let Some(r) = &args.cgroup_root {
        anyhow::ensure!(r.is_dir(), "--cgroup-root {}: no such directory", r.display());
    }
    let mut interrupts = live::Interrupts::new();
    let stdout = if args.json { ChildStdout::ToStderr } else { ChildStdout::Inherit };
    let target = tokio::select! {
        t = live::connect(&args.target, ConnectOptions { child_stdout: stdout }) => t?,
        _ = interrupts.recv() => return Ok(ExitCode::from(130)),
    };
    let pid = args.target.pid.unwrap_or(target.info.pid);
    let label = target.label.clone();
    let checked = check(&target, pid, args.cgroup_root.as_deref()).await;
    let c = match checked {
        Ok(c) => c,
        Err(e) => {
            let e = match e.downcast::<inspector::Error>() {
                Ok(ie) => target.fail(ie, "before leakhound could read its memory").await,
                Err(other) => {
                    target.finish().await;
                    other
                }
            };
            return Err(e);
        }
    };
    target.finish().await;
    if args.json {
        let cgroup = c.memory.as_ref().map(|m| CgroupJson {
            version: m.location.version.name(),
            path: &m.location.path,
            dir: m.location.dir.display().to_string(),
            fell_back_to_mount: m.location.fell_back_to_mount,
            limit_dir: m.limit.as_ref().map(|b| b.dir.display().to_string()),
            limit_file: m.limit.as_ref().map(|b| b.file.as_str()),
            usage_bytes: m.usage_bytes,
            oom_kills: m.oom_kills,
        });
        let f = &c.facts;
        let out = JsonOut {
            schema_version: 1,
            command: "doctor",
            pid: c.pid,
            node_version: &f.node_version,
            container_limit_bytes: f.limit,
            heap_limit_bytes: f.heap_size_limit,
            heap_used_bytes: f.heap_used,
            heap_total_bytes: f.heap_total,
            external_bytes: f.external,
            array_buffers_bytes: f.array_buffers,
            rss_bytes: f.rss,
            headroom_bytes: c.assessment.headroom_bytes,
            host_memory_bytes: f.host_memory,
            constrained_memory: f.constrained_memory,
            heap_flags: &f.heap_flags,
            node_processes: f.node_processes,
            cgroup,
            recommended_max_old_space_size_mb: c.assessment.recommended_max_old_space_size_mb,
            rule: &c.assessment.rule,
            findings: &c.assessment.findings,
        };
        println!("{}", serde_json::to_string_pretty(&out).context("cannot write JSON")?);
    } else {
        print!("{}", human(&label, &c));
    }
    Ok(ExitCode::SUCCESS)
}

fn human(label: &str, c: &Checkup) -> String {
    use container::doctor::size;
    let f = &c.facts;
    let mut out = format!("doctor: {label}\n");
    let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<15} {v}\n"));
    match &c.memory {
        Some(m) => {
            let fell = if m.location.fell_back_to_mount { ", not found under the mount: read the mount itself" } else { "" };
            row("cgroup", format!("{} {} ({}{fell})", m.location.version.name(), m.location.path, m.location.dir.display()));
            match &m.limit {
                Some(b) => row("memory limit", format!("{} ({} of {})", size(b.bytes), b.file, b.dir.display())),
                None => row("memory limit", "none".into()),
            }
            if let Some(u) = m.usage_bytes {
                let head = c.assessment.headroom_bytes.map(|h| format!(", headroom {}", signed(h))).unwrap_or_default();
                row("charge", format!("{}{head}", size(u)));
            }
            row("OOM kills", m.oom_kills.map_or("unknown".into(), |n| n.to_string()));
        }
        None => row("cgroup", "none with a memory controller".into()),
    }
    row("Node processes", format!("{} under this limit", f.node_processes));
    let sized = if f.heap_flags.is_empty() { "Node's default".to_string() } else { f.heap_flags.join(" ") };
    row("heap limit", format!("{} ({sized})", size(f.heap_size_limit)));
    row(
        "heap",
        format!(
            "used {} of {}; external {}, arrayBuffers {}",
            size(f.heap_used),
            size(f.heap_total),
            size(f.external),
            size(f.array_buffers)
        ),
    );
    row("rss", size(f.rss));
    if let Some(h) = f.host_memory {
        row("host memory", size(h));
    }
    out.push_str("findings:\n");
    for l in doctor::finding_lines(&c.assessment) {
        out.push_str(&format!("  {l}\n"));
    }
    match doctor::recommendation_line(&c.assessment) {
        Some(l) => out.push_str(&format!("{l}\n")),
        None => out.push_str(&format!("recommended: nothing to compute ({})\n", c.assessment.rule)),
    }
    out
}

fn signed(b: i64) -> String {
    if b < 0 {
        format!("-{} (over the limit)", container::doctor::size(b.unsigned_abs()))
    } else {
        container::doctor::size(b as u64)
    }
}
