//! Memory as an operator reads it: which limit a growing process reaches
//! first (the container's, by RSS, or V8's, by the post-GC heap floor),
//! and RSS that rises over a flat floor (GC drift, not a leak). Pure
//! functions over rates that the caller has fitted.

use serde::Serialize;

/// Seconds until `now` reaches `limit` at `slope_per_s`; None when not growing.
pub fn seconds_to(limit: f64, now: f64, slope_per_s: f64) -> Option<f64> {
    (slope_per_s > 0.0).then(|| ((limit - now) / slope_per_s).max(0.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Which {
    Heap,
    Container,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Heap => "heap",
            Which::Container => "container",
        }
    }
}

/// The limit reached first, and when.
pub fn first_limit(heap_s: Option<f64>, container_s: Option<f64>) -> Option<(Which, f64)> {
    match (heap_s, container_s) {
        (Some(h), Some(c)) if c < h => Some((Which::Container, c)),
        (Some(h), _) => Some((Which::Heap, h)),
        (None, Some(c)) => Some((Which::Container, c)),
        (None, None) => None,
    }
}

/// RSS that rises over a flat heap floor: significantly, by at least
/// 1 MB/h, ten times faster than the floor, with the floor not called a
/// leak.
fn rss_over_flat_floor(rss_per_hour: f64, rss_significant: bool, floor_per_hour: Option<f64>, floor_leaks: bool) -> bool {
    let floor = floor_per_hour.unwrap_or(0.0);
    rss_significant && !floor_leaks && rss_per_hour >= 1e6 && floor * 10.0 <= rss_per_hour
}

/// Windows shorter than this get no per-hour figure: a rate from seconds
/// of samples is an extrapolation of noise (a run's RSS "rose 51,510.7
/// MB/h" from 2 s). They get the change over their window instead.
pub const HOURLY_FROM_S: f64 = 600.0;

/// A decimal amount with its unit (kB/MB/GB: powers of 1000), signed.
fn amount(b: f64) -> String {
    let a = b.abs();
    let sign = if b < 0.0 { "-" } else { "+" };
    if a >= 1e9 {
        format!("{sign}{:.2} GB", a / 1e9)
    } else if a >= 1e6 {
        format!("{sign}{:.1} MB", a / 1e6)
    } else if a >= 1e3 {
        format!("{sign}{:.1} kB", a / 1e3)
    } else {
        format!("{sign}{a:.0} B")
    }
}

/// `12 min 30 s`, `2 h 05 min`, `5.0 s`.
fn span(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{} h {:02} min", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    }
}

/// A growth rate said with its window: per hour over a window of ten
/// minutes or more, else the change over the window.
pub fn growth_text(per_hour: f64, window_s: f64) -> String {
    if window_s >= HOURLY_FROM_S {
        format!("{}/h over {}", amount(per_hour), span(window_s))
    } else {
        format!("{} in {}", amount(per_hour * window_s / 3600.0), span(window_s))
    }
}

/// A second figure over the same window, which the first one already named.
fn same_window(per_hour: f64, window_s: f64) -> String {
    if window_s >= HOURLY_FROM_S {
        format!("{}/h", amount(per_hour))
    } else {
        amount(per_hour * window_s / 3600.0)
    }
}

/// RSS drift over a flat heap floor that external memory does not explain
/// (`external` grows less than half as fast): GC drift. Returns the
/// explanation, its figures with their window (`window_s`: the samples' span).
pub fn gc_drift(
    rss_per_hour: f64,
    rss_significant: bool,
    floor_per_hour: Option<f64>,
    floor_leaks: bool,
    external_per_hour: f64,
    window_s: f64,
) -> Option<String> {
    let floor = floor_per_hour.unwrap_or(0.0);
    if !rss_over_flat_floor(rss_per_hour, rss_significant, floor_per_hour, floor_leaks) || external_per_hour * 2.0 >= rss_per_hour {
        return None;
    }
    Some(format!(
        "RSS grows {} while the post-GC heap floor stays flat ({}): GC drift, not a leak. With room to spare V8 defers full GCs and keeps freed pages, so RSS climbs above the live heap; a memory limit (and a --max-old-space-size that fits it) bounds it",
        growth_text(rss_per_hour, window_s),
        same_window(floor, window_s)
    ))
}

/// RSS over a flat floor, carried by `external` (Buffers, ArrayBuffers:
/// memory outside the JS heap): a leak the heap floor cannot show.
pub fn external_growth(
    rss_per_hour: f64,
    rss_significant: bool,
    floor_per_hour: Option<f64>,
    floor_leaks: bool,
    external_per_hour: f64,
    window_s: f64,
) -> Option<String> {
    if !rss_over_flat_floor(rss_per_hour, rss_significant, floor_per_hour, floor_leaks) || external_per_hour * 2.0 < rss_per_hour {
        return None;
    }
    Some(format!(
        "RSS grows {} over a flat post-GC heap floor, and external memory (Buffers, ArrayBuffers) {} of it: memory kept outside the JS heap, which --max-old-space-size does not bound; a heap snapshot shows the JS objects that hold it",
        growth_text(rss_per_hour, window_s),
        same_window(external_per_hour, window_s)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn races_and_drift() {
        assert_eq!(seconds_to(100.0, 40.0, 2.0), Some(30.0));
        assert_eq!(seconds_to(100.0, 40.0, 0.0), None);
        assert_eq!(first_limit(Some(100.0), Some(30.0)), Some((Which::Container, 30.0)));
        assert_eq!(first_limit(Some(10.0), Some(30.0)), Some((Which::Heap, 10.0)));
        assert_eq!(first_limit(None, Some(30.0)), Some((Which::Container, 30.0)));
        assert_eq!(first_limit(None, None), None);
        assert!(gc_drift(50e6, true, Some(0.1e6), false, 1e6, 3600.0).unwrap().contains("GC drift"));
        assert!(gc_drift(50e6, false, Some(0.1e6), false, 1e6, 3600.0).is_none(), "not significant");
        assert!(gc_drift(50e6, true, Some(20e6), false, 1e6, 3600.0).is_none(), "the floor grows too");
        assert!(gc_drift(50e6, true, Some(0.1e6), true, 1e6, 3600.0).is_none(), "a leak is a leak");
        assert!(gc_drift(50e6, true, Some(0.1e6), false, 45e6, 3600.0).is_none(), "Buffers explain it");
        assert!(external_growth(50e6, true, Some(0.1e6), false, 45e6, 3600.0).unwrap().contains("outside the JS heap"));
        assert!(external_growth(50e6, true, Some(0.1e6), false, 1e6, 3600.0).is_none());
    }

    #[test]
    fn no_rate_per_hour_from_seconds() {
        // 2 s of samples: the change over the 2 s, not 51,510.7 MB/h.
        let d = gc_drift(51_510.7e6, true, Some(729e6), false, 1e6, 2.0).unwrap();
        assert!(d.starts_with("RSS grows +28.6 MB in 2.0 s while the post-GC heap floor stays flat (+405.0 kB)"), "{d}");
        assert!(!d.contains("/h"), "{d}");
        let long = gc_drift(50e6, true, Some(0.1e6), false, 1e6, 7500.0).unwrap();
        assert!(long.starts_with("RSS grows +50.0 MB/h over 2 h 05 min while the post-GC heap floor stays flat (+100.0 kB/h)"), "{long}");
        assert_eq!(growth_text(-2e6, 30.0), "-16.7 kB in 30.0 s");
    }
}
