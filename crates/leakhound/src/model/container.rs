//! What `watch` and `run` report about the container a process lives in.

use crate::live::checkup::Checkup;
use container::doctor::Finding;
use serde::Serialize;

/// What `watch` adds from the doctor: the container limit, which limit the
/// process reaches first, GC drift, and the doctor's findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchContainer {
    pub container_limit_bytes: Option<u64>,
    /// The cgroup's charge when the watch ended.
    pub charge_bytes: Option<u64>,
    /// Theil-Sen slope of the RSS samples, bytes per hour.
    pub rss_growth_bytes_per_hour: Option<f64>,
    /// Mann-Kendall p of the RSS samples.
    pub rss_p_value: Option<f64>,
    /// Projected seconds until the heap limit (the floor's trend).
    pub time_to_heap_limit_s: Option<f64>,
    /// Projected seconds until the container limit (the charge, growing at the RSS trend).
    pub time_to_container_limit_s: Option<f64>,
    /// `heap` or `container`: the limit reached first.
    pub first_limit: Option<&'static str>,
    pub time_to_first_limit_s: Option<f64>,
    /// Set when RSS rises over a flat floor and `external` does not explain it: GC drift, in words.
    pub gc_drift: Option<String>,
    /// Set when RSS rises over a flat floor carried by `external` (Buffers): in words.
    pub external_growth: Option<String>,
    pub recommended_max_old_space_size_mb: Option<u64>,
    pub findings: Vec<Finding>,
}

/// Combine a doctor's checkup with a watch's series. `rss` is (t_s, rss,
/// external) in bytes; the heap side comes from the floor verdict.
pub fn watch_view(
    c: Option<&Checkup>,
    rss: &[(f64, f64, f64)],
    heap_s: Option<f64>,
    floor_per_hour: Option<f64>,
    floor_leaks: bool,
) -> WatchContainer {
    use container::operator;
    let xs: Vec<f64> = rss.iter().map(|r| r.0).collect();
    let ys: Vec<f64> = rss.iter().map(|r| r.1).collect();
    let ext: Vec<f64> = rss.iter().map(|r| r.2).collect();
    let trend = diagnose::trend::Trend::fit(&xs, &ys);
    // The span the rates come from: said beside them (see operator::growth_text).
    let window_s = match (xs.first(), xs.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let ext_per_hour = diagnose::trend::Trend::fit(&xs, &ext).map_or(0.0, |t| t.per_hour());
    let limit = c.and_then(|c| c.facts.limit);
    let charge = c.and_then(|c| c.facts.usage_bytes);
    let container_s = match (&trend, limit) {
        (Some(t), Some(l)) if t.significant_increasing => {
            let now = charge.map(|b| b as f64).or_else(|| ys.last().copied()).unwrap_or(0.0);
            operator::seconds_to(l as f64, now, t.slope_per_sec)
        }
        _ => None,
    };
    let first = operator::first_limit(heap_s, container_s);
    let gc_drift = trend
        .as_ref()
        .and_then(|t| operator::gc_drift(t.per_hour(), t.significant_increasing, floor_per_hour, floor_leaks, ext_per_hour, window_s));
    let external_growth = trend.as_ref().and_then(|t| {
        operator::external_growth(t.per_hour(), t.significant_increasing, floor_per_hour, floor_leaks, ext_per_hour, window_s)
    });
    WatchContainer {
        container_limit_bytes: limit,
        charge_bytes: charge,
        rss_growth_bytes_per_hour: trend.as_ref().map(|t| t.per_hour()),
        rss_p_value: trend.as_ref().map(|t| t.p_value),
        time_to_heap_limit_s: heap_s,
        time_to_container_limit_s: container_s,
        first_limit: first.map(|(w, _)| w.name()),
        time_to_first_limit_s: first.map(|(_, s)| s),
        gc_drift,
        external_growth,
        recommended_max_old_space_size_mb: c.and_then(|c| c.assessment.recommended_max_old_space_size_mb),
        findings: c.map(|c| c.assessment.findings.clone()).unwrap_or_default(),
    }
}
