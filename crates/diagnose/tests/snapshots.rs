//! The fast tier: the leak logic on small real heaps checked in gzipped
//! under `tests/data/` (Node 18.20.8, `node fixtures/harness.js APP DIR
//! --snapshots 3`: 300 warm-up requests, then 300 requests between
//! snapshots). No Node, npm or browser needed.
//!
//! - `listeners-s{1,2,3}`: fixtures/leaks/listeners.js, one `tick` listener
//!   added to a module-level EventEmitter per request, never removed.
//! - `listeners-removed-s{1,2,3}`: fixtures/controls/listeners-removed.js,
//!   the same app removing its listener when the response closes.
//!
//! Expected values were read once from `leakhound diagnose|diff|listeners
//! --json` on these files and are asserted exactly: the fixture adds 300
//! listeners per step, so 300 objects per step, 900 entries at the end.

use diagnose::diff::{compare, Comparison};
use diagnose::leaks::{self, Census, Diagnosis, Last, Options, Verdict};
use diagnose::listeners::emitters;
use diagnose::patterns::Pattern;
use heapsnap::{analyze, classes, AnalysisOptions, HeapSnapshot, ParseOptions};
use std::path::PathBuf;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(format!("{name}.heapsnapshot.gz"))
}

fn read(name: &str) -> HeapSnapshot {
    heapsnap::read_snapshot(&path(name), ParseOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What `leakhound diagnose` does: earlier snapshots by ids (or, exact,
/// with their retained sizes), the last one analysed in full.
fn diagnose_set(set: &str, exact: bool) -> Diagnosis {
    let names: Vec<String> = (1..=3).map(|i| format!("{set}-s{i}")).collect();
    let earlier: Vec<Census> = names[..2]
        .iter()
        .map(|n| {
            let mut s = read(n);
            if exact {
                let a = analyze(&mut s, AnalysisOptions::default());
                Census::take(n, &s, a.retained)
            } else {
                Census::ids_only(n, &s)
            }
        })
        .collect();
    let mut s = read(&names[2]);
    let a = analyze(&mut s, AnalysisOptions { classes: true, script_names: true, path_tree: true, ..Default::default() });
    let (classes, scripts, tree) = (a.classes.unwrap(), a.scripts.unwrap(), a.path_tree.unwrap());
    let last = Last { file: &names[2], snapshot: &s, retained: &a.retained, classes: &classes, scripts: &scripts, tree: &tree };
    leaks::diagnose(&earlier, &last, &Options::default()).expect("three snapshots in order")
}

/// One expected suspect.
struct Want {
    pattern: Pattern,
    accumulator: &'static str,
    class: &'static str,
    entries: [Option<u32>; 3],
    retained: [Option<u64>; 3],
    objects_per_step: [u64; 2],
    bytes_per_step: [u64; 2],
    leaked: (&'static str, u64, u64),
    location: &'static str,
}

#[test]
fn grouping_counts_per_step_and_verdict() {
    let listeners = Want {
        pattern: Pattern::EventListeners,
        accumulator: "bus._events.tick",
        class: "Array",
        entries: [None, None, Some(900)],
        retained: [None, None, Some(450_136)],
        objects_per_step: [300, 300],
        bytes_per_step: [146_400, 146_400],
        leaked: ("onTick()", 600, 292_800),
        location: "fixtures/leaks/listeners.js:13:33",
    };
    let exact = Want { entries: [Some(300), Some(600), Some(900)], retained: [Some(149_480), Some(300_016), Some(450_136)], ..listeners };
    // (set, exact census, verdict, survivors, survivor bytes, node counts, suspect)
    type Case<'a> = (&'a str, bool, Verdict, u64, u64, [usize; 3], Option<&'a Want>);
    let table: [Case; 3] = [
        ("listeners", false, Verdict::Leak, 4534, 179_008, [50_347, 54_837, 59_102], Some(&listeners)),
        ("listeners", true, Verdict::Leak, 4534, 179_008, [50_347, 54_837, 59_102], Some(&exact)),
        ("listeners-removed", false, Verdict::NoLeak, 333, 26_176, [46_190, 46_471, 46_534], None),
    ];
    for (set, exact, verdict, survivors, survivor_bytes, nodes, want) in table {
        let ctx = format!("{set} (exact: {exact})");
        let d = diagnose_set(set, exact);
        assert_eq!(d.verdict, verdict, "{ctx}");
        assert_eq!((d.survivors, d.survivor_bytes), (survivors, survivor_bytes), "{ctx}");
        assert_eq!(d.snapshots.iter().map(|s| s.nodes).collect::<Vec<_>>(), nodes, "{ctx}");
        assert!(d.warnings.is_empty(), "{ctx}: {:?}", d.warnings);
        assert!(d.below_threshold.is_empty(), "{ctx}");
        let Some(w) = want else {
            assert!(d.suspects.is_empty(), "{ctx}: {:?}", d.suspects.iter().map(|s| &s.accumulator.name).collect::<Vec<_>>());
            continue;
        };
        assert_eq!(d.suspects.len(), 1, "{ctx}");
        let s = &d.suspects[0];
        let a = &s.accumulator;
        assert_eq!(s.pattern, w.pattern, "{ctx}");
        assert_eq!((a.name.as_str(), a.class.as_str()), (w.accumulator, w.class), "{ctx}");
        assert_eq!(a.alive, [true; 3], "{ctx}");
        assert_eq!(a.entries, w.entries, "{ctx}");
        assert_eq!(a.retained, w.retained, "{ctx}");
        assert!(a.grows_every_step && a.similar == 0, "{ctx}");
        assert_eq!(s.objects_per_step, w.objects_per_step, "{ctx}");
        assert_eq!(s.bytes_per_step, w.bytes_per_step, "{ctx}");
        assert_eq!((s.survivors, s.survivor_bytes), (4200, 146_400), "{ctx}");
        let leaked: Vec<_> = s.classes.iter().map(|c| (c.class.as_str(), c.count, c.bytes)).collect();
        assert_eq!(leaked, [w.leaked], "{ctx}");
        let at = s.location.as_ref().map(|l| l.to_string()).unwrap_or_default();
        assert!(at.ends_with(w.location), "{ctx}: {at}");
        // The path runs from a root through the accumulator to a listener.
        let last = s.retainer_path.last().expect("a path");
        assert_eq!(last.node, format!("onTick() {at}"), "{ctx}");
        assert!(s.retainer_path.iter().any(|p| p.node_id == a.id), "{ctx}");
        assert_eq!(s.title, "event listeners never removed", "{ctx}");
        assert_eq!(
            s.advice,
            format!(
                "bus._events.tick gains about 300 listeners per step and none is removed (created at {at}). Remove the \
                 listener when its request or connection ends (emitter.off(event, fn) in res.on('close')), or use \
                 emitter.once() if it should fire once. Node's MaxListenersExceededWarning was this leak's early sign."
            ),
            "{ctx}"
        );
    }
}

#[test]
fn snapshots_out_of_order_are_a_typed_error() {
    let earlier = vec![Census::ids_only("s3", &read("listeners-s3")), Census::ids_only("s1", &read("listeners-s1"))];
    let mut s = read("listeners-s2");
    let a = analyze(&mut s, AnalysisOptions { classes: true, script_names: true, path_tree: true, ..Default::default() });
    let (classes, scripts, tree) = (a.classes.unwrap(), a.scripts.unwrap(), a.path_tree.unwrap());
    let last = Last { file: "s2", snapshot: &s, retained: &a.retained, classes: &classes, scripts: &scripts, tree: &tree };
    let err = leaks::diagnose(&earlier, &last, &Options::default()).unwrap_err();
    let leaks::DiagnoseError::OutOfOrder { later, earlier: before, later_max, earlier_max } = &err else { panic!("{err:?}") };
    assert_eq!((later.as_str(), before.as_str()), ("s1", "s3"));
    assert!(later_max < earlier_max);
    assert!(err.to_string().starts_with("s1 has older object ids than s3 (largest id "), "{err}");
    let err = leaks::diagnose(&earlier[..1], &last, &Options::default()).unwrap_err();
    assert_eq!(err, leaks::DiagnoseError::TooFewSnapshots);
}

fn diff(set: &str) -> Comparison {
    let load = |n: &str| {
        let mut s = read(&format!("{set}-{n}"));
        heapsnap::shallow::fold_shallow_sizes(&mut s);
        let c = classes::compute(&s);
        (s, c)
    };
    let (a, ac) = load("s1");
    let (b, bc) = load("s3");
    compare(&a, &ac, &b, &bc)
}

#[test]
fn diff_first_to_last() {
    // (set, rows, new, deleted, allocated, freed, [(class, new, deleted, alloc, freed)])
    type Row = (&'static str, u64, u64, u64, u64);
    type Case = (&'static str, usize, u64, u64, u64, u64, &'static [Row]);
    let table: [Case; 2] = [
        (
            "listeners",
            40,
            9266,
            538,
            456_381,
            114_540,
            &[("(concatenated string)", 4806, 2, 153_792, 64), ("{url, padding}", 600, 0, 24_000, 0), ("Array", 29, 25, 1080, 952)],
        ),
        ("listeners-removed", 39, 870, 550, 166_573, 119_516, &[("Array", 29, 25, 1080, 952)]),
    ];
    for (set, rows, new, deleted, alloc, freed, want) in table {
        let c = diff(set);
        assert_eq!((c.rows.len(), c.new_count, c.deleted_count, c.alloc_size, c.freed_size), (rows, new, deleted, alloc, freed), "{set}");
        for &(class, n, d, a, f) in want {
            let r = c.rows.iter().find(|r| r.class == class).unwrap_or_else(|| panic!("{set}: no row {class}"));
            assert_eq!((r.new_count, r.deleted_count, r.alloc_size, r.freed_size), (n, d, a, f), "{set}: {class}");
            assert_eq!((r.delta_count, r.size_delta), (n as i64 - d as i64, a as i64 - f as i64), "{set}: {class}");
        }
        // Largest size delta first.
        assert!(c.rows.windows(2).all(|w| w[0].size_delta >= w[1].size_delta), "{set}");
    }
    // In the leak, the leaked closures' captured objects are all new; the control frees its own.
    assert!(!diff("listeners-removed").rows.iter().any(|r| r.class == "{url, padding}" && r.new_count >= 300));
}

#[test]
fn listeners_per_emitter() {
    // (snapshot, emitters, flagged, first emitter class, its total, its first event, count, flagged, site, site count, site line)
    let table = [
        ("listeners-s3", 22, 1, Some(("EventEmitter", 900, "tick", 900, true, "onTick", 900, Some(13)))),
        ("listeners-removed-s3", 21, 0, None),
    ];
    for (name, count, flagged, first) in table {
        let mut s = read(name);
        heapsnap::shallow::fold_shallow_sizes(&mut s);
        let classes = classes::compute(&s);
        let scripts = heapsnap::source::ScriptNames::build(&s);
        let all = emitters(&s, &classes, &scripts, 10);
        assert_eq!(all.len(), count, "{name}");
        assert_eq!(all.iter().filter(|e| e.events.iter().any(|v| v.flagged)).count(), flagged, "{name}");
        if let Some((class, total, event, n, fl, function, sites, line)) = first {
            let e = &all[0];
            let v = &e.events[0];
            let site = &v.sites[0];
            assert_eq!(
                (e.class.as_str(), e.total, v.event.as_str(), v.count, v.flagged, site.function.as_str(), site.count),
                (class, total, event, n, fl, function, sites),
                "{name}"
            );
            assert_eq!(site.location.as_ref().map(|l| l.line), line, "{name}");
        } else {
            assert!(all.iter().all(|e| e.total < 10), "{name}");
        }
    }
}
