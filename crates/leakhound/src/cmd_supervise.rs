//! `leakhound supervise [options] -- node server.js`: run a Node service as
//! N workers on one shared listening socket, restart them on memory limits,
//! leaks and crashes without losing requests, and export Prometheus metrics.

use crate::flags::{parse_duration, parse_positive_size, parse_rate};
use anyhow::{anyhow, Result};
use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(clap::Args)]
pub struct Args {
    /// Address leakhound listens on for the app, shared by every worker:
    /// `3000` (all interfaces), `127.0.0.1:3000`, `[::]:3000`. Port 0 picks
    /// a free port. The app gets the port as PORT and listens on it.
    #[arg(long, value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Number of worker processes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Restart a worker whose resident set size passes SIZE (512MB, 1GiB;
    /// MB = 10^6 bytes, MiB = 2^20; a bare 300M is refused), or `auto`:
    /// (80% of the container's memory limit − 64 MiB for a replacement
    /// worker that overlaps the old one) / --workers.
    #[arg(long, value_name = "SIZE|auto", value_parser = parse_max_rss)]
    pub max_rss: Option<MaxRss>,
    /// Don't give the workers a --max-old-space-size that fits the container
    /// (by default each gets 75% of its share of the limit minus 64 MiB,
    /// unless the command or NODE_OPTIONS sets the heap size).
    #[arg(long)]
    pub no_fit_heap: bool,
    /// Read cgroups from this directory instead of the mounts (tests, unusual mounts).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Restart a worker whose V8 heap used passes SIZE (MB = 10^6 bytes, MiB = 2^20).
    #[arg(long, value_parser = parse_positive_size)]
    pub max_heap: Option<u64>,
    /// Restart a worker whose post-GC heap floor grows significantly and would
    /// reach the heap limit within --leak-horizon.
    #[arg(long)]
    pub restart_on_leak: bool,
    /// With --restart-on-leak: restart when the heap limit is projected sooner than this.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub leak_horizon: Duration,
    /// Only floors from this recent past count toward the leak verdict.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub leak_window: Duration,
    /// Slowest floor growth rate called a leak, e.g. `1MB/h`, `500kB/h` (kB/MB: powers of 1000, KiB/MiB: of 1024).
    /// (`--min-growth`, its old name, is still accepted.)
    #[arg(long = "min-rate", alias = "min-growth", value_name = "RATE", default_value = "1MB/h", value_parser = parse_rate)]
    pub min_growth: f64,
    /// How long a worker being replaced may take to finish its requests in flight.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
    /// How long a new worker may take to listen (or to say it is ready).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// A worker is ready when it calls `process.send('ready')` (as with PM2's
    /// wait_ready), not when it listens.
    #[arg(long)]
    pub wait_ready: bool,
    /// How often each worker's memory is read.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Kill and restart a serving worker that has sent no heartbeat (its
    /// once-an-interval report) for this long: event loop blocked, process
    /// stopped. At least 3 intervals; `0` turns it off.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,
    /// Write a heap snapshot of a worker into DIR before a memory restart
    /// (for `leakhound diagnose` later).
    #[arg(long, value_name = "DIR")]
    pub snapshot_before_restart: Option<PathBuf>,
    /// Keep at most N of leakhound's snapshots in DIR (the oldest go).
    #[arg(long, default_value_t = 3)]
    pub snapshot_keep: usize,
    /// Skip a snapshot that would leave less than SIZE free on DIR's disk.
    #[arg(long, default_value = "1GiB", value_parser = parse_positive_size)]
    pub snapshot_min_free: u64,
    /// Extra time a worker gets to write its snapshot.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub snapshot_timeout: Duration,
    /// First delay before restarting a crashed worker; doubles at each crash in a row.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub backoff: Duration,
    /// Longest delay between crash restarts.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub backoff_max: Duration,
    /// Give up (stop everything, exit 2) after N crashes in a row of one worker; 0 never gives up.
    #[arg(long, default_value_t = 10)]
    pub max_crash_restarts: u32,
    /// A worker that ran this long before it crashed starts a new crash count.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub min_uptime: Duration,
    /// Serve Prometheus metrics on ADDR (`127.0.0.1:9464`, path /metrics).
    #[arg(long, value_parser = parse_addr)]
    pub metrics: Option<SocketAddr>,
    /// Events as JSON lines (on stderr, like the text lines).
    #[arg(long)]
    pub json: bool,
    /// The service: `node server.js [args]` (Node itself, with any flags).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not an address like 127.0.0.1:9464: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

/// `--max-rss`: a size, or `auto` (from the container's limit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxRss {
    Bytes(u64),
    Auto,
}

fn parse_max_rss(s: &str) -> Result<MaxRss, String> {
    if s.trim() == "auto" {
        Ok(MaxRss::Auto)
    } else {
        parse_positive_size(s).map(MaxRss::Bytes).map_err(|e| e.to_string())
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    match s.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        Err(_) => parse_addr(s),
    }
}

pub fn run(a: &Args) -> Result<ExitCode> {
    // A supervisor must not die because a worker's control socket or its
    // own log reader went away (main() restores SIGPIPE's default for the
    // one-shot commands).
    // SAFETY: changing a signal disposition; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut cfg = supervise::Config::new(a.command.clone(), a.listen);
    cfg.workers = a.workers;
    cfg.max_rss = match a.max_rss {
        Some(MaxRss::Bytes(b)) => Some(b),
        _ => None,
    };
    cfg.max_rss_auto = a.max_rss == Some(MaxRss::Auto);
    cfg.fit_heap = !a.no_fit_heap;
    cfg.cgroup_root = a.cgroup_root.clone();
    cfg.max_heap = a.max_heap;
    cfg.restart_on_leak = a.restart_on_leak;
    cfg.leak_horizon = a.leak_horizon;
    cfg.leak_window = a.leak_window;
    cfg.min_growth_per_hour = a.min_growth;
    cfg.grace = a.grace;
    cfg.ready_timeout = a.ready_timeout;
    cfg.wait_ready = a.wait_ready;
    if a.interval < Duration::from_millis(10) {
        return Err(anyhow!("--interval must be at least 10ms"));
    }
    cfg.interval = a.interval;
    cfg.heartbeat_timeout = a.heartbeat_timeout;
    cfg.snapshot_dir = a.snapshot_before_restart.clone();
    cfg.snapshot_keep = a.snapshot_keep;
    cfg.snapshot_min_free = a.snapshot_min_free;
    cfg.snapshot_timeout = a.snapshot_timeout;
    cfg.backoff_initial = a.backoff;
    cfg.backoff_max = a.backoff_max;
    cfg.max_crash_restarts = a.max_crash_restarts;
    cfg.min_uptime = a.min_uptime;
    cfg.metrics = a.metrics;
    let json = a.json;
    let stderr = std::io::stderr();
    let stopped = supervise::run(cfg, move |e| {
        let line = if json { e.json(SystemTime::now()) } else { format!("leakhound supervise: {}", e.text()) };
        // A closed stderr must not stop the supervision.
        let _ = writeln!(stderr.lock(), "{line}");
    })?;
    // Ctrl-C exits 130 as in every command; SIGTERM is how an orchestrator
    // stops a service, and a clean drain after it is a success.
    Ok(match stopped.signal {
        Some("SIGINT") => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}
