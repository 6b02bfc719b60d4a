//! The terminal reports of `diagnose` and `run`.

use crate::model::run::{RunReport, Verdict};
use crate::output::{bytes, paint, Colour};
use diagnose::leaks::{Diagnosis, Suspect};

fn series<T: Copy>(v: &[Option<T>], f: impl Fn(T) -> String) -> String {
    v.iter().map(|x| x.map(&f).unwrap_or_else(|| "-".into())).collect::<Vec<_>>().join(" → ")
}

fn per_step_text(v: &[u64], f: impl Fn(u64) -> String) -> String {
    v.iter().map(|&x| format!("+{}", f(x))).collect::<Vec<_>>().join(", ")
}

/// The text report of a diagnosis: verdict first, then where to fix, then each suspect.
pub fn diagnosis(d: &Diagnosis, verbose: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let n = d.snapshots.len();
    // Object tracking: the earlier points are round boundaries, not snapshots.
    let points = if d.snapshots.first().is_some_and(|s| s.nodes == 0) { "round ends" } else { "snapshots" };
    let threshold = bytes(d.min_growth_bytes_per_step);
    match d.verdict {
        Verdict::Leak => {
            let s = &d.suspects[0];
            let _ = writeln!(
                o,
                "Verdict: {} — {} suspect{}; the largest, {}, grows by {} per step ({} {points}, threshold {threshold} per step)",
                paint("LEAK", Colour::Red),
                d.suspects.len(),
                if d.suspects.len() == 1 { "" } else { "s" },
                s.accumulator.name,
                bytes(avg(&s.bytes_per_step)),
                n
            );
            if s.bytes_per_step.iter().any(|&b| b < d.min_growth_bytes_per_step) {
                // Found by its count, not its bytes: say what it rests on.
                let _ = writeln!(
                    o,
                    "Growth by count: {} gained {} objects per step, steadily, above this run's noise of {} objects per step",
                    s.accumulator.name,
                    per_step_text(&s.objects_per_step, |x| x.to_string()),
                    d.noise_objects_per_step
                );
            }
        }
        // A snapshot diagnosis is never inconclusive.
        Verdict::NoLeak | Verdict::Inconclusive => {
            let _ = writeln!(
                o,
                "Verdict: {} — nothing {}grew by {threshold} or more in every step ({n} {points}; set the threshold with --min-growth)",
                paint("no leak", Colour::Green),
                if d.bounded.is_empty() { "" } else { "unbounded " }
            );
        }
    }
    let _ = writeln!(
        o,
        "Survivors: {} ({}) allocated after the first snapshot are alive in every later one",
        crate::output::count(d.survivors, "object"),
        bytes(d.survivor_bytes)
    );
    for w in &d.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    for b in &d.bounded {
        let _ = writeln!(o, "Bounded: {} ({}): {}", b.name, b.class, b.note);
    }
    if !d.suspects.is_empty() {
        let _ = writeln!(o, "\nAccumulators (where the fix goes)");
        for (i, s) in d.suspects.iter().enumerate() {
            let a = &s.accumulator;
            let counted = a.entries.iter().all(|x| x.is_some());
            let alive = a.alive.iter().filter(|&&x| x).count();
            if counted {
                let _ = writeln!(
                    o,
                    "  {}. {} ({}, @{}): entries {}; retained {}",
                    i + 1,
                    a.name,
                    a.class,
                    a.id,
                    series(&a.entries, |x| crate::output::int(x as u64)),
                    series(&a.retained, bytes)
                );
            } else {
                let _ = writeln!(
                    o,
                    "  {}. {} ({}, @{}): the same object in {alive} of {n} {points}; now {} entries, retains {}; gained {} objects per step",
                    i + 1,
                    a.name,
                    a.class,
                    a.id,
                    crate::output::int(a.entries.last().copied().flatten().unwrap_or(0) as u64),
                    bytes(a.retained.last().copied().flatten().unwrap_or(0)),
                    per_step_text(&s.objects_per_step, crate::output::int),
                );
            }
        }
        let _ = writeln!(o, "\nSuspects");
        for (i, s) in d.suspects.iter().enumerate() {
            suspect(&mut o, i + 1, s, verbose);
        }
    }
    if verbose && !d.below_threshold.is_empty() {
        let _ = writeln!(o, "\nBelow the threshold (not growing by {threshold} in every step)");
        for (i, s) in d.below_threshold.iter().enumerate() {
            suspect(&mut o, i + 1, s, verbose);
        }
    }
    o
}

fn avg(v: &[u64]) -> u64 {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<u64>() / v.len() as u64
    }
}

fn suspect(o: &mut String, i: usize, s: &Suspect, verbose: bool) {
    use std::fmt::Write;
    let what: Vec<String> = s.classes.iter().take(3).map(|c| format!("{} {}", crate::output::int(c.count), c.class)).collect();
    let _ = writeln!(o, "  {i}. {} [{}]: {}", s.title, s.pattern, s.accumulator.name);
    let _ = writeln!(
        o,
        "     grows:  {} per step ({}); leaked: {}; {} survivors in all ({})",
        per_step_text(&s.objects_per_step, crate::output::int),
        per_step_text(&s.bytes_per_step, bytes),
        what.join(", "),
        crate::output::int(s.survivors),
        bytes(s.survivor_bytes),
    );
    if let Some(note) = &s.outside_heap {
        let _ = writeln!(o, "     native: {note}");
    }
    if s.accumulator.similar > 0 {
        let _ = writeln!(o, "     and {} more containers of the same shape", s.accumulator.similar);
    }
    let path = if verbose { s.path_text.clone() } else { short_path(s) };
    let _ = writeln!(o, "     path:   {path}");
    if let Some(l) = &s.location {
        let _ = writeln!(o, "     source: {l}");
    }
    let _ = writeln!(o, "     fix:    {}", s.advice);
}

/// The path without V8's internal links, clipped to the last steps that
/// people read: how the accumulator is reached and what it holds.
fn short_path(s: &Suspect) -> String {
    let text = &s.path_text;
    let parts: Vec<&str> = text.split(" -> ").collect();
    if parts.len() <= 8 {
        return text.clone();
    }
    format!("{} -> … -> {}", parts[0], parts[parts.len() - 6..].join(" -> "))
}

pub fn verdict_line(r: &RunReport) -> String {
    let v = match r.verdict {
        Verdict::Leak => paint("LEAK", Colour::Red),
        Verdict::NoLeak => paint("no leak", Colour::Green),
        Verdict::Inconclusive => paint("inconclusive", Colour::Yellow),
    };
    // The change with its window, not an hourly extrapolation of seconds.
    let rate = if r.snapshots.len() >= 2 || r.tracking.is_some() {
        format!(" ({})", r.growth.describe(r.growth_bytes_per_hour))
    } else {
        String::new()
    };
    format!("Verdict: {v} — {}{rate}", r.reason)
}

/// The text report of `run`.
pub fn run(r: &RunReport) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "{}", verdict_line(r));
    if let (Some(why), Verdict::Leak) = (&r.evidence_problem, r.verdict) {
        if r.load.is_none() && r.growth.requests == 0 && why.starts_with("no load ran") {
            // Growth without requests is driven by time: a real finding.
            let _ = writeln!(o, "Note: no load ran, so this growth is driven by time (a timer, a background job), not by requests");
        } else {
            let _ = writeln!(o, "{} {why}", paint("Warning:", Colour::Yellow));
        }
    }
    let taken = match &r.tracking {
        Some(t) => format!("{} round boundaries and one snapshot", t.boundaries.len()),
        None => format!("{} snapshots", r.snapshots.len()),
    };
    let _ = writeln!(o, "App: {}; {taken}, {:.1} s", r.app, r.samples.last().map_or(0.0, |s| s.at.t));
    if let Some(l) = &r.load {
        let _ = writeln!(
            o,
            "Load: {} ({} ok, {} non-2xx, {} errors), {} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            crate::output::count(l.requests, "request"),
            crate::output::int(l.ok),
            crate::output::int(l.non_2xx),
            crate::output::int(l.errors),
            crate::output::int(l.requests_per_s.round() as u64),
            l.latency_ms.p50,
            l.latency_ms.p99,
            l.latency_ms.max
        );
    }
    match &r.tracking {
        Some(t) => {
            let _ = writeln!(
                o,
                "Object tracking{}: {} round boundaries, one snapshot at the end",
                if t.track_allocations { " with allocation stacks" } else { "" },
                t.boundaries.len()
            );
            let _ = writeln!(o, "Live heap at each boundary, by the phase that allocated it:");
            for b in &t.boundaries {
                let parts: Vec<String> = b.live_bytes_by_phase.iter().map(|&x| bytes(x)).collect();
                let _ = writeln!(o, "  after {:<9} {:>10} = {}", b.after, bytes(b.live_bytes), parts.join(" + "));
            }
        }
        None => {
            let floors: Vec<String> = r
                .snapshots
                .iter()
                .filter_map(|s| r.floors.iter().rev().find(|f| f.at.t <= s.t + 1e-9))
                .map(|f| bytes(f.heap_used))
                .collect();
            let _ = writeln!(o, "Heap after GC at each snapshot: {}", floors.join(" → "));
        }
    }
    rates(&mut o, r);
    for line in crate::report::container::watch_lines(&r.container) {
        let _ = writeln!(o, "{line}");
    }
    if r.diagnosis.verdict == Verdict::Leak || !r.diagnosis.below_threshold.is_empty() {
        let _ = writeln!(o);
        // The diagnosis' own report, minus its verdict line (ours is above).
        let text = diagnosis(&r.diagnosis, false);
        for line in text.lines().skip(1) {
            let _ = writeln!(o, "{line}");
        }
    }
    o
}

/// Each growth as rates over the window, projected to an hour; the gate.
fn rates(o: &mut String, r: &RunReport) {
    use std::fmt::Write;
    let g = &r.rates;
    if g.suspects.is_empty() && g.native.is_none() && g.max_growth_rate_bytes_per_hour.is_none() {
        return;
    }
    let requests = if r.growth.requests > 0 { format!(", {}", crate::output::count(r.growth.requests, "request")) } else { String::new() };
    let _ = writeln!(o, "Growth rates from the warm-up to round {} ({:.1} s{requests}):", r.growth.rounds, r.growth.window_s);
    for s in &g.suspects {
        let _ = writeln!(o, "  {}: {}", s.name, s.text);
    }
    if let Some(n) = &g.native {
        let _ = writeln!(o, "  outside the JS heap (external): {}", n.text);
    }
    if let Some(max) = g.max_growth_rate_bytes_per_hour {
        let word = if g.over_max_growth_rate { paint("over", Colour::Red) } else { paint("within", Colour::Green) };
        let _ = writeln!(
            o,
            "Rate gate: {}/h projected, {word} --max-growth-rate {}/h",
            crate::live::rates::signed(g.projected_bytes_per_hour),
            bytes(max.round() as u64)
        );
    }
}
