//! Source positions: which file and line a closure or a constructor-made
//! object comes from, from the snapshot's `locations` and the closure's
//! SharedFunctionInfo -> Script link.

use crate::meta::NodeKind;
use crate::snapshot::{HeapSnapshot, NodeIndex};
use rustc_hash::FxHashMap as HashMap;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceLocation {
    /// The script's path or URL, when the snapshot names it.
    pub file: Option<String>,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    pub script_id: u32,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}:{}", self.line, self.column),
            None => write!(f, "script#{}:{}:{}", self.script_id, self.line, self.column),
        }
    }
}

/// Script names by script id, learnt from closures' SharedFunctionInfo.
pub struct ScriptNames {
    names: HashMap<u32, String>,
}

/// The Script node a closure's code belongs to.
pub fn closure_script(s: &HeapSnapshot, closure: NodeIndex) -> Option<NodeIndex> {
    let shared = s.child_by_name(closure, "shared")?;
    let script = s.child_by_name(shared, "script").or_else(|| s.child_by_name(shared, "script_or_debug_info"))?;
    Some(script)
}

impl ScriptNames {
    pub fn build(s: &HeapSnapshot) -> Self {
        let mut names = HashMap::default();
        for l in &s.locations {
            if names.contains_key(&l.script_id) || s.kind(l.node) != NodeKind::Closure {
                continue;
            }
            if let Some(script) = closure_script(s, l.node) {
                let name = s.name(script);
                if !name.is_empty() {
                    names.insert(l.script_id, name.to_string());
                }
            }
        }
        ScriptNames { names }
    }

    pub fn name(&self, script_id: u32) -> Option<&str> {
        self.names.get(&script_id).map(String::as_str)
    }

    /// Where a node's function or constructor is defined, if recorded.
    pub fn location(&self, s: &HeapSnapshot, n: NodeIndex) -> Option<SourceLocation> {
        let l = s.location(n)?;
        let file = if s.kind(n) == NodeKind::Closure {
            closure_script(s, n).map(|sc| s.name(sc).to_string()).filter(|x| !x.is_empty())
        } else {
            None
        }
        .or_else(|| self.name(l.script_id).map(str::to_string));
        Some(SourceLocation { file, line: l.line + 1, column: l.column + 1, script_id: l.script_id })
    }
}
