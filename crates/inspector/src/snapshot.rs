//! Heap snapshots streamed to disk.
//!
//! `HeapProfiler.takeHeapSnapshot` answers `{}` only after it has sent the
//! whole file as `addHeapSnapshotChunk` events (~100 k characters each) and
//! `reportHeapSnapshotProgress` events while it builds the graph. Chunks
//! are written as they arrive into `<out>.part`; the file is renamed to
//! `out` only after the reply came and the text is a whole JSON object, so
//! a file named `out` is always complete.

use crate::error::{Error, Result};
use crate::session::{Event, Session};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// What `take_heap_snapshot_with` reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// V8 is building the snapshot: `done` of `total` objects.
    Building { done: u64, total: u64 },
    /// Bytes of the file written so far.
    Writing { bytes: u64 },
}

#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Record numeric values of objects (`captureNumericValue`, Node >= 20
    /// honours it; older ones ignore it).
    pub capture_numeric_value: bool,
    /// Give up when the target sends nothing (no progress, no chunk) for
    /// this long. There is no limit on the total time: a big heap takes minutes.
    pub idle_timeout: Duration,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions { capture_numeric_value: false, idle_timeout: Duration::from_secs(180) }
    }
}

pub use crate::private::part_path;

struct PartFile<'a> {
    path: &'a Path,
    keep: bool,
}

impl Drop for PartFile<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

/// Chunks held between the socket and the disk: the whole buffer is
/// `STREAM_CAPACITY` chunks plus one write buffer, a few MB at most.
const STREAM_CAPACITY: usize = 8;
const WRITE_BUFFER: usize = 1 << 20;

impl Session {
    /// `take_heap_snapshot` with options and both kinds of progress.
    pub async fn take_heap_snapshot_with(&self, out: &Path, opts: &SnapshotOptions, progress: impl FnMut(SnapshotProgress)) -> Result<u64> {
        let params = serde_json::json!({
            "reportProgress": true,
            "captureNumericValue": opts.capture_numeric_value,
        });
        self.stream_snapshot(out, opts, "HeapProfiler.takeHeapSnapshot", params, progress).await
    }

    /// Stream the snapshot that `method` (`takeHeapSnapshot`, or
    /// `stopTrackingHeapObjects`, which ends object tracking with one) sends.
    pub(crate) async fn stream_snapshot(
        &self,
        out: &Path,
        opts: &SnapshotOptions,
        method: &str,
        params: Value,
        mut progress: impl FnMut(SnapshotProgress),
    ) -> Result<u64> {
        let part = part_path(out);
        let write_err = |path: &Path, e: std::io::Error| Error::Write { path: path.to_path_buf(), source: e };
        // 0600 from the first byte: the snapshot holds the process's secrets.
        let file = crate::private::create_file(&part).map_err(|e| write_err(&part, e))?;
        // Removes the .part file on every way out but success, including
        // this future being dropped (the caller gave up, Ctrl-C).
        let mut part_guard = PartFile { path: &part, keep: false };
        let mut w = std::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = 0u64;
        let mut first_byte = None::<u8>;
        let mut last_byte = None::<u8>;

        let result: Result<()> = async {
            let _: Value = self.call("HeapProfiler.enable", ()).await?;
            let (_guard, mut events) = self.open_stream(STREAM_CAPACITY).await;
            let reply = self.call_with_timeout::<_, Value>(method, params, None);
            tokio::pin!(reply);
            let mut handle = |ev: Event| -> Result<()> {
                match ev.method.as_str() {
                    "HeapProfiler.addHeapSnapshotChunk" => {
                        let chunk = ev.params.get("chunk").and_then(Value::as_str).unwrap_or("");
                        let bytes = chunk.as_bytes();
                        if first_byte.is_none() {
                            first_byte = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
                        }
                        if let Some(&b) = bytes.iter().rev().find(|b| !b.is_ascii_whitespace()) {
                            last_byte = Some(b);
                        }
                        w.write_all(bytes).map_err(|e| write_err(&part, e))?;
                        written += bytes.len() as u64;
                        progress(SnapshotProgress::Writing { bytes: written });
                    }
                    "HeapProfiler.reportHeapSnapshotProgress" => {
                        let n = |k: &str| ev.params.get(k).and_then(Value::as_u64).unwrap_or(0);
                        progress(SnapshotProgress::Building { done: n("done"), total: n("total") });
                    }
                    _ => {}
                }
                Ok(())
            };
            let mut deadline = tokio::time::Instant::now() + opts.idle_timeout;
            let mut stream_open = true;
            loop {
                tokio::select! {
                    biased;
                    ev = events.recv(), if stream_open => match ev {
                        Some(ev) => {
                            handle(ev)?;
                            deadline = tokio::time::Instant::now() + opts.idle_timeout;
                        }
                        None => stream_open = false,
                    },
                    r = &mut reply => {
                        r?;
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        return Err(Error::SnapshotStalled { secs: opts.idle_timeout.as_secs_f64() });
                    }
                }
            }
            // Events arrive before the reply that follows them: whatever is
            // still queued belongs to this snapshot.
            while let Ok(ev) = events.try_recv() {
                handle(ev)?;
            }
            Ok(())
        }
        .await;

        let result = result.and_then(|()| {
            if written == 0 {
                return Err(Error::Incomplete("the target sent no data".into()));
            }
            if first_byte != Some(b'{') || last_byte != Some(b'}') {
                return Err(Error::Incomplete(format!("{written} bytes received that do not form one JSON object")));
            }
            let file = w.into_inner().map_err(|e| write_err(&part, e.into_error()))?;
            file.sync_all().map_err(|e| write_err(&part, e))?;
            drop(file);
            std::fs::rename(&part, out).map_err(|e| write_err(out, e))?;
            part_guard.keep = true;
            Ok(())
        });
        drop(part_guard);
        match result {
            Ok(()) => Ok(written),
            Err(e) => Err(match e {
                Error::Closed { .. } => Error::Closed {
                    during: format!(" while taking the heap snapshot ({written} bytes received; nothing written to {})", out.display()),
                },
                other => other,
            }),
        }
    }
}
