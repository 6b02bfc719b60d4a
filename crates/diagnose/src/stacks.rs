//! Which calls allocated a suspect's leaked objects, from the allocation
//! stacks a snapshot carries when it was taken with allocation tracking
//! (`leakhound run --mode tracking --track-allocations`, DevTools'
//! "Allocation instrumentation on timeline").

use heapsnap::{HeapSnapshot, NodeIndex};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;

/// Most stacks kept per suspect, and frames per stack.
const TOP_STACKS: usize = 3;
const MAX_FRAMES: usize = 16;

/// One allocating call stack of a suspect's leaked objects.
#[derive(Clone, Debug, Serialize)]
pub struct AllocationStack {
    /// Leaked objects (every new object the suspect holds) allocated there.
    pub objects: u64,
    /// Their bytes (self sizes).
    pub bytes: u64,
    /// Innermost first: the allocating function, then its callers.
    pub frames: Vec<Frame>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Frame {
    /// The function's name (`(anonymous)` when it has none).
    pub function: String,
    /// Its script, as V8 names it (empty when unknown).
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u32,
    /// 1-based; 0 when unknown.
    pub column: u32,
}

/// A frame as stacks are merged by: function, script, line, column.
type FrameKey = (String, String, u32, u32);

/// Objects and bytes by allocation site (`trace_node_id`) of one suspect.
#[derive(Default)]
pub struct Sites {
    by_trace: HashMap<u32, (u64, u64)>,
}

impl Sites {
    pub fn add(&mut self, s: &HeapSnapshot, x: NodeIndex, size: u64) {
        let t = s.allocation_trace(x);
        if t != 0 {
            let e = self.by_trace.entry(t).or_default();
            e.0 += 1;
            e.1 += size;
        }
    }

    /// The top stacks by bytes. Sites whose stacks read the same (the same
    /// functions at the same places) are merged.
    pub fn top(&self, s: &HeapSnapshot) -> Vec<AllocationStack> {
        let mut merged: HashMap<Vec<FrameKey>, (u64, u64)> = HashMap::default();
        for (&t, &(n, b)) in &self.by_trace {
            let frames: Vec<_> = s
                .allocation_stack(t)
                .into_iter()
                // The tree's root is no call.
                .filter(|f| !(f.name == "(root)" && f.script.is_empty()))
                .take(MAX_FRAMES)
                .map(|f| (f.name.to_string(), f.script.to_string(), f.line, f.column))
                .collect();
            let e = merged.entry(frames).or_default();
            e.0 += n;
            e.1 += b;
        }
        let mut all: Vec<_> = merged.into_iter().collect();
        all.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(b.1 .0.cmp(&a.1 .0)).then(a.0.cmp(&b.0)));
        all.into_iter()
            .take(TOP_STACKS)
            .map(|(frames, (objects, bytes))| AllocationStack {
                objects,
                bytes,
                frames: frames
                    .into_iter()
                    .map(|(name, file, line, column)| Frame {
                        function: if name.is_empty() { "(anonymous)".into() } else { name },
                        file,
                        line,
                        column,
                    })
                    .collect(),
            })
            .collect()
    }
}

/// What the text reports say when a snapshot has no allocation stacks.
pub const MISSING: &str = "allocation stacks: not recorded in this snapshot; to see which call allocated the leaked objects, \
run `leakhound run --mode tracking --track-allocations`, or take the snapshot with DevTools' \"Allocation instrumentation on timeline\"";
