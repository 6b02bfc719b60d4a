//! How the command line reads values: every size, duration and rate flag of
//! every command parses through these (the parsers live in
//! `diagnose::units`, which `supervise` shares), so `300MB` means the same
//! thing in every flag.

pub use diagnose::units::{parse_duration, parse_positive_size, parse_rate, parse_size};

/// The unit rule, shown after the top-level `--help`.
pub const UNITS_HELP: &str = "Sizes: kB, MB, GB are powers of 1000; KiB, MiB, GiB powers of 1024; a bare K, M or G is refused \
(write 300MB or 300MiB). Durations: 500ms, 10s, 5m, 2h, 1d. Rates: a size per /h, /min or /d, e.g. 1MB/h.";
