//! CPU time of single engine phases on one snapshot, old and new side by
//! side in turns (A B A B ...), so a change to a phase is measured on the
//! same input, in the same process, by this thread's CPU time (which other
//! load on the machine disturbs much less than wall time).
//!
//!     cargo run --release --example phase_cpu -p heapsnap -- FILE [ROUNDS]
//!
//! Phases: `page-owned` (the sweep in `flags::page_owned` against the
//! depth-first search it replaced, which is kept here as the reference; both
//! must give the same set).
use heapsnap::bits::BitSet;
use heapsnap::{flags, read_snapshot, EdgeKind, HeapSnapshot, ParseOptions};

/// This thread's CPU time in seconds.
fn thread_cpu() -> f64 {
    // SAFETY: clock_gettime fills the struct it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The page-owned set as computed before: a depth-first search with a stack.
fn page_owned_dfs(s: &HeapSnapshot) -> BitSet {
    let mut owned = BitSet::new(s.node_count());
    let mut stack = Vec::new();
    for e in s.edges(s.root()) {
        let t = s.edge_target(e);
        let entry = match s.edge_kind(e) {
            EdgeKind::Shortcut => true,
            EdgeKind::Element => s.name(t) == "(Document DOM trees)",
            _ => false,
        };
        if entry && owned.insert(t as usize) {
            stack.push(t);
        }
    }
    while let Some(n) = stack.pop() {
        for e in s.edges(n) {
            if s.edge_kind(e) == EdgeKind::Weak {
                continue;
            }
            let t = s.edge_target(e);
            if owned.insert(t as usize) {
                stack.push(t);
            }
        }
    }
    owned
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: phase_cpu FILE [ROUNDS]");
    let rounds: usize = args.next().map_or(7, |r| r.parse().expect("ROUNDS is a number"));
    let s = read_snapshot(path.as_ref(), ParseOptions::default()).expect("cannot read the snapshot");
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = thread_cpu();
        let a = page_owned_dfs(&s);
        old.push(thread_cpu() - t);
        let t = thread_cpu();
        let b = flags::page_owned(&s);
        new.push(thread_cpu() - t);
        assert!(a.ones().eq(b.ones()), "the two page-owned sets differ");
    }
    let ratios: Vec<f64> = old.iter().zip(&new).map(|(a, b)| a / b).collect();
    println!(
        "page-owned, {} nodes, {} edges, {rounds} rounds in turns: depth-first {:.1} ms, sweep {:.1} ms (thread CPU, median); \
         old/new per round: median {:.2}x, range {:.2}-{:.2}x",
        s.node_count(),
        s.edge_count(),
        1e3 * median(old),
        1e3 * median(new),
        median(ratios.clone()),
        ratios.iter().cloned().fold(f64::MAX, f64::min),
        ratios.iter().cloned().fold(0.0, f64::max),
    );
}
