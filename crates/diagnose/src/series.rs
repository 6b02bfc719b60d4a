//! The verdict on a series of heap floors (the heap used right after each
//! full GC) taken from a live process: does it grow, how fast, and when
//! would it reach the heap limit.
//!
//! Same statistics and thresholds as [`crate::gclog`]: a Theil-Sen slope
//! with a Mann-Kendall test at [`crate::trend::ALPHA`], `--min-growth`,
//! at least `min_floors` floors, memwatch's early signal. One addition,
//! because a live watch is short and often starts with the process: the
//! growth must go on in the **latest half** of the series. A cache filling
//! during warm-up makes the whole series rise significantly, yet its latest
//! half is flat; a leak keeps rising in both.
//!
//! Growth counts when it is both fast enough (`min_growth_bytes_per_hour`)
//! and large enough to see (`min_rise_bytes` over the span of the series:
//! the floor readings' resolution).
//!
//! - `leak`: the whole series rises significantly and so does its latest
//!   half, both by growth that counts.
//! - `no-leak`: no significant rise; or a significant rise slower than the
//!   minimum growth, or smaller than the resolution; or a rise
//!   (significant, or suggestive: p < 0.1) that has levelled off: the
//!   latest half rises by less than the resolution, or at less than half
//!   the series' average rise ([`average_rise_per_sec`]).
//! - `inconclusive`: too few floors; or a rise that counts, significant or
//!   suggestive, whose latest half still rises visibly and at half the
//!   average rate or more, but not significantly (more floors will tell).

use crate::gclog::{p_text, Verdict, EARLY_SIGNAL_RUN, SUGGESTIVE_P};
use crate::trend::Trend;
use serde::Serialize;

/// Sizes in messages are in SI units, as leakhound prints them elsewhere.
const MB: f64 = 1e6;

#[derive(Debug, Clone, Copy)]
pub struct FloorOptions {
    /// Slowest growth called a leak, bytes per hour (default 1 MB/h, as `gclog`).
    pub min_growth_bytes_per_hour: f64,
    /// Floors needed for any verdict but `inconclusive` (default 5).
    pub min_floors: usize,
    /// Smallest rise over the series (fitted slope times its time span)
    /// called growth: the resolution of the floor readings. A floor read
    /// by a GC observer lands 0.1-0.5 MB above the true post-GC figure,
    /// depending on what the program allocates meanwhile, so over a short
    /// watch a significant rise of a few hundred kB can be that offset
    /// drifting (default 1 MB; 0 for exact floors such as `--trace-gc`'s).
    pub min_rise_bytes: f64,
}

impl Default for FloorOptions {
    fn default() -> Self {
        FloorOptions { min_growth_bytes_per_hour: MB, min_floors: 5, min_rise_bytes: MB }
    }
}

/// A levelled-off rise: the latest half grows at less than this fraction of
/// the series' average rise (see [`average_rise_per_sec`]).
pub const LEVELLED_OFF_RATIO: f64 = 0.5;

/// The series' average rate of rise: from the median of its first quarter
/// to the median of its last quarter (at least 2 points each), per second.
/// Unlike the Theil-Sen slope, which for a short ramp followed by a long
/// flat stretch is the median of mostly flat pairs (noise), this measures
/// how much the floor has actually risen, so a latest half that is flat by
/// comparison is recognisably flat.
pub fn average_rise_per_sec(secs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = secs.len().min(ys.len());
    if n < 4 {
        return None;
    }
    let q = (n / 4).max(2);
    let med = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            (v[m - 1] + v[m]) / 2.0
        }
    };
    let dt = med(&secs[n - q..n]) - med(&secs[..q]);
    (dt > 0.0).then(|| (med(&ys[n - q..n]) - med(&ys[..q])) / dt)
}

#[derive(Debug, Clone, Serialize)]
pub struct FloorVerdict {
    pub verdict: Verdict,
    pub reason: String,
    pub floors: usize,
    /// Trend of the whole series (y in bytes, x in seconds).
    pub trend: Option<Trend>,
    /// Trend of the latest half (at least `min_floors` points).
    pub recent_trend: Option<Trend>,
    pub recent_floors: usize,
    pub growth_bytes_per_hour: Option<f64>,
    pub recent_growth_bytes_per_hour: Option<f64>,
    /// The average rise (first quarter's median to last quarter's), bytes per hour.
    pub average_rise_bytes_per_hour: Option<f64>,
    /// Mann-Kendall p-value of the whole series.
    pub p_value: Option<f64>,
    /// Longest run of consecutive floors each higher than the one before.
    pub longest_growth_run: usize,
    /// memwatch's early signal: the floor grew across `EARLY_SIGNAL_RUN` consecutive full GCs.
    pub early_signal: bool,
    /// With a leak: seconds until the floor reaches the heap limit at the
    /// whole series' rate (0 when it already has).
    pub time_to_limit_s: Option<f64>,
}

/// Longest run of strict increases in `ys`.
pub fn longest_growth_run(ys: &[f64]) -> usize {
    let mut run = 0;
    let mut longest = 0;
    for w in ys.windows(2) {
        run = if w[1] > w[0] { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

fn mb_h(bytes_per_hour: f64) -> String {
    format!("{:+.1} MB/h", bytes_per_hour / MB)
}

/// The verdict on floors `bytes` taken at times `secs` (in time order).
/// `heap_limit` (bytes) gives the projection.
pub fn floor_verdict(secs: &[f64], bytes: &[f64], heap_limit: Option<f64>, opts: FloorOptions) -> FloorVerdict {
    let n = secs.len().min(bytes.len());
    let (secs, bytes) = (&secs[..n], &bytes[..n]);
    let trend = Trend::fit(secs, bytes);
    let recent_n = (n / 2).max(opts.min_floors).min(n);
    let recent_trend = Trend::fit(&secs[n - recent_n..], &bytes[n - recent_n..]);
    let longest = longest_growth_run(bytes);
    let min = opts.min_growth_bytes_per_hour;
    let rise = average_rise_per_sec(secs, bytes).map(|r| r * 3600.0);
    let span = |k: usize| if k >= 1 { secs[n - 1] - secs[n - k] } else { 0.0 };
    let (span_all, span_recent) = (span(n), span(recent_n));
    // Growth fast enough per hour and large enough to see during the watch.
    let material = |per_sec: f64, span: f64| per_sec * 3600.0 >= min && per_sec * span >= opts.min_rise_bytes;
    let mb = |b: f64| format!("{:.1} MB", b / MB);
    let (verdict, reason) = match (&trend, &recent_trend) {
        _ if n < opts.min_floors => (
            Verdict::Inconclusive,
            format!("only {n} heap floors (full GCs) so far; need at least {}", opts.min_floors),
        ),
        (None, _) | (_, None) => (Verdict::Inconclusive, "the floors all have the same time".to_string()),
        (Some(t), Some(r))
            if t.significant_increasing
                && material(t.slope_per_sec, span_all)
                && r.significant_increasing
                && material(r.slope_per_sec, span_recent) =>
        {
            (
                Verdict::Leak,
                format!(
                    "the heap floor after full GCs grows {} (Mann-Kendall p {} over {n} floors), and still {} over the latest {recent_n}",
                    mb_h(t.per_hour()),
                    p_text(t.p_value),
                    mb_h(r.per_hour())
                ),
            )
        }
        // It rose (suggestively at least, and visibly) but the latest half
        // does not confirm it: levelled off, or not yet clear.
        (Some(t), Some(r))
            if t.mann_kendall_z > 0.0
                && t.p_value < SUGGESTIVE_P
                && rise.is_some_and(|a| material(a / 3600.0, span_all)) =>
        {
            let avg = rise.unwrap_or(0.0);
            let recent_visible = material(r.slope_per_sec, span_recent);
            let recent_confirms = r.significant_increasing && recent_visible;
            // Levelled off: the latest half rises by less than the readings'
            // resolution, or at less than half the average rate.
            if !recent_confirms && (!recent_visible || r.per_hour() < LEVELLED_OFF_RATIO * avg) {
                (
                    Verdict::NoLeak,
                    format!(
                        "the heap floor rose {} on average (p {}) but has levelled off: {} over the latest {recent_n} floors (p {}); warm-up, not a leak",
                        mb_h(avg),
                        p_text(t.p_value),
                        mb_h(r.per_hour()),
                        p_text(r.p_value)
                    ),
                )
            } else {
                (
                    Verdict::Inconclusive,
                    format!(
                        "the heap floor grows {} (p {} over {n} floors) and {} over the latest {recent_n} (p {}), not yet a clear trend: watch longer",
                        mb_h(avg),
                        p_text(t.p_value),
                        mb_h(r.per_hour()),
                        p_text(r.p_value)
                    ),
                )
            }
        }
        (Some(t), _) if t.significant_increasing && t.per_hour() < min => (
            Verdict::NoLeak,
            format!(
                "the heap floor rises steadily but only {}, below the minimum growth {} (p {})",
                mb_h(t.per_hour()),
                mb_h(min),
                p_text(t.p_value)
            ),
        ),
        (Some(t), _) if t.significant_increasing => (
            Verdict::NoLeak,
            format!(
                "the heap floor rose only {} in {:.0} s ({}, p {}), within the {} resolution of the floor readings: no leak visible; a slow one needs a longer watch",
                mb(t.slope_per_sec * span_all),
                span_all,
                mb_h(t.per_hour()),
                p_text(t.p_value),
                mb(opts.min_rise_bytes)
            ),
        ),
        (Some(t), _) => (
            Verdict::NoLeak,
            format!(
                "no significant growth of the heap floor over {n} floors ({}, Mann-Kendall z = {:.2}, p {}{})",
                mb_h(t.per_hour()),
                t.mann_kendall_z,
                p_text(t.p_value),
                if t.mann_kendall_z < 0.0 { ", falling" } else { "" }
            ),
        ),
    };
    let time_to_limit_s = match (&trend, heap_limit, bytes.last()) {
        (Some(t), Some(limit), Some(&last)) if verdict == Verdict::Leak && t.slope_per_sec > 0.0 => {
            Some(((limit - last) / t.slope_per_sec).max(0.0))
        }
        _ => None,
    };
    FloorVerdict {
        verdict,
        reason,
        floors: n,
        growth_bytes_per_hour: trend.as_ref().map(Trend::per_hour),
        average_rise_bytes_per_hour: rise,
        recent_growth_bytes_per_hour: recent_trend.as_ref().map(Trend::per_hour),
        p_value: trend.as_ref().map(|t| t.p_value),
        trend,
        recent_trend,
        recent_floors: recent_n,
        longest_growth_run: longest,
        early_signal: longest >= EARLY_SIGNAL_RUN,
        time_to_limit_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic wobble in [-0.5, 0.5) MB, no trend.
    fn wobble(i: usize) -> f64 {
        (((i * 7919 + 13) % 17) as f64 / 17.0 - 0.5) * MB
    }

    fn series(n: usize, f: impl Fn(usize) -> f64) -> (Vec<f64>, Vec<f64>) {
        ((0..n).map(|i| i as f64 * 0.5).collect(), (0..n).map(|i| f(i) + wobble(i)).collect())
    }

    fn verdict(n: usize, f: impl Fn(usize) -> f64) -> FloorVerdict {
        let (x, y) = series(n, f);
        floor_verdict(&x, &y, Some(4096.0 * MB), FloorOptions::default())
    }

    #[test]
    fn steady_growth_is_a_leak_with_a_projection() {
        // 1 MB per floor, a floor every 0.5 s: 7200 MB/h.
        let v = verdict(30, |i| 50.0 * MB + i as f64 * MB);
        assert_eq!(v.verdict, Verdict::Leak, "{}", v.reason);
        let g = v.growth_bytes_per_hour.unwrap() / MB;
        assert!((g - 7200.0).abs() < 400.0, "{g}");
        assert!(v.early_signal);
        let ttl = v.time_to_limit_s.unwrap();
        // (4096 - ~79) MB at 2 MB/s.
        assert!((ttl - 2008.0).abs() < 150.0, "{ttl}");
    }

    #[test]
    fn flat_and_sawtooth_floors_are_no_leak() {
        let v = verdict(30, |_| 50.0 * MB);
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
        assert_eq!(v.time_to_limit_s, None);
        let v = verdict(30, |i| 50.0 * MB + (i % 4) as f64 * MB);
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
    }

    #[test]
    fn warm_up_then_plateau_is_no_leak() {
        // Rises 2 MB per floor for the first 8 floors, then flat: over the
        // whole series that is significant growth.
        let v = verdict(32, |i| 50.0 * MB + (i.min(8) as f64) * 2.0 * MB);
        assert!(v.trend.as_ref().unwrap().significant_increasing, "{v:?}");
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
        assert!(v.reason.contains("levelled off"), "{}", v.reason);
    }

    #[test]
    fn a_suggestive_rise_that_levelled_off_is_no_leak() {
        // A short ramp (4 of 20 floors) then flat: the whole series is only
        // suggestive (p < 0.1), its latest half flat.
        let v = verdict(20, |i| 50.0 * MB + (i.min(4) as f64) * 5.0 * MB);
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
        assert!(v.reason.contains("levelled off"), "{}", v.reason);
    }

    #[test]
    fn a_real_sawtooth_with_a_start_up_dip_and_a_small_drift_is_no_leak() {
        // Floors (MiB) of fixtures/live/sawtooth.js watched 20 s on Node 18:
        // a dip at start-up, then flat but for a 0.2 MB drift that is
        // significant in the latest half (p = 0.006) yet below the resolution.
        let mib = [
            37.09, 34.99, 34.82, 36.77, 37.82, 37.86, 37.65, 37.66, 37.58, 37.77, 37.80, 37.61, 37.58, 37.58, 37.57, 37.61, 37.64, 37.62,
            37.57, 37.61, 37.59, 37.74, 37.60, 37.79, 37.77, 37.83, 37.84,
        ];
        let x: Vec<f64> = (0..mib.len()).map(|i| i as f64 * 0.72).collect();
        let y: Vec<f64> = mib.iter().map(|m| m * 1048576.0).collect();
        let v = floor_verdict(&x, &y, None, FloorOptions::default());
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
    }

    #[test]
    fn too_few_floors_and_unclear_growth_are_inconclusive() {
        assert_eq!(verdict(4, |i| i as f64 * MB).verdict, Verdict::Inconclusive);
        // Five strictly rising floors: p = 0.03, not significant at 0.01.
        let v = floor_verdict(&[0.0, 1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0, 5.0].map(|x| x * MB), None, FloorOptions::default());
        assert_eq!(v.verdict, Verdict::Inconclusive, "{}", v.reason);
    }

    #[test]
    fn a_significant_rise_below_the_resolution_is_no_leak() {
        // +20 kB per floor, steady: 0.6 MB over 15 s is significant, but
        // within what the reading offset alone can do.
        let x: Vec<f64> = (0..30).map(|i| i as f64 * 0.5).collect();
        let y: Vec<f64> = (0..30).map(|i| 50.0 * MB + i as f64 * 20e3 + (i % 3) as f64 * 5e3).collect();
        let v = floor_verdict(&x, &y, None, FloorOptions::default());
        assert!(v.trend.as_ref().unwrap().significant_increasing);
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
        assert!(v.reason.contains("resolution"), "{}", v.reason);
        // The same floors read exactly (min_rise 0): a leak.
        let v = floor_verdict(&x, &y, None, FloorOptions { min_rise_bytes: 0.0, ..Default::default() });
        assert_eq!(v.verdict, Verdict::Leak, "{}", v.reason);
    }

    #[test]
    fn slow_growth_below_the_minimum_is_no_leak() {
        let opts = FloorOptions { min_growth_bytes_per_hour: 1e6 * MB, ..Default::default() };
        let (x, y) = series(30, |i| i as f64 * MB);
        let v = floor_verdict(&x, &y, None, opts);
        assert_eq!(v.verdict, Verdict::NoLeak, "{}", v.reason);
    }

    #[test]
    fn average_rise() {
        let x: Vec<f64> = (0..8).map(|i| i as f64).collect();
        let y = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        assert_eq!(average_rise_per_sec(&x, &y), Some(1.0));
        // A step: first quarter 0, last quarter 10, 6 s apart.
        let y = [0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0];
        assert_eq!(average_rise_per_sec(&x, &y), Some(10.0 / 6.0));
        assert_eq!(average_rise_per_sec(&x[..3], &y[..3]), None);
    }

    #[test]
    fn runs() {
        assert_eq!(longest_growth_run(&[1.0, 2.0, 3.0, 1.0, 2.0]), 2);
        assert_eq!(longest_growth_run(&[1.0]), 0);
        assert_eq!(longest_growth_run(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 5);
    }
}
