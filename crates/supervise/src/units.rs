//! Sizes and durations on the command line, and their display: the one
//! parser of `diagnose::units` (kB/MB/GB powers of 1000, KiB/MiB/GiB of
//! 1024, a bare K/M/G refused), and a duration for people.

use std::time::Duration;

pub use diagnose::units::{bytes, parse_duration, parse_positive_size as parse_size, UnitError};

/// A duration for people: `850 ms`, `12.3 s`, `4.0 min`, `2.5 h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("300MiB").unwrap(), 300 << 20);
        // PM2's bare M used to mean MiB here and MB elsewhere: refused now.
        assert_eq!(parse_size("150M").unwrap_err().to_string(), "150M is ambiguous: write 150MB (10^6) or 150MiB (2^20)");
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size(" 64 kB ").unwrap(), 64_000);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-5MB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("3 fortnights").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn display() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(512_300_000), "512.3 MB");
        assert_eq!(duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3 s");
    }
}
