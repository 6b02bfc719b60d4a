//! Supervise a Node service as N workers sharing one listening socket:
//! watch their memory every second, restart a worker that passes a limit or
//! leaks (starting its replacement first, then draining it, so no request is
//! lost), restart crashed workers with backoff, optionally snapshot a heap
//! before a restart, and export Prometheus metrics.
//!
//! See docs/supervise.md for the design and what the app has to do (nothing,
//! as long as it listens on `process.env.PORT`).

pub mod events;
pub mod fit;
pub mod metrics;
mod process;
pub mod snapshot;
mod supervisor;
pub mod units;
pub mod watch;

pub use events::{Event, SpawnCause};
pub use watch::Reason;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The preload that makes `server.listen(PORT)` use leakhound's socket,
/// reports the heap and drains the worker on SIGTERM.
pub const SHIM_JS: &str = include_str!("shim.js");

#[derive(Debug, Clone)]
pub struct Config {
    /// `node` (or a path to it) and its arguments.
    pub command: Vec<OsString>,
    /// Where the shared listening socket is bound; its port is given to the
    /// app as `PORT`.
    pub listen: SocketAddr,
    pub workers: usize,
    pub max_rss: Option<u64>,
    /// `--max-rss auto`: (80% of the container limit − 64 MiB) / workers.
    pub max_rss_auto: bool,
    /// Give each worker a `--max-old-space-size` that fits the container
    /// limit, unless the command or NODE_OPTIONS sets one.
    pub fit_heap: bool,
    /// Read cgroups here instead of the mounts (tests, unusual mounts).
    pub cgroup_root: Option<PathBuf>,
    pub max_heap: Option<u64>,
    pub restart_on_leak: bool,
    pub leak_horizon: Duration,
    pub leak_window: Duration,
    pub min_growth_per_hour: f64,
    /// How long a draining worker may take to finish its requests.
    pub grace: Duration,
    /// How long a new worker may take to listen (or say it is ready).
    pub ready_timeout: Duration,
    /// Ready only on `process.send('ready')` (PM2's wait_ready), not on listen.
    pub wait_ready: bool,
    /// Memory sampling interval (1 s).
    pub interval: Duration,
    /// A serving worker whose shim has sent nothing for this long (its
    /// event loop is blocked, or the process is stopped) is killed and
    /// restarted like a crashed one. Zero: never. At least 3 intervals.
    pub heartbeat_timeout: Duration,
    pub snapshot_dir: Option<PathBuf>,
    pub snapshot_keep: usize,
    pub snapshot_min_free: u64,
    /// Extra time a draining worker gets to write its snapshot.
    pub snapshot_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Give up after this many crashes in a row of one worker (0: never).
    pub max_crash_restarts: u32,
    /// A worker that ran this long before crashing starts a new crash series.
    pub min_uptime: Duration,
    pub metrics: Option<SocketAddr>,
}

impl Config {
    /// Defaults for everything but the command and the address.
    pub fn new(command: Vec<OsString>, listen: SocketAddr) -> Config {
        Config {
            command,
            listen,
            workers: 1,
            max_rss: None,
            max_rss_auto: false,
            fit_heap: true,
            cgroup_root: None,
            max_heap: None,
            restart_on_leak: false,
            leak_horizon: Duration::from_secs(3600),
            leak_window: Duration::from_secs(1800),
            // 1MB/h, MB = 10^6 bytes as in every flag.
            min_growth_per_hour: 1e6,
            grace: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(30),
            wait_ready: false,
            interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
            snapshot_dir: None,
            snapshot_keep: 3,
            snapshot_min_free: 1 << 30,
            snapshot_timeout: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            max_crash_restarts: 10,
            min_uptime: Duration::from_secs(10),
            metrics: None,
        }
    }
}

/// Errors name what and where; the cause (`source`) follows in the chain,
/// as leakhound prints it: `cannot start `node`: No such file or directory`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no command: use `leakhound supervise [options] -- node server.js`")]
    NoCommand,
    #[error("the command must run Node itself, got `{0}` (use `-- node server.js`; npm or a shell would hide the worker from leakhound)")]
    NotNode(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot serve metrics on {addr}")]
    MetricsListen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start `{program}`")]
    Spawn { program: String, source: std::io::Error },
    #[error("snapshot directory {dir}")]
    SnapshotDir { dir: PathBuf, source: std::io::Error },
    #[error("worker {worker} crashed {crashes} times in a row (last: {last}); giving up")]
    CrashLoop { worker: usize, crashes: u32, last: String },
    #[error("{context}")]
    Io { context: &'static str, source: std::io::Error },
}

/// How a supervision that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// `"SIGINT"` or `"SIGTERM"`: the signal that asked for the stop.
    pub signal: Option<&'static str>,
}

/// Run until SIGTERM/SIGINT (then `Ok`, with the signal) or a fatal error
/// (every worker is stopped first). `on_event` sees each event as it happens.
pub fn run(cfg: Config, on_event: impl FnMut(&Event)) -> Result<Stopped, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io { context: "cannot start the runtime", source })?;
    rt.block_on(supervisor::run(cfg, Box::new(on_event)))
}
