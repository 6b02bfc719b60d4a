//! Growth with its window: per round and per request, not per hour.
//!
//! Why: a run lasts seconds. "+832.0 MB/h" from 2.4 s of data is an
//! extrapolation by a factor of 1,500 of a few hundred kB of noise (a warm
//! cache's last fill, a lazily compiled function), and it read as an alarm
//! beside a "no leak" verdict. What the data do show is the change of the
//! heap after GC from the first snapshot to the last, over so many rounds
//! and requests: that is what is printed; a per-hour figure only for
//! windows of ten minutes or more, and then with its window.

use crate::output::{bytes, count};

/// The post-GC heap's change between the first and the last snapshot.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Growth {
    /// Bytes, last snapshot's floor minus the first's.
    pub bytes: i64,
    /// Seconds between the two snapshots.
    pub window_s: f64,
    /// Load rounds between them.
    pub rounds: usize,
    /// Requests of those rounds (0 without the built-in driver).
    pub requests: u64,
}

/// Windows shorter than this get no per-hour figure.
const HOURLY_FROM_S: f64 = 600.0;

impl Growth {
    pub fn per_round(&self) -> Option<f64> {
        (self.rounds > 0).then(|| self.bytes as f64 / self.rounds as f64)
    }

    pub fn per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.bytes as f64 / self.requests as f64)
    }

    /// `snapshots 1→4: +3.1 MB in 5.1 s, 3 rounds: +1.0 MB per round, +517 B per request`.
    pub fn describe(&self, per_hour: Option<f64>) -> String {
        let mut s = format!(
            "snapshots 1→{}: {} in {:.1} s, {}",
            self.rounds + 1,
            signed(self.bytes as f64),
            self.window_s,
            count(self.rounds as u64, "round")
        );
        let mut per = Vec::new();
        if let Some(r) = self.per_round() {
            per.push(format!("{} per round", signed(r)));
        }
        if let Some(r) = self.per_request() {
            per.push(format!("{} per request", signed(r)));
        }
        if !per.is_empty() {
            s.push_str(": ");
            s.push_str(&per.join(", "));
        }
        if let Some(h) = per_hour.filter(|_| self.window_s >= HOURLY_FROM_S) {
            s.push_str(&format!("; {}/h over {}", signed(h), super::human_duration(self.window_s)));
        }
        s
    }
}

/// `+1.2 kB`, `-50.0 kB`, `+12 B`.
pub fn signed(n: f64) -> String {
    let sign = if n < 0.0 { "-" } else { "+" };
    let a = n.abs();
    if a < 1000.0 {
        format!("{sign}{a:.0} B")
    } else {
        format!("{sign}{}", bytes(a.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_of_data_get_no_hourly_rate() {
        let g = Growth { bytes: 3_100_000, window_s: 5.1, rounds: 3, requests: 6000 };
        assert_eq!(g.describe(Some(2.4e9)), "snapshots 1→4: +3.1 MB in 5.1 s, 3 rounds: +1.0 MB per round, +517 B per request");
        let long = Growth { bytes: -50_000, window_s: 1200.0, rounds: 1, requests: 0 };
        assert_eq!(
            long.describe(Some(-1.5e5)),
            "snapshots 1→2: -50.0 kB in 1200.0 s, 1 round: -50.0 kB per round; -150.0 kB/h over 20 min 00 s"
        );
    }
}
