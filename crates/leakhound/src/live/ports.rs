//! Ports that just work for `run`: the app gets a free `PORT` unless one is
//! set, `--load /orders` means that port, and an app that listens
//! elsewhere is found and named.
//!
//! Why: most Node services read `PORT` and fall back to a port of their
//! own (3000, 8080). Without `PORT` in the environment, a newcomer's first
//! `run` loaded a port nobody listened on and waited in silence while the
//! app said where it listened. The app's own process knows its listening
//! sockets: its net.Server handles (over the inspector) say which ports.

use super::Target;
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// The port the app is told to listen on: `PORT` from our environment, or
/// a free loopback port picked now. `picked` when leakhound chose it (and
/// must export it to the app).
#[derive(Debug, Clone, Copy)]
pub struct AppPort {
    pub port: u16,
    pub picked: bool,
}

impl AppPort {
    pub fn choose() -> anyhow::Result<AppPort> {
        if let Some(p) = std::env::var("PORT").ok().and_then(|p| p.trim().parse::<u16>().ok()).filter(|p| *p != 0) {
            return Ok(AppPort { port: p, picked: false });
        }
        // Bound and released at once: the kernel does not hand the same
        // ephemeral port out again right away.
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| anyhow::anyhow!("cannot find a free port on 127.0.0.1: {e}"))?;
        Ok(AppPort { port: l.local_addr()?.port(), picked: true })
    }

    /// `PORT=<port>` for the app, when leakhound picked it.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        if self.picked {
            vec![("PORT".into(), self.port.to_string().into())]
        } else {
            Vec::new()
        }
    }
}

/// `--load` as given, made a URL: `/orders` → `http://127.0.0.1:PORT/orders`,
/// `:8080/x` → `http://127.0.0.1:8080/x`, `localhost:3000/x` →
/// `http://localhost:3000/x`; a full URL is kept.
pub fn expand_url(arg: &str, port: Option<u16>) -> anyhow::Result<String> {
    let a = arg.trim();
    if a.contains("://") {
        return Ok(a.to_string());
    }
    if let Some(path) = a.strip_prefix('/') {
        let Some(port) = port else {
            anyhow::bail!("--load {a}: a path needs a port: set PORT, or give the URL (http://127.0.0.1:PORT/{path})");
        };
        return Ok(format!("http://127.0.0.1:{port}/{path}"));
    }
    if let Some(rest) = a.strip_prefix(':') {
        return Ok(format!("http://127.0.0.1:{rest}"));
    }
    Ok(format!("http://{a}"))
}

/// Whether `--load` named its port itself (a full URL or `:8080`), rather
/// than leaving it to `PORT`.
pub fn names_a_port(arg: &str) -> bool {
    !arg.trim().starts_with('/')
}

/// The TCP ports the app's servers listen on, from its own net.Server
/// handles (`process._getActiveHandles()`); empty when it has none or the
/// inspector cannot tell.
pub async fn listening_ports(target: &Target) -> Vec<u16> {
    const EXPR: &str = r#"(() => {
  const out = [];
  for (const h of process._getActiveHandles()) {
    try {
      if (h && h.listening && typeof h.address === 'function') {
        const a = h.address();
        if (a && typeof a === 'object' && a.port) out.push(a.port);
      }
    } catch (e) {}
  }
  return out;
})()"#;
    let opts = inspector::EvalOptions { command_line_api: false, timeout: Some(Duration::from_secs(5)), ..Default::default() };
    target.session.evaluate_with::<Vec<u16>>(EXPR, &opts).await.unwrap_or_default()
}

/// Wait for the app to answer the first `--load` URL (saying so on a
/// terminal); when it listens on another port than the one `PORT` gave,
/// say so and return the load aimed there. Nothing to wait for without
/// `--load`.
pub async fn ready(
    load: &super::load::Load,
    given: &[String],
    target: &Target,
    timeout: Duration,
    quiet: bool,
) -> anyhow::Result<Option<super::load::Load>> {
    let (Some(req), Some(url)) = (load.requests.first(), load.args.urls.first()) else { return Ok(None) };
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("leakhound: waiting for {url} to answer");
    }
    let implicit = given.first().is_some_and(|g| !names_a_port(g));
    match wait_for_app(req, url, implicit, target, timeout).await? {
        Ready::Answers => Ok(None),
        Ready::Elsewhere { port } => {
            let moved = load.on_port(port)?;
            eprintln!(
                "leakhound: the app listens on port {port}, not on {} (its PORT): loading {} instead",
                want_port_text(url),
                moved.args.urls.join(", ")
            );
            Ok(Some(moved))
        }
    }
}

/// What waiting for the app found.
pub enum Ready {
    /// The first `--load` URL answers.
    Answers,
    /// Nobody answers it, but the app listens on `port`: load that instead.
    Elsewhere { port: u16 },
}

/// Wait until `url` answers (any HTTP status), for at most `timeout`.
/// After a couple of seconds of refusals, ask the app where it listens:
/// when it listens on one other port, return that (`implicit`: the port
/// came from `PORT`, so loading the app's real port is what the user
/// meant) or fail at once naming it.
pub async fn wait_for_app(req: &loadgen::Request, url: &str, implicit: bool, target: &Target, timeout: Duration) -> anyhow::Result<Ready> {
    let start = Instant::now();
    let mut asked = false;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match loadgen::wait_until_ready(req, left.min(Duration::from_millis(1500)).max(Duration::from_millis(1))).await {
            Ok(()) => return Ok(Ready::Answers),
            Err(loadgen::Error::NotReady { last, .. }) => {
                if !asked || start.elapsed() >= Duration::from_secs(5) {
                    asked = true;
                    let want = url_port(url);
                    let ports: Vec<u16> = listening_ports(target).await.into_iter().filter(|p| Some(*p) != want).collect();
                    if let [port] = ports[..] {
                        if implicit {
                            return Ok(Ready::Elsewhere { port });
                        }
                        anyhow::bail!(
                            "nobody answers {url} ({last}), but the app listens on port {port}: use --load {}",
                            with_port(url, port)
                        );
                    }
                }
                if start.elapsed() >= timeout {
                    anyhow::bail!(
                        "the app did not answer {url} within {} ({last}); does it listen on port {}?",
                        super::human_duration(timeout.as_secs_f64()),
                        want_port_text(url)
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn want_port_text(url: &str) -> String {
    url_port(url).map(|p| p.to_string()).unwrap_or_else(|| "?".into())
}

/// The port of `http://host:port/...`.
pub fn url_port(url: &str) -> Option<u16> {
    let rest = url.split("://").nth(1)?;
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// `url` with its port replaced.
pub fn with_port(url: &str, port: u16) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    format!("{scheme}://{host}:{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_arguments_become_urls() {
        assert_eq!(expand_url("/orders", Some(4000)).unwrap(), "http://127.0.0.1:4000/orders");
        assert_eq!(expand_url("/", Some(4000)).unwrap(), "http://127.0.0.1:4000/");
        assert!(expand_url("/orders", None).unwrap_err().to_string().contains("set PORT"));
        assert_eq!(expand_url(":8080/x", None).unwrap(), "http://127.0.0.1:8080/x");
        assert_eq!(expand_url("localhost:3000/x", None).unwrap(), "http://localhost:3000/x");
        assert_eq!(expand_url("http://127.0.0.1:1/a", Some(2)).unwrap(), "http://127.0.0.1:1/a");
        assert_eq!(url_port("http://127.0.0.1:4000/orders"), Some(4000));
        assert_eq!(with_port("http://127.0.0.1:4000/orders?x=1", 3000), "http://127.0.0.1:3000/orders?x=1");
        assert_eq!(with_port("http://localhost:4000", 3000), "http://localhost:3000");
        assert!(!names_a_port("/orders"));
        assert!(names_a_port("http://127.0.0.1:3000/"));
    }
}
