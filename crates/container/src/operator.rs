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

/// RSS drift over a flat heap floor that external memory does not explain
/// (`external` grows less than half as fast): GC drift. Returns the
/// explanation.
pub fn gc_drift(
    rss_per_hour: f64,
    rss_significant: bool,
    floor_per_hour: Option<f64>,
    floor_leaks: bool,
    external_per_hour: f64,
) -> Option<String> {
    let floor = floor_per_hour.unwrap_or(0.0);
    if !rss_over_flat_floor(rss_per_hour, rss_significant, floor_per_hour, floor_leaks) || external_per_hour * 2.0 >= rss_per_hour {
        return None;
    }
    Some(format!(
        "RSS rises {:.1} MB/h while the post-GC heap floor stays flat ({:+.1} MB/h): GC drift, not a leak. With room to spare V8 defers full GCs and keeps freed pages, so RSS climbs above the live heap; a memory limit (and a --max-old-space-size that fits it) bounds it",
        rss_per_hour / 1e6,
        floor / 1e6
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
) -> Option<String> {
    if !rss_over_flat_floor(rss_per_hour, rss_significant, floor_per_hour, floor_leaks) || external_per_hour * 2.0 < rss_per_hour {
        return None;
    }
    Some(format!(
        "RSS rises {:.1} MB/h over a flat post-GC heap floor, and external memory (Buffers, ArrayBuffers) {:.1} MB/h of it: memory kept outside the JS heap, which --max-old-space-size does not bound; a heap snapshot shows the JS objects that hold it",
        rss_per_hour / 1e6,
        external_per_hour / 1e6
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
        assert!(gc_drift(50e6, true, Some(0.1e6), false, 1e6).unwrap().contains("GC drift"));
        assert!(gc_drift(50e6, false, Some(0.1e6), false, 1e6).is_none(), "not significant");
        assert!(gc_drift(50e6, true, Some(20e6), false, 1e6).is_none(), "the floor grows too");
        assert!(gc_drift(50e6, true, Some(0.1e6), true, 1e6).is_none(), "a leak is a leak");
        assert!(gc_drift(50e6, true, Some(0.1e6), false, 45e6).is_none(), "Buffers explain it");
        assert!(external_growth(50e6, true, Some(0.1e6), false, 45e6).unwrap().contains("outside the JS heap"));
        assert!(external_growth(50e6, true, Some(0.1e6), false, 1e6).is_none());
    }
}
