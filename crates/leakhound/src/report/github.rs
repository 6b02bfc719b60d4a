//! `--format github`: GitHub Actions workflow commands
//! (`::error file=F,line=L,col=C,title=T::MESSAGE`), one per suspect at the
//! first line of the user's code on its retainer path, so the leak shows on
//! the pull request's diff; plus a `notice`/`warning`/`error` for the verdict.
//!
//! Rendered from the command's JSON document (docs/json.md), the schema
//! that stays stable, so any report type that serialises to it works.

use serde_json::Value;
use std::path::Path;

/// `--format`: how `run` and `diagnose` print their report.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// The text report.
    #[default]
    Text,
    /// The text report, then GitHub Actions annotations (`::error file=…,line=…::…`).
    Github,
}

/// Escapes a workflow command's message (GitHub's `escapeData`).
fn esc_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a property value (`escapeProperty`): also `:` and `,`.
fn esc_prop(s: &str) -> String {
    esc_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The file as the repository names it: relative to `base` (the workspace)
/// when inside it; None for Node's own modules and unnamed scripts.
pub fn repo_file(file: &str, base: &Path) -> Option<String> {
    if file.is_empty() || file.starts_with("node:") || file.starts_with("internal/") {
        return None;
    }
    let path = file.strip_prefix("file://").unwrap_or(file);
    let p = Path::new(path);
    let rel = p.strip_prefix(base).unwrap_or(p);
    Some(rel.to_string_lossy().into_owned())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `+146.4 kB` (powers of 1000): the one signed size format.
pub use diagnose::units::signed_bytes;

/// One `::error` per suspect, then one line for the verdict.
pub fn annotations(doc: &Value, base: &Path) -> String {
    let command = str_of(doc, "command");
    let verdict = str_of(doc, "verdict");
    let suspects = doc.get("suspects").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = String::new();
    for s in &suspects {
        let acc = s.get("accumulator").map(|a| str_of(a, "name")).unwrap_or("");
        let pattern = str_of(s, "pattern");
        let grows: Vec<String> = s
            .get("bytes_per_step")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).map(signed_bytes).collect())
            .unwrap_or_default();
        let message = format!(
            "{acc} grows {} per step ({})\npath: {}\nfix: {}",
            grows.join(", "),
            str_of(s, "title"),
            str_of(s, "path_text"),
            str_of(s, "advice")
        );
        let title = format!("leakhound {command}: {pattern} leak in {acc}");
        let loc = s.get("location").filter(|l| !l.is_null());
        let file = loc.and_then(|l| l.get("file")).and_then(Value::as_str).and_then(|f| repo_file(f, base));
        let mut props = Vec::new();
        if let (Some(f), Some(l)) = (file, loc) {
            props.push(format!("file={}", esc_prop(&f)));
            if let Some(line) = l.get("line").and_then(Value::as_u64) {
                props.push(format!("line={line}"));
            }
            if let Some(col) = l.get("column").and_then(Value::as_u64) {
                props.push(format!("col={col}"));
            }
        }
        props.push(format!("title={}", esc_prop(&title)));
        out.push_str(&format!("::error {}::{}\n", props.join(","), esc_data(&message)));
    }
    let reason = match doc.get("reason").and_then(Value::as_str) {
        Some(r) => r.to_string(),
        None if verdict == "leak" => format!("{} suspect(s) grew in every step", suspects.len()),
        None => format!(
            "nothing grew in every step by the threshold ({} per step)",
            signed_bytes(doc.get("min_growth_bytes_per_step").and_then(Value::as_i64).unwrap_or(0)).trim_start_matches('+')
        ),
    };
    let level = match verdict {
        "leak" => "error",
        "inconclusive" => "warning",
        _ => "notice",
    };
    // A leak with suspects already has its errors; the verdict line then only
    // summarises (a notice would be lost among them, an error would count twice).
    let level = if level == "error" && !suspects.is_empty() { "notice" } else { level };
    out.push_str(&format!("::{level} title={}::{}\n", esc_prop(&format!("leakhound {command}: {verdict}")), esc_data(&reason)));
    out
}

/// Where annotation paths are relative to: `$GITHUB_WORKSPACE`, else the current directory.
pub fn workspace() -> std::path::PathBuf {
    std::env::var_os("GITHUB_WORKSPACE").map(std::path::PathBuf::from).or_else(|| std::env::current_dir().ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_as_the_actions_toolkit_does() {
        assert_eq!(esc_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(esc_prop("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn suspect_annotation_at_the_users_line() {
        let doc = json!({
            "command": "diagnose", "verdict": "leak", "min_growth_bytes_per_step": 64000,
            "suspects": [{
                "pattern": "event-listeners", "title": "event listeners never removed",
                "accumulator": {"name": "bus._events.tick"},
                "bytes_per_step": [146400, 146400],
                "path_text": "global -> bus -> _events -> tick",
                "location": {"file": "/repo/src/app.js", "line": 13, "column": 33, "script_id": 81},
                "advice": "Remove the listener, 100% of the time."
            }]
        });
        let out = annotations(&doc, Path::new("/repo"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "::error file=src/app.js,line=13,col=33,title=leakhound diagnose%3A event-listeners leak in bus._events.tick::bus._events.tick grows +146.4 kB, +146.4 kB per step (event listeners never removed)%0Apath: global -> bus -> _events -> tick%0Afix: Remove the listener, 100%25 of the time."
        );
        assert_eq!(lines[1], "::notice title=leakhound diagnose%3A leak::1 suspect(s) grew in every step");
    }

    #[test]
    fn node_internal_location_has_no_file() {
        let doc = json!({"command": "run", "verdict": "leak", "reason": "heap grew",
            "suspects": [{"pattern": "sockets", "title": "t", "accumulator": {"name": "TCP"},
            "bytes_per_step": [1], "path_text": "p", "advice": "a",
            "location": {"file": "node:net", "line": 1, "column": 1, "script_id": 1}}]});
        assert!(annotations(&doc, Path::new("/")).starts_with("::error title=leakhound run%3A sockets leak in TCP::"));
        let none = json!({"command": "run", "verdict": "no-leak", "reason": "flat", "suspects": []});
        assert_eq!(annotations(&none, Path::new("/")), "::notice title=leakhound run%3A no-leak::flat\n");
    }
}
