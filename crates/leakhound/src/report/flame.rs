//! The page of `leakhound allocations`: a flame graph of the live sampled
//! bytes by allocating call stack, drawn here as SVG (the root on top, each
//! function's children below it, widths proportional to total bytes,
//! largest first; hover a frame for its figures), then the sites, the
//! user-code view and the top-down table.
//!
//! Frames narrower than 0.1% of the width are left out (their bytes still
//! count in their parent's width), and the threshold rises until at most
//! `MAX_FRAMES` frames are drawn, so the page stays small (well under 2 MB)
//! whatever the profile.

use super::allocations as alloc;
use super::{esc, now_unix, utc_text, Page};
use crate::model::allocations::AllocReport;
use crate::output::bytes;
use diagnose::allocations::{location, percent, tree_rows, CodeKind, Site, TreeNode};
use std::fmt::Write;
use std::path::Path;

const W: f64 = 1100.0;
const ROW: f64 = 18.0;
/// Approximate width of one character of the 11px label font.
const CHAR_W: f64 = 6.4;
pub const MAX_FRAMES: usize = 4000;

/// Frames drawn: `(x, depth, width, node)`.
fn layout(root: &TreeNode, min_w: f64) -> Vec<(f64, usize, f64, &TreeNode)> {
    let mut out = Vec::new();
    if root.total_bytes == 0 {
        return out;
    }
    let scale = W / root.total_bytes as f64;
    let mut stack = vec![(0.0, 0usize, root)];
    while let Some((x, d, n)) = stack.pop() {
        let w = n.total_bytes as f64 * scale;
        if w < min_w && d > 0 {
            continue;
        }
        out.push((x, d, w, n));
        let mut cx = x;
        for c in &n.children {
            stack.push((cx, d + 1, c));
            cx += c.total_bytes as f64 * scale;
        }
    }
    out
}

/// A stable hash of a name, to vary the shade within a kind's colour.
fn shade(name: &str) -> u32 {
    name.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619))
}

fn fill(kind: CodeKind, name: &str) -> String {
    let h = shade(name);
    let v = (h % 1000) as f64 / 1000.0;
    match kind {
        CodeKind::User => format!("hsl({:.0},85%,{:.0}%)", 22.0 + 20.0 * v, 55.0 + 10.0 * (1.0 - v)),
        CodeKind::NodeModules => format!("hsl({:.0},55%,{:.0}%)", 265.0 + 25.0 * v, 68.0 + 8.0 * v),
        CodeKind::Node => format!("hsl({:.0},45%,{:.0}%)", 190.0 + 20.0 * v, 66.0 + 8.0 * v),
        CodeKind::V8 => format!("hsl(0,0%,{:.0}%)", 72.0 + 10.0 * v),
    }
}

/// The flame graph of `root` as an inline SVG element.
pub fn flame_svg(root: &TreeNode, cwd: &Path) -> String {
    let mut min_w = W * 0.001;
    let mut frames = layout(root, min_w);
    while frames.len() > MAX_FRAMES {
        min_w *= 1.25;
        frames = layout(root, min_w);
    }
    let depth = frames.iter().map(|f| f.1).max().unwrap_or(0) + 1;
    let h = depth as f64 * ROW;
    let total = root.total_bytes;
    let mut o = String::with_capacity(frames.len() * 260 + 512);
    let _ = write!(
        o,
        r#"<svg class="flame" id="flamegraph" viewBox="0 0 {W} {h}" width="100%" role="img" aria-label="flame graph of live allocations" xmlns="http://www.w3.org/2000/svg">"#
    );
    for (x, d, w, n) in &frames {
        let loc = location(&n.url, n.line, n.column, cwd);
        let title = format!(
            "{}{}{}\ntotal {} ({:.1}%), self {} in {} live samples",
            n.function,
            if loc.is_empty() { "" } else { " " },
            loc,
            bytes(n.total_bytes),
            percent(n.total_bytes, total),
            bytes(n.self_bytes),
            n.self_samples
        );
        let y = *d as f64 * ROW;
        let _ = write!(
            o,
            r#"<g class="{}"><title>{}</title><rect x="{x:.1}" y="{y:.0}" width="{:.1}" height="{:.0}" fill="{}"/>"#,
            kind_class(n.kind),
            esc(&title),
            (w - 0.5).max(0.3),
            ROW - 1.0,
            fill(n.kind, &n.function)
        );
        let fits = ((w - 6.0) / CHAR_W).floor();
        if fits >= 3.0 {
            let label = crate::output::clip(&n.function, fits as usize);
            let _ = write!(o, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, x + 3.0, y + 12.5, esc(&label));
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

fn kind_class(k: CodeKind) -> &'static str {
    match k {
        CodeKind::User => "user",
        CodeKind::NodeModules => "dep",
        CodeKind::Node => "node",
        CodeKind::V8 => "v8",
    }
}

const FLAME_STYLE: &str = "<style>\
svg.flame{display:block;font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#fff}\
svg.flame text{fill:#1d2430;pointer-events:none}svg.flame g:hover rect{stroke:#1d2430;stroke-width:1}\
.fl-legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:6px 0}\
.fl-legend i{display:inline-block;width:14px;height:10px;margin-right:5px;vertical-align:middle}\
tr.user td.fn{font-weight:600}td.fn code{white-space:pre}\
</style>";

fn sites_table(id: &str, sites: &[Site], top: usize, total: u64, cwd: &Path, with_kind: bool) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<table class="sortable" id="{id}"><thead><tr><th class="n">Bytes</th><th class="n">%</th><th class="n">Samples</th>{}<th>Function</th><th>Location</th></tr></thead><tbody>"#,
        if with_kind { "<th>Code</th>" } else { "" }
    );
    for s in sites.iter().take(top) {
        let _ = write!(
            o,
            r#"<tr class="{}"><td class="n" data-v="{}">{}</td><td class="n" data-v="{:.3}">{:.1}%</td><td class="n" data-v="{}">{}</td>{}<td class="fn"><code>{}</code></td><td><code>{}</code></td></tr>"#,
            kind_class(s.kind),
            s.bytes,
            bytes(s.bytes),
            percent(s.bytes, total),
            percent(s.bytes, total),
            s.samples,
            s.samples,
            if with_kind { format!("<td>{}</td>", esc(s.kind.word())) } else { String::new() },
            esc(&s.function),
            esc(&location(&s.url, s.line, s.column, cwd))
        );
    }
    o.push_str("</tbody></table>");
    if sites.len() > top {
        let rest: u64 = sites[top..].iter().map(|s| s.bytes).sum();
        let _ = write!(o, r#"<p class="note">{} more, {} in all.</p>"#, sites.len() - top, bytes(rest));
    }
    o
}

/// The page of `leakhound allocations`.
pub fn allocations_page(r: &AllocReport, command_line: &str, top: usize, min_percent: f64) -> String {
    let cwd = alloc::cwd();
    let mut p = Page::new(&format!("leakhound allocations — {}", r.label));
    p.fact("Command", command_line);
    p.fact("Target", &r.label);
    p.fact("Started", &utc_text(r.started_at));
    p.fact("Sampled for", &format!("{:.1} s", r.duration_s));
    p.fact("Sampling", &format!("one sample per {} on average", alloc::interval_text(r.sampling_interval)));
    p.fact("Live", &format!("{} in {} samples", bytes(r.total_bytes), r.samples));
    p.fact("Written", &utc_text(now_unix()));

    let mut top_html = String::from(FLAME_STYLE);
    for line in alloc::header_lines(r, &cwd) {
        let _ = write!(top_html, "<p>{}</p>", esc(&line));
    }
    let _ = write!(
        top_html,
        r#"<p class="note">Only objects still alive after a full GC at the end of the sampling are counted (V8's sampling heap profiler drops the sample of an object that dies). Each frame is a function, at the line where it is defined; a function that V8 inlined counts toward its caller{}.</p>"#,
        if r.no_inlining { " (inlining was off for this run)" } else { "" }
    );
    p.section("summary", "Live allocations", &top_html);

    if r.total_bytes > 0 {
        let mut f = String::new();
        f.push_str(r#"<p class="note">Top-down: the root on top, the functions each one called below it; widths are live bytes (self and callees). Hover a frame for its figures.</p>"#);
        f.push_str(&flame_svg(&r.tree, &cwd));
        f.push_str(
            r#"<div class="fl-legend"><span><i style="background:hsl(32,85%,60%)"></i>your code</span><span><i style="background:hsl(277,55%,72%)"></i>node_modules</span><span><i style="background:hsl(200,45%,70%)"></i>Node internals</span><span><i style="background:hsl(0,0%,77%)"></i>V8</span></div>"#,
        );
        p.section("flame", "Flame graph", &f);

        p.section("sites", "Allocation sites by self size", &sites_table("sites-table", &r.sites, top.max(1), r.total_bytes, &cwd, true));
        p.section(
            "user-code",
            "Your code: the innermost function of yours on each allocating stack",
            &sites_table("user-code-table", &r.user_code, top.max(1), r.total_bytes, &cwd, false),
        );

        let (rows, hidden) = tree_rows(&r.tree, min_percent, alloc::MAX_TREE_ROWS);
        let mut t = format!(
            r#"<p class="note">Call paths holding at least {min_percent}% of the live bytes.</p><table id="tree"><thead><tr><th class="n">Total</th><th class="n">%</th><th class="n">Self</th><th>Function</th><th>Location</th></tr></thead><tbody>"#
        );
        for row in rows {
            let n = row.node;
            let _ = write!(
                t,
                r#"<tr class="{}"><td class="n">{}</td><td class="n">{:.1}%</td><td class="n">{}</td><td class="fn" style="padding-left:{}px"><code>{}</code></td><td><code>{}</code></td></tr>"#,
                kind_class(n.kind),
                bytes(n.total_bytes),
                percent(n.total_bytes, r.total_bytes),
                bytes(row.self_bytes),
                8 + 12 * row.depth.min(40),
                esc(&row.name()),
                esc(&location(&n.url, n.line, n.column, &cwd))
            );
        }
        t.push_str("</tbody></table>");
        if hidden > 0 {
            let _ = write!(t, r#"<p class="note">{hidden} more rows not shown.</p>"#);
        }
        p.section("tree", "Call tree (top-down)", &t);
    } else {
        p.section(
            "empty",
            "Nothing alive",
            "<p>Nothing allocated during the sampling is alive any more (or too little was allocated for a sample).</p>",
        );
    }

    if let Some(l) = &r.load {
        let mut o = format!("<p>{}</p>", esc(&alloc::load_line(l)));
        if !l.errors_by_kind.is_empty() {
            let kinds: Vec<String> = l.errors_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = write!(o, r#"<p class="note">errors: {}</p>"#, esc(&kinds.join(", ")));
        }
        p.section("load", "Load driver", &o);
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, url: &str, bytes: u64) -> TreeNode {
        TreeNode {
            function: name.into(),
            url: url.into(),
            line: Some(1),
            column: Some(1),
            kind: CodeKind::of(url),
            self_bytes: bytes,
            total_bytes: bytes,
            self_samples: 1,
            children: Vec::new(),
        }
    }

    fn parent(name: &str, url: &str, children: Vec<TreeNode>) -> TreeNode {
        let total = children.iter().map(|c| c.total_bytes).sum();
        TreeNode { children, total_bytes: total, self_bytes: 0, ..leaf(name, url, 0) }
    }

    #[test]
    fn widths_are_proportional_and_tiny_frames_are_left_out() {
        let root = parent(
            "(root)",
            "",
            vec![leaf("big<T>", "/app/a.js", 750_000), leaf("small", "node:x", 249_500), leaf("tiny", "/app/a.js", 500)],
        );
        let svg = flame_svg(&root, Path::new("/app"));
        assert!(svg.contains(r#"<rect x="0.0" y="18" width="824.5""#), "{svg}");
        assert!(svg.contains(r#"<rect x="825.0" y="18" width="273.9""#), "{svg}");
        // 0.05% of the width: not drawn.
        assert!(!svg.contains("tiny"), "{svg}");
        // Names are escaped, located, and coloured by kind.
        assert!(svg.contains("<title>big&lt;T&gt; a.js:1:1\ntotal 750.0 kB (75.0%)"), "{svg}");
        assert!(svg.contains(r#"<g class="node">"#) && svg.contains(r#"<g class="user">"#));
    }

    #[test]
    fn labels_are_clipped_to_their_frame() {
        let long = "aVeryLongFunctionNameThatCannotFitInANarrowFrame";
        let root = parent("(root)", "", vec![leaf(long, "/app/a.js", 60), leaf("other", "/app/a.js", 940)]);
        let svg = flame_svg(&root, Path::new("/app"));
        // 60/1000 of 1100 px = 66 px: 9 characters, the last an ellipsis.
        assert!(svg.contains(">aVeryLon…</text>"), "{svg}");
    }

    #[test]
    fn many_frames_stay_under_the_cap() {
        // 1000 functions of growing size, each with a chain of 12 callees:
        // 5500 frames of 0.1% or more.
        let children: Vec<TreeNode> = (0..1000u64)
            .map(|i| {
                (0..12).fold(leaf(&format!("leaf{i}"), "/app/a.js", (i + 1) * (i + 1)), |c, k| {
                    parent(&format!("f{i}_{k}"), "/app/a.js", vec![c])
                })
            })
            .collect();
        let root = parent("(root)", "", vec![parent("mid", "/app/b.js", children)]);
        let svg = flame_svg(&root, Path::new("/"));
        let frames = svg.matches("<rect").count();
        assert!(frames <= MAX_FRAMES && frames > MAX_FRAMES * 3 / 4, "{frames}");
        assert!(svg.len() < 2_000_000, "{}", svg.len());
    }
}
