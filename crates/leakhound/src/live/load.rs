//! The load a live command puts on the app meanwhile (`run`, `allocations`):
//! `--load URL...` for the built-in driver, or `--load-cmd CMD` for the
//! user's own (autocannon, k6). One set of flags, one way to run a phase.

use anyhow::{bail, Context, Result};
use loadgen::{LoadConfig, LoadReport, Request, Stop};
use std::time::Duration;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct LoadArgs {
    /// URL to load (on this machine), or a path like /orders on the app's
    /// $PORT; several rotate, one per request.
    #[arg(long = "load", value_name = "URL|PATH")]
    pub urls: Vec<String>,
    /// Run your own load driver instead (`sh -c`), e.g. 'autocannon -a 2000 http://127.0.0.1:3000/'.
    #[arg(long, value_name = "CMD", conflicts_with = "urls")]
    pub load_cmd: Option<String>,
    /// Concurrent connections of the load driver.
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Per-request timeout, connecting included; a load that gets no
    /// response at all for this long means the app stopped answering.
    #[arg(long, default_value = "10s", value_parser = crate::flags::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// What each request is, beside its URL (`load`, `run`, `allocations`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RequestArgs {
    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// A request header, `'Name: value'`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Request body: the text itself, or `@FILE` for a file's bytes.
    #[arg(short = 'b', long)]
    pub body: Option<String>,
}

impl RequestArgs {
    /// One request per URL, for the driver to rotate through.
    pub fn build(&self, urls: &[String]) -> Result<Vec<Request>> {
        build_requests(urls, &self.method, &self.headers, self.body.as_deref())
    }
}

/// The load, checked and ready to run phase after phase.
pub struct Load {
    pub args: LoadArgs,
    pub requests: Vec<Request>,
}

impl LoadArgs {
    /// `--load /path` means the port in `PORT`.
    pub fn prepare(&self) -> Result<Load> {
        let port = std::env::var("PORT").ok().and_then(|p| p.trim().parse::<u16>().ok());
        self.prepare_on(port)
    }

    /// Check the load; `--load /path` means a path on `port`.
    pub fn prepare_on(&self, port: Option<u16>) -> Result<Load> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        let mut args = self.clone();
        args.urls = self.urls.iter().map(|u| crate::live::ports::expand_url(u, port)).collect::<Result<_>>()?;
        let requests = if args.urls.is_empty() { Vec::new() } else { args.request.build(&args.urls)? };
        Ok(Load { args, requests })
    }
}

impl Load {
    /// Wait until the first URL answers (any HTTP status), for at most
    /// `timeout`; nothing to wait for without `--load`.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<()> {
        if let Some(first) = self.requests.first() {
            match loadgen::wait_until_ready(first, timeout).await {
                Ok(()) => {}
                // Its message names the URL and the wait already.
                Err(e @ loadgen::Error::NotReady { .. }) => bail!("the app did not answer: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The same load aimed at another port (the app listens elsewhere).
    pub fn on_port(&self, port: u16) -> Result<Load> {
        let mut args = self.args.clone();
        args.urls = args.urls.iter().map(|u| crate::live::ports::with_port(u, port)).collect();
        let requests = args.request.build(&args.urls)?;
        Ok(Load { args, requests })
    }

    /// What one phase does, for progress lines: `2000 requests to URL`.
    pub fn describe(&self, stop: Stop) -> String {
        match &self.args.load_cmd {
            Some(cmd) => cmd.clone(),
            None if self.requests.is_empty() => format!("{} without load", stop_text(stop)),
            None => format!("{} to {}", stop_text(stop), self.args.urls.join(", ")),
        }
    }

    /// One load phase. The built-in driver stops at `stop`; a `--load-cmd`
    /// runs to its own end; without load the app is left alone for the
    /// phase's duration (`idle` when `stop` counts requests). `None` when
    /// there are no figures (a command, or no load).
    pub async fn phase(&self, stop: Stop, idle: Duration, name: &str) -> Result<Option<LoadReport>> {
        self.phase_watched(stop, idle, name, None).await
    }

    /// `phase` that `cancel` ends early with the built-in driver's figures
    /// so far (Ctrl-C: the partial report still has the load).
    pub async fn phase_cancellable(
        &self,
        stop: Stop,
        idle: Duration,
        name: &str,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<Option<LoadReport>> {
        if self.args.load_cmd.is_some() || self.requests.is_empty() {
            return self.phase(stop, idle, name).await;
        }
        let mut cfg = LoadConfig::new(self.requests.clone(), self.args.connections, stop);
        if !self.args.timeout.is_zero() {
            cfg.timeout = self.args.timeout;
        }
        let report = loadgen::run(&cfg, None, Some(cancel)).await?;
        if report.requests > 0 && report.errors == report.requests {
            let example = report.error_examples.values().next().cloned().unwrap_or_default();
            bail!("every request of the {name} failed: {example}");
        }
        Ok(Some(report))
    }

    /// `phase`, telling `progress` how many requests finished (for the
    /// watchdog: which phase, how far, is it stuck).
    pub async fn phase_watched(
        &self,
        stop: Stop,
        idle: Duration,
        name: &str,
        progress: Option<&crate::live::watchdog::Progress>,
    ) -> Result<Option<LoadReport>> {
        if let Some(cmd) = &self.args.load_cmd {
            let r = loadgen::run_command(cmd, Duration::from_secs(3600)).await?;
            if !r.success() {
                let how = match (r.exit_code, r.signal, r.timed_out) {
                    (_, _, true) => "timed out".to_string(),
                    (Some(c), _, _) => format!("exit {c}"),
                    (_, Some(sig), _) => format!("signal {sig}"),
                    _ => "failed".to_string(),
                };
                bail!("the load command failed ({how}): {cmd}");
            }
            return Ok(None);
        }
        if self.requests.is_empty() {
            let d = match stop {
                Stop::Duration(d) => d,
                Stop::Requests(_) => idle,
            };
            tokio::time::sleep(d).await;
            return Ok(None);
        }
        let mut cfg = LoadConfig::new(self.requests.clone(), self.args.connections, stop);
        if !self.args.timeout.is_zero() {
            cfg.timeout = self.args.timeout;
        }
        let report = match progress {
            Some(p) => {
                p.loading(true);
                let tell = |c: loadgen::Counts| p.requests(c.answered);
                let r = loadgen::run_counted(&cfg, Some(&tell), None).await;
                p.loading(false);
                r?
            }
            None => loadgen::run(&cfg, None, None).await?,
        };
        if report.requests > 0 && report.errors == report.requests {
            let example = report.error_examples.values().next().cloned().unwrap_or_default();
            bail!("every request of the {name} failed: {example}");
        }
        Ok(Some(report))
    }
}

fn stop_text(s: Stop) -> String {
    match s {
        Stop::Requests(n) => format!("{n} requests"),
        Stop::Duration(d) => format!("{:.1} s", d.as_secs_f64()),
    }
}

/// The requests of the rotation, from the command line.
pub fn build_requests(urls: &[String], method: &str, headers: &[String], body: Option<&str>) -> Result<Vec<Request>> {
    let body = match body {
        Some(b) if b.starts_with('@') => {
            let path = &b[1..];
            Some(bytes::Bytes::from(std::fs::read(path).with_context(|| format!("cannot read the body file {path}"))?))
        }
        Some(b) => Some(bytes::Bytes::copy_from_slice(b.as_bytes())),
        None => None,
    };
    let mut parsed_headers = Vec::new();
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("header `{h}` is not `Name: value`");
        };
        parsed_headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut out = Vec::new();
    for url in urls {
        let mut req = Request::new(method, url)?;
        req.headers = parsed_headers.clone();
        req.body = body.clone();
        req.check()?;
        out.push(req);
    }
    Ok(out)
}
