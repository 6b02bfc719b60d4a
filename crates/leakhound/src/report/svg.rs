//! Charts as inline SVG, drawn by leakhound itself: a time chart of
//! memory series (with shaded phases, marked moments and a trend line)
//! and small bars for growth per step. No script is needed to see them,
//! and they print.

use super::esc;
use crate::output::bytes;
use std::fmt::Write;

/// One line of a chart: `(seconds, bytes)` points.
pub struct Line<'a> {
    pub label: &'a str,
    /// CSS class that colours it (see the page's style sheet).
    pub class: &'a str,
    pub points: Vec<(f64, f64)>,
    /// Draw the points as dots too (post-GC floors are few and each counts).
    pub dots: bool,
}

/// A shaded stretch of time, e.g. a load round.
pub struct Band<'a> {
    pub label: &'a str,
    pub start: f64,
    pub end: f64,
}

/// A marked moment, e.g. a snapshot.
pub struct Mark<'a> {
    pub label: &'a str,
    pub t: f64,
}

pub struct TimeChart<'a> {
    pub title: &'a str,
    pub lines: Vec<Line<'a>>,
    pub bands: Vec<Band<'a>>,
    pub marks: Vec<Mark<'a>>,
    /// Straight line `y = intercept + slope * t` over the x range (the fitted trend).
    pub trend: Option<(f64, f64, &'a str)>,
    /// How an x value reads on the axis (default: seconds).
    pub x_text: Option<fn(f64) -> String>,
}

const W: f64 = 960.0;
const H: f64 = 340.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 34.0;

/// Keep at most `max` points of a long series, a bucket's lowest and
/// highest readings each, so peaks and floors survive downsampling.
pub fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points.to_vec();
    }
    let buckets = max / 2;
    let per = points.len() as f64 / buckets as f64;
    let mut out = Vec::with_capacity(max);
    for b in 0..buckets {
        let lo = (b as f64 * per) as usize;
        let hi = (((b + 1) as f64 * per) as usize).min(points.len()).max(lo + 1);
        let chunk = &points[lo..hi];
        let (mut imin, mut imax) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[imin].1 {
                imin = i;
            }
            if p.1 > chunk[imax].1 {
                imax = i;
            }
        }
        let (a, b) = (imin.min(imax), imin.max(imax));
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    out
}

/// Round steps (1, 2, 5 × 10^k) that give about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * p
}

fn seconds_text(t: f64) -> String {
    if t >= 3600.0 {
        format!("{:.1} h", t / 3600.0)
    } else if t >= 120.0 {
        format!("{:.0} min", t / 60.0)
    } else {
        format!("{t:.0} s")
    }
}

impl TimeChart<'_> {
    pub fn render(&self) -> String {
        let all = self.lines.iter().flat_map(|l| l.points.iter());
        // Time axes start at the start of the run.
        let t0 = 0.0;
        let (mut t1, mut ymax) = (f64::NEG_INFINITY, 0f64);
        for &(t, y) in all {
            t1 = t1.max(t);
            ymax = ymax.max(y);
        }
        for b in &self.bands {
            t1 = t1.max(b.end);
        }
        if t1 <= t0 {
            t1 = t0 + 1.0;
        }
        let ystep = nice_step(ymax.max(1.0), 5.0);
        let ytop = ((ymax.max(1.0) * 1.04) / ystep).ceil() * ystep;
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * pw;
        let y = |v: f64| TOP + ph - (v / ytop).clamp(0.0, 1.0) * ph;
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
            esc(self.title)
        );
        let _ = write!(o, "<title>{}</title>", esc(self.title));
        // Phases first, under everything.
        for (i, b) in self.bands.iter().enumerate() {
            let (a, z) = (x(b.start), x(b.end));
            let _ = write!(
                o,
                r#"<rect class="band band{}" x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph}"><title>{} ({:.1}–{:.1} s)</title></rect>"#,
                i % 2,
                (z - a).max(0.5),
                esc(b.label),
                b.start,
                b.end
            );
            if z - a > 38.0 {
                let _ = write!(o, r#"<text class="bandlabel" x="{:.1}" y="{:.1}">{}</text>"#, a + 3.0, TOP + 11.0, esc(b.label));
            }
        }
        // Grid and axes.
        let mut v = 0.0;
        while v <= ytop + ystep * 0.01 {
            let yy = y(v);
            let _ = write!(o, r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}"/>"#, W - RIGHT);
            let _ =
                write!(o, r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, yy + 4.0, bytes(v as u64));
            v += ystep;
        }
        let xstep = if self.x_text.is_some() { 1.0 } else { nice_step(t1 - t0, 8.0) };
        let mut t = (t0 / xstep).ceil() * xstep;
        while t <= t1 + xstep * 0.01 {
            let xx = x(t);
            let _ = write!(o, r#"<line class="tick" x1="{xx:.1}" x2="{xx:.1}" y1="{:.1}" y2="{:.1}"/>"#, TOP + ph, TOP + ph + 4.0);
            let _ = write!(
                o,
                r#"<text class="axis" x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + ph + 17.0,
                esc(&self.x_text.unwrap_or(seconds_text)(t))
            );
            t += xstep;
        }
        let _ = write!(o, r#"<line class="axisline" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#, W - RIGHT, TOP + ph, TOP + ph);
        // Marked moments.
        for m in &self.marks {
            let xx = x(m.t);
            let _ = write!(
                o,
                r#"<g class="mark"><line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><title>{} at {:.1} s</title></g>"#,
                TOP + ph,
                xx,
                TOP - 6.0,
                esc(m.label),
                esc(m.label),
                m.t
            );
        }
        // The series.
        for l in &self.lines {
            if l.points.is_empty() {
                continue;
            }
            let mut d = String::with_capacity(l.points.len() * 14);
            for (i, &(t, v)) in l.points.iter().enumerate() {
                let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, x(t), y(v));
            }
            let _ = write!(
                o,
                r#"<path class="series {}" data-series="{}" data-points="{}" d="{d}"><title>{}</title></path>"#,
                esc(l.class),
                esc(l.label),
                l.points.len(),
                esc(l.label)
            );
            if l.dots {
                for &(t, v) in &l.points {
                    let _ = write!(
                        o,
                        r#"<circle class="dot {}" cx="{:.1}" cy="{:.1}" r="3"><title>{} at {:.1} s: {}</title></circle>"#,
                        esc(l.class),
                        x(t),
                        y(v),
                        esc(l.label),
                        t,
                        bytes(v.max(0.0) as u64)
                    );
                }
            }
        }
        if let Some((intercept, slope, label)) = self.trend {
            let (a, b) = (intercept + slope * t0, intercept + slope * t1);
            let _ = write!(
                o,
                r#"<path class="series trend" data-series="{}" data-points="2" d="M{:.1},{:.1} L{:.1},{:.1}"><title>{}</title></path>"#,
                esc(label),
                x(t0),
                y(a),
                x(t1),
                y(b),
                esc(label)
            );
        }
        o.push_str("</svg>");
        // The legend is HTML: it wraps, and it prints.
        o.push_str(r#"<div class="legend">"#);
        for l in &self.lines {
            let _ = write!(o, r#"<span><i class="sw {}"></i>{}</span>"#, esc(l.class), esc(l.label));
        }
        if let Some((_, _, label)) = self.trend {
            let _ = write!(o, r#"<span><i class="sw trend"></i>{}</span>"#, esc(label));
        }
        if !self.bands.is_empty() {
            o.push_str(r#"<span><i class="sw bandsw"></i>load phases</span>"#);
        }
        if !self.marks.is_empty() {
            o.push_str(r#"<span><i class="sw marksw"></i>snapshots</span>"#);
        }
        o.push_str("</div>");
        o
    }
}

/// Small bars, one per step, with the value under each: growth per
/// snapshot at a glance.
pub fn step_bars(values: &[u64], label: impl Fn(u64) -> String, title: &str) -> String {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = 66.0;
    let h = 44.0;
    let w = bw * values.len().max(1) as f64;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="bars" viewBox="0 0 {w} {}" width="{w}" height="{}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        h + 14.0,
        h + 14.0,
        esc(title)
    );
    for (i, &v) in values.iter().enumerate() {
        let bh = (v as f64 / max * h).max(1.0);
        let x = i as f64 * bw + 4.0;
        let _ = write!(
            o,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}"><title>step {}: +{}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle">+{}</text>"#,
            h - bh,
            bw - 8.0,
            i + 1,
            esc(&label(v)),
            x + (bw - 8.0) / 2.0,
            h + 11.0,
            esc(&label(v))
        );
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_keeps_extremes_and_bounds_the_count() {
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, if i == 5_003 { 1e9 } else { (i % 7) as f64 })).collect();
        let d = downsample(&pts, 1000);
        assert!(d.len() <= 1000, "{}", d.len());
        assert!(d.iter().any(|p| p.1 == 1e9), "the spike was lost");
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0), "time order lost");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 8.0), 1.0);
    }
}
