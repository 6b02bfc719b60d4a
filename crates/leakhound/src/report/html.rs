//! The pages: `run` (timeline, suspects, class comparison, load), and the
//! offline commands' pages built from the same sections.

use super::svg::{self, Band, Line, Mark, TimeChart};
use super::{esc, now_unix, utc_text, Page};
use crate::model::run::{LoadSummary, RunReport, Verdict};
use crate::output::bytes;
use crate::sources_view::location_text;
use diagnose::diff::Comparison;
use diagnose::leaks::{Diagnosis, Step, Suspect};
use diagnose::units::signed_bytes;
use std::fmt::Write;

/// Points per memory series at most: a day of 250 ms samples would
/// otherwise be 345,600 points per line and tens of MB of SVG.
pub const MAX_POINTS: usize = 1200;
/// Rows of a class table at most (the biggest by the table's own order).
pub const MAX_ROWS: usize = 300;

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn sign_class(n: i64) -> &'static str {
    match n.cmp(&0) {
        std::cmp::Ordering::Greater => "pos",
        std::cmp::Ordering::Less => "neg",
        std::cmp::Ordering::Equal => "",
    }
}

fn verdict_box(class: &str, word: &str, text: &str) -> String {
    format!(r#"<div class="verdict {class}" id="verdict"><b>{}</b> — {}</div>"#, esc(word), esc(text))
}

/// How a person reads a step's edge: `.name` for a property, `[3]` for an
/// element, `(context) name` for a closure variable.
fn edge_text(st: &Step) -> String {
    match st.edge_type {
        "element" | "hidden" => format!("[{}]", st.edge),
        "context" => format!("(closure var) {}", st.edge),
        "internal" => format!("(internal) {}", st.edge),
        _ => format!(".{}", st.edge),
    }
}

/// The retainer path as a chain: root, then each edge name and the object
/// it leads to; the accumulator outlined. Runs of the same link (a linked
/// list) are drawn once with a count; very long paths keep their ends.
pub fn retainer_chain(s: &Suspect) -> String {
    let start = s.path_text.split(" -> ").next().unwrap_or("(GC roots)");
    // Fold runs of identical links.
    let mut links: Vec<(&Step, usize)> = Vec::new();
    for st in &s.retainer_path {
        match links.last_mut() {
            Some((prev, n)) if prev.edge == st.edge && prev.class == st.class && prev.node_id != s.accumulator.id => *n += 1,
            _ => links.push((st, 1)),
        }
    }
    let keep_head = 2;
    let keep_tail = 9;
    let mut o = String::from(r#"<ol class="path">"#);
    let _ = write!(o, r#"<li><span class="node root">{}</span></li>"#, esc(start));
    let n = links.len();
    for (i, (st, run)) in links.iter().enumerate() {
        if n > keep_head + keep_tail + 1 && i >= keep_head && i < n - keep_tail {
            if i == keep_head {
                let _ = write!(o, r#"<li><span class="edge">→ … {} more links …</span></li>"#, n - keep_head - keep_tail);
            }
            continue;
        }
        let acc = st.node_id == s.accumulator.id;
        let times = if *run > 1 { format!(" ×{run}") } else { String::new() };
        let loc = st.location.as_ref().map(|l| format!(" — {l}")).unwrap_or_default();
        let _ = write!(
            o,
            r#"<li><span class="edge" title="{}">→ <code>{}</code>{}</span><span class="node{}" title="{} @{}{}">{}</span></li>"#,
            esc(st.edge_type),
            esc(&edge_text(st)),
            esc(&times),
            if acc { " accumulator" } else { "" },
            esc(&st.class),
            st.node_id,
            esc(&loc),
            esc(&crate::output::clip(&st.node, 60))
        );
    }
    o.push_str("</ol>");
    o
}

/// One card per suspect. `located`: the same suspects as the JSON document
/// gives them after the `sources` crate read the files (package, the user's
/// line, the library entry, mapped locations), in the same order.
pub fn suspect_cards(suspects: &[Suspect], located: Option<&[serde_json::Value]>) -> String {
    let mut o = String::from(r#"<div class="cards">"#);
    for (i, s) in suspects.iter().enumerate() {
        let extra = located.and_then(|l| l.get(i));
        let a = &s.accumulator;
        let pattern = serde_json::to_value(s.pattern).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let leaked: Vec<String> = s.classes.iter().take(4).map(|c| format!("{} {} ({})", c.count, c.class, bytes(c.bytes))).collect();
        let _ = write!(
            o,
            r#"<article class="card suspect" data-pattern="{}"><h3>{}. <span class="pattern">{}</span>{}</h3><div class="acc">Accumulator: <code class="accumulator-name">{}</code> <span class="muted">({}, @{})</span></div><dl>"#,
            esc(&pattern),
            i + 1,
            esc(&pattern),
            esc(&s.title),
            esc(&a.name),
            esc(&a.class),
            a.id
        );
        let entries = a.entries.iter().map(|e| e.map_or("–".to_string(), |x| x.to_string())).collect::<Vec<_>>().join(" → ");
        if a.entries.iter().any(|e| e.is_some()) {
            let _ = write!(o, "<dt>Entries</dt><dd>{}</dd>", esc(&entries));
        }
        let _ = write!(
            o,
            "<dt>Growth per snapshot</dt><dd>{} {}</dd>",
            svg::step_bars(&s.bytes_per_step, bytes, "bytes leaked per step"),
            esc(&format!("objects: {}", s.objects_per_step.iter().map(|x| format!("+{x}")).collect::<Vec<_>>().join(", ")))
        );
        let _ = write!(
            o,
            "<dt>Leaked</dt><dd>{}; {} survivors in all ({})</dd>",
            esc(&leaked.join(", ")),
            s.survivors,
            bytes(s.survivor_bytes)
        );
        if a.similar > 0 {
            let _ = write!(o, "<dt>Similar</dt><dd>{} more containers of the same shape</dd>", a.similar);
        }
        let _ = write!(o, "<dt>Retainer path</dt><dd>{}</dd>", retainer_chain(s));
        match extra {
            Some(x) => located_rows(&mut o, s, x),
            None => {
                if let Some(l) = &s.location {
                    let _ = write!(o, r#"<dt>Source</dt><dd><code class="location">{}</code></dd>"#, esc(&l.to_string()));
                }
            }
        }
        let _ = write!(o, r#"</dl><p class="advice"><b>Fix:</b> {}</p></article>"#, esc(&s.advice));
    }
    o.push_str("</div>");
    o
}

/// The card's rows from the located suspect: the package, where it
/// accumulates in the package, the user's line, the known use, and the
/// source-mapped location with the generated one.
fn located_rows(o: &mut String, s: &Suspect, x: &serde_json::Value) {
    if let Some(p) = x.get("package").filter(|p| !p.is_null()) {
        let spec = crate::sources_view::spec_of(p);
        let _ = write!(
            o,
            r#"<dt>Package</dt><dd><code class="package">{}</code> <span class="muted">{}</span></dd>"#,
            esc(&spec),
            esc(p["path"].as_str().unwrap_or(""))
        );
    }
    if let Some(l) = x.get("package_location").and_then(location_text) {
        let _ = write!(o, r#"<dt>In the package</dt><dd><code class="package-location">{}</code></dd>"#, esc(&l));
    }
    if let Some(u) = x.get("user_location").and_then(location_text) {
        let held = x["accumulator"]["held_as"].as_str().or(x["handle"].as_str()).unwrap_or("it");
        let _ = write!(
            o,
            r#"<dt>Your code</dt><dd><code class="user-location">{}</code> holds <code class="handle">{}</code></dd>"#,
            esc(&u),
            esc(held)
        );
    }
    if let Some(l) = x.get("library").filter(|l| !l.is_null()) {
        let docs = l["docs"].as_str().map(|d| format!(r#" (<a href="{}">docs</a>)"#, esc(d))).unwrap_or_default();
        let _ = write!(o, r#"<dt>Known use</dt><dd class="library">{}{docs}</dd>"#, esc(l["title"].as_str().unwrap_or("")));
    }
    allocation_rows(o, x);
    match (x.get("location").and_then(location_text), x.get("generated_location").and_then(location_text)) {
        (Some(l), Some(g)) => {
            let _ = write!(
                o,
                r#"<dt>Source</dt><dd><code class="location">{}</code> <span class="muted">generated <code class="generated-location">{}</code></span></dd>"#,
                esc(&l),
                esc(&g)
            );
        }
        (Some(l), None) => {
            let _ = write!(o, r#"<dt>Source</dt><dd><code class="location">{}</code></dd>"#, esc(&l));
        }
        _ => {
            if let Some(l) = &s.location {
                let _ = write!(o, r#"<dt>Source</dt><dd><code class="location">{}</code></dd>"#, esc(&l.to_string()));
            }
        }
    }
}

/// The allocating stacks of a suspect's leaked objects (object tracking
/// with `--track-allocations`), the user's own frame marked.
fn allocation_rows(o: &mut String, x: &serde_json::Value) {
    if let Some(a) = x.get("allocated_by").filter(|a| !a.is_null()) {
        let _ = write!(
            o,
            r#"<dt>Allocated by</dt><dd>your code at <code class="allocated-by">{}:{}</code> ({})</dd>"#,
            esc(a["file"].as_str().unwrap_or("")),
            a["line"],
            esc(a["function"].as_str().unwrap_or("(anonymous)"))
        );
    }
    let stacks = x.get("allocation_stacks").and_then(serde_json::Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if stacks.is_empty() {
        return;
    }
    let _ = write!(o, r#"<dt>Allocation stacks</dt><dd><ol class="stacks">"#);
    for st in stacks {
        let mine = st["user_frame"].as_u64().map(|i| i as usize);
        let frames: Vec<String> = st["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .take(8)
            .map(|(i, f)| {
                let at = match f["line"].as_u64() {
                    Some(l) if l > 0 => format!(" {}:{l}", f["file"].as_str().unwrap_or("")),
                    _ => String::new(),
                };
                let text = esc(&format!("{}{at}", f["function"].as_str().unwrap_or("?")));
                if Some(i) == mine {
                    format!(r#"<b class="user-frame">{text}</b>"#)
                } else {
                    text
                }
            })
            .collect();
        let _ = write!(
            o,
            "<li>{} objects, {}: {}</li>",
            crate::output::int(st["objects"].as_u64().unwrap_or(0)),
            bytes(st["bytes"].as_u64().unwrap_or(0)),
            frames.join(" ← ")
        );
    }
    let _ = write!(o, "</ol></dd>");
}

/// The DevTools Comparison view as a sortable table (largest size delta first).
pub fn comparison_table(c: &Comparison, caption: &str) -> String {
    let mut rows: Vec<_> = c.rows.iter().collect();
    rows.sort_by(|a, b| b.size_delta.cmp(&a.size_delta).then(a.class.cmp(&b.class)));
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<p>{}: {} new objects ({}), {} deleted ({}), size delta <b class="{}">{}</b>. Click a header to sort.</p>"#,
        esc(caption),
        c.new_count,
        bytes(c.alloc_size),
        c.deleted_count,
        bytes(c.freed_size),
        sign_class(c.alloc_size as i64 - c.freed_size as i64),
        signed_bytes(c.alloc_size as i64 - c.freed_size as i64)
    );
    o.push_str(
        r#"<table class="sortable" id="classes"><thead><tr><th>Class</th><th class="n"># New</th><th class="n"># Deleted</th><th class="n"># Delta</th><th class="n">Alloc. size</th><th class="n">Freed size</th><th class="n">Size delta</th></tr></thead><tbody>"#,
    );
    for r in rows.iter().take(MAX_ROWS) {
        let _ = write!(
            o,
            r#"<tr><td><code>{}</code></td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n {}" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n {}" data-v="{}">{}</td></tr>"#,
            esc(&r.class),
            r.new_count,
            r.new_count,
            r.deleted_count,
            r.deleted_count,
            sign_class(r.delta_count),
            r.delta_count,
            signed(r.delta_count),
            r.alloc_size,
            bytes(r.alloc_size),
            r.freed_size,
            bytes(r.freed_size),
            sign_class(r.size_delta),
            r.size_delta,
            signed_bytes(r.size_delta)
        );
    }
    o.push_str("</tbody></table>");
    if rows.len() > MAX_ROWS {
        let _ = write!(o, r#"<p class="note">{} more classes not shown (the largest size deltas are).</p>"#, rows.len() - MAX_ROWS);
    }
    o
}

fn load_section(l: &LoadSummary) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<p>{} requests: {} ok, {} non-2xx, {} errors; {:.0} requests/s. Latency of the last round: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms.</p>",
        l.requests, l.ok, l.non_2xx, l.errors, l.requests_per_s, l.latency_ms.p50, l.latency_ms.p90, l.latency_ms.p99, l.latency_ms.max
    );
    o.push_str(r#"<table class="sortable" id="load"><thead><tr><th>Round</th><th class="n">Requests</th><th class="n">OK</th><th class="n">Non-2xx</th><th class="n">Errors</th><th class="n">Req/s</th><th class="n">p50 ms</th><th class="n">p99 ms</th><th class="n">Max ms</th><th class="n">Duration s</th></tr></thead><tbody>"#);
    for (i, r) in l.rounds.iter().enumerate() {
        let name = if i == 0 { "warm-up".to_string() } else { format!("round {i}") };
        let _ = write!(
            o,
            r#"<tr><td data-v="{i}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{:.1}">{:.0}</td><td class="n" data-v="{}">{:.2}</td><td class="n" data-v="{}">{:.2}</td><td class="n" data-v="{}">{:.2}</td><td class="n" data-v="{}">{:.2}</td></tr>"#,
            name,
            r.requests,
            r.requests,
            r.ok,
            r.ok,
            r.non_2xx,
            r.non_2xx,
            r.errors,
            r.errors,
            r.requests_per_s,
            r.requests_per_s,
            r.latency_ms.p50,
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.latency_ms.p99,
            r.latency_ms.max,
            r.latency_ms.max,
            r.duration_s,
            r.duration_s
        );
    }
    o.push_str("</tbody></table>");
    if let Some((k, v)) = l.rounds.iter().flat_map(|r| r.error_examples.iter()).next() {
        let _ = write!(o, r#"<p class="note">First error ({}): {}</p>"#, esc(k), esc(v));
    }
    o
}

fn rate_words(r: &RunReport) -> String {
    let mut w = String::new();
    // With its window: a per-hour figure from seconds would mislead.
    match r.growth_bytes_per_hour {
        Some(_) if r.snapshots.len() >= 2 => {
            let _ = write!(w, "The heap after GC, {}", r.growth.describe(r.growth_bytes_per_hour));
        }
        _ => {
            let _ = write!(w, "Too few post-GC floors ({}) to fit a growth rate", r.floors.len());
        }
    }
    let _ = write!(w, "; it changed {} from the first floor to the last", signed_bytes(r.heap_growth_bytes));
    if let Some(p) = r.trend.p_value {
        let _ = write!(w, " (Mann-Kendall p = {p:.3})");
    }
    match r.time_to_limit_s {
        Some(s) if r.heap_size_limit > 0 => {
            let _ = write!(w, "; at this rate it reaches the {} heap limit in {}", bytes(r.heap_size_limit), duration_words(s));
        }
        _ => {}
    }
    w.push('.');
    w
}

fn duration_words(s: f64) -> String {
    if s >= 2.0 * 86_400.0 {
        format!("{:.1} days", s / 86_400.0)
    } else if s >= 2.0 * 3600.0 {
        format!("{:.1} hours", s / 3600.0)
    } else if s >= 120.0 {
        format!("{:.0} minutes", s / 60.0)
    } else {
        format!("{s:.0} seconds")
    }
}

/// The timeline of a run: heapUsed, heapTotal, rss, the post-GC floors and
/// their fitted trend, load phases shaded, snapshots marked.
pub fn run_timeline(r: &RunReport) -> String {
    let pts = |f: &dyn Fn(&crate::model::run::Sample) -> u64| -> Vec<(f64, f64)> {
        svg::downsample(&r.samples.iter().map(|s| (s.at.t, f(s) as f64)).collect::<Vec<_>>(), MAX_POINTS)
    };
    let floors = svg::downsample(&r.floors.iter().map(|f| (f.at.t, f.heap_used as f64)).collect::<Vec<_>>(), MAX_POINTS);
    let labels: Vec<String> = (1..=r.snapshots.len()).map(|i| format!("S{i}")).collect();
    let marks = || -> Vec<Mark<'_>> { r.snapshots.iter().zip(&labels).map(|(s, l)| Mark { label: l, t: s.t }).collect() };
    let bands_of = || -> Vec<Band<'_>> {
        r.phases.iter().filter(|p| !p.name.starts_with("snapshot")).map(|p| Band { label: &p.name, start: p.start, end: p.end }).collect()
    };
    // Two charts on one time axis: the JS heap (where leaks show), then the
    // process (rss is often ten times the heap and would flatten it).
    let heap = TimeChart {
        title: "JS heap over the run",
        lines: vec![
            Line { label: "heapTotal", class: "total", points: pts(&|s| s.heap_total), dots: false },
            Line { label: "heapUsed", class: "used", points: pts(&|s| s.heap_used), dots: false },
            Line { label: "heap after GC (floor)", class: "floor", points: floors, dots: true },
        ],
        bands: bands_of(),
        marks: marks(),
        trend: r.trend.trend.as_ref().map(|t| (t.intercept, t.slope_per_sec, "floor trend (Theil-Sen)")),
        x_text: None,
    };
    let process = TimeChart {
        title: "Process memory over the run",
        lines: vec![
            Line { label: "rss", class: "rss", points: pts(&|s| s.rss), dots: false },
            Line { label: "heapTotal", class: "total", points: pts(&|s| s.heap_total), dots: false },
        ],
        bands: bands_of(),
        marks: marks(),
        trend: None,
        x_text: None,
    };
    format!(r#"<h3>JS heap</h3>{}<h3 class="second">Process (rss)</h3>{}"#, heap.render(), process.render())
}

fn verdict_word(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Leak => ("leak", "Leak"),
        Verdict::NoLeak => ("no-leak", "No leak"),
        Verdict::Inconclusive => ("inconclusive", "Inconclusive"),
    }
}

/// The page of `leakhound run`. `comparison`: first vs last snapshot.
/// `doc`: the run's JSON document after the `sources` crate located its suspects.
pub fn run_page(r: &RunReport, command_line: &str, comparison: Option<&Comparison>, doc: Option<&serde_json::Value>) -> String {
    let mut p = Page::new(&format!("leakhound run — {}", r.app));
    p.fact("Command", command_line);
    p.fact("App", &r.app);
    p.fact("Started", &utc_text(r.started_at));
    p.fact("Node", &r.node_version);
    p.fact("PID", &r.pid.to_string());
    let total = r.samples.last().map_or(0.0, |s| s.at.t);
    p.fact("Duration", &format!("{total:.1} s"));
    let phases: Vec<String> = r.phases.iter().map(|ph| format!("{} {:.1} s", ph.name, ph.end - ph.start)).collect();
    p.fact("Phases", &phases.join(" · "));
    let (class, word) = verdict_word(r.verdict);
    let mut top = verdict_box(class, word, &r.reason);
    let _ = write!(top, r#"<p id="rate">{}</p>"#, esc(&rate_words(r)));
    top.push_str(&run_timeline(r));
    let floors: Vec<String> =
        r.snapshots.iter().filter_map(|s| r.floors.iter().rev().find(|f| f.at.t <= s.t + 1e-9)).map(|f| bytes(f.heap_used)).collect();
    let _ = write!(
        top,
        r#"<p class="note">Heap after GC at each snapshot: {}. Snapshots: {}.</p>"#,
        esc(&floors.join(" → ")),
        esc(&r.snapshots.iter().map(|s| format!("{} at {:.1} s", bytes(s.bytes), s.t)).collect::<Vec<_>>().join(", "))
    );
    if let Some(t) = &r.tracking {
        // Object tracking: the live heap at each boundary by the phase that allocated it.
        let phases = t.boundaries.last().map_or(0, |b| b.live_bytes_by_phase.len());
        let _ = write!(top, r#"<table id="tracking"><tr><th>after</th><th>live heap</th>"#);
        for k in 0..phases {
            let _ = write!(top, "<th>{}</th>", if k == 0 { "from the warm-up".to_string() } else { format!("from round {k}") });
        }
        top.push_str("</tr>");
        for b in &t.boundaries {
            let _ = write!(top, "<tr><td>{}</td><td>{}</td>", esc(&b.after), bytes(b.live_bytes));
            for k in 0..phases {
                let _ = write!(top, "<td>{}</td>", b.live_bytes_by_phase.get(k).map(|&x| bytes(x)).unwrap_or_default());
            }
            top.push_str("</tr>");
        }
        top.push_str("</table>");
    }
    p.section("timeline", "Memory timeline", &top);
    suspects_section(&mut p, &r.diagnosis, doc.and_then(|d| d.get("diagnosis")));
    if let Some(c) = comparison {
        p.section("comparison", "Classes: first vs last snapshot", &comparison_table(c, "S1 → last snapshot"));
    }
    if let Some(l) = &r.load {
        p.section("load", "Load driver", &load_section(l));
    }
    p.finish()
}

fn suspects_section(p: &mut Page, d: &Diagnosis, located: Option<&serde_json::Value>) {
    let list = |key: &str| located.and_then(|l| l.get(key)).and_then(serde_json::Value::as_array).map(Vec::as_slice);
    let mut o = String::new();
    let _ = write!(
        o,
        "<p>{} objects ({}) allocated after the first snapshot are alive in every later one. Threshold: {} per step.</p>",
        d.survivors,
        bytes(d.survivor_bytes),
        bytes(d.min_growth_bytes_per_step)
    );
    for w in &d.warnings {
        let _ = write!(o, r#"<p class="note">warning: {}</p>"#, esc(w));
    }
    if d.suspects.is_empty() {
        o.push_str("<p>No object group grew in every step.</p>");
        if !d.below_threshold.is_empty() {
            o.push_str("<p>Groups that grew, but not in every step or below the threshold:</p>");
            o.push_str(&suspect_cards(&d.below_threshold[..d.below_threshold.len().min(3)], list("below_threshold")));
        }
    } else {
        o.push_str(&suspect_cards(&d.suspects, list("suspects")));
    }
    p.section("suspects", &format!("Suspects ({})", d.suspects.len()), &o);
}

/// The page of `leakhound diagnose`.
/// `doc`: the JSON document after the `sources` crate located its suspects.
pub fn diagnose_page(d: &Diagnosis, command_line: &str, doc: Option<&serde_json::Value>) -> String {
    let mut p = Page::new("leakhound diagnose");
    p.fact("Command", command_line);
    p.fact("Written", &utc_text(now_unix()));
    p.fact("Snapshots", &d.snapshots.len().to_string());
    let (class, word, text) = match d.verdict {
        Verdict::Leak => {
            let s = &d.suspects[0];
            let avg = s.bytes_per_step.iter().sum::<u64>() / s.bytes_per_step.len().max(1) as u64;
            (
                "leak",
                "Leak",
                format!("{} suspect(s); the largest, {}, grows by {} per step", d.suspects.len(), s.accumulator.name, bytes(avg)),
            )
        }
        Verdict::NoLeak | Verdict::Inconclusive => {
            ("no-leak", "No leak", format!("nothing grew by {} or more in every step", bytes(d.min_growth_bytes_per_step)))
        }
    };
    let mut top = verdict_box(class, word, &text);
    let chart = TimeChart {
        title: "Snapshot sizes",
        lines: vec![Line {
            label: "heap size in the snapshot",
            class: "size",
            points: d.snapshots.iter().enumerate().map(|(i, s)| (i as f64, s.total_size as f64)).collect(),
            dots: true,
        }],
        bands: Vec::new(),
        marks: d.snapshots.iter().enumerate().map(|(i, _)| Mark { label: "", t: i as f64 }).collect(),
        trend: None,
        x_text: Some(|t| format!("S{}", t.round() as i64 + 1)),
    };
    top.push_str(&chart.render());
    top.push_str(
        r#"<table id="snapshots"><thead><tr><th>#</th><th>File</th><th class="n">Objects</th><th class="n">Size</th></tr></thead><tbody>"#,
    );
    for (i, s) in d.snapshots.iter().enumerate() {
        let _ = write!(
            top,
            r#"<tr><td>S{}</td><td><code>{}</code></td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            i + 1,
            esc(&s.file),
            s.nodes,
            bytes(s.total_size)
        );
    }
    top.push_str("</tbody></table>");
    p.section("verdict", "Verdict", &top);
    suspects_section(&mut p, d, doc);
    p.finish()
}

/// The page of `leakhound diff`.
pub fn diff_page(c: &Comparison, base: &str, new: &str, command_line: &str) -> String {
    let mut p = Page::new("leakhound diff");
    p.fact("Command", command_line);
    p.fact("Written", &utc_text(now_unix()));
    p.fact("Base", base);
    p.fact("New", new);
    p.section("comparison", "Classes: new and deleted objects", &comparison_table(c, &format!("{base} → {new}")));
    p.finish()
}

/// One row of `summary`'s class table.
pub struct ClassRow {
    pub name: String,
    pub distance: Option<u32>,
    pub count: u64,
    pub shallow: u64,
    pub retained: u64,
}

/// The page of `leakhound summary`.
pub fn summary_page(file: &str, nodes: usize, edges: usize, total: u64, rows: &[ClassRow], command_line: &str) -> String {
    let mut p = Page::new(&format!("leakhound summary — {file}"));
    p.fact("Command", command_line);
    p.fact("Written", &utc_text(now_unix()));
    p.fact("Snapshot", file);
    p.fact("Objects", &nodes.to_string());
    p.fact("Edges", &edges.to_string());
    p.fact("Heap", &bytes(total));
    let mut o = String::from(
        r#"<p>Click a header to sort.</p><table class="sortable" id="classes"><thead><tr><th>Class</th><th class="n">Distance</th><th class="n">Count</th><th class="n">Shallow</th><th class="n">Retained</th><th class="n">% heap</th></tr></thead><tbody>"#,
    );
    for r in rows.iter().take(MAX_ROWS) {
        let _ = write!(
            o,
            r#"<tr><td><code>{}</code></td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{}</td><td class="n" data-v="{}">{:.1}%</td></tr>"#,
            esc(&r.name),
            r.distance.map_or(u32::MAX as i64, i64::from),
            r.distance.map_or("–".to_string(), |d| d.to_string()),
            r.count,
            r.count,
            r.shallow,
            bytes(r.shallow),
            r.retained,
            bytes(r.retained),
            r.retained,
            100.0 * r.retained as f64 / total.max(1) as f64
        );
    }
    o.push_str("</tbody></table>");
    if rows.len() > MAX_ROWS {
        let _ = write!(o, r#"<p class="note">{} more classes not shown.</p>"#, rows.len() - MAX_ROWS);
    }
    p.section("classes", "Classes by retained size", &o);
    p.finish()
}

/// The command line as typed, for the page header.
pub fn command_line() -> String {
    std::env::args_os()
        .map(|a| {
            let s = a.to_string_lossy().into_owned();
            if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", s.replace('\'', r"'\''"))
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The page of `leakhound watch`: the verdict in words, the memory
/// timeline with the post-GC floors and their trend, and the watch's
/// summary lines (`summary`, as printed on the terminal).
pub fn watch_page(w: &crate::model::watch::WatchReport, summary: &str, command_line: &str) -> String {
    let mut p = Page::new(&format!("leakhound watch — process {}", w.target.pid));
    p.fact("Command", command_line);
    p.fact("Process", &format!("{} ({})", w.target.pid, w.target.argv.join(" ")));
    p.fact("Node", &w.target.node_version);
    p.fact("Started", &utc_text(w.started_at));
    p.fact("Duration", &format!("{:.1} s, {} samples every {:.3} s", w.elapsed_s, w.samples.len(), w.interval_s));
    p.fact("Floors from", if w.floor_source == "forced-gc" { "a forced full GC before each sample" } else { "the process's own full GCs" });
    p.fact("GCs", &format!("{} full, {} minor, {:.0} ms in GC", w.gcs.major, w.gcs.minor, w.gcs.gc_ms));
    let (class, word) = verdict_word(w.verdict);
    let mut top = verdict_box(class, word, w.reason);
    let mut rate = match w.growth_bytes_per_hour {
        Some(g) => format!("The heap after full GCs grows {}/h (Theil-Sen over {} floors", signed_bytes(g as i64), w.floors.len()),
        None => format!("Too few post-GC floors ({}) to fit a growth rate", w.floors.len()),
    };
    if w.growth_bytes_per_hour.is_some() {
        if let Some(p) = w.p_value {
            let _ = write!(rate, ", Mann-Kendall p {}", diagnose::gclog::p_text(p));
        }
        rate.push(')');
    }
    if let Some(r) = w.recent_growth_bytes_per_hour {
        let _ = write!(rate, "; {}/h over the latest {} floors", signed_bytes(r as i64), w.analysis.recent_floors);
    }
    if let Some(s) = w.time_to_limit_s {
        let _ = write!(rate, "; at this rate it reaches the {} heap limit in {}", bytes(w.heap_size_limit), duration_words(s));
    }
    if w.early_signal {
        let _ = write!(rate, "; the floor rose at {} consecutive full GCs (memwatch's early leak signal)", w.longest_growth_run);
    }
    rate.push('.');
    let _ = write!(top, r#"<p id="rate">{}</p>"#, esc(&rate));
    let pts = |f: &dyn Fn(&crate::model::watch::Sample) -> u64| -> Vec<(f64, f64)> {
        svg::downsample(&w.samples.iter().map(|s| (s.at.t, f(s) as f64)).collect::<Vec<_>>(), MAX_POINTS)
    };
    let floors = svg::downsample(&w.floors.iter().map(|f| (f.at.t, f.heap_used as f64)).collect::<Vec<_>>(), MAX_POINTS);
    let heap = TimeChart {
        title: "JS heap over the watch",
        lines: vec![
            Line { label: "heapTotal", class: "total", points: pts(&|s| s.heap_total), dots: false },
            Line { label: "heapUsed", class: "used", points: pts(&|s| s.heap_used), dots: false },
            Line { label: "heap after full GC (floor)", class: "floor", points: floors, dots: true },
        ],
        bands: Vec::new(),
        marks: Vec::new(),
        trend: w.analysis.trend.as_ref().map(|t| (t.intercept, t.slope_per_sec, "floor trend (Theil-Sen)")),
        x_text: None,
    };
    let process = TimeChart {
        title: "Process memory over the watch",
        lines: vec![
            Line { label: "rss", class: "rss", points: pts(&|s| s.rss), dots: false },
            Line { label: "heapTotal", class: "total", points: pts(&|s| s.heap_total), dots: false },
            Line { label: "external", class: "used", points: pts(&|s| s.external), dots: false },
        ],
        bands: Vec::new(),
        marks: Vec::new(),
        trend: None,
        x_text: None,
    };
    let _ = write!(top, r#"<h3>JS heap</h3>{}<h3 class="second">Process (rss)</h3>{}"#, heap.render(), process.render());
    p.section("timeline", "Memory timeline", &top);
    let mut o = String::from("<ul class=\"summary\">");
    for line in summary.lines().filter(|l| !l.trim().is_empty()) {
        let _ = write!(o, "<li>{}</li>", esc(line.trim()));
    }
    o.push_str("</ul>");
    if let Some(e) = w.error {
        let _ = write!(o, r#"<p class="note">stopped by an error: {}</p>"#, esc(e));
    }
    p.section("summary", "Summary", &o);
    let mut c = String::from("<ul class=\"summary\">");
    for line in crate::report::container::watch_lines(&w.container) {
        let _ = write!(c, "<li>{}</li>", esc(&line));
    }
    c.push_str("</ul>");
    p.section("container", "Container and limits", &c);
    p.finish()
}
