//! `--junit FILE`: the verdict as JUnit XML, for CI systems that show test
//! reports (GitLab `artifacts:reports:junit`, Jenkins, Azure, CircleCI).
//! One test case per suspect, failed, with the retainer path and the fix;
//! a leak without suspects (`run --max-growth`) is one failed case for the
//! heap growth; no leak is one passing case; inconclusive is skipped.
//!
//! Rendered from the command's JSON document (docs/json.md).

use super::github::repo_file;
use serde_json::Value;
use std::path::Path;

// The one escape of the reports: what it makes is valid XML 1.0 and HTML.
use super::esc;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The JUnit document for a `run` or `diagnose` report that took `seconds`.
pub fn document(doc: &Value, seconds: f64, base: &Path) -> String {
    let command = str_of(doc, "command");
    let verdict = str_of(doc, "verdict");
    let suite = format!("leakhound {command}");
    let mut cases = Vec::new();
    let mut failures = 0;
    let mut skipped = 0;
    let suspects = doc.get("suspects").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, s) in suspects.iter().enumerate() {
        let acc = s.get("accumulator").map(|a| str_of(a, "name")).unwrap_or("");
        let pattern = str_of(s, "pattern");
        let loc = s.get("location").filter(|l| !l.is_null());
        let file = loc.and_then(|l| l.get("file")).and_then(Value::as_str).and_then(|f| repo_file(f, base));
        let line = loc.and_then(|l| l.get("line")).and_then(Value::as_u64);
        let mut attrs = format!("classname=\"{}\" name=\"{}\"", esc(&suite), esc(&format!("suspect {}: {acc} [{pattern}]", i + 1)));
        if let Some(f) = &file {
            attrs.push_str(&format!(" file=\"{}\"", esc(f)));
            if let Some(l) = line {
                attrs.push_str(&format!(" line=\"{l}\""));
            }
        }
        let grows: Vec<String> = s
            .get("bytes_per_step")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).map(super::github::signed_bytes).collect())
            .unwrap_or_default();
        let at = match (&file, line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            _ => "(no code of the app's on the path)".to_string(),
        };
        let body = format!(
            "{title} [{pattern}]: {acc}\ngrows:  {grows} per step\npath:   {path}\nsource: {at}\nfix:    {advice}",
            title = str_of(s, "title"),
            grows = grows.join(", "),
            path = str_of(s, "path_text"),
            advice = str_of(s, "advice"),
        );
        let message = format!("{} in {acc}", str_of(s, "title"));
        cases.push(format!(
            "    <testcase {attrs} time=\"0\">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
            esc(pattern),
            esc(&message),
            esc(&body)
        ));
        failures += 1;
    }
    let reason = str_of(doc, "reason");
    if suspects.is_empty() {
        let name = esc(&format!("{command}: verdict"));
        let case = match verdict {
            "leak" => {
                failures += 1;
                format!("      <failure type=\"leak\" message=\"{}\">{}</failure>\n", esc(reason), esc(reason))
            }
            "inconclusive" => {
                skipped += 1;
                format!("      <skipped message=\"{}\"/>\n", esc(reason))
            }
            _ => String::new(),
        };
        let out =
            if reason.is_empty() || !case.is_empty() { String::new() } else { format!("      <system-out>{}</system-out>\n", esc(reason)) };
        cases.push(format!(
            "    <testcase classname=\"{}\" name=\"{name}\" time=\"{seconds:.3}\">\n{case}{out}    </testcase>\n",
            esc(&suite)
        ));
    }
    let tests = cases.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"leakhound\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">\n{}  </testsuite>\n</testsuites>\n",
        esc(&suite),
        cases.concat()
    )
}

/// Writes the document to `path` whole or not at all (a `.part` file
/// renamed), 0600: it quotes retainer paths, which are heap strings.
pub fn write(path: &Path, xml: &str) -> anyhow::Result<()> {
    inspector::private::write_file(path, xml.as_bytes()).map_err(|e| anyhow::anyhow!("JUnit report: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_failed_case_per_suspect() {
        let doc = json!({"command": "diagnose", "verdict": "leak", "suspects": [{
            "pattern": "global-collection", "title": "module-level collection that only grows",
            "accumulator": {"name": "requestLogs"}, "bytes_per_step": [943900],
            "path_text": "global -> requestLogs (Array) -> [1] (LogEntry <a>)",
            "location": {"file": "/w/app.js", "line": 7, "column": 3, "script_id": 9}, "advice": "Bound it & go"}]});
        let x = document(&doc, 1.5, Path::new("/w"));
        assert!(x.contains("<testsuites name=\"leakhound\" tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"1.500\">"), "{x}");
        assert!(x.contains("name=\"suspect 1: requestLogs [global-collection]\" file=\"app.js\" line=\"7\""), "{x}");
        assert!(x.contains("(LogEntry &lt;a&gt;)"), "{x}");
        assert!(x.contains("fix:    Bound it &amp; go</failure>"), "{x}");
    }

    #[test]
    fn verdict_cases_without_suspects() {
        let ok = document(&json!({"command": "run", "verdict": "no-leak", "reason": "flat", "suspects": []}), 2.0, Path::new("/"));
        assert!(ok.contains("failures=\"0\"") && ok.contains("<system-out>flat</system-out>"), "{ok}");
        let grew =
            document(&json!({"command": "run", "verdict": "leak", "reason": "grew 12 MB > 10 MB", "suspects": []}), 2.0, Path::new("/"));
        assert!(grew.contains("failures=\"1\"") && grew.contains("<failure type=\"leak\" message=\"grew 12 MB &gt; 10 MB\">"), "{grew}");
        let maybe =
            document(&json!({"command": "run", "verdict": "inconclusive", "reason": "few floors", "suspects": []}), 2.0, Path::new("/"));
        assert!(maybe.contains("skipped=\"1\"") && maybe.contains("<skipped message=\"few floors\"/>"), "{maybe}");
    }
}
