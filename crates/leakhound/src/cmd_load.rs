//! `leakhound load URL...`: drive HTTP load at a server on this machine and
//! report requests/s, latency percentiles and errors (crates/loadgen).

use anyhow::{bail, Context, Result};
use loadgen::{Engine, LoadConfig, LoadReport, Runtime, Stop};
use serde::Serialize;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// URLs on this machine (127.0.0.0/8, [::1], localhost); several rotate, one per request.
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Stop after exactly this many requests.
    #[arg(short = 'n', long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Stop after this long (`10s`, `500ms`, `2m`); the default is 10s.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub request: crate::live::load::RequestArgs,
    /// Per-request timeout, connecting included.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Threads driving the connections (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// HTTP client: the built-in one or hyper's (for benchmarks).
    #[arg(long, value_enum, default_value_t = EngineArg::Raw, hide = true)]
    pub engine: EngineArg,
    /// One single-threaded runtime per thread, or one work-stealing runtime (for benchmarks).
    #[arg(long, value_enum, default_value_t = RuntimeArg::PerThread, hide = true)]
    pub runtime: RuntimeArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum EngineArg {
    Raw,
    Hyper,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RuntimeArg {
    PerThread,
    WorkStealing,
}

use crate::flags::parse_duration;

#[derive(Serialize)]
struct JsonOut<'a> {
    schema_version: u32,
    command: &'static str,
    urls: &'a [String],
    method: &'a str,
    #[serde(flatten)]
    report: &'a LoadReport,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let requests = args.request.build(&args.urls)?;
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.requests == Some(0) {
        bail!("--requests must be at least 1");
    }
    let stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::Requests(n),
        (None, Some(d)) if d.is_zero() => bail!("--duration must be more than 0"),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    let mut cfg = LoadConfig::new(requests, args.connections, stop);
    cfg.timeout = args.timeout;
    cfg.threads = args.threads.unwrap_or(0);
    cfg.engine = match args.engine {
        EngineArg::Raw => Engine::Raw,
        EngineArg::Hyper => Engine::Hyper,
    };
    cfg.runtime = match args.runtime {
        RuntimeArg::PerThread => Runtime::PerThread,
        RuntimeArg::WorkStealing => Runtime::WorkStealing,
    };

    // The driver runs its own threads; this runtime only waits, shows
    // progress and listens for Ctrl-C.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    let report = rt.block_on(async {
        // A port nobody listens on is said at once, not after a run of errors.
        let mut seen = Vec::new();
        for r in &cfg.requests {
            let authority = r.url.authority().map(|a| a.to_string());
            if seen.contains(&authority) {
                continue;
            }
            seen.push(authority);
            loadgen::check_listening(r, cfg.timeout).await?;
        }
        let bar = progress_bar(&cfg);
        let cancel = tokio_util::sync::CancellationToken::new();
        let on_ctrl_c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_ctrl_c.cancel();
            }
        });
        let update = |done: u64| {
            if let Some(b) = &bar {
                match cfg.stop {
                    Stop::Requests(_) => b.set_position(done),
                    Stop::Duration(_) => {
                        b.set_position(b.elapsed().as_millis() as u64);
                        b.set_message(format!("{done} requests"));
                    }
                }
            }
        };
        let report = loadgen::run(&cfg, Some(&update), Some(cancel)).await;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        anyhow::Ok(report?)
    })?;

    if report.responses() == 0 && report.errors > 0 {
        // Nothing answered: the one line that says why, not a table of zeros.
        let (kind, _) = report.errors_by_kind.iter().max_by_key(|(_, n)| **n).expect("errors > 0");
        let example = report.error_examples.get(kind).cloned().unwrap_or_else(|| kind.clone());
        bail!("all {} requests failed: {example}", report.errors);
    }
    if args.json {
        let out =
            JsonOut { schema_version: 1, command: "load", urls: &args.urls, method: cfg.requests[0].method.as_str(), report: &report };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", human(&cfg, &args.urls, &report));
    }
    Ok(if report.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

fn progress_bar(cfg: &LoadConfig) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let (len, template) = match cfg.stop {
        Stop::Requests(n) => (n, "load {bar:40} {pos}/{len} requests ({eta} left)"),
        Stop::Duration(d) => (d.as_millis() as u64, "load {bar:40} {elapsed}/{duration} {msg}"),
    };
    let b = indicatif::ProgressBar::new(len);
    b.set_style(indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    Some(b)
}

// `is_multiple_of` is newer than the workspace's rust-version (1.80).
#[allow(clippy::manual_is_multiple_of)]
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human(cfg: &LoadConfig, urls: &[String], r: &LoadReport) -> String {
    let mut out = String::new();
    let stop = match cfg.stop {
        Stop::Requests(n) => format!("{} requests", thousands(n)),
        Stop::Duration(d) => format!("{:?}", d),
    };
    let method = cfg.requests[0].method.as_str();
    out.push_str(&format!("{} connections, {stop}, {method} {}", r.connections, urls[0]));
    if urls.len() > 1 {
        out.push_str(&format!(" and {} more URLs, rotating", urls.len() - 1));
    }
    out.push_str(if r.interrupted { " (interrupted)\n\n" } else { "\n\n" });
    let l = &r.latency_ms;
    let table = crate::output::Table {
        headers: vec!["", "p50", "p90", "p99", "p99.9", "max", "mean"],
        rows: vec![vec![
            "latency (ms)".to_string(),
            format!("{:.2}", l.p50),
            format!("{:.2}", l.p90),
            format!("{:.2}", l.p99),
            format!("{:.2}", l.p999),
            format!("{:.2}", l.max),
            format!("{:.2}", l.mean),
        ]],
    };
    out.push_str(&table.render(120));
    out.push('\n');
    out.push_str(&format!(
        "{} requests in {:.2} s, {} read: {} req/s\n",
        thousands(r.requests),
        r.duration_s,
        crate::output::bytes(r.bytes_read),
        thousands(r.requests_per_s.round() as u64)
    ));
    let codes: Vec<String> =
        r.status_codes.iter().filter(|(c, _)| !(200..300).contains(*c)).map(|(c, n)| format!("{c} x{}", thousands(*n))).collect();
    out.push_str(&format!("responses: {} 2xx, {} non-2xx", thousands(r.ok), thousands(r.non_2xx)));
    if !codes.is_empty() {
        out.push_str(&format!(" ({})", codes.join(", ")));
    }
    out.push('\n');
    if r.errors == 0 {
        out.push_str("errors: 0\n");
    } else {
        let kinds: Vec<String> = r.errors_by_kind.iter().map(|(k, n)| format!("{k} {}", thousands(*n))).collect();
        out.push_str(&format!("errors: {} ({})\n", thousands(r.errors), kinds.join(", ")));
        for (kind, example) in &r.error_examples {
            out.push_str(&format!("  first {kind}: {example}\n"));
        }
    }
    if r.cancelled > 0 {
        out.push_str(&format!("cancelled in flight: {}\n", r.cancelled));
    }
    out
}
