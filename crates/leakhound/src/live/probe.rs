//! The heap-floor probe `watch` installs in the target.
//!
//! Why this way: the floor is the heap used right after a full GC. Reading
//! it from outside at a random time measures the sawtooth, not the floor;
//! forcing a GC before each reading (`--force-gc`) gives the exact floor
//! but pauses the target for a full GC at every sample. So, by default, a
//! `PerformanceObserver` for `gc` entries (perf_hooks, Node 8.5+; `detail`
//! since 16) runs in the target: after each batch of GC entries containing
//! a major GC it records `v8.getHeapStatistics().used_heap_size` in a
//! bounded buffer that each poll drains, and it counts minor, major and
//! other GCs and their time. The observer's callback runs shortly after the
//! GC (Node delivers entries from the event loop), so the reading includes
//! what the program allocated in between: on Node 20 with a busy fixture it
//! was 0.1-0.3 MB above `--trace-gc`'s post-GC figure, a constant offset
//! that does not move a trend. The cost is one small JS callback per batch
//! of GCs and one `Runtime.evaluate` per poll.
//!
//! The probe is keyed per watcher (two watchers do not disturb each other),
//! removed when `watch` ends, and removes itself if nobody polled it for
//! `stale_after_ms` (leakhound killed with SIGKILL): the target is left as
//! it was.

use inspector::{EvalOptions, Session};
use serde::Deserialize;

/// What `install` returns.
#[derive(Debug, Clone, Deserialize)]
pub struct Installed {
    pub heap_size_limit: u64,
}

/// One poll: the memory now and the GCs since the last poll.
#[derive(Debug, Clone, Deserialize)]
pub struct Poll {
    /// The target's clock, ms since the epoch.
    pub now: f64,
    pub rss: u64,
    pub heap_total: u64,
    pub heap_used: u64,
    pub external: u64,
    pub array_buffers: u64,
    /// `[time ms, heap used, heap total]` after major GCs since the last poll.
    pub floors: Vec<(f64, f64, f64)>,
    pub minor: u64,
    pub major: u64,
    pub other: u64,
    pub gc_ms: f64,
    /// Floors lost because the buffer was full (polls too far apart).
    pub dropped: u64,
}

pub use crate::model::watch::GcCounts;

pub struct Probe {
    key: String,
}

const INSTALL: &str = r#"((key, staleAfterMs) => {
  const { PerformanceObserver, constants } = require('perf_hooks');
  const v8 = require('v8');
  const MAJOR = constants.NODE_PERFORMANCE_GC_MAJOR;
  const MINOR = constants.NODE_PERFORMANCE_GC_MINOR;
  const RING = 4096;
  const old = globalThis[key];
  if (old) old.stop();
  const st = { floors: [], minor: 0, major: 0, other: 0, gcMs: 0, dropped: 0, lastPoll: Date.now() };
  let obs = new PerformanceObserver((list) => {
    let major = false;
    for (const e of list.getEntries()) {
      const kind = e.detail ? e.detail.kind : 0;
      st.gcMs += e.duration;
      if (kind === MAJOR) { st.major++; major = true; }
      else if (kind === MINOR) st.minor++;
      else st.other++;
    }
    if (major) {
      const h = v8.getHeapStatistics();
      if (st.floors.length >= RING) { st.floors.shift(); st.dropped++; }
      st.floors.push([Date.now(), h.used_heap_size, h.total_heap_size]);
    }
    if (Date.now() - st.lastPoll > staleAfterMs) stop();
  });
  function stop() {
    if (obs) { obs.disconnect(); obs = null; }
    if (globalThis[key] === api) delete globalThis[key];
  }
  const api = {
    poll() {
      const m = process.memoryUsage();
      const out = { now: Date.now(), rss: m.rss, heap_total: m.heapTotal, heap_used: m.heapUsed,
        external: m.external, array_buffers: m.arrayBuffers || 0, floors: st.floors,
        minor: st.minor, major: st.major, other: st.other, gc_ms: st.gcMs, dropped: st.dropped };
      st.floors = []; st.minor = 0; st.major = 0; st.other = 0; st.gcMs = 0; st.dropped = 0;
      st.lastPoll = out.now;
      return out;
    },
    stop,
  };
  Object.defineProperty(globalThis, key, { value: api, configurable: true, enumerable: false, writable: true });
  obs.observe({ entryTypes: ['gc'] });
  return { heap_size_limit: v8.getHeapStatistics().heap_size_limit };
})"#;

impl Probe {
    /// Install the probe; it removes itself after `stale_after_ms` without a poll.
    pub async fn install(session: &Session, stale_after_ms: u64) -> inspector::Result<(Probe, Installed)> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let key = format!("leakhound.watch.{}.{nanos}", std::process::id());
        let expr = format!("{INSTALL}(Symbol.for({}), {stale_after_ms})", serde_json::to_string(&key).expect("string"));
        // Deferred to the event loop: it requires perf_hooks and v8.
        let installed = session.evaluate_with(&expr, &EvalOptions { defer: true, ..Default::default() }).await?;
        Ok((Probe { key }, installed))
    }

    fn access(&self) -> String {
        format!("globalThis[Symbol.for({})]", serde_json::to_string(&self.key).expect("string"))
    }

    /// Drain the probe. No command-line API: this runs at every sample.
    pub async fn poll(&self, session: &Session) -> inspector::Result<Poll> {
        let expr = format!(
            "(() => {{ const p = {}; if (!p) throw new Error('the leakhound probe is gone'); return p.poll(); }})()",
            self.access()
        );
        session.evaluate_with(&expr, &EvalOptions { command_line_api: false, ..Default::default() }).await
    }

    /// Remove the probe from the target.
    pub async fn remove(&self, session: &Session) -> inspector::Result<()> {
        let expr = format!("(() => {{ const p = {}; if (p) p.stop(); }})()", self.access());
        session.evaluate_with::<serde_json::Value>(&expr, &EvalOptions { command_line_api: false, ..Default::default() }).await?;
        Ok(())
    }
}
