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
        high_events: memory.as_ref().and_then(|m| m.high_events),
        oom_group: memory.as_ref().is_some_and(|m| m.oom_group),
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
    high_events: Option<u64>,
    oom_group: bool,
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
            high_events: m.high_events,
            oom_group: m.oom_group,
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
    let under = if f.limit.is_some() { "under this limit" } else { "in this cgroup" };
    row("Node processes", format!("{} {under}", f.node_processes));
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

/// What `watch` adds from the doctor: the container limit, which limit the
/// process reaches first, GC drift, and the doctor's findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchContainer {
    pub container_limit_bytes: Option<u64>,
    /// The cgroup's charge when the watch ended.
    pub charge_bytes: Option<u64>,
    /// Theil-Sen slope of the RSS samples, bytes per hour.
    pub rss_growth_bytes_per_hour: Option<f64>,
    /// Mann-Kendall p of the RSS samples.
    pub rss_p_value: Option<f64>,
    /// Projected seconds until the heap limit (the floor's trend).
    pub time_to_heap_limit_s: Option<f64>,
    /// Projected seconds until the container limit (the charge, growing at the RSS trend).
    pub time_to_container_limit_s: Option<f64>,
    /// `heap` or `container`: the limit reached first.
    pub first_limit: Option<&'static str>,
    pub time_to_first_limit_s: Option<f64>,
    /// Set when RSS rises over a flat floor and `external` does not explain it: GC drift, in words.
    pub gc_drift: Option<String>,
    /// Set when RSS rises over a flat floor carried by `external` (Buffers): in words.
    pub external_growth: Option<String>,
    pub recommended_max_old_space_size_mb: Option<u64>,
    pub findings: Vec<Finding>,
}

/// Combine a doctor's checkup with a watch's series. `rss` is (t_s, rss,
/// external) in bytes; the heap side comes from the floor verdict.
pub fn watch_view(
    c: Option<&Checkup>,
    rss: &[(f64, f64, f64)],
    heap_s: Option<f64>,
    floor_per_hour: Option<f64>,
    floor_leaks: bool,
) -> WatchContainer {
    use container::operator;
    let xs: Vec<f64> = rss.iter().map(|r| r.0).collect();
    let ys: Vec<f64> = rss.iter().map(|r| r.1).collect();
    let ext: Vec<f64> = rss.iter().map(|r| r.2).collect();
    let trend = diagnose::trend::Trend::fit(&xs, &ys);
    let ext_per_hour = diagnose::trend::Trend::fit(&xs, &ext).map_or(0.0, |t| t.per_hour());
    let limit = c.and_then(|c| c.facts.limit);
    let charge = c.and_then(|c| c.facts.usage_bytes);
    let container_s = match (&trend, limit) {
        (Some(t), Some(l)) if t.significant_increasing => {
            let now = charge.map(|b| b as f64).or_else(|| ys.last().copied()).unwrap_or(0.0);
            operator::seconds_to(l as f64, now, t.slope_per_sec)
        }
        _ => None,
    };
    let first = operator::first_limit(heap_s, container_s);
    let gc_drift =
        trend.as_ref().and_then(|t| operator::gc_drift(t.per_hour(), t.significant_increasing, floor_per_hour, floor_leaks, ext_per_hour));
    let external_growth = trend
        .as_ref()
        .and_then(|t| operator::external_growth(t.per_hour(), t.significant_increasing, floor_per_hour, floor_leaks, ext_per_hour));
    WatchContainer {
        container_limit_bytes: limit,
        charge_bytes: charge,
        rss_growth_bytes_per_hour: trend.as_ref().map(|t| t.per_hour()),
        rss_p_value: trend.as_ref().map(|t| t.p_value),
        time_to_heap_limit_s: heap_s,
        time_to_container_limit_s: container_s,
        first_limit: first.map(|(w, _)| w.name()),
        time_to_first_limit_s: first.map(|(_, s)| s),
        gc_drift,
        external_growth,
        recommended_max_old_space_size_mb: c.and_then(|c| c.assessment.recommended_max_old_space_size_mb),
        findings: c.map(|c| c.assessment.findings.clone()).unwrap_or_default(),
    }
}

/// The lines `watch` prints (and its HTML shows) for the container.
pub fn watch_lines(w: &WatchContainer) -> Vec<String> {
    use container::doctor::size;
    let mut out = Vec::new();
    out.push(match (w.container_limit_bytes, w.charge_bytes) {
        (Some(l), Some(c)) => format!("container:  memory limit {}, charge {} ({} left)", size(l), size(c), size(l.saturating_sub(c))),
        (Some(l), None) => format!("container:  memory limit {}", size(l)),
        (None, _) => "container:  no memory limit".to_string(),
    });
    if let (Some(which), Some(s)) = (w.first_limit, w.time_to_first_limit_s) {
        let other = match which {
            "heap" => w.time_to_container_limit_s.map(|c| format!("; the container limit in {}", live::human_duration(c))),
            _ => w.time_to_heap_limit_s.map(|h| format!("; the heap limit in {}", live::human_duration(h))),
        };
        out.push(format!(
            "first limit: the {which} limit, in about {} at the current rates{}",
            live::human_duration(s),
            other.unwrap_or_default()
        ));
    }
    if let Some(d) = &w.gc_drift {
        out.push(format!("gc drift:   {d}"));
    }
    if let Some(d) = &w.external_growth {
        out.push(format!("external:   {d}"));
    }
    for l in doctor::finding_lines(&container::Assessment {
        findings: w.findings.clone(),
        recommended_max_old_space_size_mb: None,
        rule: String::new(),
        headroom_bytes: None,
    }) {
        out.push(format!("doctor:     {l}"));
    }
    if let Some(mb) = w.recommended_max_old_space_size_mb {
        out.push(format!("doctor:     recommended --max-old-space-size={mb} (`leakhound doctor` shows the rule)"));
    }
    out
}
