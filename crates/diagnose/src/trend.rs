//! Robust trends: the Theil-Sen slope (median of pairwise slopes) and the
//! Mann-Kendall test for a monotonic trend (normal approximation, with the
//! tie correction).

use serde::Serialize;

/// Above this many points, both statistics use a deterministic, evenly
/// spaced subsample of this size (they are O(n²)).
pub const MAX_POINTS: usize = 2000;

/// Significance level for `significant_increasing`.
pub const ALPHA: f64 = 0.01;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trend {
    /// Theil-Sen slope, y units per second of x.
    pub slope_per_sec: f64,
    /// Intercept: median of y - slope * x.
    pub intercept: f64,
    /// Points in the series (before any subsampling).
    pub n: usize,
    /// Mann-Kendall S statistic (on the possibly subsampled series).
    pub mann_kendall_s: i64,
    pub mann_kendall_z: f64,
    /// Two-sided p-value of the Mann-Kendall test.
    pub p_value: f64,
    /// Mann-Kendall says increasing at `ALPHA`: z > 0 and p < ALPHA.
    pub significant_increasing: bool,
}

impl Trend {
    /// Fit `ys` against `xs` (seconds, in time order). `None` with fewer
    /// than 2 points or mismatched lengths.
    pub fn fit(xs: &[f64], ys: &[f64]) -> Option<Trend> {
        if xs.len() != ys.len() || xs.len() < 2 {
            return None;
        }
        let n = xs.len();
        let (xs, ys) = subsample(xs, ys, MAX_POINTS);
        let (slope, intercept) = theil_sen(&xs, &ys)?;
        let mk = mann_kendall(&ys);
        Some(Trend {
            slope_per_sec: slope,
            intercept,
            n,
            mann_kendall_s: mk.s,
            mann_kendall_z: mk.z,
            p_value: mk.p_value,
            significant_increasing: mk.z > 0.0 && mk.p_value < ALPHA,
        })
    }

    /// The slope in y units per hour.
    pub fn per_hour(&self) -> f64 {
        self.slope_per_sec * 3600.0
    }
}

/// A level shift too large to be noise: the series splits in two (at least
/// two points each) where every later point is above every earlier one, by at least
/// `STEP_RATIO` times and `step_min` in y units. A short series (seven
/// full GCs in two clusters) cannot reach Mann-Kendall significance however
/// large the growth; a floor that went from 11 MB to 236 MB and stayed
/// there is still a leak. Small shifts keep needing significance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// The highest point of the earlier half.
    pub before: f64,
    /// The lowest point of the later half.
    pub after: f64,
    /// `after / before`.
    pub ratio: f64,
}

/// The later half must sit at least this many times above the earlier one.
pub const STEP_RATIO: f64 = 2.0;

/// `Step` if `ys` (in time order, at least 4 points) shifts up by at
/// least `STEP_RATIO` times and by at least `step_min`.
pub fn step_up(ys: &[f64], step_min: f64) -> Option<Step> {
    // Every split with at least two points on each side; the largest ratio wins.
    let mut best: Option<Step> = None;
    for k in 2..ys.len().saturating_sub(1) {
        let before = ys[..k].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let after = ys[k..].iter().copied().fold(f64::INFINITY, f64::min);
        let ratio = if before > 0.0 { after / before } else { f64::INFINITY };
        if after - before >= step_min && ratio >= STEP_RATIO && best.is_none_or(|b| ratio > b.ratio) {
            best = Some(Step { before, after, ratio });
        }
    }
    best
}

/// Evenly spaced indices (always keeping the first and the last point).
fn subsample(xs: &[f64], ys: &[f64], max: usize) -> (Vec<f64>, Vec<f64>) {
    let n = xs.len();
    if n <= max {
        return (xs.to_vec(), ys.to_vec());
    }
    let idx: Vec<usize> = (0..max).map(|k| k * (n - 1) / (max - 1)).collect();
    (idx.iter().map(|&i| xs[i]).collect(), idx.iter().map(|&i| ys[i]).collect())
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// Theil-Sen: (slope, intercept). Pairs with equal x are skipped; `None`
/// when every x is equal.
pub fn theil_sen(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len().min(ys.len());
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dx = xs[j] - xs[i];
            if dx != 0.0 {
                slopes.push((ys[j] - ys[i]) / dx);
            }
        }
    }
    let slope = median(&mut slopes)?;
    let mut rest: Vec<f64> = (0..n).map(|i| ys[i] - slope * xs[i]).collect();
    let intercept = median(&mut rest)?;
    Some((slope, intercept))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    pub s: i64,
    pub z: f64,
    pub p_value: f64,
}

/// Mann-Kendall on a series in time order: S, Z with continuity and tie
/// correction, two-sided p-value from the normal approximation.
pub fn mann_kendall(ys: &[f64]) -> MannKendall {
    let n = ys.len();
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            s += match ys[j].partial_cmp(&ys[i]) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let mut sorted = ys.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let nf = n as f64;
    let mut var = nf * (nf - 1.0) * (2.0 * nf + 5.0);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        if t > 1.0 {
            var -= t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j;
    }
    var /= 18.0;
    let z = if var <= 0.0 || s == 0 {
        0.0
    } else if s > 0 {
        (s as f64 - 1.0) / var.sqrt()
    } else {
        (s as f64 + 1.0) / var.sqrt()
    };
    let p_value = if var <= 0.0 { 1.0 } else { erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0) };
    MannKendall { s, z, p_value }
}

/// Complementary error function (Numerical Recipes' Chebyshev fit,
/// relative error below 1.2e-7 everywhere).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xs(n: usize) -> Vec<f64> {
        (0..n).map(|i| i as f64).collect()
    }

    #[test]
    fn slope_of_a_line_is_exact() {
        let x = xs(50);
        let y: Vec<f64> = x.iter().map(|x| 2.0 * x + 1.0).collect();
        let t = Trend::fit(&x, &y).unwrap();
        assert_eq!(t.slope_per_sec, 2.0);
        assert_eq!(t.intercept, 1.0);
        assert_eq!(t.n, 50);
    }

    #[test]
    fn strictly_increasing_is_significant() {
        let x = xs(20);
        let y: Vec<f64> = x.iter().map(|x| 10.0 + 0.1 * x).collect();
        let t = Trend::fit(&x, &y).unwrap();
        assert_eq!(t.mann_kendall_s, 190);
        assert!(t.significant_increasing, "{t:?}");
        assert!(t.p_value < 1e-6, "{t:?}");
    }

    #[test]
    fn strictly_decreasing_is_not_increasing() {
        let x = xs(20);
        let y: Vec<f64> = x.iter().map(|x| 10.0 - 0.1 * x).collect();
        let t = Trend::fit(&x, &y).unwrap();
        assert!(t.mann_kendall_z < 0.0);
        assert!(!t.significant_increasing);
    }

    #[test]
    fn sawtooth_and_flat_noise_are_not_significant() {
        let x = xs(60);
        let saw: Vec<f64> = (0..60).map(|i| 50.0 + (i % 6) as f64 * 10.0).collect();
        let t = Trend::fit(&x, &saw).unwrap();
        assert!(!t.significant_increasing, "{t:?}");
        // Deterministic "noise" around a flat level.
        let noise: Vec<f64> = (0..60).map(|i| 20.0 + ((i * 7919) % 13) as f64 / 10.0 - 0.6).collect();
        let t = Trend::fit(&x, &noise).unwrap();
        assert!(!t.significant_increasing, "{t:?}");
        assert!(t.slope_per_sec.abs() < 0.02, "{t:?}");
        // A constant series: all ties.
        let t = Trend::fit(&x, &vec![5.0; 60]).unwrap();
        assert_eq!((t.slope_per_sec, t.mann_kendall_s, t.p_value), (0.0, 0, 1.0));
    }

    #[test]
    fn outliers_do_not_move_the_slope() {
        let x = xs(30);
        let mut y: Vec<f64> = x.iter().map(|x| 3.0 * x).collect();
        y[5] = 1000.0;
        y[20] = -1000.0;
        assert_eq!(Trend::fit(&x, &y).unwrap().slope_per_sec, 3.0);
    }

    #[test]
    fn long_series_are_subsampled() {
        let x = xs(10_000);
        let y: Vec<f64> = x.iter().map(|x| 0.5 * x + 7.0).collect();
        let t = Trend::fit(&x, &y).unwrap();
        assert_eq!(t.n, 10_000);
        assert_eq!(t.slope_per_sec, 0.5);
        assert!(t.significant_increasing);
    }

    #[test]
    fn erfc_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
        // Two-sided p for z = 1.96 is 0.05.
        assert!((erfc(1.96 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-3);
    }

    #[test]
    fn steps() {
        let seed = [10.9, 10.9, 10.9, 10.9, 235.7, 235.7, 235.7];
        let st = step_up(&seed, 16.0).unwrap();
        assert_eq!((st.before, st.after), (10.9, 235.7));
        assert!(st.ratio > 20.0);
        // Small shifts and overlapping halves are not steps.
        assert!(step_up(&[50.0, 50.0, 50.0, 51.0, 51.0, 51.0, 51.0], 16.0).is_none());
        assert!(step_up(&[2.0, 2.0, 2.0, 5.0, 5.0, 5.0], 16.0).is_none());
        assert!(step_up(&[10.0, 10.0, 100.0, 30.0, 9.0, 100.0, 100.0], 16.0).is_none());
        assert!(step_up(&[10.0, 100.0, 100.0], 16.0).is_none());
    }

    #[test]
    fn too_few_points() {
        assert!(Trend::fit(&[1.0], &[1.0]).is_none());
        assert!(Trend::fit(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }
}
