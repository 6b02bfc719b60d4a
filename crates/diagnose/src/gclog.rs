//! V8 `--trace-gc` / `--trace-gc-nvp` logs: a streaming line parser and the
//! analysis (heap floor after full GCs, its trend, pauses, GC time, verdict).
//!
//! Formats read, each optionally prefixed by `[pid:isolate]   T ms: `:
//! - current: `Mark-Compact 59.4 (76.9) -> 42.6 (77.4) MB, 97.87 / 0.00 ms  (...) reason`,
//!   also `Scavenge`, `Mark-Compact (reduce)`, `Minor Mark-Sweep`, `Minor Mark-Compact`;
//! - old (Node 0.x): `Mark-sweep 10.9 (48.5) -> 10.9 (48.5) MB, 25.0 ms [...]`;
//! - `--trace-gc-nvp`: `pause=1.7 ... gc=s ... total_size_before=N total_size_after=N ...` (bytes).
//!
//! Any other line (the program's own output) is skipped and counted.

use crate::trend::Trend;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum GcLogError {
    #[error("no --trace-gc lines found in {file} ({lines} lines read)")]
    NoGcLines { file: String, lines: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GcKind {
    Scavenge,
    MinorMarkSweep,
    MinorMarkCompact,
    MarkCompact,
    MarkCompactReduce,
    /// The old (Node 0.x) full GC line, and `Mark-sweep` of Node 4-10.
    MarkSweep,
    Other,
}

impl GcKind {
    /// A full (old-generation) collection: its `after` is the heap floor.
    pub fn is_full(self) -> bool {
        matches!(self, GcKind::MarkCompact | GcKind::MarkCompactReduce | GcKind::MarkSweep)
    }
    pub fn label(self) -> &'static str {
        match self {
            GcKind::Scavenge => "Scavenge",
            GcKind::MinorMarkSweep => "Minor Mark-Sweep",
            GcKind::MinorMarkCompact => "Minor Mark-Compact",
            GcKind::MarkCompact => "Mark-Compact",
            GcKind::MarkCompactReduce => "Mark-Compact (reduce)",
            GcKind::MarkSweep => "Mark-sweep",
            GcKind::Other => "other",
        }
    }
}

/// Text-format kinds, longest prefix first.
const KINDS: &[(&str, GcKind)] = &[
    ("Mark-Compact (reduce)", GcKind::MarkCompactReduce),
    ("Mark-sweep (reduce)", GcKind::MarkCompactReduce),
    ("Minor Mark-Sweep", GcKind::MinorMarkSweep),
    ("Minor Mark-Compact", GcKind::MinorMarkCompact),
    ("Mark-Compact", GcKind::MarkCompact),
    ("Mark-sweep", GcKind::MarkSweep),
    ("Mark-Sweep", GcKind::MarkSweep),
    ("Scavenge", GcKind::Scavenge),
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GcEvent {
    /// Milliseconds since the isolate started; with no timestamps in the
    /// log, the event's ordinal times 1000 (one "second" per GC).
    pub time_ms: f64,
    pub kind: GcKind,
    pub before_mb: f64,
    pub after_mb: f64,
    /// Committed heap after the GC, when the format says it.
    pub committed_mb: Option<f64>,
    pub pause_ms: f64,
    /// 1-based line number in the input.
    pub line: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    TraceGc,
    TraceGcOld,
    TraceGcNvp,
}

/// Feed lines one at a time; memory is one event per GC line.
#[derive(Debug, Default)]
pub struct Parser {
    lines: u64,
    skipped: u64,
    events: Vec<GcEvent>,
    untimed: u64,
    formats: Vec<Format>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, line: &str) {
        self.lines += 1;
        match parse_line(line) {
            Some((time, format, mut ev)) => {
                ev.line = self.lines;
                if let Some(t) = time {
                    ev.time_ms = t;
                } else {
                    self.untimed += 1;
                }
                if !self.formats.contains(&format) {
                    self.formats.push(format);
                }
                self.events.push(ev);
            }
            None => self.skipped += 1,
        }
    }

    /// The parsed log; `file` names the input in the error.
    pub fn finish(mut self, file: &str) -> Result<GcLog, GcLogError> {
        if self.events.is_empty() {
            return Err(GcLogError::NoGcLines { file: file.to_string(), lines: self.lines });
        }
        let mut notes = Vec::new();
        let timestamps = self.untimed == 0;
        if !timestamps {
            // Mixed or absent timestamps: fall back to line order for all.
            for (i, ev) in self.events.iter_mut().enumerate() {
                ev.time_ms = i as f64 * 1000.0;
            }
            notes.push(format!(
                "{} of {} GC lines have no timestamp: time is the order of the lines (1 s per GC), so rates are per 3600 GCs, not per hour",
                self.untimed,
                self.events.len()
            ));
        } else if self.events.windows(2).any(|w| w[1].time_ms < w[0].time_ms) {
            notes.push("timestamps go backwards (several processes or restarts in one log?): events are analysed in line order".into());
        }
        Ok(GcLog { lines: self.lines, skipped_lines: self.skipped, formats: self.formats, timestamps, notes, events: self.events })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GcLog {
    pub lines: u64,
    /// Lines that are not GC lines (the program's own output).
    pub skipped_lines: u64,
    pub formats: Vec<Format>,
    /// False when time is the line order.
    pub timestamps: bool,
    pub notes: Vec<String>,
    pub events: Vec<GcEvent>,
}

/// Parse one line: (timestamp if any, format, event with time 0 and line 0).
pub fn parse_line(line: &str) -> Option<(Option<f64>, Format, GcEvent)> {
    let mut rest = line.trim();
    // `[pid:0xaddr]` or `[pid]`
    if rest.starts_with('[') {
        let end = rest.find(']')?;
        rest = rest[end + 1..].trim_start();
    }
    // `459 ms: `
    let mut time = None;
    if let Some(colon) = rest.find(" ms: ") {
        if let Ok(t) = rest[..colon].trim().parse::<f64>() {
            time = Some(t);
            rest = rest[colon + 5..].trim_start();
        }
    }
    if rest.starts_with("pause=") || (rest.contains(" gc=") && rest.contains("pause=")) {
        return parse_nvp(rest).map(|ev| (time, Format::TraceGcNvp, ev));
    }
    let (prefix, kind) = KINDS.iter().find(|(p, _)| rest.starts_with(p))?;
    let mut c = Cursor(rest[prefix.len()..].trim_start());
    let before = c.number()?;
    let _before_committed = c.paren_number()?;
    c.literal("->")?;
    let after = c.number()?;
    let committed = c.paren_number()?;
    c.literal("MB,")?;
    let pause = c.number()?;
    // Current: `97.87 / 0.00 ms`; old: `25.0 ms`.
    let format = if c.0.starts_with('/') { Format::TraceGc } else { Format::TraceGcOld };
    if format == Format::TraceGcOld {
        c.literal("ms")?;
    }
    let ev =
        GcEvent { time_ms: 0.0, kind: *kind, before_mb: before, after_mb: after, committed_mb: Some(committed), pause_ms: pause, line: 0 };
    Some((time, format, ev))
}

const MB: f64 = 1024.0 * 1024.0;

fn parse_nvp(rest: &str) -> Option<GcEvent> {
    let (mut pause, mut gc, mut before, mut after) = (None, None, None, None);
    for tok in rest.split_whitespace() {
        let Some((k, v)) = tok.split_once('=') else { continue };
        match k {
            "pause" => pause = v.parse::<f64>().ok(),
            "gc" => gc = Some(v),
            "total_size_before" => before = v.parse::<f64>().ok(),
            "total_size_after" => after = v.parse::<f64>().ok(),
            _ => {}
        }
    }
    let kind = match gc? {
        "s" => GcKind::Scavenge,
        "mc" => GcKind::MarkCompact,
        // Old V8 named its full GC `ms` (mark-sweep).
        "ms" => GcKind::MarkSweep,
        "mmc" => GcKind::MinorMarkCompact,
        "mms" => GcKind::MinorMarkSweep,
        _ => GcKind::Other,
    };
    Some(GcEvent { time_ms: 0.0, kind, before_mb: before? / MB, after_mb: after? / MB, committed_mb: None, pause_ms: pause?, line: 0 })
}

struct Cursor<'a>(&'a str);

impl Cursor<'_> {
    fn number(&mut self) -> Option<f64> {
        let s = self.0.trim_start();
        let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e')).unwrap_or(s.len());
        let v = s[..end].parse::<f64>().ok()?;
        self.0 = s[end..].trim_start();
        Some(v)
    }
    fn literal(&mut self, lit: &str) -> Option<()> {
        let s = self.0.trim_start();
        self.0 = s.strip_prefix(lit)?.trim_start();
        Some(())
    }
    fn paren_number(&mut self) -> Option<f64> {
        self.literal("(")?;
        let v = self.number()?;
        self.literal(")")?;
        Some(v)
    }
}

/// Verdict thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The floor must grow at least this fast (Theil-Sen) to be called a
    /// leak. The default, 1 MB/h, only rules out negligible growth (24 MB a
    /// day): whether the growth is real is the Mann-Kendall test's job, and
    /// the Theil-Sen slope of a flat floor is ~0 (most pairwise slopes are
    /// 0 or cancel), while the test fixtures' leak grows thousands of MB/h,
    /// so the two sit orders of magnitude on either side of it.
    pub min_growth_mb_per_hour: f64,
    /// Full GCs needed for any verdict but `inconclusive`.
    pub min_full_gcs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { min_growth_mb_per_hour: 1.0, min_full_gcs: 5 }
    }
}

/// Below this p-value (but above `trend::ALPHA`) a floor growing faster
/// than the threshold gives `inconclusive` rather than `no-leak`.
pub const SUGGESTIVE_P: f64 = 0.1;

/// The smallest floor step (MB) called a leak without significance (see
/// `trend::step_up`): well above the few MB a warming-up app settles by.
pub const STEP_MIN_MB: f64 = 32.0;

/// memwatch's early signal: the floor grew across this many consecutive full GCs.
pub const EARLY_SIGNAL_RUN: usize = 5;

/// The one verdict of every analysis (see [`crate::verdict`]).
pub use crate::verdict::Verdict;

#[derive(Debug, Clone, Serialize)]
pub struct KindCount {
    pub kind: GcKind,
    pub label: &'static str,
    pub count: usize,
    pub total_pause_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorPoint {
    pub time_ms: f64,
    pub after_mb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub gc_events: usize,
    pub full_gcs: usize,
    pub by_kind: Vec<KindCount>,
    /// First to last GC event, ms.
    pub elapsed_ms: f64,
    /// The heap used after each full GC.
    pub floor: Vec<FloorPoint>,
    pub floor_start_mb: Option<f64>,
    pub floor_end_mb: Option<f64>,
    pub floor_min_mb: Option<f64>,
    pub floor_max_mb: Option<f64>,
    /// Trend of the floor (y in MB, x in seconds).
    pub floor_trend: Option<Trend>,
    pub floor_growth_mb_per_hour: Option<f64>,
    /// Trend of full-GC pauses (y in ms, x in seconds).
    pub pause_trend: Option<Trend>,
    pub pause_growth_ms_per_hour: Option<f64>,
    pub total_pause_ms: f64,
    pub max_pause_ms: f64,
    pub mean_full_gc_pause_ms: Option<f64>,
    /// Sum of pauses per minute of elapsed time (ms of GC per minute).
    pub gc_ms_per_minute: Option<f64>,
    /// Longest run of consecutive full GCs each leaving a higher floor than the one before.
    pub longest_floor_growth_run: usize,
    /// memwatch's early signal: the floor grew across `EARLY_SIGNAL_RUN` consecutive full GCs.
    pub early_signal: bool,
    pub min_growth_mb_per_hour: f64,
    pub verdict: Verdict,
    pub reason: String,
}

pub fn analyze(log: &GcLog, opts: Options) -> Analysis {
    let ev = &log.events;
    let mut by_kind: Vec<KindCount> = Vec::new();
    for e in ev {
        match by_kind.iter_mut().find(|k| k.kind == e.kind) {
            Some(k) => {
                k.count += 1;
                k.total_pause_ms += e.pause_ms;
            }
            None => by_kind.push(KindCount { kind: e.kind, label: e.kind.label(), count: 1, total_pause_ms: e.pause_ms }),
        }
    }
    by_kind.sort_by_key(|k| k.kind);
    let (t0, t1) = ev.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), e| (a.min(e.time_ms), b.max(e.time_ms)));
    let elapsed_ms = (t1 - t0).max(0.0);
    let full: Vec<&GcEvent> = ev.iter().filter(|e| e.kind.is_full()).collect();
    // Trends use the line order when timestamps go backwards (x = ordinal).
    let monotonic = ev.windows(2).all(|w| w[1].time_ms >= w[0].time_ms);
    let xs: Vec<f64> = full.iter().enumerate().map(|(i, e)| if monotonic { e.time_ms / 1000.0 } else { i as f64 }).collect();
    let floor_y: Vec<f64> = full.iter().map(|e| e.after_mb).collect();
    let pause_y: Vec<f64> = full.iter().map(|e| e.pause_ms).collect();
    let floor_trend = Trend::fit(&xs, &floor_y);
    let pause_trend = Trend::fit(&xs, &pause_y);
    let total_pause_ms: f64 = ev.iter().map(|e| e.pause_ms).sum();
    let max_pause_ms = ev.iter().map(|e| e.pause_ms).fold(0.0, f64::max);
    let mut run = 0;
    let mut longest = 0;
    for w in floor_y.windows(2) {
        run = if w[1] > w[0] { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let growth = floor_trend.as_ref().map(Trend::per_hour);
    let step = crate::trend::step_up(&floor_y, STEP_MIN_MB);
    let (verdict, reason) = if full.len() < opts.min_full_gcs {
        (
            Verdict::Inconclusive,
            format!(
                "only {} full GC{} (Mark-Compact/Mark-sweep); need at least {}",
                full.len(),
                if full.len() == 1 { "" } else { "s" },
                opts.min_full_gcs
            ),
        )
    } else {
        match &floor_trend {
            None => (Verdict::Inconclusive, "the full GCs all have the same time".to_string()),
            Some(t) if t.significant_increasing && t.per_hour() >= opts.min_growth_mb_per_hour => (
                Verdict::Leak,
                format!(
                    "the heap floor after full GCs grows {:.1} MiB/h (Mann-Kendall p {} over {} full GCs)",
                    t.per_hour(),
                    p_text(t.p_value),
                    full.len()
                ),
            ),
            Some(t) if t.significant_increasing => (
                Verdict::NoLeak,
                format!(
                    "the heap floor rises steadily but only {:.2} MiB/h, below --min-rate {} MiB/h (p {})",
                    t.per_hour(),
                    opts.min_growth_mb_per_hour,
                    p_text(t.p_value)
                ),
            ),
            // Not significant, but a step far too large to be noise: the
            // floor multiplied and never came back down (the seed
            // article's seven Mark-sweeps, 10.9 MB -> 235.7 MB).
            Some(t) if t.per_hour() >= opts.min_growth_mb_per_hour && step.is_some() => {
                let st = step.unwrap();
                (
                    Verdict::Leak,
                    format!(
                        "the heap floor after full GCs went from {:.1} MiB to {:.1} MiB ({:.1}x, {:.1} MiB/h) and every later floor stays above every earlier one; Mann-Kendall p {} over {} full GCs is short of significance only because the log is short",
                        st.before,
                        st.after,
                        st.ratio,
                        t.per_hour(),
                        p_text(t.p_value),
                        full.len()
                    ),
                )
            }
            // Large growth that is not (yet) significant, e.g. a few full
            // GCs in two clusters: calling that `no-leak` would mislead.
            Some(t) if t.mann_kendall_z > 0.0 && t.p_value < SUGGESTIVE_P && t.per_hour() >= opts.min_growth_mb_per_hour => (
                Verdict::Inconclusive,
                format!(
                    "the heap floor grows {:.1} MiB/h but Mann-Kendall p {} over {} full GCs is not significant (p < {} needed): collect a longer log",
                    t.per_hour(),
                    p_text(t.p_value),
                    full.len(),
                    crate::trend::ALPHA
                ),
            ),
            Some(t) => (
                Verdict::NoLeak,
                format!(
                    "no significant growth of the heap floor over {} full GCs ({:+.1} MiB/h, Mann-Kendall z = {:.2}, p {}{})",
                    full.len(),
                    t.per_hour(),
                    t.mann_kendall_z,
                    p_text(t.p_value),
                    if t.mann_kendall_z < 0.0 { ", falling" } else { "" }
                ),
            ),
        }
    };
    Analysis {
        gc_events: ev.len(),
        full_gcs: full.len(),
        by_kind,
        elapsed_ms,
        floor: full.iter().map(|e| FloorPoint { time_ms: e.time_ms, after_mb: e.after_mb }).collect(),
        floor_start_mb: floor_y.first().copied(),
        floor_end_mb: floor_y.last().copied(),
        floor_min_mb: floor_y.iter().copied().reduce(f64::min),
        floor_max_mb: floor_y.iter().copied().reduce(f64::max),
        floor_growth_mb_per_hour: growth,
        floor_trend,
        pause_growth_ms_per_hour: pause_trend.as_ref().map(Trend::per_hour),
        pause_trend,
        total_pause_ms,
        max_pause_ms,
        mean_full_gc_pause_ms: if pause_y.is_empty() { None } else { Some(pause_y.iter().sum::<f64>() / pause_y.len() as f64) },
        gc_ms_per_minute: if elapsed_ms > 0.0 { Some(total_pause_ms / (elapsed_ms / 60_000.0)) } else { None },
        longest_floor_growth_run: longest,
        early_signal: longest >= EARLY_SIGNAL_RUN,
        min_growth_mb_per_hour: opts.min_growth_mb_per_hour,
        verdict,
        reason,
    }
}

/// `< 0.001` or `= 0.0123`.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("= {p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> GcLog {
        let mut p = Parser::new();
        for l in lines {
            p.feed(l);
        }
        p.finish("test.log").unwrap()
    }

    #[test]
    fn current_format() {
        let (t, f, e) = parse_line("[3309:0x34937d60]      459 ms: Mark-Compact 59.4 (76.9) -> 42.6 (77.4) MB, 97.87 / 0.00 ms  (+ 0.4 ms in 4 steps since start of marking, biggest step 0.1 ms) (average mu = 1.000, current mu = 1.000) finalize incremental marking via stack guard; GC in old space requested").unwrap();
        assert_eq!((t, f), (Some(459.0), Format::TraceGc));
        assert_eq!((e.kind, e.before_mb, e.after_mb, e.committed_mb, e.pause_ms), (GcKind::MarkCompact, 59.4, 42.6, Some(77.4), 97.87));
        let (_, _, e) = parse_line("[1:0x1]  139 ms: Scavenge 4.1 (4.2) -> 3.8 (5.2) MB, 5.24 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ").unwrap();
        assert_eq!(e.kind, GcKind::Scavenge);
        let (_, _, e) = parse_line("[1:0x1]  139 ms: Mark-Compact (reduce) 4.1 (4.2) -> 3.8 (5.2) MB, 5.24 / 0.00 ms  (average mu = 1.000) low memory notification; GC in old space requested").unwrap();
        assert_eq!(e.kind, GcKind::MarkCompactReduce);
        let (_, _, e) =
            parse_line("[1:0x1]  139 ms: Minor Mark-Sweep 4.1 (4.2) -> 3.8 (5.2) MB, 1.0 / 0.0 ms  allocation failure;").unwrap();
        assert_eq!(e.kind, GcKind::MinorMarkSweep);
    }

    #[test]
    fn old_format_with_and_without_timestamps() {
        let (t, f, e) = parse_line("[28093]     7644 ms: Mark-sweep 10.9 (48.5) -> 10.9 (48.5) MB, 25.0 ms [HeapObjectsMap::UpdateHeapObjectsMap] [GC in old space requested].").unwrap();
        assert_eq!((t, f, e.kind, e.pause_ms), (Some(7644.0), Format::TraceGcOld, GcKind::MarkSweep, 25.0));
        let log = parse(&[
            "Mark-sweep 10.9 (48.5) -> 10.9 (48.5) MB, 25.0 ms [x]",
            "hello",
            "Mark-sweep 11.9 (48.5) -> 11.0 (48.5) MB, 26.0 ms [x]",
        ]);
        assert!(!log.timestamps);
        assert_eq!(log.skipped_lines, 1);
        assert_eq!(log.events[1].time_ms, 1000.0);
        assert_eq!(log.notes.len(), 1);
    }

    #[test]
    fn nvp_lines() {
        let (t, f, e) = parse_line("[15691:0x1386fcf0]      465 ms: pause=7.5 mutator=1.8 gc=mc reduce_memory=0 total_size_before=10485760 total_size_after=3145728 holes_size_before=355320").unwrap();
        assert_eq!(
            (t, f, e.kind, e.pause_ms, e.before_mb, e.after_mb),
            (Some(465.0), Format::TraceGcNvp, GcKind::MarkCompact, 7.5, 10.0, 3.0)
        );
        assert_eq!(parse_line("pause=1.0 gc=s total_size_before=0 total_size_after=0").unwrap().2.kind, GcKind::Scavenge);
    }

    #[test]
    fn foreign_lines_are_skipped() {
        for l in ["{\"a\": 1}", "", "Mark-Compact is a GC", "[info] 12 ms: started", "Scavenge 1 (2) -> x"] {
            assert!(parse_line(l).is_none(), "{l}");
        }
        let mut p = Parser::new();
        p.feed("{}");
        let err = p.finish("x.json").unwrap_err().to_string();
        assert!(err.contains("no --trace-gc lines found in x.json"), "{err}");
    }

    fn synthetic(floor: impl Fn(usize) -> f64) -> GcLog {
        let lines: Vec<String> = (0..30)
            .flat_map(|i| {
                let t = i * 60_000;
                vec![
                    format!("[1:0x1] {} ms: Scavenge 30.0 (40.0) -> 20.0 (40.0) MB, 1.00 / 0.00 ms  allocation failure;", t + 100),
                    format!(
                        "[1:0x1] {t} ms: Mark-Compact {:.1} (90.0) -> {:.1} (90.0) MB, 10.00 / 0.00 ms  testing;",
                        floor(i) + 30.0,
                        floor(i)
                    ),
                ]
            })
            .collect();
        // Keep time order.
        let mut lines = lines;
        lines.sort_by_key(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap());
        parse(&lines.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    }

    #[test]
    fn verdicts() {
        // 0.5 MB per minute = 30 MB/h.
        let a = analyze(&synthetic(|i| 50.0 + 0.5 * i as f64), Options::default());
        assert_eq!(a.verdict, Verdict::Leak, "{}", a.reason);
        assert!((a.floor_growth_mb_per_hour.unwrap() - 30.0).abs() < 1e-6);
        assert!(a.early_signal);
        assert_eq!(a.full_gcs, 30);
        // Sawtooth floor.
        let a = analyze(&synthetic(|i| 50.0 + (i % 5) as f64), Options::default());
        assert_eq!(a.verdict, Verdict::NoLeak, "{}", a.reason);
        assert!(!a.early_signal);
        // Slow steady growth under the threshold.
        let a = analyze(&synthetic(|i| 50.0 + 0.1 * i as f64), Options { min_growth_mb_per_hour: 100.0, ..Default::default() });
        assert_eq!(a.verdict, Verdict::NoLeak, "{}", a.reason);
        // Big growth, two clusters, not significant: a twentyfold step is a leak (the seed article's excerpt).
        let log = parse(&[
            "[1]  7644 ms: Mark-sweep 10.9 (48.5) -> 10.9 (48.5) MB, 25.0 ms [x]",
            "[1]  7717 ms: Mark-sweep 10.9 (48.5) -> 10.9 (48.5) MB, 18.0 ms [x]",
            "[1]  7866 ms: Mark-sweep 11.0 (48.5) -> 10.9 (48.5) MB, 23.2 ms [x]",
            "[1]  8001 ms: Mark-sweep 11.0 (48.5) -> 10.9 (48.5) MB, 18.4 ms [x]",
            "[1]  633891 ms: Mark-sweep 235.7 (290.5) -> 235.7 (290.5) MB, 357.3 ms [x]",
            "[1]  635672 ms: Mark-sweep 235.7 (290.5) -> 235.7 (290.5) MB, 331.5 ms [x]",
            "[1]  637508 ms: Mark-sweep 235.7 (290.5) -> 235.7 (290.5) MB, 357.2 ms [x]",
        ]);
        let a = analyze(&log, Options::default());
        assert_eq!(a.verdict, Verdict::Leak, "{}", a.reason);
        assert!(a.reason.contains("10.9 MiB to 235.7 MiB"), "{}", a.reason);
        assert!(a.floor_trend.as_ref().unwrap().p_value > crate::trend::ALPHA);
        assert!(a.pause_growth_ms_per_hour.unwrap() > 0.0);
        // The same shape with a small change keeps the short-log caution.
        let log = parse(&[
            "[1]  7644 ms: Mark-sweep 50.9 (68.5) -> 50.9 (68.5) MB, 25.0 ms [x]",
            "[1]  7717 ms: Mark-sweep 50.9 (68.5) -> 50.9 (68.5) MB, 18.0 ms [x]",
            "[1]  7866 ms: Mark-sweep 51.0 (68.5) -> 50.9 (68.5) MB, 23.2 ms [x]",
            "[1]  8001 ms: Mark-sweep 51.0 (68.5) -> 50.9 (68.5) MB, 18.4 ms [x]",
            "[1]  633891 ms: Mark-sweep 58.7 (70.5) -> 58.7 (70.5) MB, 27.3 ms [x]",
            "[1]  635672 ms: Mark-sweep 58.7 (70.5) -> 58.7 (70.5) MB, 21.5 ms [x]",
            "[1]  637508 ms: Mark-sweep 58.7 (70.5) -> 58.7 (70.5) MB, 27.2 ms [x]",
        ]);
        let a = analyze(&log, Options::default());
        assert_eq!(a.verdict, Verdict::Inconclusive, "{}", a.reason);
        // Too few full GCs.
        let log = parse(&[
            "[1] 1 ms: Mark-Compact 2.0 (3.0) -> 1.0 (3.0) MB, 1.0 / 0.0 ms",
            "[1] 2 ms: Mark-Compact 3.0 (3.0) -> 2.0 (3.0) MB, 1.0 / 0.0 ms",
        ]);
        assert_eq!(analyze(&log, Options::default()).verdict, Verdict::Inconclusive);
    }
}
