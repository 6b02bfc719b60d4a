//! What leaks, from N ≥ 3 snapshots of one process taken under the same
//! repeated workload (memlab's three-snapshot technique, generalised).
//!
//! V8 gives an object its id the first time a snapshot sees it and keeps it
//! for the object's life, from a counter that only grows. So in the last
//! snapshot an object is *new* when its id is above the first snapshot's
//! largest id, it was first seen in the earliest snapshot whose largest id
//! is at least its own, and it is a *survivor* when that snapshot is not the
//! last. No id sets are needed; only the largest id of each earlier snapshot.
//!
//! In the last snapshot a breadth-first shortest-path tree from the roots
//! (DevTools' distance rules) gives every node one parent. A new object
//! whose nearest container ancestor is old is a *leak root*; that old
//! container is its *accumulator* (where the fix goes); new objects below a
//! leak root belong to it. Internal arrays (elements, property and hash
//! tables) are see-through, so the accumulator of an array's element is the
//! array, not its backing store. Leak roots are grouped by the shape of
//! their accumulator's path from the roots (edge names and classes, indexes
//! and dictionary keys blurred, repeated links of a chain folded), so ten
//! thousand leaked closures in one listener array are one suspect. A group
//! is a suspect when the bytes of its objects that appeared in every step
//! reach the noise threshold in every step, or when it gained a steady
//! count of objects in every step above the run's own noise (a slow leak of
//! a few bytes per request). Backing stores outside the JS heap (an
//! ArrayBuffer's `system / JSArrayBufferData`) count with the object that
//! holds them. A growing collection with a bound it has not reached (a
//! store preallocated to its capacity, a `max` field) is `bounded`, not a
//! suspect.

use crate::describe::{class_name, edge_label, node_label_within, path_steps, start_label};
use crate::patterns::{self, Evidence, Pattern};
use heapsnap::classes::Classes;
use heapsnap::distances::NO_EDGE;
use heapsnap::retainers::{edge_source, shortest_paths, PathStep, RetainerPath, Retainers};
use heapsnap::source::{ScriptNames, SourceLocation};
use heapsnap::{EdgeIndex, EdgeKind, EdgeName, HeapSnapshot, NodeIndex, NodeKind};
use rustc_hash::{FxHashMap as HashMap, FxHasher};
use serde::Serialize;
use std::hash::Hasher;

/// Tuning of a diagnosis.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bytes a group must gain in every step to count as growing.
    pub min_growth: u64,
    /// Most suspects reported.
    pub max_suspects: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { min_growth: DEFAULT_MIN_GROWTH, max_suspects: 10 }
    }
}

/// Default noise threshold per step: a few hundred requests of a typical
/// leak exceed it; V8's own churn between snapshots (feedback, code,
/// interned strings) is excluded by kind and rarely reaches it.
pub const DEFAULT_MIN_GROWTH: u64 = 64 * 1024;

/// Fewest objects a group must gain in every step to count as growing at
/// any byte size (a slow leak of one short string per request): with the
/// run's own noise floor (see [`Diagnosis::noise_objects_per_step`]) above it.
pub const MIN_OBJECTS_PER_STEP: u64 = 64;

/// What is kept of an earlier snapshot: its largest id and its node ids
/// (which objects were alive), and with an exact census the entry count and
/// retained size of every object (to follow accumulators step by step).
pub struct Census {
    pub file: String,
    pub node_count: usize,
    pub total_size: u64,
    pub max_id: u32,
    /// Node ids in snapshot order (looked up only for the few accumulators).
    ids: Vec<u32>,
    exact: Option<(Vec<u32>, Vec<u64>)>,
    /// Sampled ids and types: same process and id map? (`identity`)
    identity: crate::identity::IdSample,
    /// A round boundary recorded by object tracking, not a snapshot: no
    /// ids, only the largest one (see [`Census::boundary`]).
    boundary: bool,
}

impl Census {
    /// Keep what later steps need of `s` (analysed, sizes folded).
    pub fn take(file: &str, s: &HeapSnapshot, retained: Vec<u64>) -> Census {
        Census { exact: Some((entries(s), retained)), ..Census::ids_only(file, s) }
    }

    /// Ids only: enough for `s` read with `heapsnap::parse_nodes_only`.
    pub fn ids_only(file: &str, s: &HeapSnapshot) -> Census {
        Census {
            file: file.to_string(),
            node_count: s.node_count(),
            total_size: s.total_size(),
            max_id: max_object_id(s),
            ids: s.nodes().map(|n| s.id(n)).collect(),
            exact: None,
            identity: crate::identity::IdSample::of(s),
            boundary: false,
        }
    }

    /// A round boundary of object tracking (`HeapProfiler.startTrackingHeapObjects`):
    /// the largest id V8 had given out after a full GC, and the live bytes
    /// then. With tracking, ids follow allocation time, so an object of the
    /// last snapshot with an id at most `max_id` was allocated before this
    /// boundary and, being alive at the end, was alive at it.
    pub fn boundary(label: &str, max_id: u32, live_bytes: u64) -> Census {
        Census {
            file: label.to_string(),
            node_count: 0,
            total_size: live_bytes,
            max_id,
            ids: Vec::new(),
            exact: None,
            identity: crate::identity::IdSample::default(),
            boundary: true,
        }
    }

    /// Whether the object with this id was alive, and its (entries,
    /// retained size) with an exact census.
    pub fn lookup(&self, id: u32) -> Option<Option<(u32, u64)>> {
        if self.boundary {
            // Alive at the end and allocated before the boundary.
            return (id <= self.max_id).then_some(None);
        }
        let n = self.ids.iter().position(|&i| i == id)?;
        Some(self.exact.as_ref().map(|(e, r)| (e[n], r[n])))
    }
}

/// The largest id V8 gave a heap object (odd ids; embedder nodes and
/// synthetic roots have ids of their own scheme, so they are left out).
pub fn max_object_id(s: &HeapSnapshot) -> u32 {
    s.nodes().filter(|&n| counts_as_object(s.kind(n))).map(|n| s.id(n)).filter(|id| id % 2 == 1).max().unwrap_or(0)
}

fn counts_as_object(k: NodeKind) -> bool {
    !matches!(k, NodeKind::Synthetic | NodeKind::Native)
}

/// Internal arrays that belong to one owner (backing stores, hash tables):
/// looked through when naming accumulators.
fn see_through(k: NodeKind) -> bool {
    k == NodeKind::Array
}

/// What can be a leak root: things JavaScript code creates and keeps.
fn can_be_leak_root(k: NodeKind) -> bool {
    matches!(
        k,
        NodeKind::Object
            | NodeKind::Closure
            | NodeKind::String
            | NodeKind::ConsString
            | NodeKind::SlicedString
            | NodeKind::Regexp
            | NodeKind::BigInt
            | NodeKind::Symbol
            | NodeKind::Hidden
    )
}

/// Entries an object holds: its elements and named properties, plus those
/// of its own backing stores and hash table (Map/Set entries).
pub fn entries(s: &HeapSnapshot) -> Vec<u32> {
    s.nodes().map(|n| entries_of(s, n)).collect()
}

pub use heapsnap::distances::PathTree;

/// The last snapshot, analysed.
pub struct Last<'a> {
    pub tree: &'a PathTree,
    pub file: &'a str,
    pub snapshot: &'a HeapSnapshot,
    pub retained: &'a [u64],
    pub classes: &'a Classes,
    pub scripts: &'a ScriptNames,
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    pub file: String,
    pub nodes: usize,
    pub total_size: u64,
    pub max_id: u32,
}

pub use crate::evidence::{Accumulator, ClassCount, Step};

#[derive(Clone, Debug, Serialize)]
pub struct Suspect {
    pub pattern: Pattern,
    pub title: String,
    pub accumulator: Accumulator,
    /// From a GC root to one leaked object, through the accumulator.
    pub retainer_path: Vec<Step>,
    pub path_text: String,
    /// The first place in the app's own code on the way: the leaked
    /// object's constructor or closure, or a closure on the path.
    pub location: Option<SourceLocation>,
    /// Leaked objects per class (the group's leak roots), largest first.
    pub classes: Vec<ClassCount>,
    /// Leak roots that appeared in each step and are still alive.
    pub objects_per_step: Vec<u64>,
    /// Bytes (shallow, of every new object they hold, backing stores
    /// outside the JS heap included) per step.
    pub bytes_per_step: Vec<u64>,
    /// The part of `bytes_per_step` outside the JS heap: backing stores
    /// (`system / JSArrayBufferData`) of the objects they hold.
    pub native_bytes_per_step: Vec<u64>,
    /// The growth outside the JS heap in words, when there is some:
    /// "Buffers held by uploads (Map): +1.9 MB per step outside the JS heap".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside_heap: Option<String>,
    /// Objects allocated after the first snapshot and alive in every later one.
    pub survivors: u64,
    pub survivor_bytes: u64,
    pub advice: String,
    /// The top call stacks that allocated its leaked objects, by bytes
    /// (empty when the snapshot has no allocation stacks).
    pub allocation_stacks: Vec<crate::stacks::AllocationStack>,
}

/// The one verdict of every analysis (see [`crate::verdict`]).
pub use crate::verdict::Verdict;

#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    pub verdict: Verdict,
    pub min_growth_bytes_per_step: u64,
    /// The run's own noise, in objects per step: the most leak roots a group
    /// gained in one step while gaining none in another (a cache warming up,
    /// a bounded cache evicting). A group also counts as growing when it
    /// gained more than this, and at least `MIN_OBJECTS_PER_STEP`, in every
    /// step, steadily (its smallest step at least half its largest), whatever
    /// its bytes.
    pub noise_objects_per_step: u64,
    pub snapshots: Vec<SnapshotInfo>,
    /// Objects allocated after the first snapshot and alive in every later one (every one counted).
    pub survivors: u64,
    pub survivor_bytes: u64,
    pub suspects: Vec<Suspect>,
    /// Groups that grew but not in every step or below the threshold (largest first), for --verbose.
    pub below_threshold: Vec<Suspect>,
    /// Collections that grew in every step but have a bound they have not
    /// reached yet (an LRU cache still filling): not suspects.
    pub bounded: Vec<Bounded>,
    pub warnings: Vec<String>,
    /// Whether the last snapshot carries allocation stacks (taken with
    /// allocation tracking); without them suspects have no `allocation_stacks`.
    pub has_allocation_stacks: bool,
}

/// A collection that grows toward a bound it has not reached yet.
#[derive(Clone, Debug, Serialize)]
pub struct Bounded {
    /// How the code names it (the variable holding the cache).
    pub name: String,
    pub class: String,
    /// Entries in the last snapshot.
    pub entries: u64,
    /// Where it stops: the bound, in entries.
    pub max_entries: u64,
    /// Its retained size in the last snapshot.
    pub retained: u64,
    /// Its retained size at the bound, extrapolated from the bytes per entry so far.
    pub max_bytes: u64,
    /// What the bound was read from: `preallocated` (a store sized to the
    /// bound, filling its empty slots) or `field` (a numeric field such as
    /// `max`, `maxSize` beside the collection).
    pub evidence: String,
    /// "bounded, still filling: will stop at about 50000 entries / 20.8 MB".
    pub note: String,
}

const NONE: u32 = u32::MAX;
const EXCLUDED: u32 = u32::MAX - 1;

#[derive(Default)]
struct Group {
    roots: u64,
    bytes: u64,
    step_bytes: Vec<u64>,
    /// The part of `step_bytes` outside the JS heap (backing stores).
    native_step_bytes: Vec<u64>,
    step_roots: Vec<u64>,
    survivors: u64,
    survivor_bytes: u64,
    accumulators: HashMap<NodeIndex, u64>,
    /// By leaked kind (see `kind_key`): (objects, bytes).
    classes: HashMap<u64, (u64, u64)>,
    closure_bytes: u64,
    resource_store: bool,
    /// Where its objects were allocated (with allocation stacks only).
    sites: crate::stacks::Sites,
}

/// Why snapshots cannot be diagnosed together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiagnoseError {
    #[error("diagnose needs at least three snapshots of one process")]
    TooFewSnapshots,
    /// A later snapshot's largest object id is below an earlier one's:
    /// out of order, or from another process.
    #[error(
        "{later} has older object ids than {earlier} (largest id {later_max} < {earlier_max}): give the snapshots oldest first, all from one process"
    )]
    OutOfOrder { later: String, earlier: String, later_max: u32, earlier_max: u32 },
    /// Two snapshots whose ids name different objects: not one process and
    /// one inspector session (see `identity`).
    #[error("{0}")]
    NotOneProcess(String),
}

/// The diagnosis of `earlier` snapshots (oldest first) and the last one.
pub fn diagnose(earlier: &[Census], last: &Last, opts: &Options) -> Result<Diagnosis, DiagnoseError> {
    let s = last.snapshot;
    if earlier.len() < 2 {
        return Err(DiagnoseError::TooFewSnapshots);
    }
    // One process, one id map: every pair in order.
    for w in earlier.windows(2) {
        crate::identity::check(&w[0].identity, &w[0].file, &w[1].identity, &w[1].file).map_err(DiagnoseError::NotOneProcess)?;
    }
    let prev = &earlier[earlier.len() - 1];
    crate::identity::check(&prev.identity, &prev.file, &crate::identity::IdSample::of(s), last.file)
        .map_err(DiagnoseError::NotOneProcess)?;
    let mut warnings = Vec::new();
    let mut maxes: Vec<u32> = earlier.iter().map(|c| c.max_id).collect();
    let last_max = max_object_id(s);
    maxes.push(last_max);
    for w in 1..maxes.len() {
        if maxes[w] < maxes[w - 1] {
            let name = |k: usize| if k < earlier.len() { earlier[k].file.clone() } else { last.file.to_string() };
            return Err(DiagnoseError::OutOfOrder { later: name(w), earlier: name(w - 1), later_max: maxes[w], earlier_max: maxes[w - 1] });
        }
    }
    let first = &earlier[0];
    // Same process? Most long-lived objects of the first snapshot must still be there.
    let old_in_last = s.nodes().filter(|&n| counts_as_object(s.kind(n)) && s.id(n) <= first.max_id).count();
    if old_in_last * 10 < first.node_count {
        warnings.push(format!(
            "only {old_in_last} of {} objects of {} are still in {}: are these snapshots of one process?",
            first.node_count, first.file, last.file
        ));
    }
    let steps = maxes.len() - 1;
    let max1 = maxes[0];
    let first_seen_step = |id: u32| -> usize {
        // Step k (0-based) = appeared between snapshot k and k+1.
        (1..maxes.len()).find(|&k| id <= maxes[k]).unwrap_or(steps) - 1
    };

    let n = s.node_count();
    let is_new = |x: NodeIndex| counts_as_object(s.kind(x)) && s.id(x) > max1;
    // Shortest-path tree, parents before children.
    let PathTree { parent_edge, parent_node, dist, order } = last.tree;
    let parent = |x: NodeIndex| -> Option<NodeIndex> {
        let p = parent_node[x as usize];
        (p != NONE).then_some(p)
    };
    // Nearest container ancestor (self included), and each node's leak root.
    let mut owner: Vec<NodeIndex> = vec![NONE; n];
    let mut root_of: Vec<u32> = vec![NONE; n];
    // Leak root -> its accumulator (NONE elsewhere).
    let mut acc_of_root: Vec<NodeIndex> = vec![NONE; n];
    for &x in order {
        let p = parent(x);
        owner[x as usize] = match p {
            Some(p) if see_through(s.kind(x)) => owner[p as usize],
            _ => x,
        };
        let Some(p) = p else { continue };
        if is_backing_store(s, x) {
            // Memory outside the JS heap (an ArrayBuffer's backing store)
            // belongs to the new object that holds it.
            if is_new(p) && !see_through(s.kind(p)) {
                root_of[x as usize] = root_of[p as usize];
            }
            continue;
        }
        if !is_new(x) {
            continue;
        }
        if see_through(s.kind(x)) {
            root_of[x as usize] = root_of[p as usize];
            continue;
        }
        let mut a = owner[p as usize];
        if a == NONE {
            continue;
        }
        // A link of a chain of its own kind (a linked list of timers, a
        // tree of nodes): the container is where the chain hangs.
        let class = last.classes.class_of(x);
        if !is_new(a) {
            let mut guard = 0;
            while last.classes.class_of(a) == class && guard < 1_000_000 {
                match parent(a) {
                    Some(q) if owner[q as usize] != NONE => a = owner[q as usize],
                    _ => break,
                }
                guard += 1;
            }
        }
        root_of[x as usize] = if is_new(a) {
            root_of[a as usize]
        } else if can_be_leak_root(s.kind(x)) && can_accumulate(s, a) && (s.kind(x) != NodeKind::Hidden || is_context(s, x)) {
            acc_of_root[x as usize] = a;
            x
        } else {
            EXCLUDED
        };
    }

    // Group the leak roots by the shape of their accumulator's path.
    let mut shape_memo: HashMap<NodeIndex, u64> = HashMap::default();
    let mut group_of_shape: HashMap<u64, usize> = HashMap::default();
    let mut groups: Vec<Group> = Vec::new();
    // Leak root -> its group, and the bytes it holds (new objects below it).
    let mut group_of_root: Vec<u32> = vec![NONE; n];
    let mut root_bytes: Vec<u64> = vec![0; n];
    let mut roots: Vec<NodeIndex> = Vec::new();
    for &x in order {
        if root_of[x as usize] != x {
            continue;
        }
        roots.push(x);
        let a = acc_of_root[x as usize];
        let shape = *shape_memo.entry(a).or_insert_with(|| path_shape(s, last.classes, parent_edge, a));
        let g = *group_of_shape.entry(shape).or_insert_with(|| {
            groups.push(Group {
                step_bytes: vec![0; steps],
                native_step_bytes: vec![0; steps],
                step_roots: vec![0; steps],
                ..Default::default()
            });
            groups.len() - 1
        });
        group_of_root[x as usize] = g as u32;
        groups[g].roots += 1;
    }
    let mut survivors = 0u64;
    let mut survivor_bytes = 0u64;
    let resource_store = string_ids(s, |t| t.contains("kResourceStore"));
    let traced = s.has_allocation_traces();
    for &x in order {
        if is_new(x) && s.id(x) <= maxes[steps - 1] {
            survivors += 1;
            survivor_bytes += s.self_size(x);
        }
        let r = root_of[x as usize];
        if r == NONE || r == EXCLUDED {
            continue;
        }
        let g = group_of_root[r as usize] as usize;
        let size = s.self_size(x);
        let native = is_backing_store(s, x);
        // A backing store's id is not from the JS objects' counter: it
        // appeared with its holder.
        let step = if native { parent(x).map_or(steps - 1, |p| first_seen_step(s.id(p))) } else { first_seen_step(s.id(x)) };
        let gr = &mut groups[g];
        gr.bytes += size;
        gr.step_bytes[step] += size;
        if native {
            gr.native_step_bytes[step] += size;
        }
        if step + 1 < steps || steps == 1 {
            gr.survivors += 1;
            gr.survivor_bytes += size;
        }
        root_bytes[r as usize] += size;
        if traced {
            gr.sites.add(s, x, size);
        }
        *gr.accumulators.entry(acc_of_root[r as usize]).or_default() += size;
        // Objects are counted by the leak root's class: the leaked items
        // themselves, including every link of a leaked chain.
        let c = gr.classes.entry(kind_key(s, last.classes, r)).or_default();
        if last.classes.class_of(x) == last.classes.class_of(r) && s.kind(x) == s.kind(r) {
            c.0 += 1;
            gr.step_roots[step] += 1;
        }
        c.1 += size;
        if s.kind(r) == NodeKind::Closure {
            gr.closure_bytes += size;
        }
        let e = parent_edge[x as usize];
        if !gr.resource_store && e != NO_EDGE && !s.edge_kind(e).name_is_index() && resource_store.contains(&s.edge_name_raw(e)) {
            gr.resource_store = true;
        }
    }

    // Rank: growing in every step first, by bytes per step.
    let mut ranked: Vec<usize> = (0..groups.len()).filter(|&g| groups[g].bytes > 0).collect();
    let min_step = |g: &Group| g.step_bytes.iter().copied().min().unwrap_or(0);
    // The run's noise floor in objects: groups that grew in some step only.
    let noise =
        groups.iter().filter(|g| g.step_roots.contains(&0)).map(|g| g.step_roots.iter().copied().max().unwrap_or(0)).max().unwrap_or(0);
    // Growing: enough bytes in every step, or enough objects in every step,
    // steadily, above the noise (a leak of a few bytes per request).
    let qualifies = |g: &Group| {
        let lo = g.step_roots.iter().copied().min().unwrap_or(0);
        let hi = g.step_roots.iter().copied().max().unwrap_or(0);
        // A byte threshold raised above the default asks for large growth
        // only: then the count does not override it.
        let by_count = opts.min_growth <= DEFAULT_MIN_GROWTH && lo >= MIN_OBJECTS_PER_STEP && lo > noise && lo * 2 >= hi;
        min_step(g) >= opts.min_growth || by_count
    };
    ranked.sort_by(|&a, &b| {
        let (ga, gb) = (&groups[a], &groups[b]);
        let qa = qualifies(ga);
        let qb = qualifies(gb);
        qb.cmp(&qa).then(gb.bytes.cmp(&ga.bytes))
    });
    let retainers = Retainers::build(s);
    let mut suspects = Vec::new();
    let mut below = Vec::new();
    let mut bounded = Vec::new();
    for &g in &ranked {
        let gr = &groups[g];
        let qualifies = qualifies(gr);
        if qualifies {
            let (&acc, _) = gr.accumulators.iter().max_by_key(|&(&a, &b)| (b, std::cmp::Reverse(a))).unwrap();
            if let Some(b) = bound_of(s, last.classes, last.scripts, parent_edge, last.retained, acc) {
                bounded.push(b);
                continue;
            }
        }
        if qualifies && suspects.len() >= opts.max_suspects {
            continue;
        }
        if !qualifies && (below.len() >= 5 || gr.bytes < opts.min_growth) {
            continue;
        }
        let suspect =
            describe_group(s, last, earlier, &retainers, dist, parent_edge, &acc_of_root, &root_bytes, &group_of_root, &roots, g, gr);
        if qualifies {
            suspects.push(suspect);
        } else {
            below.push(suspect);
        }
    }
    let mut snapshots: Vec<SnapshotInfo> = earlier
        .iter()
        .map(|c| SnapshotInfo { file: c.file.clone(), nodes: c.node_count, total_size: c.total_size, max_id: c.max_id })
        .collect();
    snapshots.push(SnapshotInfo { file: last.file.to_string(), nodes: n, total_size: s.total_size(), max_id: last_max });
    Ok(Diagnosis {
        verdict: if suspects.is_empty() { Verdict::NoLeak } else { Verdict::Leak },
        min_growth_bytes_per_step: opts.min_growth,
        noise_objects_per_step: noise,
        snapshots,
        survivors,
        survivor_bytes,
        suspects,
        below_threshold: below,
        bounded,
        warnings,
        has_allocation_stacks: traced,
    })
}

/// What leaked objects are counted as: their class, or for closures the
/// function's name (10,000 `onTick()` says more than 10,000 `Function`).
fn kind_key(s: &HeapSnapshot, classes: &Classes, r: NodeIndex) -> u64 {
    if s.kind(r) == NodeKind::Closure {
        (1 << 32) | s.name_index(r) as u64
    } else {
        classes.class_of(r) as u64
    }
}

fn kind_name(s: &HeapSnapshot, classes: &Classes, key: u64) -> String {
    if key >> 32 == 1 {
        let name = s.strings.get(key as u32).unwrap_or("");
        format!("{}()", if name.is_empty() { "(anonymous)" } else { name })
    } else {
        classes.keys[key as usize].name.clone()
    }
}

/// Memory outside the JS heap that V8 puts in the snapshot as a native
/// node with a size: an ArrayBuffer's `system / JSArrayBufferData`, or
/// another embedder allocation held by an internal link.
fn is_backing_store(s: &HeapSnapshot, x: NodeIndex) -> bool {
    s.kind(x) == NodeKind::Native && s.self_size(x) > 0 && s.name(x).starts_with("system / ")
}

fn is_context(s: &HeapSnapshot, x: NodeIndex) -> bool {
    s.kind(x) == NodeKind::Hidden && s.name(x).starts_with("system / Context")
}

/// Containers a program fills: objects, functions, closure scopes. Not V8's
/// own (code, feedback, maps, string table) nor the synthetic roots.
fn can_accumulate(s: &HeapSnapshot, a: NodeIndex) -> bool {
    match s.kind(a) {
        NodeKind::Object | NodeKind::Closure => true,
        NodeKind::Hidden => is_context(s, a),
        // Native handles hold what the event loop keeps alive (sockets,
        // servers); the string table and code caches are V8's own.
        NodeKind::Native => true,
        NodeKind::Synthetic => !matches!(
            s.name(a),
            "(Internalized strings)"
                | "(External strings)"
                | "(Compilation cache)"
                | "(Builtins)"
                | "(Read-only roots)"
                | "(Startup object cache)"
                | "(Shared heap object cache)"
                | "(Code flushing candidates)"
        ),
        _ => false,
    }
}

fn string_ids(s: &HeapSnapshot, want: impl Fn(&str) -> bool) -> Vec<u32> {
    (0..s.strings.len() as u32).filter(|&i| s.strings.get(i).is_some_and(&want)).collect()
}

/// A hash of the path from the roots to `a`: edge kinds, names (indexes and
/// dictionary keys blurred) and node classes, with repeated links folded.
fn path_shape(s: &HeapSnapshot, classes: &Classes, parent_edge: &[EdgeIndex], a: NodeIndex) -> u64 {
    let mut h = FxHasher::default();
    let mut x = a;
    let mut prev: Option<(u8, u64, u32)> = None;
    let mut guard = 0;
    loop {
        let e = parent_edge[x as usize];
        let class = classes.class_of(x);
        let step = if e == NO_EDGE {
            (255u8, 0u64, class)
        } else {
            let src = edge_source(s, e);
            (s.edge_kind(e) as u8, blurred_name(s, e, src), class)
        };
        if prev != Some(step) {
            h.write_u8(step.0);
            h.write_u64(step.1);
            h.write_u32(step.2);
        }
        prev = Some(step);
        if e == NO_EDGE || guard > 10_000 {
            break;
        }
        guard += 1;
        x = edge_source(s, e);
    }
    h.finish()
}

/// An edge name as a shape sees it: element indexes, numeric keys and the
/// keys of dictionary-like objects all read the same.
fn blurred_name(s: &HeapSnapshot, e: EdgeIndex, src: NodeIndex) -> u64 {
    const ANY: u64 = u64::MAX;
    match s.edge_name(e) {
        EdgeName::Index(_) => ANY,
        EdgeName::Name(t) if t.bytes().all(|b| b.is_ascii_digit()) => ANY,
        EdgeName::Name(_) => {
            let dictionary =
                s.kind(src) == NodeKind::Object && s.edges(src).filter(|&f| s.edge_kind(f) == EdgeKind::Property).nth(32).is_some();
            if dictionary && s.edge_kind(e) == EdgeKind::Property {
                ANY
            } else {
                s.edge_name_raw(e) as u64
            }
        }
    }
}

/// Application code: a script that is not Node's own.
fn user_location(s: &HeapSnapshot, scripts: &ScriptNames, x: NodeIndex) -> Option<SourceLocation> {
    let loc = scripts.location(s, x)?;
    let file = loc.file.as_deref()?;
    if file.starts_with("node:") || file.is_empty() {
        return None;
    }
    Some(loc)
}

/// How code names the accumulator: `requestLogs`, `_events.tick`,
/// `renderPage.cache`, `timerListMap[600000]`, `trails.get(…).#events` (a
/// field of a Map's value: its table slot has no name, the Map has).
/// `scripts` tells a package's private field (`#t` of lru-cache, dropped:
/// the user's variable names it) from the app's own (`#events`, kept).
fn accumulator_name(s: &HeapSnapshot, scripts: &ScriptNames, parent_edge: &[EdgeIndex], a: NodeIndex) -> String {
    if matches!(s.kind(a), NodeKind::Native | NodeKind::Synthetic) {
        // Held by the runtime (open handles, global handles), not by a name in the code.
        return s.name(a).to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut x = a;
    for _ in 0..4 {
        let e = parent_edge[x as usize];
        if e == NO_EDGE {
            break;
        }
        let src = edge_source(s, e);
        let kind = s.edge_kind(e);
        let real = s.edge_name_string(e);
        let numeric = kind.name_is_index() || real.bytes().all(|b| b.is_ascii_digit());
        // What the report shows (hashed with --redact); the tests below use the real name.
        let name = crate::redact::edge_name(s, e).into_owned();
        let see_through_src = see_through(s.kind(src));
        if see_through_src {
            if let Some((owner, access)) = collection_of_table(s, parent_edge, src) {
                // A Map's value or a Set's member: the table's slot number
                // means nothing in the code; name it through the collection.
                parts.push(access.to_string());
                x = owner;
                continue;
            }
        }
        match kind {
            _ if see_through_src => {
                // An element of an array or a Map: the index, then the owner.
                parts.push(format!("[{name}]"));
            }
            EdgeKind::Internal if !numeric => {
                // A link V8 keeps (`context`, `table`): not how code names it.
                if parts.is_empty() {
                    parts.push(format!("{{{name}}}"));
                }
                break;
            }
            _ if numeric => parts.push(format!("[{name}]")),
            _ => parts.push(name.clone()),
        }
        // Stop at a name that stands for itself; go on through `_events`,
        // indexes and functions' properties (`renderPage.cache`).
        let go_on = see_through_src
            || numeric
            || matches!(s.edge_name(e), EdgeName::Name(t) if t == "_events" || (t.starts_with('_') || t.starts_with('#')) && parts.len() == 1)
            || s.kind(src) == NodeKind::Closure
            || (parts.len() == 1 && is_events_object(s, parent_edge, src));
        if !go_on {
            break;
        }
        if s.kind(src) == NodeKind::Closure {
            let fname = s.name(src);
            parts.push(if fname.is_empty() { "(anonymous)".to_string() } else { fname.to_string() });
            break;
        }
        x = src;
    }
    // A library's private field (`#valList`, minified `#t`) says nothing to
    // the user: name the variable that holds the library's object.
    if parts.len() > 1 && parts[0].starts_with('#') && private_field_of_package(s, scripts, parent_edge, a) {
        parts.remove(0);
    }
    parts.reverse();
    let mut out = String::new();
    for p in parts {
        if !out.is_empty() && !p.starts_with('[') {
            out.push('.');
        }
        out.push_str(&p);
    }
    if out.is_empty() {
        "(root)".to_string()
    } else {
        out
    }
}

/// When `table` is the hash table of a JS Map or Set: the collection and
/// how code reaches one of its values (`get(…)` for a Map, `[…]` for a Set).
fn collection_of_table(s: &HeapSnapshot, parent_edge: &[EdgeIndex], table: NodeIndex) -> Option<(NodeIndex, &'static str)> {
    let e = parent_edge[table as usize];
    if e == NO_EDGE || s.edge_kind(e) != EdgeKind::Internal || !matches!(s.edge_name(e), EdgeName::Name("table")) {
        return None;
    }
    let owner = edge_source(s, e);
    match s.name(owner) {
        "Map" => Some((owner, "get(…)")),
        "Set" => Some((owner, "[…]")),
        _ => None,
    }
}

/// Whether the object holding the accumulator `a` by a private field was
/// made by a package's code (its constructor's script is under
/// node_modules) or by code whose script is unknown (minified bundles,
/// where the field name is mangled anyway).
fn private_field_of_package(s: &HeapSnapshot, scripts: &ScriptNames, parent_edge: &[EdgeIndex], a: NodeIndex) -> bool {
    let e = parent_edge[a as usize];
    if e == NO_EDGE {
        return true;
    }
    let holder = edge_source(s, e);
    match scripts.location(s, holder).and_then(|l| l.file) {
        Some(f) => f.contains("/node_modules/") || f.contains("\\node_modules\\") || f.starts_with("node:"),
        None => true,
    }
}

fn is_events_object(s: &HeapSnapshot, parent_edge: &[EdgeIndex], x: NodeIndex) -> bool {
    let e = parent_edge[x as usize];
    e != NO_EDGE && matches!(s.edge_name(e), EdgeName::Name("_events"))
}

#[allow(clippy::too_many_arguments)]
fn describe_group(
    s: &HeapSnapshot,
    last: &Last,
    earlier: &[Census],
    retainers: &Retainers,
    dist: &[u32],
    parent_edge: &[EdgeIndex],
    acc_of_root: &[NodeIndex],
    root_bytes: &[u64],
    group_of_root: &[u32],
    roots: &[NodeIndex],
    g: usize,
    gr: &Group,
) -> Suspect {
    let classes = last.classes;
    let scripts = last.scripts;
    let (&acc, _) = gr.accumulators.iter().max_by_key(|&(&a, &b)| (b, std::cmp::Reverse(a))).unwrap();
    // The largest leak root in that accumulator, preferring one made by the
    // app's own code (a constructor or closure with a location).
    let rep = roots
        .iter()
        .copied()
        .filter(|&r| group_of_root[r as usize] == g as u32 && acc_of_root[r as usize] == acc)
        .max_by_key(|&r| (user_location(s, scripts, r).is_some(), root_bytes[r as usize], std::cmp::Reverse(r)))
        .unwrap();
    // Path: the readable shortest path to the accumulator, then the tree down to the leaked object.
    let mut path = shortest_paths(s, retainers, dist, acc, 1).into_iter().next().unwrap_or(RetainerPath { start: acc, steps: vec![] });
    let mut down = Vec::new();
    let mut x = rep;
    while x != acc {
        let e = parent_edge[x as usize];
        if e == NO_EDGE {
            break;
        }
        down.push(PathStep { edge: e, node: x });
        x = edge_source(s, e);
    }
    down.reverse();
    path.steps.extend(down);
    let steps: Vec<Step> = path_steps(s, classes, scripts, &path);
    let path_text = {
        // Links of a chain read once, with a count.
        let mut t = start_label(s, classes, path.start);
        let segs: Vec<String> = path
            .steps
            .iter()
            .map(|st| format!("{} ({})", edge_label(s, st.edge), node_label_within(s, classes, scripts, st.node, 60)))
            .collect();
        let mut i = 0;
        while i < segs.len() {
            let run = segs[i..].iter().take_while(|x| **x == segs[i]).count();
            t.push_str(" -> ");
            t.push_str(&segs[i]);
            if run > 1 {
                t.push_str(&format!(" ×{run}"));
            }
            i += run;
        }
        t
    };
    // Source: the leaked object, then closures it holds, then the path upwards.
    let mut location = user_location(s, scripts, rep);
    if location.is_none() {
        let mut frontier = vec![rep];
        'outer: for _ in 0..2 {
            let mut next = Vec::new();
            for &y in &frontier {
                for e in s.edges(y) {
                    if matches!(s.edge_kind(e), EdgeKind::Weak | EdgeKind::Shortcut) {
                        continue;
                    }
                    let t = s.edge_target(e);
                    if s.kind(t) == NodeKind::Closure {
                        if let Some(l) = user_location(s, scripts, t) {
                            location = Some(l);
                            break 'outer;
                        }
                    }
                    if s.kind(t) == NodeKind::Object && next.len() < 64 {
                        next.push(t);
                    }
                }
            }
            frontier = next;
        }
    }
    if location.is_none() {
        location = path.steps.iter().rev().find_map(|st| user_location(s, scripts, st.node));
    }
    // The accumulator through the snapshots.
    let id = s.id(acc);
    let looked: Vec<Option<Option<(u32, u64)>>> = earlier.iter().map(|c| c.lookup(id)).collect();
    let mut alive: Vec<bool> = looked.iter().map(|x| x.is_some()).collect();
    alive.push(true);
    let exact = earlier.iter().all(|c| c.exact.is_some());
    let mut entries_v: Vec<Option<u32>> = looked.iter().map(|x| x.flatten().map(|x| x.0)).collect();
    let mut retained_v: Vec<Option<u64>> = looked.iter().map(|x| x.flatten().map(|x| x.1)).collect();
    let last_entries = entries_of(s, acc);
    entries_v.push(Some(last_entries));
    retained_v.push(Some(last.retained[acc as usize]));
    let grows = |v: &[Option<u64>]| v.windows(2).all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if b > a));
    let grows_every_step = if exact {
        grows(&entries_v.iter().map(|x| x.map(u64::from)).collect::<Vec<_>>()) || grows(&retained_v)
    } else {
        alive.iter().all(|&a| a) && gr.step_roots.iter().all(|&k| k > 0)
    };
    let mut class_counts: Vec<ClassCount> = gr
        .classes
        .iter()
        .map(|(&c, &(count, bytes))| ClassCount { class: kind_name(s, classes, c), count, bytes })
        .filter(|c| c.count > 0)
        .collect();
    class_counts.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.class.cmp(&b.class)));
    let accumulator = Accumulator {
        id,
        name: accumulator_name(s, scripts, parent_edge, acc),
        class: class_name(classes, acc).to_string(),
        alive,
        entries: entries_v,
        retained: retained_v,
        grows_every_step,
        similar: gr.accumulators.len() - 1,
    };
    let ev = Evidence {
        accumulator: &accumulator,
        accumulator_kind: s.kind(acc),
        path: &steps,
        classes: &class_counts,
        roots: gr.step_roots.iter().sum(),
        bytes: gr.bytes,
        closure_bytes: gr.closure_bytes,
        resource_store: gr.resource_store,
        object_keys: object_keys(s, classes, acc, |r| group_of_root[r as usize] == g as u32),
        location: location.as_ref(),
        steps: gr.step_roots.len(),
        call_scope: in_call_scope(s, parent_edge, acc),
    };
    let outside_heap = outside_heap_note(&accumulator, &class_counts, &gr.native_step_bytes);
    let pattern = patterns::classify(&ev);
    let advice = patterns::advice(pattern, &ev);
    Suspect {
        pattern,
        title: patterns::title(pattern).to_string(),
        accumulator,
        retainer_path: steps,
        path_text,
        location,
        classes: class_counts,
        objects_per_step: gr.step_roots.clone(),
        bytes_per_step: gr.step_bytes.clone(),
        native_bytes_per_step: gr.native_step_bytes.clone(),
        outside_heap,
        survivors: gr.survivors,
        survivor_bytes: gr.survivor_bytes,
        advice,
        allocation_stacks: gr.sites.top(s),
    }
}

fn entries_of(s: &HeapSnapshot, a: NodeIndex) -> u32 {
    let own = |x: NodeIndex| -> u32 {
        s.edges(x)
            .filter(|&e| match s.edge_kind(e) {
                EdgeKind::Element => true,
                EdgeKind::Property => !matches!(s.edge_name(e), EdgeName::Name("__proto__")),
                EdgeKind::Internal => matches!(s.edge_name(e), EdgeName::Name(t) if t.bytes().all(|b| b.is_ascii_digit())),
                _ => false,
            })
            .count() as u32
    };
    // V8 reports an array's elements (and a dictionary's properties) both on
    // the object and on its backing store: count them once.
    let mut stores = 0;
    if s.kind(a) != NodeKind::Array {
        for e in s.edges(a) {
            if s.edge_kind(e) == EdgeKind::Internal {
                if let EdgeName::Name("elements" | "properties" | "table") = s.edge_name(e) {
                    let t = s.edge_target(e);
                    if s.kind(t) == NodeKind::Array {
                        stores += own(t);
                    }
                }
            }
        }
    }
    own(a).max(stores)
}

/// For a Map or Set accumulator: (leaked objects held as keys, leaked
/// entries). A Map's hash table keeps each entry as key, value, chain, and
/// only heap objects get an edge, so two consecutive edges are a key and its
/// value; every edge of a Set's table is a key.
fn object_keys(s: &HeapSnapshot, classes: &Classes, acc: NodeIndex, leaked: impl Fn(NodeIndex) -> bool) -> (u64, u64, Option<String>) {
    let class = s.name(acc);
    let is_set = class == "Set";
    if class != "Map" && !is_set {
        return (0, 0, None);
    }
    let Some(table) = s.edges(acc).find(|&e| matches!(s.edge_name(e), EdgeName::Name("table"))).map(|e| s.edge_target(e)) else {
        return (0, 0, None);
    };
    let mut slots: Vec<(u64, NodeIndex)> = s
        .edges(table)
        // Small integers (the table's counts and chain links) are nodes only
        // in snapshots with numeric values: not entries.
        .filter(|&e| !(s.kind(s.edge_target(e)) == NodeKind::Number && s.name(s.edge_target(e)) == "smi number"))
        .filter_map(|e| {
            let i: u64 = match s.edge_name(e) {
                EdgeName::Index(i) => i as u64,
                EdgeName::Name(t) => t.parse().ok()?,
            };
            Some((i, s.edge_target(e)))
        })
        .collect();
    slots.sort_unstable();
    let is_object = |t: NodeIndex| matches!(s.kind(t), NodeKind::Object | NodeKind::Closure);
    let (mut keys, mut leaked_entries) = (0u64, 0u64);
    let mut key_classes: HashMap<u32, u64> = HashMap::default();
    let mut i = 0;
    while i < slots.len() {
        let (idx, t) = slots[i];
        let pair = !is_set && i + 1 < slots.len() && slots[i + 1].0 == idx + 1;
        let value = if pair { Some(slots[i + 1].1) } else { None };
        if leaked(t) || value.is_some_and(&leaked) {
            leaked_entries += 1;
            if (is_set || pair) && is_object(t) && leaked(t) {
                keys += 1;
                *key_classes.entry(classes.class_of(t)).or_default() += 1;
            }
        }
        i += if pair { 2 } else { 1 };
    }
    let key_class =
        key_classes.into_iter().max_by_key(|&(c, k)| (k, std::cmp::Reverse(c))).map(|(c, _)| classes.keys[c as usize].name.clone());
    (keys, leaked_entries, key_class)
}

/// "Buffers held by uploads (Map): +2.0 MB per step outside the JS heap",
/// when the group holds backing stores (mean per step).
fn outside_heap_note(acc: &Accumulator, classes: &[ClassCount], native: &[u64]) -> Option<String> {
    let total: u64 = native.iter().sum();
    if total == 0 || native.is_empty() {
        return None;
    }
    let what = match classes.first().map(|c| c.class.as_str()) {
        Some("Buffer" | "FastBuffer" | "Uint8Array") => "Buffers".to_string(),
        Some(c) if !c.is_empty() && !c.starts_with('(') => format!("{c} objects"),
        _ => "objects".to_string(),
    };
    Some(format!(
        "{what} held by {} ({}): +{} per step outside the JS heap",
        acc.name,
        acc.class,
        crate::units::bytes(total / native.len() as u64)
    ))
}

/// An empty slot's value: V8's oddballs, `system / Oddball` up to Node 22,
/// `undefined`, `null`, `hole`... by name from Node 24.
fn is_placeholder(s: &HeapSnapshot, t: NodeIndex) -> bool {
    s.kind(t) == NodeKind::Hidden
        && matches!(s.name(t), "system / Oddball" | "undefined" | "null" | "hole" | "the_hole" | "uninitialized" | "false" | "true")
}

/// A number node's value: its name (a heap number), or for a small
/// integer (`smi number`) the name of its internal `value` string, as V8
/// writes them with numeric values captured.
fn number_value(s: &HeapSnapshot, t: NodeIndex) -> Option<f64> {
    if let Ok(v) = s.name(t).parse::<f64>() {
        return Some(v);
    }
    let v = s.child_by_name(t, "value")?;
    s.name(v).parse::<f64>().ok()
}

/// Numeric fields that bound a collection, as libraries name them (a
/// leading `#` or `_` is ignored).
const BOUND_FIELDS: &[&str] = &["max", "maxSize", "maxEntries", "maxKeys", "maxItems", "maxLength", "capacity", "limit", "sizeLimit"];

/// The bound of the accumulator `acc`, when it has one it has not reached:
/// a store preallocated to its capacity whose empty slots are filling (an
/// LRU cache's value list: lru-cache's `new Array(max)`), or a numeric
/// bound field (`max`, `maxSize`...) on it or on the object that owns it,
/// readable when the snapshot has numeric values. A `ttl` alone bounds
/// nothing under sustained traffic.
#[allow(clippy::too_many_arguments)]
fn bound_of(
    s: &HeapSnapshot,
    classes: &Classes,
    scripts: &ScriptNames,
    parent_edge: &[EdgeIndex],
    retained: &[u64],
    acc: NodeIndex,
) -> Option<Bounded> {
    let filled = |a: NodeIndex| -> (u64, u64, u64) {
        // (slots, slots holding an object or string, self size of the store)
        // V8 puts an array's element edges on the array object (placeholders
        // such as `undefined` included) or on its backing store: the larger.
        let store = s.child_by_name(a, "elements").filter(|&e| s.kind(e) == NodeKind::Array);
        let count = |x: NodeIndex| -> (u64, u64) {
            let (mut slots, mut full) = (0u64, 0u64);
            for e in s.edges(x) {
                if s.edge_kind(e) != EdgeKind::Element
                    && !matches!(s.edge_name(e), EdgeName::Name(t) if t.bytes().all(|b| b.is_ascii_digit()))
                {
                    continue;
                }
                slots += 1;
                let t = s.edge_target(e);
                if !is_placeholder(s, t) {
                    full += 1;
                }
            }
            (slots, full)
        };
        let own = count(a);
        let (slots, full) = match store {
            Some(st) => own.max(count(st)),
            None => own,
        };
        // Shallow-size folding moved the store's bytes into its owner.
        (slots, full, s.self_size(a) + store.map_or(0, |st| s.self_size(st)))
    };
    let (slots, full, store_bytes) = filled(acc);
    let entries = match s.name(acc) {
        _ if slots > 0 => full,
        // A Map's table holds a key and a value per entry: count entries.
        "Map" | "Set" => object_keys(s, classes, acc, |_| true).1,
        _ => entries_of(s, acc) as u64,
    };
    let mut found: Option<(u64, &str)> = None;
    // The object holding the bound field, when it is the collection's owner.
    let mut bound_on: Option<NodeIndex> = None;
    // A store sized to its bound: most slots still empty placeholders.
    if s.name(acc) == "Array" && slots >= 64 && full * 2 <= slots && full > 0 {
        found = Some((slots, "preallocated"));
    }
    if found.is_none() {
        let owner = {
            let e = parent_edge[acc as usize];
            (e != NO_EDGE && s.edge_kind(e) == EdgeKind::Property).then(|| edge_source(s, e))
        };
        for o in std::iter::once(acc).chain(owner) {
            for e in s.edges(o) {
                let EdgeName::Name(name) = s.edge_name(e) else { continue };
                if !BOUND_FIELDS.contains(&name.trim_start_matches(['#', '_'])) {
                    continue;
                }
                let t = s.edge_target(e);
                if s.kind(t) != NodeKind::Number {
                    continue;
                }
                if let Some(v) = number_value(s, t) {
                    if v.is_finite() && v >= 1.0 && (v as u64) > entries {
                        found = Some((v as u64, "field"));
                        bound_on = (o != acc).then_some(o);
                    }
                }
            }
        }
    }
    let (max_entries, evidence) = found?;
    if entries == 0 || entries >= max_entries {
        return None;
    }
    let kept = retained[acc as usize];
    let per_entry = kept.saturating_sub(store_bytes) as f64 / entries as f64;
    let max_bytes = store_bytes + (per_entry * max_entries as f64) as u64;
    // A cache object's own collection reads as the cache: `profiles.entries`.
    let name = match bound_on {
        Some(o) => {
            let field = s.edge_name_string(parent_edge[acc as usize]);
            format!("{}.{field}", accumulator_name(s, scripts, parent_edge, o))
        }
        None => accumulator_name(s, scripts, parent_edge, acc),
    };
    Some(Bounded {
        note: format!(
            "bounded, still filling: will stop at about {max_entries} entries / {} ({entries} now, {})",
            crate::units::bytes(max_bytes),
            crate::units::bytes(kept)
        ),
        name,
        class: s.name(acc).to_string(),
        entries,
        max_entries,
        retained: kept,
        max_bytes,
        evidence: evidence.to_string(),
    })
}

/// Whether `acc` is a variable of a function call's scope: held by a
/// context whose `previous` is another context, not the native context
/// that module-level (CommonJS and ESM) scopes sit directly under.
fn in_call_scope(s: &HeapSnapshot, parent_edge: &[EdgeIndex], acc: NodeIndex) -> bool {
    let e = parent_edge[acc as usize];
    if e == NO_EDGE || s.edge_kind(e) != EdgeKind::Context {
        return false;
    }
    let ctx = edge_source(s, e);
    match s.child_by_name(ctx, "previous") {
        Some(prev) => s.name(prev) != "system / NativeContext",
        None => false,
    }
}
