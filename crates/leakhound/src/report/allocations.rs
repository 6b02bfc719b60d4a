//! The terminal report of `allocations`, and the header lines its page shares.

use crate::live;
use crate::model::allocations::{AllocReport, Ended, NO_INLINING_FLAG};
use crate::output::{bytes, clip, count, int, paint, terminal_width, Colour};
use diagnose::allocations::{location, percent, tree_rows, CodeKind, Site};
use loadgen::LoadReport;
use std::path::{Path, PathBuf};

pub fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

/// `32 KiB` for multiples of 1024, else bytes.
pub fn interval_text(n: u64) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

fn ended_text(e: Ended) -> &'static str {
    match e {
        Ended::Duration => "end of --duration",
        Ended::LoadFinished => "the load command finished",
        Ended::Interrupted => "interrupted",
    }
}

/// The first lines of the report (text and HTML alike).
pub fn header_lines(r: &AllocReport, cwd: &Path) -> Vec<String> {
    let mut v = vec![format!(
        "{}: sampled {} ({}), one sample per {} allocated on average{}",
        r.label,
        live::human_duration(r.duration_s),
        ended_text(r.ended),
        interval_text(r.sampling_interval),
        if r.sampling_interval == inspector::DEFAULT_SAMPLING_INTERVAL { " (V8's default)" } else { "" }
    )];
    let mut live = format!(
        "live after a full GC: {} (estimated from {}); {} ({:.1}%) allocated under your code",
        bytes(r.total_bytes),
        count(r.samples, "live sample"),
        bytes(r.user_code_bytes),
        percent(r.user_code_bytes, r.total_bytes)
    );
    if let Some(s) = r.sites.iter().find(|s| s.kind == CodeKind::User) {
        live.push_str(&format!("; top site of yours: {} {}", s.function, location(&s.url, s.line, s.column, cwd)));
    }
    v.push(live);
    if let Some(l) = &r.load {
        v.push(load_line(l));
    }
    v
}

/// `-q`: the process and what is live, on one line.
pub fn headline(r: &AllocReport, cwd: &Path) -> String {
    let lines = header_lines(r, cwd);
    format!("{}: {}", r.label, lines.get(1).map_or("", |l| l.as_str()))
}

pub fn load_line(l: &LoadReport) -> String {
    format!(
        "load: {} ({} ok, {} non-2xx, {}) over {}, {} req/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        count(l.requests, "request"),
        int(l.ok),
        int(l.non_2xx),
        count(l.errors, "error"),
        count(l.connections as u64, "connection"),
        int(l.requests_per_s.round() as u64),
        l.latency_ms.p50,
        l.latency_ms.p99,
        l.latency_ms.max
    )
}

/// Indentation of a tree row: two spaces a level, then `·N ` past 24
/// levels so deep stacks stay readable.
fn indent(depth: usize) -> String {
    if depth <= 24 {
        "  ".repeat(depth)
    } else {
        format!("{}·{depth} ", "  ".repeat(20))
    }
}

pub const MAX_TREE_ROWS: usize = 200;

/// The text report.
pub fn render(r: &AllocReport, top: usize, min_percent: f64, cwd: &Path) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for l in header_lines(r, cwd) {
        let _ = writeln!(o, "{l}");
    }
    if r.total_bytes == 0 {
        let _ = writeln!(
            o,
            "\nNothing allocated during the sampling is alive any more (or too little was allocated for a sample: try a longer --duration, load, or a smaller --interval)."
        );
        return o;
    }
    let width = terminal_width();
    let (rows, hidden) = tree_rows(&r.tree, min_percent, MAX_TREE_ROWS);
    let _ = writeln!(o, "\nCall tree, top-down (call paths holding at least {min_percent}% of the live bytes)");
    let _ = writeln!(o, "{:>9} {:>6} {:>9}  Function  Location", "Total", "%", "Self");
    for row in &rows {
        let n = row.node;
        let name = format!("{}{}", indent(row.depth), row.name());
        let loc = location(&n.url, n.line, n.column, cwd);
        let fixed = 9 + 1 + 6 + 1 + 9 + 2;
        let room = width.saturating_sub(fixed + 2 + loc.chars().count()).max(20);
        let name = clip(&name, room);
        let name = if n.kind == CodeKind::User { paint(&name, Colour::Yellow) } else { name };
        let line = format!(
            "{:>9} {:>5.1}% {:>9}  {name}  {loc}",
            bytes(n.total_bytes),
            percent(n.total_bytes, r.total_bytes),
            bytes(row.self_bytes)
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    if hidden > 0 {
        let _ = writeln!(o, "({hidden} more rows not shown)");
    }
    let _ = writeln!(o, "\nAllocation sites by self size (live bytes allocated with the function on top of the stack)");
    let _ = writeln!(o, "{}", sites_table(&r.sites, top, r.total_bytes, cwd, true));
    let _ = writeln!(
        o,
        "Your code (live bytes by the innermost function of yours on the allocating stack, node and node_modules frames above it included)"
    );
    let _ = writeln!(o, "{}", sites_table(&r.user_code, top.min(10), r.total_bytes, cwd, false));
    if !r.no_inlining {
        let _ = writeln!(
            o,
            "note: V8 charges a function it inlined to its caller; to see each function's own allocations, run with --no-inlining (with `-- node ...`) or start node with {NO_INLINING_FLAG}"
        );
    }
    o
}

fn sites_table(sites: &[Site], top: usize, total: u64, cwd: &Path, with_kind: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let shown = &sites[..sites.len().min(top)];
    let fw = shown.iter().map(|s| s.function.chars().count()).max().unwrap_or(8).clamp(8, 48);
    if with_kind {
        let _ = writeln!(o, "{:>9} {:>6} {:>7}  {:<12}  {:<fw$}  Location", "Self", "%", "Samples", "Code", "Function");
    } else {
        let _ = writeln!(o, "{:>9} {:>6} {:>7}  {:<fw$}  Location", "Bytes", "%", "Samples", "Function");
    }
    for s in shown {
        let f = clip(&s.function, fw);
        let f = format!("{f:<fw$}");
        let f = if s.kind == CodeKind::User { paint(&f, Colour::Yellow) } else { f };
        let loc = location(&s.url, s.line, s.column, cwd);
        let kind = if with_kind { format!("{:<12}  ", s.kind.word()) } else { String::new() };
        let line = format!("{:>9} {:>5.1}% {:>7}  {kind}{f}  {loc}", bytes(s.bytes), percent(s.bytes, total), s.samples);
        let _ = writeln!(o, "{}", line.trim_end());
    }
    if sites.len() > shown.len() {
        let rest: u64 = sites[shown.len()..].iter().map(|s| s.bytes).sum();
        let _ = writeln!(o, "{:>9} {:>5.1}% {:>7}  ({} more)", bytes(rest), percent(rest, total), "", sites.len() - shown.len());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_texts() {
        assert_eq!(interval_text(32768), "32 KiB");
        assert_eq!(interval_text(1000), "1000 bytes");
        assert_eq!(serde_json::to_string(&CodeKind::NodeModules).unwrap(), r#""node-modules""#);
    }
}
