//! How nodes, edges and retainer paths read in output.

use heapsnap::classes::Classes;
use heapsnap::retainers::RetainerPath;
use heapsnap::source::{ScriptNames, SourceLocation};
use heapsnap::{EdgeIndex, EdgeKind, HeapSnapshot, NodeIndex, NodeKind};
use serde::Serialize;

/// The class a node is counted under.
pub fn class_name(classes: &Classes, n: NodeIndex) -> &str {
    &classes.key_of(n).name
}

/// An edge as a reader sees it: `.name`, `[3]`, `->var`, `{internal}`.
pub fn edge_label(s: &HeapSnapshot, e: EdgeIndex) -> String {
    let name = crate::redact::edge_name(s, e);
    match s.edge_kind(e) {
        EdgeKind::Element => format!("[{name}]"),
        EdgeKind::Internal | EdgeKind::Hidden => format!("{{{name}}}"),
        EdgeKind::Weak => format!("[[{name}]]"),
        _ => name.into_owned(),
    }
}

/// A node in a path: its class, plus the function name for closures and
/// the string text for strings.
pub fn node_label(s: &HeapSnapshot, classes: &Classes, scripts: &ScriptNames, n: NodeIndex) -> String {
    node_label_within(s, classes, scripts, n, usize::MAX)
}

/// `node_label` with the name clipped to `max` characters. The source
/// location after it is never clipped: a cut `file:line:col` could be
/// neither read nor mapped through a source map.
pub fn node_label_within(s: &HeapSnapshot, classes: &Classes, scripts: &ScriptNames, n: NodeIndex, max: usize) -> String {
    match s.kind(n) {
        NodeKind::Closure => {
            let name = s.name(n);
            let name = clip(if name.is_empty() { "(anonymous)" } else { name }, max.saturating_sub(2));
            match scripts.location(s, n) {
                Some(loc) => format!("{name}() {loc}"),
                None => format!("{name}()"),
            }
        }
        NodeKind::String | NodeKind::SlicedString => clip(&quoted(s.name(n)), max),
        NodeKind::ConsString => clip(&quoted(&cons_string_text(s, n, 1024)), max),
        _ => {
            let class = clip(class_name(classes, n), max);
            match scripts.location(s, n) {
                Some(loc) if s.kind(n) == NodeKind::Object => format!("{class} {loc}"),
                _ => class,
            }
        }
    }
}

/// A string value as a path shows it: quoted and clipped, or its hash
/// with `--redact` (of the whole text, so equal values hash equal).
fn quoted(text: &str) -> String {
    if crate::redact::is_on() {
        crate::redact::hash(text)
    } else {
        format!("\"{}\"", clip(text, 40))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct JsonStep {
    pub edge: String,
    pub edge_type: &'static str,
    pub node_id: u32,
    pub node: String,
    pub class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
}

#[derive(Serialize)]
pub struct JsonPath {
    pub start_id: u32,
    pub start: String,
    pub steps: Vec<JsonStep>,
    pub text: String,
}

/// The steps of a path as JSON reads them.
pub fn path_steps(s: &HeapSnapshot, classes: &Classes, scripts: &ScriptNames, p: &RetainerPath) -> Vec<JsonStep> {
    p.steps
        .iter()
        .map(|st| JsonStep {
            edge: crate::redact::edge_name(s, st.edge).into_owned(),
            edge_type: s.edge_kind(st.edge).type_name(),
            node_id: s.id(st.node),
            node: node_label(s, classes, scripts, st.node),
            class: class_name(classes, st.node).to_string(),
            location: scripts.location(s, st.node),
        })
        .collect()
}

pub fn path_json(s: &HeapSnapshot, classes: &Classes, scripts: &ScriptNames, p: &RetainerPath) -> JsonPath {
    let steps = path_steps(s, classes, scripts, p);
    JsonPath { start_id: s.id(p.start), start: start_label(s, classes, p.start), text: path_text(s, classes, scripts, p), steps }
}

/// How a path's first node reads: `global`, a GC root group, or a class.
pub fn start_label(s: &HeapSnapshot, classes: &Classes, n: NodeIndex) -> String {
    let name = s.name(n);
    if s.kind(n) == NodeKind::Synthetic || name.is_empty() {
        if name.is_empty() {
            class_name(classes, n).to_string()
        } else {
            name.to_string()
        }
    } else if name.contains("global") || class_name(classes, n) == "global" {
        "global".to_string()
    } else {
        class_name(classes, n).to_string()
    }
}

/// `global -> bus (EventEmitter) -> _events -> tick (Array) -> [57] (onTick() app.js:9:3)`
pub fn path_text(s: &HeapSnapshot, classes: &Classes, scripts: &ScriptNames, p: &RetainerPath) -> String {
    let mut out = start_label(s, classes, p.start);
    for st in &p.steps {
        out.push_str(" -> ");
        out.push_str(&edge_label(s, st.edge));
        out.push_str(" (");
        out.push_str(&node_label(s, classes, scripts, st.node));
        out.push(')');
    }
    out
}

/// A concatenated string's text, joined from its `first` and `second`
/// parts (as DevTools shows it), up to `max` characters.
pub fn cons_string_text(s: &HeapSnapshot, n: NodeIndex, max: usize) -> String {
    let mut out = String::new();
    let mut stack = vec![n];
    while let Some(x) = stack.pop() {
        if out.len() >= max {
            break;
        }
        if s.kind(x) == NodeKind::ConsString {
            let first = s.child_by_name(x, "first");
            let second = s.child_by_name(x, "second");
            if first.is_none() && second.is_none() {
                out.push_str(s.name(x));
            }
            stack.extend(second);
            stack.extend(first);
        } else {
            out.push_str(s.name(x));
        }
    }
    out
}

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
