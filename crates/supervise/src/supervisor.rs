//! The supervisor's event loop: one thread, one task, every decision in one
//! place. Inputs are the workers' reports (control sockets), their exits,
//! signals and timers; the state is the workers and the slots they serve.

use crate::events::{Event, SpawnCause};
use crate::metrics::Metrics;
use crate::process;
use crate::snapshot;
use crate::units::duration;
use crate::watch::{self, HeapReport, Limits, MemState, Reason, Trigger};
use crate::{Config, Error};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

type OnEvent<'a> = Box<dyn FnMut(&Event) + 'a>;

/// What a worker's shim sends, one JSON object per line.
#[derive(Debug, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
enum Report {
    Hello {},
    Listening {
        address: String,
    },
    ListenElsewhere {
        port: Option<u32>,
    },
    Ready {},
    #[serde(rename_all = "camelCase")]
    Mem {
        heap_used: u64,
        heap_total: u64,
        external: u64,
        heap_limit: u64,
        floors: Vec<f64>,
    },
    Draining {},
    SnapshotStart {},
    Snapshot {
        ok: bool,
        ms: Option<u64>,
        error: Option<String>,
    },
    Drained {},
}

enum Msg {
    Report(u64, Report),
    Exited(u64, std::io::Result<ExitStatus>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting to listen (or for its ready message) until the deadline.
    Starting {
        deadline: Instant,
    },
    Serving,
    /// SIGTERM sent; killed at the deadline.
    Draining {
        deadline: Instant,
    },
}

/// How long the workers get to accept the connections already queued on
/// the listening socket before they are told to stop (see `stop`).
const QUEUE_DRAIN: Duration = Duration::from_millis(200);

struct SnapshotJob {
    part: PathBuf,
    path: PathBuf,
    done: bool,
}

struct Worker {
    slot: usize,
    pid: u32,
    cause: SpawnCause,
    started: Instant,
    started_unix: f64,
    phase: Phase,
    /// Leakhound's end of the control socket (commands to the shim).
    control: UnixStream,
    mem: MemState,
    early_check: Option<Instant>,
    /// Ports the app listened on other than the shared one.
    elsewhere: Vec<Option<u32>>,
    listened: bool,
    snapshot: Option<SnapshotJob>,
    /// Why leakhound killed it, if it did.
    killed: Option<String>,
    /// When it was sent SIGTERM.
    drain_started: Option<Instant>,
    /// When its shim last reported (the heartbeat: once an interval).
    last_report: Instant,
}

#[derive(Default)]
struct Slot {
    /// The worker serving this slot (or starting to, after a crash).
    active: Option<u64>,
    crashes_in_a_row: u32,
    restart_at: Option<Instant>,
}

struct Queued {
    slot: usize,
    trigger: Trigger,
    not_before: Instant,
    attempts: u32,
}

/// The restart in progress: a replacement is starting (or `old` draining).
struct Op {
    old: Option<u64>,
    new: u64,
    trigger: Trigger,
    attempts: u32,
}

struct Supervisor<'a> {
    cfg: Config,
    limits: Limits,
    on_event: OnEvent<'a>,
    listener: std::net::TcpListener,
    port: u16,
    _shim_dir: tempfile::TempDir,
    shim: PathBuf,
    workers: BTreeMap<u64, Worker>,
    slots: Vec<Slot>,
    queue: VecDeque<Queued>,
    op: Option<Op>,
    next_id: u64,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    metrics: Metrics,
    ready_latencies: VecDeque<Duration>,
    stopping: bool,
    /// The signal that asked for the stop, if one did.
    stopped_by: Option<&'static str>,
    fatal: Option<Error>,
    next_sample: Instant,
    fit: crate::fit::Fit,
    /// The cgroup's OOM-kill counter at the last worker exit.
    oom_kills_seen: Option<u64>,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn is_node(program: &std::ffi::OsStr) -> bool {
    std::path::Path::new(program).file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("node"))
}

fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    // Node listens again on it with its own backlog (511); this one covers
    // the time before the first worker is up.
    s.listen(1024)?;
    Ok(s.into())
}

pub(crate) async fn run(cfg: Config, on_event: OnEvent<'_>) -> Result<crate::Stopped, Error> {
    let mut sup = Supervisor::new(cfg, on_event)?;
    let result = sup.main().await;
    // Whatever happened, no worker outlives this call.
    for w in sup.workers.values() {
        process::kill_group(w.pid);
    }
    result
}

impl<'a> Supervisor<'a> {
    fn new(cfg: Config, on_event: OnEvent<'a>) -> Result<Self, Error> {
        let program = cfg.command.first().ok_or(Error::NoCommand)?;
        if !is_node(program) {
            return Err(Error::NotNode(program.to_string_lossy().into_owned()));
        }
        if cfg.workers == 0 {
            return Err(Error::Config("--workers must be at least 1".into()));
        }
        if let Some(dir) = &cfg.snapshot_dir {
            snapshot::create_private_dir(dir).map_err(|source| Error::SnapshotDir { dir: dir.clone(), source })?;
            // Writable? (The worker writes there, as the same user.)
            let probe = dir.join(format!(".leakhound-probe-{}", std::process::id()));
            std::fs::write(&probe, b"").map_err(|source| Error::SnapshotDir { dir: dir.clone(), source })?;
            let _ = std::fs::remove_file(&probe);
        }
        let listener = bind(cfg.listen).map_err(|source| Error::Listen { addr: cfg.listen, source })?;
        let port = listener.local_addr().map_err(|source| Error::Io { context: "listening socket", source })?.port();
        let shim_dir = tempfile::Builder::new()
            .prefix("leakhound-supervise-")
            .tempdir()
            .map_err(|source| Error::Io { context: "cannot create a temporary directory for the shim", source })?;
        let shim = shim_dir.path().join("leakhound-shim.js");
        std::fs::write(&shim, crate::SHIM_JS).map_err(|source| Error::Io { context: "cannot write the shim", source })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let fit = crate::fit::fit(cfg.cgroup_root.as_deref(), &cfg.command[1..], cfg.workers, cfg.fit_heap);
        let mut cfg = cfg;
        if cfg.max_rss_auto {
            let limit = fit.limit.ok_or_else(|| {
                let where_ = fit.memory.as_ref().map(|m| m.location.dir.display().to_string()).unwrap_or_else(|| "no memory cgroup".into());
                Error::Config(format!("--max-rss auto: this process has no memory limit ({where_}); give a size instead"))
            })?;
            cfg.max_rss = Some(crate::fit::auto_max_rss(limit, cfg.workers).ok_or_else(|| {
                Error::Config(format!(
                    "--max-rss auto: the memory limit ({} bytes) is too small for {} workers (80% of it minus 64 MiB leaves under 32 MiB each)",
                    limit, cfg.workers
                ))
            })?);
        }
        let oom_kills_seen = crate::fit::oom_kills(fit.memory.as_ref());
        let limits = Limits {
            max_rss: cfg.max_rss,
            max_heap: cfg.max_heap,
            restart_on_leak: cfg.restart_on_leak,
            leak_horizon: cfg.leak_horizon,
            leak_window: cfg.leak_window,
            min_growth_per_hour: cfg.min_growth_per_hour,
        };
        let metrics = Metrics::new(cfg.workers, unix_now());
        let slots = (0..cfg.workers).map(|_| Slot::default()).collect();
        Ok(Supervisor {
            next_sample: Instant::now() + cfg.interval,
            cfg,
            limits,
            on_event,
            listener,
            port,
            _shim_dir: shim_dir,
            shim,
            workers: BTreeMap::new(),
            slots,
            queue: VecDeque::new(),
            op: None,
            next_id: 1,
            tx,
            rx,
            metrics,
            ready_latencies: VecDeque::new(),
            stopping: false,
            stopped_by: None,
            fatal: None,
            fit,
            oom_kills_seen,
        })
    }

    fn emit(&mut self, e: Event) {
        (self.on_event)(&e);
    }

    async fn main(&mut self) -> Result<crate::Stopped, Error> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(|source| Error::Io { context: "signal handler", source })?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(|source| Error::Io { context: "signal handler", source })?;
        let mut sighup = signal(SignalKind::hangup()).map_err(|source| Error::Io { context: "signal handler", source })?;
        let address = self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let command = self.cfg.command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        self.emit(Event::Listening { address, workers: self.cfg.workers, command });
        let limit_source = self.fit.memory.as_ref().and_then(|m| m.limit.as_ref()).map(|b| format!("{} of {}", b.file, b.dir.display()));
        self.emit(Event::Container {
            limit: self.fit.limit,
            limit_source,
            max_rss: self.cfg.max_rss,
            max_old_space_size_mb: self.fit.old_space_mb,
            heap: self.fit.heap_note.clone(),
        });
        let metrics_task = match self.cfg.metrics {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::MetricsListen { addr, source })?;
                let bound = l.local_addr().unwrap_or(addr);
                self.emit(Event::Metrics { url: format!("http://{bound}/metrics") });
                Some(tokio::spawn(crate::metrics::serve(l, self.metrics.registry())))
            }
            None => None,
        };
        for slot in 0..self.cfg.workers {
            self.spawn(slot, SpawnCause::Start, None)?;
        }
        let mut signals = 0;
        while !(self.stopping && self.workers.is_empty()) {
            let wake = self.next_wake();
            tokio::select! {
                Some(msg) = self.rx.recv() => self.on_msg(msg),
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = sigterm.recv() => { signals += 1; self.on_signal("SIGTERM", signals) }
                _ = sigint.recv() => { signals += 1; self.on_signal("SIGINT", signals) }
                _ = sighup.recv() => self.reload(),
            }
            self.on_time(Instant::now());
        }
        self.emit(Event::Stopped {});
        if let Some(t) = metrics_task {
            t.abort();
        }
        match self.fatal.take() {
            Some(e) => Err(e),
            None => Ok(crate::Stopped { signal: self.stopped_by }),
        }
    }

    fn on_signal(&mut self, name: &'static str, count: u32) {
        if count == 1 {
            self.stopped_by.get_or_insert(name);
            self.stop(format!("{name}: draining every worker (grace {})", duration(self.cfg.grace)));
        } else {
            // Asked twice: no more waiting.
            self.emit(Event::Stopping { why: format!("{name} again: killing every worker") });
            for w in self.workers.values_mut() {
                w.killed = Some(format!("{name} again"));
                process::kill_group(w.pid);
            }
        }
    }

    /// SIGHUP: replace every worker, one at a time, without losing a
    /// request (to run new code after a deploy).
    fn reload(&mut self) {
        if self.stopping {
            return;
        }
        for slot in 0..self.slots.len() {
            let Some(id) = self.slots[slot].active else { continue };
            let Some(w) = self.workers.get(&id) else { continue };
            if w.phase != Phase::Serving
                || self.op.as_ref().is_some_and(|o| o.old == Some(id))
                || self.queue.iter().any(|q| q.slot == slot && q.trigger.reason == Reason::Reload)
            {
                continue;
            }
            let pid = w.pid;
            let trigger = Trigger { reason: Reason::Reload, detail: "SIGHUP: rolling restart".into() };
            self.metrics.restarted(slot, Reason::Reload);
            self.emit(Event::Restart {
                worker: slot,
                pid,
                reason: Reason::Reload,
                detail: trigger.detail.clone(),
                rss: w.mem.rss(),
                heap_used: w.mem.heap.as_ref().map(|h| h.heap_used),
                limit: None,
            });
            // A memory restart already queued for this worker does the job.
            if !self.queue.iter().any(|q| q.slot == slot) {
                self.queue.push_back(Queued { slot, trigger, not_before: Instant::now(), attempts: 0 });
            }
        }
    }

    fn stop(&mut self, why: String) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.emit(Event::Stopping { why });
        // No new connections from now on, and a moment for the workers,
        // still accepting, to take the ones already queued: what is queued
        // when the last worker closes the socket would be reset.
        if process::refuse_new_connections(&self.listener).is_ok() {
            std::thread::sleep(QUEUE_DRAIN);
        }
        self.queue.clear();
        for s in &mut self.slots {
            s.restart_at = None;
        }
        let deadline = Instant::now() + self.cfg.grace;
        let ids: Vec<u64> = self.workers.keys().copied().collect();
        for id in ids {
            let w = self.workers.get_mut(&id).unwrap();
            if !matches!(w.phase, Phase::Draining { .. }) {
                w.phase = Phase::Draining { deadline };
                w.drain_started = Some(Instant::now());
                process::terminate(w.pid);
                let (worker, pid) = (w.slot, w.pid);
                self.emit(Event::Draining { worker, pid, grace_ms: millis(self.cfg.grace) });
            }
        }
    }

    fn fail(&mut self, e: Error) {
        let why = e.to_string();
        if self.fatal.is_none() {
            self.fatal = Some(e);
        }
        self.stop(why);
    }

    fn ready_latency(&self) -> Duration {
        // The slowest recent start, so that a restart is early rather than late.
        self.ready_latencies.iter().copied().max().unwrap_or(Duration::from_millis(500))
    }

    fn next_wake(&self) -> Instant {
        let mut t = self.next_sample;
        for w in self.workers.values() {
            if let Some(e) = w.early_check {
                t = t.min(e);
            }
            match w.phase {
                Phase::Starting { deadline } | Phase::Draining { deadline } => t = t.min(deadline),
                Phase::Serving => {
                    if let Some(h) = self.heartbeat_timeout() {
                        t = t.min(w.last_report + h);
                    }
                }
            }
        }
        for s in &self.slots {
            if let Some(r) = s.restart_at {
                t = t.min(r);
            }
        }
        if self.op.is_none() {
            if let Some(q) = self.queue.iter().map(|q| q.not_before).min() {
                t = t.min(q);
            }
        }
        t
    }

    // ---- starting workers --------------------------------------------------

    fn spawn(&mut self, slot: usize, cause: SpawnCause, replaces: Option<u32>) -> Result<u64, Error> {
        let (ours, theirs) = UnixStream::pair().map_err(|source| Error::Io { context: "control socket", source })?;
        let program = &self.cfg.command[0];
        let mut args = Vec::new();
        if let Some(mb) = self.fit.old_space_mb {
            args.push(std::ffi::OsString::from(format!("--max-old-space-size={mb}")));
        }
        args.extend([std::ffi::OsString::from("--require"), self.shim.clone().into_os_string()]);
        args.extend(self.cfg.command[1..].iter().cloned());
        let env = vec![
            ("PORT".to_string(), self.port.to_string()),
            ("LEAKHOUND_PORT".to_string(), self.port.to_string()),
            ("LEAKHOUND_LISTEN_FD".to_string(), process::LISTEN_FD.to_string()),
            ("LEAKHOUND_CONTROL_FD".to_string(), process::CONTROL_FD.to_string()),
            ("LEAKHOUND_INTERVAL_MS".to_string(), millis(self.cfg.interval).max(10).to_string()),
            ("LEAKHOUND_WAIT_READY".to_string(), if self.cfg.wait_ready { "1" } else { "0" }.to_string()),
            ("LEAKHOUND_WORKER".to_string(), slot.to_string()),
        ];
        let spawned = process::spawn(process::Spawn {
            program,
            args,
            env,
            listener: process::raw_fd(&self.listener),
            control: process::raw_fd(&theirs),
        });
        drop(theirs);
        let mut child = spawned.map_err(|source| Error::Spawn { program: program.to_string_lossy().into_owned(), source })?;
        let pid = child.id().unwrap_or(0);
        let id = self.next_id;
        self.next_id += 1;

        let reader = ours.try_clone().and_then(|r| {
            r.set_nonblocking(true)?;
            tokio::net::UnixStream::from_std(r)
        });
        let reader = reader.map_err(|source| Error::Io { context: "control socket", source })?;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(r) = serde_json::from_str::<Report>(&line) {
                    let _ = tx.send(Msg::Report(id, r));
                }
            }
        });
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx.send(Msg::Exited(id, status));
        });

        let now = Instant::now();
        self.workers.insert(
            id,
            Worker {
                slot,
                pid,
                cause,
                started: now,
                started_unix: unix_now(),
                phase: Phase::Starting { deadline: now + self.cfg.ready_timeout },
                control: ours,
                mem: MemState::new(now),
                early_check: None,
                elsewhere: Vec::new(),
                listened: false,
                snapshot: None,
                killed: None,
                drain_started: None,
                last_report: now,
            },
        );
        if cause != SpawnCause::Replace {
            self.slots[slot].active = Some(id);
            self.slots[slot].restart_at = None;
        }
        self.emit(Event::Spawned { worker: slot, pid, cause, replaces });
        Ok(id)
    }

    fn became_ready(&mut self, id: u64, via: String) {
        let now = Instant::now();
        let Some(w) = self.workers.get_mut(&id) else { return };
        if !matches!(w.phase, Phase::Starting { .. }) {
            return;
        }
        w.phase = Phase::Serving;
        let latency = now - w.started;
        let (slot, pid, cause, started_unix) = (w.slot, w.pid, w.cause, w.started_unix);
        self.ready_latencies.push_back(latency);
        while self.ready_latencies.len() > 5 {
            self.ready_latencies.pop_front();
        }
        self.emit(Event::Ready { worker: slot, pid, ms: millis(latency), via });
        if self.stopping {
            return;
        }
        match cause {
            SpawnCause::Replace => {
                let Some(op) = self.op.as_ref().filter(|o| o.new == id) else { return };
                let (old, reason) = (op.old, op.trigger.reason);
                self.slots[slot].active = Some(id);
                self.metrics.worker_started(slot, started_unix);
                self.metrics.set_up(slot, true);
                match old {
                    Some(old) => self.drain(old, Some(reason)),
                    None => self.op = None,
                }
            }
            SpawnCause::Start | SpawnCause::AfterCrash => {
                self.metrics.worker_started(slot, started_unix);
                self.metrics.set_up(slot, true);
            }
        }
    }

    /// Stop routing to a worker: SIGTERM (the shim stops accepting and
    /// finishes what is in flight), after asking for a snapshot if wanted.
    fn drain(&mut self, id: u64, reason: Option<Reason>) {
        let Some(w) = self.workers.get(&id) else { return };
        if matches!(w.phase, Phase::Draining { .. }) {
            return;
        }
        let (slot, pid) = (w.slot, w.pid);
        let heap_used = w.mem.heap.as_ref().map(|h| h.heap_used).or(w.mem.rss()).unwrap_or(0);
        let mut snapshot = None;
        if let (Some(dir), Some(reason)) = (self.cfg.snapshot_dir.clone(), reason.filter(|r| r.is_memory())) {
            // The container's headroom, else the machine's available memory.
            let fits = match self.fit.limit {
                Some(_) => crate::fit::snapshot_fits(self.fit.limit, crate::fit::usage(self.fit.memory.as_ref()), heap_used),
                None => crate::fit::machine_available()
                    .map_or(Ok(()), |available| crate::fit::Headroom::Machine { available }.snapshot_fits(heap_used)),
            };
            let check = fits.and_then(|()| {
                process::free_space(&dir)
                    .map_err(|e| format!("cannot read the free space of {}: {e}", dir.display()))
                    .and_then(|free| snapshot::disk_check(free, heap_used, self.cfg.snapshot_min_free))
            });
            match check {
                Ok(()) => {
                    let path = dir.join(snapshot::file_name(slot, pid, reason, SystemTime::now()));
                    let part = snapshot::part_path(&path);
                    let cmd = serde_json::json!({"cmd": "snapshot-on-exit", "path": part.to_string_lossy()});
                    let w = self.workers.get_mut(&id).unwrap();
                    let sent = snapshot::create_private_part(&part)
                        .map_err(|e| format!("cannot create {}: {e}", part.display()))
                        .and_then(|()| writeln!(w.control, "{cmd}").map_err(|e| format!("cannot reach the worker's shim: {e}")));
                    match sent {
                        Ok(()) => snapshot = Some(SnapshotJob { part, path, done: false }),
                        Err(why) => {
                            let _ = std::fs::remove_file(&part);
                            self.emit(Event::SnapshotSkipped { worker: slot, pid, why })
                        }
                    }
                }
                Err(why) => self.emit(Event::SnapshotSkipped { worker: slot, pid, why: format!("{} ({})", why, dir.display()) }),
            }
        }
        let w = self.workers.get_mut(&id).unwrap();
        w.snapshot = snapshot;
        w.phase = Phase::Draining { deadline: Instant::now() + self.cfg.grace };
        w.early_check = None;
        w.drain_started = Some(Instant::now());
        process::terminate(pid);
        self.emit(Event::Draining { worker: slot, pid, grace_ms: millis(self.cfg.grace) });
    }

    // ---- inputs --------------------------------------------------------------

    fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::Report(id, r) => self.on_report(id, r),
            Msg::Exited(id, status) => self.on_exit(id, status),
        }
    }

    fn on_report(&mut self, id: u64, r: Report) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        w.last_report = Instant::now();
        match r {
            Report::Hello {} | Report::Draining {} | Report::Drained {} => {}
            Report::Listening { address } => {
                w.listened = true;
                if !self.cfg.wait_ready {
                    self.became_ready(id, format!("listening on {address}"));
                }
            }
            Report::Ready {} => self.became_ready(id, "process.send('ready')".into()),
            Report::ListenElsewhere { port } => w.elsewhere.push(port),
            Report::Mem { heap_used, heap_total, external, heap_limit, floors } => {
                let report = HeapReport { heap_used, heap_total, external, heap_limit, floors };
                w.mem.push_heap(Instant::now(), report, &self.limits);
                self.after_sample(id);
            }
            Report::SnapshotStart {} => {
                // Writing a snapshot takes a while: beyond the grace period.
                if let Phase::Draining { .. } = w.phase {
                    w.phase = Phase::Draining { deadline: Instant::now() + self.cfg.snapshot_timeout };
                }
            }
            Report::Snapshot { ok, ms, error } => {
                let (slot, pid) = (w.slot, w.pid);
                let Some(job) = w.snapshot.as_mut() else { return };
                job.done = true;
                let (part, path) = (job.part.clone(), job.path.clone());
                if !ok {
                    let _ = std::fs::remove_file(&part);
                    let why = format!("the worker could not write it: {}", error.unwrap_or_default());
                    self.emit(Event::SnapshotSkipped { worker: slot, pid, why });
                    return;
                }
                match std::fs::rename(&part, &path) {
                    Ok(()) => {
                        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        let dir = self.cfg.snapshot_dir.clone().unwrap_or_default();
                        let removed = snapshot::prune(&dir, self.cfg.snapshot_keep.max(1));
                        let path = path.to_string_lossy().into_owned();
                        self.emit(Event::Snapshot { worker: slot, pid, path, bytes, ms: ms.unwrap_or(0), removed });
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&part);
                        self.emit(Event::SnapshotSkipped { worker: slot, pid, why: format!("cannot rename {}: {e}", part.display()) });
                    }
                }
            }
        }
    }

    fn on_exit(&mut self, id: u64, status: std::io::Result<ExitStatus>) {
        let Some(w) = self.workers.remove(&id) else { return };
        // Whatever the worker started dies with it.
        process::kill_group(w.pid);
        let now = Instant::now();
        let uptime = now - w.started;
        let (slot, pid) = (w.slot, w.pid);
        let mut status = match (&w.killed, &status) {
            (Some(why), _) => why.clone(),
            (None, Ok(s)) => process::status_text(s),
            (None, Err(e)) => format!("unknown status: {e}"),
        };
        // SIGKILL that leakhound did not send, while the cgroup's OOM-kill
        // counter rose: the kernel's OOM killer.
        let kills = crate::fit::oom_kills(self.fit.memory.as_ref());
        if w.killed.is_none() && status.starts_with("signal 9 ") {
            if let (Some(now_n), Some(before)) = (kills, self.oom_kills_seen) {
                if now_n > before {
                    self.metrics.oom_killed(slot);
                    self.emit(Event::OomKilled { worker: slot, pid, oom_kills: now_n });
                    status = format!("{status}, killed by the kernel's OOM killer");
                }
            }
        }
        if kills.is_some() {
            self.oom_kills_seen = kills;
        }
        if let Some(job) = &w.snapshot {
            if !job.done {
                let _ = std::fs::remove_file(&job.part);
                self.emit(Event::SnapshotSkipped { worker: slot, pid, why: "the worker exited before writing it".into() });
            }
        }
        if self.slots[slot].active == Some(id) {
            self.slots[slot].active = None;
            self.metrics.set_up(slot, false);
        }
        if self.stopping || matches!(w.phase, Phase::Draining { .. }) {
            let drain_ms = w.drain_started.map(|t| millis(now - t));
            self.emit(Event::Exited { worker: slot, pid, status, uptime_ms: millis(uptime), drain_ms });
            if self.op.as_ref().is_some_and(|o| o.old == Some(id)) {
                self.op = None;
            }
            return;
        }
        // A replacement that never became ready: the old worker keeps serving.
        if w.cause == SpawnCause::Replace && self.op.as_ref().is_some_and(|o| o.new == id) {
            let op = self.op.take().unwrap();
            let attempts = op.attempts + 1;
            let retry = self.backoff(attempts);
            let why = self.failure_text(&w, &status);
            self.emit(Event::ReplacementFailed { worker: slot, pid, why, retry_ms: millis(retry) });
            match op.old.filter(|o| self.workers.contains_key(o)) {
                Some(_) => self.queue.push_front(Queued { slot, trigger: op.trigger, not_before: now + retry, attempts }),
                // The old one is gone too: this slot is down, count a crash.
                None => self.crashed(slot, pid, status, uptime, now, false),
            }
            return;
        }
        // It exited on its own.
        let replacing = self.op.as_ref().is_some_and(|o| o.old == Some(id));
        if replacing {
            // Its replacement is already on the way.
            self.op.as_mut().unwrap().old = None;
        }
        let status = if w.phase != Phase::Serving { self.failure_text(&w, &status) } else { status };
        self.crashed(slot, pid, status, uptime, now, replacing);
    }

    fn failure_text(&self, w: &Worker, status: &str) -> String {
        let mut s = status.to_string();
        if !w.listened {
            if let Some(p) = w.elsewhere.first() {
                let p = p.map(|p| format!("port {p}")).unwrap_or_else(|| "another address".into());
                s.push_str(&format!("; it listened on {p}, not on the shared port {} (listen on process.env.PORT)", self.port));
            } else {
                s.push_str(", before it listened");
            }
        }
        s
    }

    fn backoff(&self, n: u32) -> Duration {
        let exp = n.saturating_sub(1).min(30);
        let b = self.cfg.backoff_initial.saturating_mul(1u32 << exp);
        b.min(self.cfg.backoff_max)
    }

    fn crashed(&mut self, slot: usize, pid: u32, status: String, uptime: Duration, now: Instant, replacing: bool) {
        self.metrics.restarted(slot, Reason::Crash);
        let s = &mut self.slots[slot];
        s.crashes_in_a_row = if uptime < self.cfg.min_uptime { s.crashes_in_a_row + 1 } else { 1 };
        let n = s.crashes_in_a_row;
        self.queue.retain(|q| q.slot != slot);
        if self.cfg.max_crash_restarts > 0 && n > self.cfg.max_crash_restarts {
            self.emit(Event::Crashed {
                worker: slot,
                pid,
                status: status.clone(),
                uptime_ms: millis(uptime),
                in_a_row: n,
                backoff_ms: None,
                giving_up: true,
            });
            self.fail(Error::CrashLoop { worker: slot, crashes: n, last: status });
            return;
        }
        let backoff = (!replacing).then(|| self.backoff(n));
        if let Some(b) = backoff {
            self.slots[slot].restart_at = Some(now + b);
        }
        self.emit(Event::Crashed {
            worker: slot,
            pid,
            status,
            uptime_ms: millis(uptime),
            in_a_row: n,
            backoff_ms: backoff.map(millis),
            giving_up: false,
        });
    }

    // ---- time ------------------------------------------------------------------

    fn on_time(&mut self, now: Instant) {
        if now >= self.next_sample {
            self.next_sample += self.cfg.interval;
            if self.next_sample <= now {
                self.next_sample = now + self.cfg.interval;
            }
            let ids: Vec<u64> = self.workers.keys().copied().collect();
            for id in ids {
                self.sample(id, now);
            }
            if std::process::id() == 1 {
                let pids: Vec<u32> = self.workers.values().map(|w| w.pid).collect();
                crate::fit::reap_orphans(&pids);
            }
        }
        let early: Vec<u64> = self.workers.iter().filter(|(_, w)| w.early_check.is_some_and(|t| t <= now)).map(|(id, _)| *id).collect();
        for id in early {
            self.sample(id, now);
        }
        self.deadlines(now);
        if self.stopping {
            return;
        }
        for slot in 0..self.slots.len() {
            if self.slots[slot].restart_at.is_some_and(|t| t <= now) {
                self.slots[slot].restart_at = None;
                if let Err(e) = self.spawn(slot, SpawnCause::AfterCrash, None) {
                    self.fail(e);
                    return;
                }
            }
        }
        if self.op.is_none() {
            if let Some(i) = self.queue.iter().position(|q| q.not_before <= now) {
                let q = self.queue.remove(i).unwrap();
                self.start_restart(q);
            }
        }
    }

    fn sample(&mut self, id: u64, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        w.early_check = None;
        // (0 once it is a zombie.)
        if let Some(rss) = process::rss(w.pid).filter(|r| *r > 0) {
            w.mem.push_rss(now, rss);
        }
        self.after_sample(id);
    }

    /// Update the metrics of a serving worker and decide on a restart.
    fn after_sample(&mut self, id: u64) {
        let latency = self.ready_latency();
        let Some(w) = self.workers.get_mut(&id) else { return };
        let slot = w.slot;
        if self.slots[slot].active != Some(id) || w.phase != Phase::Serving {
            return;
        }
        self.metrics.update(slot, &w.mem);
        // Already queued, or being replaced. (A replacement that serves
        // while its predecessor drains is watched like any other.)
        if self.stopping || self.queue.iter().any(|q| q.slot == slot) || self.op.as_ref().is_some_and(|o| o.old == Some(id)) {
            return;
        }
        match watch::check(&w.mem, &self.limits, latency) {
            Some(trigger) => {
                let (pid, rss) = (w.pid, w.mem.rss());
                let heap_used = w.mem.heap.as_ref().map(|h| h.heap_used);
                let limit = match trigger.reason {
                    Reason::Rss => self.cfg.max_rss,
                    Reason::Heap => self.cfg.max_heap,
                    _ => w.mem.leak.as_ref().and_then(|a| a.limit),
                };
                self.metrics.restarted(slot, trigger.reason);
                self.emit(Event::Restart {
                    worker: slot,
                    pid,
                    reason: trigger.reason,
                    detail: trigger.detail.clone(),
                    rss,
                    heap_used,
                    limit,
                });
                self.queue.push_back(Queued { slot, trigger, not_before: Instant::now(), attempts: 0 });
            }
            None => {
                w.early_check = watch::early_check(&w.mem, &self.limits, latency, self.cfg.interval).map(|d| Instant::now() + d);
            }
        }
    }

    fn start_restart(&mut self, q: Queued) {
        let Some(old) = self.slots[q.slot].active.filter(|id| self.workers.get(id).is_some_and(|w| w.phase == Phase::Serving)) else {
            return; // it crashed meanwhile: the crash path restarts it
        };
        let old_pid = self.workers[&old].pid;
        match self.spawn(q.slot, SpawnCause::Replace, Some(old_pid)) {
            Ok(new) => self.op = Some(Op { old: Some(old), new, trigger: q.trigger, attempts: q.attempts }),
            Err(e) => self.fail(e),
        }
    }

    /// The heartbeat timeout in force, if any (at least 3 intervals).
    fn heartbeat_timeout(&self) -> Option<Duration> {
        (!self.cfg.heartbeat_timeout.is_zero()).then(|| self.cfg.heartbeat_timeout.max(self.cfg.interval * 3))
    }

    fn deadlines(&mut self, now: Instant) {
        let heartbeat = self.heartbeat_timeout();
        let mut kills = Vec::new();
        for w in self.workers.values_mut() {
            if w.killed.is_some() {
                continue;
            }
            let why = match w.phase {
                Phase::Starting { deadline } if deadline <= now => {
                    let mut s = format!("not ready within --ready-timeout {}", duration(self.cfg.ready_timeout));
                    if self.cfg.wait_ready && w.listened {
                        s.push_str(" (it listened but never called process.send('ready'))");
                    }
                    s
                }
                Phase::Draining { deadline } if deadline <= now => "still running at the end of its grace period".to_string(),
                // SIGKILL works on a stopped process too; the crash path
                // then starts a new worker.
                Phase::Serving if heartbeat.is_some_and(|h| now.duration_since(w.last_report) > h) => format!(
                    "no heartbeat for {} (its event loop is blocked or the process is stopped)",
                    duration(now.duration_since(w.last_report))
                ),
                _ => continue,
            };
            w.killed = Some(why.clone());
            process::kill_group(w.pid);
            kills.push((w.slot, w.pid, why));
        }
        for (worker, pid, why) in kills {
            self.emit(Event::Killed { worker, pid, why });
        }
    }
}
