//! docs/json.md against real `--json` output: the required fields of each
//! command are parsed from the doc, so that doc and output cannot drift.
#![allow(dead_code)]

use serde_json::Value;

// ---- docs/json.md: the required fields of each command -----------------

/// `## `run`` headings, then table rows `| `field` | type | yes | meaning |`.
pub fn documented_required() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json.md")).expect("docs/json.md");
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## `leakhound ") {
            let cmd = h.split(['`', ' ']).next().unwrap().to_string();
            out.push((cmd, Vec::new()));
        } else if line.starts_with("| `") {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() >= 5 && cells[3] == "yes" {
                if let Some((_, fields)) = out.last_mut() {
                    fields.push(cells[1].trim_matches('`').to_string());
                }
            }
        }
    }
    out
}

/// Every value at a dotted path (`a.b`, `a[].b`: each element of array a).
fn lookup<'a>(v: &'a Value, path: &str) -> Vec<Option<&'a Value>> {
    let mut cur: Vec<&Value> = vec![v];
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (name, each) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (*part, false),
        };
        let mut next = Vec::new();
        for c in cur {
            match c.get(name) {
                None => return vec![None],
                Some(x) if each && i + 1 < parts.len() => next.extend(x.as_array().expect("documented as an array").iter()),
                Some(x) => next.push(x),
            }
        }
        cur = next;
    }
    cur.into_iter().map(Some).collect()
}

pub fn check_schema(cmd: &str, v: &Value) {
    let docs = documented_required();
    let fields = &docs.iter().find(|(c, _)| c == cmd).unwrap_or_else(|| panic!("docs/json.md has no section for {cmd}")).1;
    assert!(fields.len() >= 3, "docs/json.md lists only {} required fields for {cmd}", fields.len());
    for f in fields {
        for x in lookup(v, f) {
            assert!(x.is_some(), "`leakhound {cmd} --json` lacks the documented field {f}");
        }
    }
    assert_eq!(v["command"], cmd);
    assert_eq!(v["schema_version"], 1);
}
