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

    /// `warm-up → round 3: +3.1 MB in 5.1 s, 3 rounds: +1.0 MB per round, +517 B per request`.
    /// Named by rounds, not snapshots: with object tracking the round ends
    /// are id boundaries and only the last one is a snapshot.
    pub fn describe(&self, per_hour: Option<f64>) -> String {
        let mut s = format!(
            "warm-up → round {}: {} in {:.1} s, {}",
            self.rounds,
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

/// Traffic to project a per-request growth to: `--at 1000req/s`, or the
/// rounds' measured average.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Traffic {
    pub requests_per_s: f64,
    /// `--at` (given) or `measured` (the rounds' requests over the window).
    pub source: &'static str,
}

impl Traffic {
    fn text(&self) -> String {
        let n = crate::output::int(self.requests_per_s.round() as u64);
        match self.source {
            "measured" => format!("{n} req/s (this run's traffic; set it with --at)"),
            _ => format!("{n} req/s"),
        }
    }
}

/// `--at`: `1000req/s`, `1000/s`, `1000rps`, `60000req/min`, `1000`.
pub fn parse_traffic(s: &str) -> Result<f64, String> {
    let t = s.trim().to_ascii_lowercase().replace(' ', "");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("`{s}` is not a traffic like 1000req/s"))?;
    let per_s = match unit {
        "" | "req/s" | "/s" | "rps" | "reqs/s" | "requests/s" => v,
        "req/min" | "/min" | "rpm" => v / 60.0,
        "req/h" | "/h" => v / 3600.0,
        _ => return Err(format!("unknown unit `{unit}` in `{s}` (use req/s, req/min or req/h)")),
    };
    if !(per_s.is_finite() && per_s > 0.0) {
        return Err(format!("`{s}`: the traffic must be above zero"));
    }
    Ok(per_s)
}

/// A growth as rates over its window, and its projection to an hour.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rate {
    /// What grows: an accumulator's name, or `external`.
    pub name: String,
    /// Bytes it gained over the window (from the first snapshot to the last).
    pub bytes: i64,
    /// Objects (entries) it gained over the window; null for `external`.
    pub objects: Option<u64>,
    pub window_s: f64,
    /// Requests of the rounds in the window (0 without the built-in load).
    pub requests: u64,
    pub bytes_per_request: Option<f64>,
    pub objects_per_request: Option<f64>,
    pub bytes_per_s: f64,
    pub objects_per_s: Option<f64>,
    /// Bytes per hour: per request at `traffic` when there were requests,
    /// else per second (no load, or a `--load-cmd` whose requests are not counted).
    pub projected_bytes_per_hour: f64,
    /// "+32 B (1.0 objects) per request (+64.0 kB/s over 3.0 s): +115.2 MB/h at 1,000 req/s".
    pub text: String,
}

impl Rate {
    pub fn new(name: &str, bytes: i64, objects: Option<u64>, window: &Growth, traffic: Option<Traffic>) -> Rate {
        let requests = window.requests;
        let per_req = |x: f64| (requests > 0).then(|| x / requests as f64);
        let per_s = |x: f64| if window.window_s > 0.0 { x / window.window_s } else { 0.0 };
        let bytes_per_request = per_req(bytes as f64);
        let bytes_per_s = per_s(bytes as f64);
        let objects_per_s = objects.map(|k| per_s(k as f64));
        let (projected, text) = match (bytes_per_request, traffic) {
            (Some(b), Some(t)) => {
                let h = b * t.requests_per_s * 3600.0;
                let objs = objects.map_or(String::new(), |k| format!(" ({} objects)", decimal(k as f64 / requests as f64)));
                // Per second too: a timer's growth does not follow the traffic.
                let per_s = format!("{}/s over {:.1} s", signed(bytes_per_s), window.window_s);
                (h, format!("{}{objs} per request ({per_s}): {}/h at {}", signed(b), signed(h), t.text()))
            }
            _ => {
                let h = bytes_per_s * 3600.0;
                let objs = objects_per_s.map_or(String::new(), |k| format!(", {} objects", decimal(k)));
                (h, format!("{}{objs} per second over {:.1} s: {}/h", signed(bytes_per_s), window.window_s, signed(h)))
            }
        };
        Rate {
            name: name.to_string(),
            bytes,
            objects,
            window_s: window.window_s,
            requests,
            bytes_per_request,
            objects_per_request: objects.and_then(|k| per_req(k as f64)),
            bytes_per_s,
            objects_per_s,
            projected_bytes_per_hour: projected,
            text,
        }
    }
}

/// `0.33`, `2.0`, `150`: a small ratio readably.
fn decimal(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
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
    fn rates_per_request_project_to_a_stated_traffic() {
        let w = Growth { bytes: 0, window_s: 3.0, rounds: 3, requests: 6000 };
        let at = Traffic { requests_per_s: 1000.0, source: "--at" };
        let r = Rate::new("seenIds", 192_000, Some(6000), &w, Some(at));
        assert_eq!(r.bytes_per_request, Some(32.0));
        assert_eq!(r.text, "+32 B (1.0 objects) per request (+64.0 kB/s over 3.0 s): +115.2 MB/h at 1,000 req/s");
        let measured = Traffic { requests_per_s: 2000.0, source: "measured" };
        let r = Rate::new("seenIds", 192_000, Some(6000), &w, Some(measured));
        assert!(r.text.ends_with("at 2,000 req/s (this run's traffic; set it with --at)"), "{}", r.text);
        // No requests: growth per second, driven by time.
        let idle = Growth { bytes: 0, window_s: 10.0, rounds: 3, requests: 0 };
        let r = Rate::new("samples", 160_000, Some(5000), &idle, None);
        assert_eq!(r.text, "+16.0 kB, 500 objects per second over 10.0 s: +57.6 MB/h");
        assert_eq!(parse_traffic("1000req/s"), Ok(1000.0));
        assert_eq!(parse_traffic("60000req/min"), Ok(1000.0));
        assert_eq!(parse_traffic("250"), Ok(250.0));
        assert!(parse_traffic("fast").is_err());
        assert!(parse_traffic("0req/s").is_err());
    }

    #[test]
    fn seconds_of_data_get_no_hourly_rate() {
        let g = Growth { bytes: 3_100_000, window_s: 5.1, rounds: 3, requests: 6000 };
        assert_eq!(g.describe(Some(2.4e9)), "warm-up → round 3: +3.1 MB in 5.1 s, 3 rounds: +1.0 MB per round, +517 B per request");
        let long = Growth { bytes: -50_000, window_s: 1200.0, rounds: 1, requests: 0 };
        assert_eq!(
            long.describe(Some(-1.5e5)),
            "warm-up → round 1: -50.0 kB in 1200.0 s, 1 round: -50.0 kB per round; -150.0 kB/h over 20 min 00 s"
        );
    }
}

/// A run's growth rates: each suspect's, and memory outside the JS heap's,
/// with the traffic they are projected to and the rate gate.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunRates {
    /// What per-request rates are projected to (null without requests).
    pub traffic: Option<Traffic>,
    /// One per suspect, as `suspects`.
    pub suspects: Vec<Rate>,
    /// `external` from the first snapshot to the last, when it grew in every round.
    pub native: Option<Rate>,
    /// The larger of the suspects' projections (summed) and `native`'s, bytes per hour.
    pub projected_bytes_per_hour: f64,
    /// `--max-growth-rate`, bytes per hour, or null.
    pub max_growth_rate_bytes_per_hour: Option<f64>,
    /// The projection is above `--max-growth-rate`.
    pub over_max_growth_rate: bool,
}
