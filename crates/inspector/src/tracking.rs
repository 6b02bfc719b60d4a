//! Heap object tracking: ids at round boundaries without writing a snapshot.
//!
//! `HeapProfiler.startTrackingHeapObjects` makes V8 give every live object
//! an id on a timer (every 50 ms or more: a full GC, then the heap walked),
//! and with `trackAllocations` at allocation time, with the allocating call
//! stack. After each update it sends `heapStatsUpdate` (live objects and
//! bytes per *fragment*: the ids handed out between two updates) and
//! `lastSeenObjectId` (the largest id so far). Ids only grow, so the
//! largest id at a round's end splits the objects of a later snapshot into
//! those allocated before and after it. `stopTrackingHeapObjects` ends
//! tracking with one full snapshot (with allocation stacks when they were
//! tracked), streamed like `takeHeapSnapshot`. This is DevTools'
//! "Allocation instrumentation on timeline".

use crate::error::{Error, Result};
use crate::session::Session;
use crate::snapshot::{SnapshotOptions, SnapshotProgress};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

/// The tracking state the events have built so far.
#[derive(Debug, Clone, Default)]
pub struct TrackingState {
    /// Per fragment (in update order): the largest id it covers, and its
    /// live objects and bytes as of the last update.
    pub fragments: Vec<Fragment>,
    /// `lastSeenObjectId` events received.
    pub updates: u64,
    /// The target's clock (ms) of the last update.
    pub last_timestamp: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fragment {
    /// The largest id of the fragment (0 until its `lastSeenObjectId`).
    pub last_id: u32,
    pub count: u64,
    pub size: u64,
}

impl TrackingState {
    /// Live bytes now of the objects with ids in `(after, upto]`.
    pub fn live_bytes_between(&self, after: u32, upto: u32) -> u64 {
        let mut lo = 0u32;
        let mut sum = 0;
        for f in &self.fragments {
            // Fragment ids are (previous fragment's last id, last_id].
            if lo >= after && f.last_id <= upto && f.last_id > 0 {
                sum += f.size;
            }
            lo = f.last_id;
        }
        sum
    }

    /// Live bytes of every tracked object.
    pub fn live_bytes(&self) -> u64 {
        self.fragments.iter().map(|f| f.size).sum()
    }
}

/// A round boundary: the largest id V8 had given out after a full GC, and
/// the live bytes per fragment at that moment.
#[derive(Debug, Clone)]
pub struct Boundary {
    pub last_seen_object_id: u32,
    pub state: TrackingState,
}

/// Object tracking in progress on a session. Stop it with
/// [`Tracking::stop_to_file`]; dropping it leaves tracking on in the
/// target until the session closes (V8 stops it then).
pub struct Tracking {
    state: Arc<Mutex<TrackingState>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
    pub track_allocations: bool,
}

impl Drop for Tracking {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn apply(state: &mut TrackingState, method: &str, params: &Value) -> bool {
    match method {
        "HeapProfiler.heapStatsUpdate" => {
            let Some(v) = params.get("statsUpdate").and_then(Value::as_array) else { return false };
            for t in v.chunks_exact(3) {
                let (Some(i), Some(count), Some(size)) = (t[0].as_u64(), t[1].as_u64(), t[2].as_u64()) else { continue };
                let i = i as usize;
                if i >= state.fragments.len() {
                    state.fragments.resize(i + 1, Fragment::default());
                }
                state.fragments[i].count = count;
                state.fragments[i].size = size;
            }
            false
        }
        "HeapProfiler.lastSeenObjectId" => {
            let id = params.get("lastSeenObjectId").and_then(Value::as_u64).unwrap_or(0) as u32;
            let ts = params.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0);
            // The update that ends with this event opened fragment `updates`.
            let i = state.updates as usize;
            if i >= state.fragments.len() {
                state.fragments.resize(i + 1, Fragment::default());
            }
            state.fragments[i].last_id = id;
            state.updates += 1;
            state.last_timestamp = ts;
            true
        }
        _ => false,
    }
}

impl Session {
    /// Start object tracking (`trackAllocations`: also record each
    /// object's allocation stack, at a cost to the target).
    pub async fn start_tracking(&self, track_allocations: bool) -> Result<Tracking> {
        let _: Value = self.call("HeapProfiler.enable", ()).await?;
        let state = Arc::new(Mutex::new(TrackingState::default()));
        let changed = Arc::new(Notify::new());
        // Subscribed before the start, so the first update is seen: fragment
        // indexes count updates from the start of tracking.
        let mut rx = self.subscribe();
        let task = {
            let (state, changed) = (state.clone(), changed.clone());
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(ev) => {
                            if apply(&mut state.lock().unwrap(), &ev.method, &ev.params) {
                                changed.notify_waiters();
                            }
                        }
                        // Stats of changed fragments only: a lost update
                        // would leave stale figures; the fragment indexes
                        // stay right (each update's `lastSeenObjectId` is
                        // also what moves them) only if none is lost, so
                        // the buffer is large and the events small.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => {
                            changed.notify_waiters();
                            break;
                        }
                    }
                }
            })
        };
        let _: Value =
            self.call("HeapProfiler.startTrackingHeapObjects", serde_json::json!({ "trackAllocations": track_allocations })).await?;
        Ok(Tracking { state, changed, task, track_allocations })
    }
}

impl Tracking {
    /// What the events built so far.
    pub fn state(&self) -> TrackingState {
        self.state.lock().unwrap().clone()
    }

    /// A round boundary: force a full GC, then wait for the next update V8
    /// makes after it (every live object then has an id; each later object
    /// gets a larger one). `timeout` bounds the wait for that update.
    pub async fn boundary(&self, session: &Session, timeout: Duration) -> Result<Boundary> {
        session.collect_garbage().await?;
        // Subscribed after the GC's reply: any update seen now ran after it
        // (the target runs one thing at a time and sends in order).
        let mut rx = session.subscribe();
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.method == "HeapProfiler.lastSeenObjectId" => {
                        let id = ev.params.get("lastSeenObjectId").and_then(Value::as_u64).unwrap_or(0) as u32;
                        let ts = ev.params.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0);
                        return Ok((id, ts));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(Error::Closed { during: " while waiting for the heap statistics".into() })
                    }
                }
            }
        };
        let (id, ts) = tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::CallTimeout { method: "HeapProfiler.lastSeenObjectId".into(), secs: timeout.as_secs_f64() })??;
        // The background task may not have applied that update yet.
        loop {
            let notified = self.changed.notified();
            {
                let st = self.state.lock().unwrap();
                if st.last_timestamp >= ts {
                    return Ok(Boundary { last_seen_object_id: id, state: st.clone() });
                }
            }
            if session.is_closed() {
                return Err(Error::Closed { during: " while waiting for the heap statistics".into() });
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// End tracking with one full snapshot written to `out` (streamed as
    /// `take_heap_snapshot_with` does, with its progress), and the boundary
    /// at the snapshot: V8 makes one last update (a full GC and the heap
    /// walked) before it writes, so the round that ends with the snapshot
    /// needs no wait of its own for the update timer (seconds on big heaps).
    pub async fn stop_to_file(
        self,
        session: &Session,
        out: &Path,
        opts: &SnapshotOptions,
        progress: impl FnMut(SnapshotProgress),
    ) -> Result<(u64, Boundary)> {
        // The chunks go only to the stream's consumer, so this receiver sees
        // the few events around them: the last `lastSeenObjectId` is V8's
        // update before it wrote (tracking stops with the snapshot).
        let mut rx = session.subscribe();
        let params = serde_json::json!({ "reportProgress": true, "captureNumericValue": opts.capture_numeric_value });
        let streamed = session.stream_snapshot(out, opts, "HeapProfiler.stopTrackingHeapObjects", params, progress).await;
        let mut last = None;
        loop {
            match rx.try_recv() {
                Ok(ev) if ev.method == "HeapProfiler.lastSeenObjectId" => {
                    let id = ev.params.get("lastSeenObjectId").and_then(Value::as_u64).unwrap_or(0) as u32;
                    let ts = ev.params.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0);
                    last = Some((id, ts));
                }
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        let bytes = streamed?;
        let boundary = match last {
            Some((id, ts)) => {
                // The background task applies the same events; wait for it.
                for _ in 0..50 {
                    let notified = self.changed.notified();
                    if self.state.lock().unwrap().last_timestamp >= ts {
                        break;
                    }
                    let _ = tokio::time::timeout(Duration::from_millis(20), notified).await;
                }
                Boundary { last_seen_object_id: id, state: self.state() }
            }
            // Every Node from 18 to 26 sends that update; without it the
            // last update seen stands in (only the timeline reads it).
            None => {
                let state = self.state();
                Boundary { last_seen_object_id: state.fragments.iter().map(|f| f.last_id).max().unwrap_or(0), state }
            }
        };
        Ok((bytes, boundary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_follow_updates() {
        let mut st = TrackingState::default();
        let ev = |m: &str, v: Value| (m.to_string(), v);
        for (m, v) in [
            ev("HeapProfiler.heapStatsUpdate", serde_json::json!({"statsUpdate": [0, 10, 1000]})),
            ev("HeapProfiler.lastSeenObjectId", serde_json::json!({"lastSeenObjectId": 99, "timestamp": 1.0})),
            ev("HeapProfiler.heapStatsUpdate", serde_json::json!({"statsUpdate": [0, 9, 900, 1, 5, 50]})),
            ev("HeapProfiler.lastSeenObjectId", serde_json::json!({"lastSeenObjectId": 151, "timestamp": 2.0})),
        ] {
            apply(&mut st, &m, &v);
        }
        assert_eq!(st.updates, 2);
        assert_eq!(st.fragments, vec![Fragment { last_id: 99, count: 9, size: 900 }, Fragment { last_id: 151, count: 5, size: 50 }]);
        assert_eq!(st.live_bytes(), 950);
        assert_eq!(st.live_bytes_between(0, 99), 900);
        assert_eq!(st.live_bytes_between(99, 151), 50);
    }
}
