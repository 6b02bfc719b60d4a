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
    /// Print one JSON document on stdout instead of text (every field: docs/json.md).
    #[arg(long)]
    pub json: bool,
    #[arg(short, long, help = crate::flags::QUIET_HELP)]
    pub quiet: bool,
    #[arg(long, value_name = "FILE", help = crate::flags::HTML_HELP)]
    pub html: Option<std::path::PathBuf>,
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
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
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
        let bar = if args.quiet || args.json { None } else { progress_bar(&cfg) };
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
    } else if args.quiet {
        println!("{}", headline(&report));
    } else {
        print!("{}", human(&cfg, &args.urls, &report));
    }
    if let Some(p) = &args.html {
        crate::report::write_page(p, &page(&cfg, &args.urls, &report))?;
    }
    if report.interrupted {
        eprintln!("leakhound: interrupted after {}; the report covers them", crate::output::count(report.requests, "request"));
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

use crate::output::{count, int as thousands};

/// `-q`: `2,000 requests in 1.23 s: 1,626 req/s; 2,000 2xx, 0 non-2xx, 0 errors; latency p50 0.61 ms, p99 3.40 ms`.
fn headline(r: &LoadReport) -> String {
    format!(
        "{} in {:.2} s{}: {} req/s; {} 2xx, {} non-2xx, {}; latency p50 {:.2} ms, p99 {:.2} ms",
        count(r.requests, "request"),
        r.duration_s,
        if r.interrupted { " (interrupted)" } else { "" },
        thousands(r.requests_per_s.round() as u64),
        thousands(r.ok),
        thousands(r.non_2xx),
        count(r.errors, "error"),
        r.latency_ms.p50,
        r.latency_ms.p99
    )
}

/// `--html`: the run's facts, the latency table, the status codes and the errors.
fn page(cfg: &LoadConfig, urls: &[String], r: &LoadReport) -> String {
    use crate::report::esc;
    use std::fmt::Write;
    let mut p = crate::report::Page::new("leakhound load");
    p.fact("URLs", &urls.join(", "));
    p.fact("Method", cfg.requests[0].method.as_str());
    p.fact("Connections", &thousands(r.connections as u64));
    p.fact("Command", &crate::report::html::command_line());
    p.fact("Taken", &crate::report::utc_text(crate::report::now_unix()));
    let l = &r.latency_ms;
    let mut h = format!("<p>{}</p><table><thead><tr><th></th>", esc(&headline(r)));
    for c in ["p50", "p90", "p99", "p99.9", "max", "mean"] {
        let _ = write!(h, "<th class=\"n\">{c}</th>");
    }
    h.push_str("</tr></thead><tbody><tr><td>latency (ms)</td>");
    for v in [l.p50, l.p90, l.p99, l.p999, l.max, l.mean] {
        let _ = write!(h, "<td class=\"n\">{v:.2}</td>");
    }
    h.push_str("</tr></tbody></table>");
    p.section("latency", "Requests and latency", &h);
    let mut t = String::from("<table class=\"sortable\"><thead><tr><th>Status</th><th class=\"n\">Responses</th></tr></thead><tbody>");
    for (code, n) in &r.status_codes {
        let _ = write!(t, "<tr><td>{code}</td><td class=\"n\" data-v=\"{n}\">{}</td></tr>", thousands(*n));
    }
    t.push_str("</tbody></table>");
    if r.errors > 0 {
        t.push_str("<h3 class=\"second\">Errors</h3><ul>");
        for (kind, n) in &r.errors_by_kind {
            let example = r.error_examples.get(kind).map(|e| format!(" — first: {e}")).unwrap_or_default();
            let _ = write!(t, "<li>{} × {}{}</li>", esc(kind), thousands(*n), esc(&example));
        }
        t.push_str("</ul>");
    }
    p.section("responses", "Responses", &t);
    p.finish()
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
        r.status_codes.iter().filter(|(c, _)| !(200..300).contains(*c)).map(|(c, n)| format!("{} × {c}", thousands(*n))).collect();
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
        out.push_str(&format!("cancelled in flight: {}\n", thousands(r.cancelled)));
    }
    out
}
