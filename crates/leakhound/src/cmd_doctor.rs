//! `leakhound doctor (--pid PID | --inspect ADDR | -- CMD)`: a Node
//! process's memory against the limit it really lives under. The limit is
//! read from the process's memory cgroup up the hierarchy (the `container`
//! crate), the figures over the inspector; the findings and the
//! recommended `--max-old-space-size` are `container::doctor`'s.

use crate::live::checkup::{check, Checkup};
use crate::live::{self, ConnectOptions, TargetArgs};
use anyhow::{Context, Result};
use container::doctor::{self, Finding};
use serde::Serialize;
use std::path::PathBuf;
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
    #[arg(long, help = crate::flags::JSON_HELP)]
    pub json: bool,
    #[arg(short, long, help = crate::flags::QUIET_HELP)]
    pub quiet: bool,
    #[arg(long, value_name = "FILE", help = crate::flags::HTML_HELP)]
    pub html: Option<PathBuf>,
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
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
    let mut interrupts = live::Interrupts::new();
    let stdout = crate::flags::child_stdout(args.json, args.quiet);
    let target = tokio::select! {
        t = live::connect(&args.target, ConnectOptions { child_stdout: stdout }) => t?,
        _ = interrupts.recv() => return Ok(interrupted("while connecting")),
    };
    let pid = args.target.pid.unwrap_or(target.info.pid);
    let label = target.label.clone();
    // Ctrl-C: nothing read yet, nothing to report; let the target go.
    let checked = tokio::select! {
        c = check(&target, pid, args.cgroup_root.as_deref()) => c,
        _ = interrupts.recv() => {
            target.finish().await;
            return Ok(interrupted("before its memory was read"));
        }
    };
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
    } else if args.quiet {
        println!("{}", headline(&label, &c));
    } else {
        print!("{}", human(&label, &c));
    }
    if let Some(p) = &args.html {
        crate::report::write_page(p, &page(&label, &c))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C before anything was read: say so, exit 130.
fn interrupted(when: &str) -> ExitCode {
    eprintln!("leakhound: interrupted {when}; nothing to report");
    ExitCode::from(crate::live::interrupted::EXIT_INTERRUPTED)
}

/// The one line: the findings counted by severity and named, and the
/// recommendation when there is one.
fn headline(label: &str, c: &Checkup) -> String {
    let a = &c.assessment;
    if a.findings.is_empty() {
        return format!("doctor: {label}: ok: the heap fits the container limit with room to spare");
    }
    let mut by: Vec<(&str, u64)> = Vec::new();
    for f in &a.findings {
        match by.iter_mut().find(|(s, _)| *s == f.severity.name()) {
            Some(x) => x.1 += 1,
            None => by.push((f.severity.name(), 1)),
        }
    }
    let counted: Vec<String> = by.iter().map(|(s, n)| crate::output::count(*n, s)).collect();
    let ids: Vec<&str> = a.findings.iter().map(|f| f.id).collect();
    let rec = doctor::recommendation_line(a).map(|l| format!("; {l}")).unwrap_or_default();
    format!("doctor: {label}: {} ({}){rec}", counted.join(", "), ids.join(", "))
}

/// `--html`: the facts, the findings and the recommendation.
fn page(label: &str, c: &Checkup) -> String {
    use crate::report::esc;
    use std::fmt::Write;
    let mut p = crate::report::Page::new("leakhound doctor");
    p.fact("Process", label);
    p.fact("Command", &crate::report::html::command_line());
    p.fact("Taken", &crate::report::utc_text(crate::report::now_unix()));
    // The text report's facts block, one row per line.
    let text = human(label, c);
    let mut facts = String::from("<table><tbody>");
    let mut findings = String::new();
    let mut in_findings = false;
    for line in text.lines().skip(1) {
        if line == "findings:" {
            in_findings = true;
            continue;
        }
        if in_findings && line.starts_with("  ") {
            let _ = write!(findings, "<li>{}</li>", esc(line.trim()));
        } else if in_findings {
            let _ = write!(findings, "</ul><p class=\"advice\">{}</p><ul>", esc(line));
        } else if let Some((k, v)) = line.trim().split_once("  ") {
            let _ = write!(facts, "<tr><th>{}</th><td>{}</td></tr>", esc(k.trim()), esc(v.trim()));
        }
    }
    facts.push_str("</tbody></table>");
    p.section("facts", "Memory and its limits", &facts);
    p.section("findings", "Findings", &format!("<p>{}</p><ul>{findings}</ul>", esc(&headline(label, c))));
    p.finish()
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
