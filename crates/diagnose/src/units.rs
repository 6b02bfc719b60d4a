//! Sizes, durations and growth rates: how the command line reads them and
//! how the reports print them. Every flag of every command parses through
//! here, so one rule holds everywhere:
//!
//! - `kB`, `MB`, `GB`, `TB` are powers of 1000 (as leakhound prints them);
//! - `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024;
//! - a bare `K`, `M`, `G` is refused, with a message saying which to write
//!   (PM2 reads `300M` as MiB, most people as MB).
//!
//! Unit letters are case-insensitive except that rule: `mb` is MB, `mib` is MiB.

use std::time::Duration;

/// The one-line statement of the rule, for `--help`.
pub const SIZE_RULE: &str = "kB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024; a bare K/M/G is refused";

/// Why a size, duration or rate on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("`{0}` is not a size like 64kB, 1.5MB or 300MiB")]
    NotASize(String),
    #[error("{input} is ambiguous: write {number}{decimal} (10^{power}) or {number}{binary} (2^{binary_power})")]
    Ambiguous { input: String, number: String, decimal: &'static str, power: u32, binary: &'static str, binary_power: u32 },
    #[error("unknown size unit `{unit}` in `{input}` (use B, kB, MB, GB, KiB, MiB, GiB)")]
    UnknownSizeUnit { unit: String, input: String },
    #[error("`{0}`: a size must be positive")]
    NotPositive(String),
    #[error("`{0}` is not a duration like 1s, 200ms, 5m or 2h")]
    NotADuration(String),
    #[error("unknown unit `{unit}` in `{input}` (use ms, s, m, h or d)")]
    UnknownTimeUnit { unit: String, input: String },
    #[error("`{0}` is not a duration")]
    NegativeDuration(String),
    #[error("`{0}` is not a growth rate like 1MB/h")]
    NotARate(String),
    #[error("unknown time unit `{unit}` in `{input}` (use /h, /min or /d)")]
    UnknownRateUnit { unit: String, input: String },
    #[error("`{0}` has no size unit: write it like 1MB/h or 500kB/h")]
    RateWithoutUnit(String),
}

/// Bytes per unit, by the rule; `Err` for a bare K/M/G/T or a foreign unit.
fn size_unit(unit: &str, input: &str, number: &str) -> Result<f64, UnitError> {
    let ambiguous = |decimal, power, binary, binary_power| UnitError::Ambiguous {
        input: input.trim().to_string(),
        number: number.trim().to_string(),
        decimal,
        power,
        binary,
        binary_power,
    };
    Ok(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        "tib" => 1099511627776.0,
        "k" => return Err(ambiguous("kB", 3, "KiB", 10)),
        "m" => return Err(ambiguous("MB", 6, "MiB", 20)),
        "g" => return Err(ambiguous("GB", 9, "GiB", 30)),
        "t" => return Err(ambiguous("TB", 12, "TiB", 40)),
        _ => return Err(UnitError::UnknownSizeUnit { unit: unit.to_string(), input: input.to_string() }),
    })
}

/// A size in bytes, as a float (for rates); `input` names the whole flag value.
fn size_f64(s: &str, input: &str) -> Result<f64, UnitError> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| UnitError::NotASize(input.to_string()))?;
    Ok(v * size_unit(unit.trim(), input, num)?)
}

/// A size: `64kB`, `1.5MB`, `300MiB`, `1000` (bytes), zero allowed.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    Ok(size_f64(s, s)?.round() as u64)
}

/// A size that must be above zero (memory limits).
pub fn parse_positive_size(s: &str) -> Result<u64, UnitError> {
    match parse_size(s)? {
        0 => Err(UnitError::NotPositive(s.to_string())),
        n => Ok(n),
    }
}

/// A duration: `1s`, `200ms`, `2m` (minutes), `1h`, `1d`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.trim().parse().map_err(|_| UnitError::NotADuration(s.to_string()))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => v,
        "ms" => v / 1000.0,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        "d" => v * 86400.0,
        u => return Err(UnitError::UnknownTimeUnit { unit: u.to_string(), input: s.to_string() }),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(UnitError::NegativeDuration(s.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A growth rate in bytes per hour: `1MB/h`, `500kB/h`, `10MB/d`, `2MiB/min`;
/// without `/…` it is per hour. The size needs a unit (`5/h` is refused: it
/// used to mean MB).
pub fn parse_rate(s: &str) -> Result<f64, UnitError> {
    let t = s.trim().replace(' ', "");
    let (amount, per) = match t.split_once('/') {
        Some((a, p)) => (a.to_string(), p.to_ascii_lowercase()),
        None => (t.clone(), "h".to_string()),
    };
    let hours = match per.as_str() {
        "h" | "hr" | "hour" => 1.0,
        "min" | "m" => 1.0 / 60.0,
        "d" | "day" => 24.0,
        _ => return Err(UnitError::UnknownRateUnit { unit: per, input: s.to_string() }),
    };
    let split = amount.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(amount.len());
    let (num, unit) = amount.split_at(split);
    if num.parse::<f64>().is_err() {
        return Err(UnitError::NotARate(s.to_string()));
    }
    if unit.is_empty() {
        return Err(UnitError::RateWithoutUnit(s.to_string()));
    }
    Ok(size_f64(&amount, s)? / hours)
}

/// Bytes in a decimal unit, e.g. `12.3 MB` (as DevTools shows).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A change in bytes with its sign, e.g. `+1.2 MB`, `-300 B`.
pub fn signed_bytes(n: i64) -> String {
    if n >= 0 {
        format!("+{}", bytes(n as u64))
    } else {
        format!("-{}", bytes(n.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_rule() {
        let cases: &[(&str, u64)] = &[
            ("64kB", 64_000),
            ("64KB", 64_000),
            (" 64 kB ", 64_000),
            ("1.5MB", 1_500_000),
            ("1mb", 1_000_000),
            ("2GB", 2_000_000_000),
            ("32KiB", 32 * 1024),
            ("300MiB", 300 << 20),
            ("300mib", 300 << 20),
            ("1GiB", 1 << 30),
            ("1000", 1000),
            ("12B", 12),
            ("0", 0),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bare_suffixes_are_refused_with_what_to_write() {
        let e = parse_size("300M").unwrap_err();
        assert_eq!(e.to_string(), "300M is ambiguous: write 300MB (10^6) or 300MiB (2^20)");
        assert_eq!(parse_size("4k").unwrap_err().to_string(), "4k is ambiguous: write 4kB (10^3) or 4KiB (2^10)");
        assert_eq!(parse_size("2G").unwrap_err().to_string(), "2G is ambiguous: write 2GB (10^9) or 2GiB (2^30)");
        assert!(matches!(parse_rate("1M/h"), Err(UnitError::Ambiguous { .. })));
    }

    #[test]
    fn bad_sizes() {
        assert!(matches!(parse_size("12 parsecs"), Err(UnitError::UnknownSizeUnit { .. })));
        assert!(matches!(parse_size("MB"), Err(UnitError::NotASize(_))));
        assert!(matches!(parse_size("-5MB"), Err(UnitError::NotASize(_))));
        assert_eq!(parse_positive_size("0"), Err(UnitError::NotPositive("0".into())));
        assert_eq!(parse_positive_size("512MB"), Ok(512_000_000));
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Duration)] = &[
            ("1s", Duration::from_secs(1)),
            ("10s", Duration::from_secs(10)),
            ("200ms", Duration::from_millis(200)),
            ("1.5", Duration::from_millis(1500)),
            ("1.5m", Duration::from_secs(90)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1d", Duration::from_secs(86400)),
            ("3", Duration::from_secs(3)),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        assert!(matches!(parse_duration("fast"), Err(UnitError::NotADuration(_))));
        assert!(matches!(parse_duration("1y"), Err(UnitError::UnknownTimeUnit { .. })));
        assert!(matches!(parse_duration("3 fortnights"), Err(UnitError::UnknownTimeUnit { .. })));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rates_in_bytes_per_hour() {
        let cases: &[(&str, f64)] = &[
            ("1MB/h", 1e6),
            ("1MB", 1e6),
            ("500kB/h", 5e5),
            ("10MB/d", 1e7 / 24.0),
            ("1MiB/h", 1048576.0),
            ("2KiB/min", 2048.0 * 60.0),
            ("1 GB / hour", 1e9),
        ];
        for &(s, want) in cases {
            let got = parse_rate(s).unwrap();
            assert!((got - want).abs() < 1e-6, "{s}: {got} != {want}");
        }
        assert!(matches!(parse_rate("5/h"), Err(UnitError::RateWithoutUnit(_))));
        assert!(matches!(parse_rate("1MB/week"), Err(UnitError::UnknownRateUnit { .. })));
        assert!(matches!(parse_rate("fast"), Err(UnitError::NotARate(_))));
    }

    #[test]
    fn display() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(512_300_000), "512.3 MB");
        assert_eq!(signed_bytes(1500), "+1.5 kB");
        assert_eq!(signed_bytes(-300), "-300 B");
    }
}
