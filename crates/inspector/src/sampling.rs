//! V8's sampling heap profiler (`HeapProfiler.startSampling` /
//! `getSamplingProfile` / `stopSampling`): typed requests and the profile.
//!
//! V8 samples one allocation per `interval` bytes on average (a Poisson
//! process) and records the JS stack at that moment. Each node of the
//! profile is a function on a stack (its call frame: the function's own
//! location, not the allocating line), `selfSize` the bytes sampled while it
//! was on top, already scaled up by V8 to an estimate of all the bytes
//! allocated there. By default (the flags `includeObjectsCollectedBy*GC`
//! unset) a sample is dropped when its object dies, so the profile shows
//! only what is still alive: the point of forcing a GC just before reading it.
//!
//! Stacks are at most 128 frames, so the profile nests about 260 JSON levels
//! deep, past serde_json's default limit of 128: it is read with the limit
//! off (the depth is bounded by V8, and the parse runs on a full-size stack).

use crate::error::{Error, Result};
use crate::session::Session;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::time::Duration;

/// V8's default mean sampling interval, in bytes.
pub const DEFAULT_SAMPLING_INTERVAL: u64 = 32 * 1024;

/// Where a profile node's function is defined. Lines and columns are
/// 0-based, -1 when unknown (V8's own nodes such as `(root)`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFrame {
    #[serde(default)]
    pub function_name: String,
    #[serde(default)]
    pub script_id: String,
    #[serde(default)]
    pub url: String,
    #[serde(default = "unknown")]
    pub line_number: i64,
    #[serde(default = "unknown")]
    pub column_number: i64,
}

fn unknown() -> i64 {
    -1
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingNode {
    pub call_frame: CallFrame,
    /// Estimated bytes allocated with this function on top of the stack
    /// (V8 sends a number; scaled from the samples).
    pub self_size: f64,
    pub id: u64,
    #[serde(default)]
    pub children: Vec<SamplingNode>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamplingSample {
    /// The sampled allocation's size times the number of allocations it stands for.
    pub size: f64,
    pub node_id: u64,
    /// Order of the sample among all samples taken.
    #[serde(default)]
    pub ordinal: f64,
}

/// `SamplingHeapProfile`; also the format of DevTools' and
/// `node --heap-prof`'s `.heapprofile` files.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SamplingProfile {
    pub head: SamplingNode,
    /// Missing in profiles of old V8 versions.
    #[serde(default)]
    pub samples: Vec<SamplingSample>,
}

impl SamplingProfile {
    /// Parse a profile (the protocol's `profile` object or a `.heapprofile`
    /// file), whatever its nesting depth.
    pub fn from_json(text: &str) -> serde_json::Result<SamplingProfile> {
        let mut de = serde_json::Deserializer::from_str(text);
        de.disable_recursion_limit();
        let p = SamplingProfile::deserialize(&mut de)?;
        de.end()?;
        Ok(p)
    }

    /// Sum of every node's `selfSize`: the estimated live bytes.
    pub fn total_bytes(&self) -> f64 {
        let mut total = 0.0;
        let mut stack = vec![&self.head];
        while let Some(n) = stack.pop() {
            total += n.self_size;
            stack.extend(n.children.iter());
        }
        total
    }
}

impl Drop for SamplingNode {
    // Dropping nested children recursively is fine at V8's depth (≤ 130),
    // but a hand-made file could nest deeper: drop iteratively.
    fn drop(&mut self) {
        let mut stack: Vec<SamplingNode> = std::mem::take(&mut self.children);
        while let Some(mut n) = stack.pop() {
            stack.append(&mut n.children);
        }
    }
}

impl Session {
    /// Start sampling allocations, one per `interval` bytes on average
    /// (`HeapProfiler.enable` then `startSampling`). Only live objects are
    /// kept in the profile (V8's default).
    pub async fn start_sampling(&self, interval: u64) -> Result<()> {
        let t = Some(self.call_timeout().max(Duration::from_secs(60)));
        let _: Value = self.call_with_timeout("HeapProfiler.enable", (), t).await?;
        let _: Value = self.call_with_timeout("HeapProfiler.startSampling", json!({ "samplingInterval": interval }), t).await?;
        Ok(())
    }

    /// The profile so far (`HeapProfiler.getSamplingProfile`); sampling goes on.
    pub async fn sampling_profile(&self) -> Result<SamplingProfile> {
        let method = "HeapProfiler.getSamplingProfile";
        let t = Some(self.call_timeout().max(Duration::from_secs(120)));
        // Kept raw (skipping nested JSON has no depth limit), then parsed deep.
        let raw: Box<RawValue> = self.call_with_timeout(method, (), t).await?;
        #[derive(Deserialize)]
        struct Reply<'a> {
            #[serde(borrow)]
            profile: &'a RawValue,
        }
        let reply: Reply = serde_json::from_str(raw.get()).map_err(|e| bad(method, e))?;
        SamplingProfile::from_json(reply.profile.get()).map_err(|e| bad(method, e))
    }

    /// Stop sampling (`HeapProfiler.stopSampling`); its profile is dropped
    /// unread (take it with [`Session::sampling_profile`] first).
    pub async fn stop_sampling(&self) -> Result<()> {
        let t = Some(self.call_timeout().max(Duration::from_secs(120)));
        let _: Box<RawValue> = self.call_with_timeout("HeapProfiler.stopSampling", (), t).await?;
        Ok(())
    }
}

fn bad(method: &str, e: serde_json::Error) -> Error {
    Error::BadReply { method: method.to_string(), why: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        let mut s = String::new();
        for i in 0..depth {
            s.push_str(&format!(
                r#"{{"callFrame":{{"functionName":"f{i}","scriptId":"1","url":"/a.js","lineNumber":{i},"columnNumber":2}},"selfSize":{},"id":{i},"children":["#,
                if i + 1 == depth { 1024 } else { 0 }
            ));
        }
        for _ in 0..depth {
            s.push_str("]}");
        }
        format!(r#"{{"head":{s},"samples":[{{"size":1024,"nodeId":{},"ordinal":1}}]}}"#, depth - 1)
    }

    #[test]
    fn reads_profiles_deeper_than_serde_jsons_default_limit() {
        // 130 frames: V8's 128-frame stacks under (root).
        let p = SamplingProfile::from_json(&nested(130)).unwrap();
        assert_eq!(p.total_bytes(), 1024.0);
        assert_eq!(p.samples.len(), 1);
        let mut n = &p.head;
        let mut depth = 1;
        while let Some(c) = n.children.first() {
            n = c;
            depth += 1;
        }
        assert_eq!((depth, n.call_frame.function_name.as_str(), n.call_frame.line_number), (130, "f129", 129));
        // Nesting far past V8's own is read and dropped without overflowing the stack.
        let deep = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| SamplingProfile::from_json(&nested(5_000)).map(|p| p.total_bytes()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(deep.unwrap(), 1024.0);
    }

    #[test]
    fn rejects_what_is_not_a_profile() {
        assert!(SamplingProfile::from_json(r#"{"nodes":[],"edges":[]}"#).is_err());
        assert!(SamplingProfile::from_json(r#"{"head":{"callFrame":{},"selfSize":0,"id":1}} trailing"#).is_err());
    }
}
