//! Terminal output helpers: sizes, tables that fit, one-line errors.

use std::io::IsTerminal;

/// Print an error as one line on stderr.
pub fn error_line(e: &anyhow::Error) {
    eprintln!("leakhound: error: {}", error_text(e));
}

/// The error and its causes on one line, each said once: a cause whose
/// text the message already holds (an error that prints its source) is not
/// repeated, and an OS error loses Rust's ` (os error 2)` suffix.
pub fn error_text(e: &anyhow::Error) -> String {
    let clean = |t: String| match t.find(" (os error ") {
        Some(i) if t.ends_with(')') => t[..i].to_string(),
        _ => t,
    };
    let mut msg = clean(format!("{e}"));
    for cause in e.chain().skip(1) {
        let c = clean(cause.to_string());
        if !msg.contains(&c) {
            msg.push_str(&format!(": {c}"));
        }
    }
    msg.replace('\n', " ")
}

/// An I/O error's reason without Rust's ` (os error 13)` suffix, which
/// would repeat what the words say: `permission denied`.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => text,
    }
}

/// Bytes in a decimal unit, e.g. `12.3 MB` (one formatting everywhere).
pub use diagnose::units::bytes;

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Width available for tables.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(if stdout_is_terminal() { 120 } else { 160 })
}

/// Cut a string to at most `max` characters, with an ellipsis.
pub use diagnose::describe::clip;

/// A simple right-aligned-numbers table; the first column is clipped to fit.
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn render(&self, width: usize) -> String {
        let cols = self.headers.len();
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let others: usize = w[1..].iter().sum::<usize>() + 2 * (cols - 1);
        w[0] = w[0].min(width.saturating_sub(others).max(16));
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (i, c) in cells.iter().enumerate() {
                if i == 0 {
                    let c = clip(c, w[0]);
                    out.push_str(&format!("{:<width$}", c, width = w[0]));
                } else {
                    out.push_str(&format!("  {:>width$}", c, width = w[i]));
                }
            }
            out.push('\n');
        };
        let h: Vec<String> = self.headers.iter().map(|s| s.to_string()).collect();
        line(&h, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

/// Phase timings on stderr when `LEAKHOUND_TIMING` is set.
pub struct Timer {
    on: bool,
    last: std::time::Instant,
}

impl Timer {
    pub fn new() -> Self {
        Timer { on: std::env::var_os("LEAKHOUND_TIMING").is_some(), last: std::time::Instant::now() }
    }
    pub fn phase(&mut self, name: &str) {
        if self.on {
            eprintln!("timing: {name}: {:.2?}", self.last.elapsed());
        }
        self.last = std::time::Instant::now();
    }
}

/// Colours for the verdict words: only when stdout is a terminal,
/// `NO_COLOR` is unset (https://no-color.org) and `TERM` is not `dumb`.
#[derive(Clone, Copy)]
pub enum Colour {
    Red,
    Green,
    Yellow,
}

pub fn colour_enabled() -> bool {
    stdout_is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// `text` in bold colour when colour is enabled, else unchanged.
pub fn paint(text: &str, c: Colour) -> String {
    if !colour_enabled() {
        return text.to_string();
    }
    let code = match c {
        Colour::Red => "1;31",
        Colour::Green => "1;32",
        Colour::Yellow => "1;33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

// `is_multiple_of` is newer than the workspace's rust-version (1.80).
#[allow(clippy::manual_is_multiple_of)]
/// A count with thousands separators, the one number format of the text
/// output: `20,983`.
pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 class`, `2 classes`: a count and its noun, with an irregular plural.
pub fn count_of(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", int(n))
    }
}

/// `+1,234`, `-5`, `0`: a signed count with thousands separators.
pub fn signed_int(n: i64) -> String {
    match n {
        0 => "0".to_string(),
        n if n > 0 => format!("+{}", int(n as u64)),
        n => format!("-{}", int(n.unsigned_abs())),
    }
}

/// `1 request`, `2,000 requests`: a count and its noun, plural when not 1.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", int(n))
    }
}
