//! The analyses most commands need, in the order that keeps peak memory
//! low: fold shallow sizes, essential edges, dominators, retained sizes;
//! and beside them, the other analyses a caller asks for (classes, script
//! names, class distances, the shortest-path tree).
//!
//! The caller says what it wants computed and how many threads it may use;
//! when each piece runs is decided here. With two threads or more, the
//! side analyses run on a second core: those that do not read self sizes
//! (classes, script names) from the start, beside the first read-only
//! passes; those that do (class distances, the path tree) once the sizes
//! are folded, beside the dominator pass. With one thread, everything runs
//! in that order on the calling thread.

use crate::bits::BitSet;
use crate::classes::{self, Classes};
use crate::distances::PathTree;
use crate::dominators::{self, Join};
use crate::limits::{self, Limits};
use crate::observe::{Laps, Observer, Stage};
use crate::snapshot::{HeapSnapshot, NodeIndex};
use crate::source::ScriptNames;
use crate::summary::{self, DominatorTree};
use crate::{flags, shallow};

/// What to compute, with which semantics, and how much of the machine to use.
#[derive(Clone, Copy)]
pub struct AnalysisOptions<'a> {
    /// Fold single-owner internal nodes into their owner (DevTools' shallow
    /// sizes). Off gives raw V8 `self_size`s, as v8-heap-parser and memlab report.
    pub fold_shallow_sizes: bool,
    /// Also build the dominator tree's child lists (for class aggregates).
    pub dominator_tree: bool,
    /// Also compute every node's class ([`Analysis::classes`]).
    pub classes: bool,
    /// Also compute each class's least distance from the roots
    /// ([`Analysis::class_distances`]; implies `classes`).
    pub class_distances: bool,
    /// Also learn the scripts' names ([`Analysis::scripts`]).
    pub script_names: bool,
    /// Also build the shortest-path tree from the roots ([`Analysis::path_tree`]).
    pub path_tree: bool,
    /// Free the snapshot's edges once the dominators are known
    /// ([`HeapSnapshot::drop_edges`]), before the retained sizes and the
    /// tree take their memory: for a caller that needs no edges after.
    pub drop_edges: bool,
    /// Most threads to use; 0 means all cores (as the limits in force allow,
    /// see [`crate::limits`]); 1 means none but the caller's.
    pub threads: usize,
    /// Receives the debug laps.
    pub observer: Option<&'a dyn Observer>,
}

impl Default for AnalysisOptions<'_> {
    fn default() -> Self {
        AnalysisOptions {
            fold_shallow_sizes: true,
            dominator_tree: false,
            classes: false,
            class_distances: false,
            script_names: false,
            path_tree: false,
            drop_edges: false,
            threads: 0,
            observer: None,
        }
    }
}

/// Dominators and retained sizes of a snapshot, and what else was asked for.
pub struct Analysis {
    /// Node -> immediate dominator (the root is its own).
    pub idom: Vec<NodeIndex>,
    /// Node -> self size plus everything it dominates.
    pub retained: Vec<u64>,
    /// How many nodes had their size folded into an owner.
    pub folded: usize,
    /// The dominator tree's child lists, when asked for.
    pub tree: Option<DominatorTree>,
    /// Every node's class, when asked for (or implied by class distances).
    pub classes: Option<Classes>,
    /// Class -> least distance of its nodes from the roots, when asked for.
    pub class_distances: Option<Vec<u32>>,
    /// Script names, when asked for.
    pub scripts: Option<ScriptNames>,
    /// The shortest-path tree from the roots, when asked for.
    pub path_tree: Option<PathTree>,
}

/// What runs beside the main steps, before the self sizes are folded.
struct Early {
    classes: Option<Classes>,
    scripts: Option<ScriptNames>,
}

/// What runs beside the main steps, once the sizes are final.
struct Side {
    classes: Option<Classes>,
    class_distances: Option<Vec<u32>>,
    path_tree: Option<PathTree>,
}

/// Run the analyses. Folding changes the snapshot's self sizes in place
/// (only when the snapshot has user roots, as DevTools does).
pub fn analyze(s: &mut HeapSnapshot, opts: AnalysisOptions<'_>) -> Analysis {
    let current = limits::current();
    let bounded = Limits { threads: if opts.threads != 0 { opts.threads } else { current.threads }, ..current };
    limits::with_limits(bounded, || run(s, &opts))
}

fn early(s: &HeapSnapshot, opts: &AnalysisOptions<'_>, classes_late: bool) -> Early {
    Early {
        // Class keys read names and kinds, not self sizes.
        classes: ((opts.classes || opts.class_distances) && !classes_late).then(|| classes::compute(s)),
        scripts: opts.script_names.then(|| ScriptNames::build(s)),
    }
}

fn side(s: &HeapSnapshot, opts: &AnalysisOptions<'_>, classes: Option<Classes>) -> Side {
    let laps = Laps::new(opts.observer, Stage::Side);
    let classes = classes.or_else(|| {
        let c = opts.class_distances.then(|| classes::compute(s))?;
        laps.lap("classes");
        Some(c)
    });
    let class_distances = classes.as_ref().filter(|_| opts.class_distances).map(|c| summary::class_distances(s, c));
    if class_distances.is_some() {
        laps.lap("class distances");
    }
    let path_tree = opts.path_tree.then(|| PathTree::compute(s));
    if path_tree.is_some() {
        laps.lap("path tree");
    }
    Side { classes, class_distances, path_tree }
}

fn run(s: &mut HeapSnapshot, opts: &AnalysisOptions<'_>) -> Analysis {
    let laps = Laps::new(opts.observer, Stage::Analyze);
    let parallel = limits::current().parallel();
    let has_user_roots = !flags::user_roots(s).is_empty();
    let fold = opts.fold_shallow_sizes && has_user_roots;
    // Classes are needed early only by the side work; beside the dominator
    // pass it has a core to itself (the DFS is one thread, and class
    // distances take less), while the read-only passes below keep both busy.
    let classes_late = parallel && opts.class_distances && !opts.path_tree;
    let wants_early = ((opts.classes || opts.class_distances) && !classes_late) || opts.script_names;
    let wants_side = opts.class_distances || opts.path_tree;
    // Read-only passes first, two at a time: who owns what (for folding)
    // beside the page-owned set and the essential edges; the early side
    // work meanwhile. Joined before folding, which needs the snapshot to itself.
    let read_only = |s: &HeapSnapshot| {
        let page: Option<BitSet> = if has_user_roots { Some(flags::page_owned(s)) } else { None };
        flags::essential_edges_counted(s, page.as_ref())
    };
    let (owners, (essential, counts), early) = {
        let s: &HeapSnapshot = s;
        if parallel {
            std::thread::scope(|scope| {
                let owners = limits::spawn_scoped(scope, move || fold.then(|| shallow::owners(s)));
                let early = wants_early.then(|| limits::spawn_scoped(scope, move || early(s, opts, classes_late)));
                let essential = read_only(s);
                (owners.join().expect("fold thread panicked"), essential, early.map(|h| h.join().expect("early analysis thread panicked")))
            })
        } else {
            let early = wants_early.then(|| early(s, opts, classes_late));
            (fold.then(|| shallow::owners(s)), read_only(s), early)
        }
    };
    let folded = owners.map(|o| shallow::apply(s, &o)).unwrap_or(0);
    laps.lap("fold, page-owned, essential edges");
    let Early { classes, scripts } = early.unwrap_or(Early { classes: None, scripts: None });
    let shared: &HeapSnapshot = s;
    // The side work's memory adds to the dominator pass's peak unless it
    // is joined before: only class distances (a few MB) run on through it,
    // using the core Semi-NCA leaves idle.
    let join = if opts.path_tree { Join::BeforePeak } else { Join::AfterSemiNca };
    let (dom, side) = if parallel && wants_side {
        let s = shared;
        std::thread::scope(|scope| {
            let handle = limits::spawn_scoped(scope, move || side(s, opts, classes));
            let mut handle = Some(handle);
            let mut done = None;
            let dom = dominators::compute_counted(s, &essential, counts, join, opts.observer, || {
                done = handle.take().map(|h| h.join().expect("analysis side thread panicked"));
            });
            (dom, done.expect("the dominator pass calls its hook"))
        })
    } else {
        let s = shared;
        let side = side(s, opts, classes);
        (dominators::compute_counted(s, &essential, counts, join, opts.observer, || ()), side)
    };
    drop(essential);
    if opts.drop_edges {
        s.drop_edges();
    }
    let s: &HeapSnapshot = s;
    laps.lap("dominators");
    let tree_of = |dom: &dominators::Dominators| DominatorTree::from_idom(&dom.idom, s.root());
    let (retained, tree) = if parallel && opts.dominator_tree {
        std::thread::scope(|scope| {
            let tree = limits::spawn_scoped(scope, || tree_of(&dom));
            let retained = dom.retained_sizes(|n| s.self_size(n));
            (retained, Some(tree.join().expect("dominator tree thread panicked")))
        })
    } else {
        (dom.retained_sizes(|n| s.self_size(n)), opts.dominator_tree.then(|| tree_of(&dom)))
    };
    let dominators::Dominators { idom, .. } = dom;
    laps.lap("retained sizes");
    let Side { classes, class_distances, path_tree } = side;
    Analysis {
        idom,
        retained,
        folded,
        tree,
        classes: classes.filter(|_| opts.classes || opts.class_distances),
        class_distances,
        scripts,
        path_tree,
    }
}
