//! The fast tier for what is counted beside bytes (the checked-in heaps of
//! `tests/data/`, described in `snapshots.rs`): backing stores, bounded
//! collections and the run's noise floor in objects.

use diagnose::leaks::{self, Census, Diagnosis, Last, Options, Verdict, MIN_OBJECTS_PER_STEP};
use heapsnap::{analyze, AnalysisOptions, ParseOptions};
use std::path::PathBuf;

fn diagnose_set(set: &str) -> Diagnosis {
    let names: Vec<String> = (1..=3).map(|i| format!("{set}-s{i}")).collect();
    let read = |n: &str| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(format!("{n}.heapsnapshot.gz"));
        heapsnap::read_snapshot(&p, ParseOptions::default()).unwrap_or_else(|e| panic!("{n}: {e}"))
    };
    let earlier: Vec<Census> = names[..2].iter().map(|n| Census::ids_only(n, &read(n))).collect();
    let mut s = read(&names[2]);
    let a = analyze(&mut s, AnalysisOptions { classes: true, script_names: true, path_tree: true, ..Default::default() });
    let (classes, scripts, tree) = (a.classes.unwrap(), a.scripts.unwrap(), a.path_tree.unwrap());
    let last = Last { file: &names[2], snapshot: &s, retained: &a.retained, classes: &classes, scripts: &scripts, tree: &tree };
    leaks::diagnose(&earlier, &last, &Options::default()).expect("three snapshots in order")
}

#[test]
fn listeners_leak_has_no_native_growth_and_no_bound() {
    let d = diagnose_set("listeners");
    assert_eq!(d.verdict, Verdict::Leak);
    let s = &d.suspects[0];
    assert_eq!(s.accumulator.name, "bus._events.tick");
    // Closures only: nothing outside the JS heap, and the listener array
    // is no preallocated store.
    assert_eq!(s.native_bytes_per_step, vec![0, 0]);
    assert!(s.outside_heap.is_none());
    assert!(d.bounded.is_empty());
    // 300 listeners per step: well above the run's noise.
    assert_eq!(s.objects_per_step, vec![300, 300]);
    assert!(d.noise_objects_per_step < MIN_OBJECTS_PER_STEP, "noise {}", d.noise_objects_per_step);
}

#[test]
fn control_stays_no_leak_by_bytes_and_by_count() {
    let d = diagnose_set("listeners-removed");
    assert_eq!(d.verdict, Verdict::NoLeak, "{:?}", d.suspects.first().map(|s| &s.accumulator));
    assert!(d.suspects.is_empty());
    assert!(d.bounded.is_empty());
    // Node's own per-step churn (a few timers and contexts) is the noise.
    assert_eq!(d.noise_objects_per_step, 8);
}
