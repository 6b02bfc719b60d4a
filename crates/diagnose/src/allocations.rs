//! Which functions allocated the memory still alive: the call tree
//! (top-down, total and self bytes), the allocation sites (bottom-up) and
//! the bytes per function of the app's own code, from V8's sampling heap
//! profile. Pure: the caller brings the profile (see [`ProfileNode`]).
//!
//! A node of V8's profile is a function, located where the function is
//! defined, not at the allocating line; a function that V8 inlined into
//! its caller is not on the stack, so its allocations count toward the
//! caller.

use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// A node of V8's sampling heap profile (`HeapProfiler.SamplingHeapProfileNode`),
/// as the inspector client delivers it.
pub trait ProfileNode: Sized {
    /// Empty for an anonymous function.
    fn function_name(&self) -> &str;
    /// Empty for V8's own nodes.
    fn url(&self) -> &str;
    /// 0-based; negative when unknown.
    fn line_number(&self) -> i64;
    fn column_number(&self) -> i64;
    /// Estimated bytes allocated with this function on top of the stack.
    fn self_size(&self) -> f64;
    fn id(&self) -> u64;
    fn children(&self) -> Vec<Self>;
}

/// Whose code a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeKind {
    /// The app's own files.
    User,
    /// A package under node_modules.
    NodeModules,
    /// Node's built-in modules (`node:...`).
    Node,
    /// V8 itself: no script (`(root)`, `(V8 API)`, `(BYTECODE_COMPILER)`, ...).
    V8,
}

impl CodeKind {
    pub fn of(url: &str) -> CodeKind {
        if url.is_empty() {
            CodeKind::V8
        } else if url.starts_with("node:") || url.starts_with("internal/") {
            CodeKind::Node
        } else if url.contains("/node_modules/") || url.starts_with("node_modules/") {
            CodeKind::NodeModules
        } else {
            CodeKind::User
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            CodeKind::User => "your code",
            CodeKind::NodeModules => "node_modules",
            CodeKind::Node => "node",
            CodeKind::V8 => "V8",
        }
    }
}

/// One node of the call tree: a function on the allocating stacks.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    /// `(anonymous)` for a function without a name; V8's own nodes keep
    /// their names: `(root)`, `(V8 API)`, `(BYTECODE_COMPILER)`...
    pub function: String,
    /// The script as V8 names it (a path, `file://` URL or `node:` module); empty for V8's own nodes.
    pub url: String,
    /// Where the function is defined, 1-based; absent for V8's own nodes.
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub kind: CodeKind,
    /// Estimated live bytes allocated with this function on top of the stack.
    pub self_bytes: u64,
    /// `self_bytes` plus the children's `total_bytes`.
    pub total_bytes: u64,
    /// Live samples behind `self_bytes`.
    pub self_samples: u64,
    /// Largest first.
    pub children: Vec<TreeNode>,
}

/// Live bytes summed per function (by name and location).
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub function: String,
    pub url: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub kind: CodeKind,
    pub bytes: u64,
    pub samples: u64,
}

/// Our call tree from V8's: names and 1-based locations, totals, live
/// sample counts (`sample_node_ids`: the node id of every live sample);
/// nodes that hold nothing live are dropped; children largest first.
pub fn build_tree<N: ProfileNode>(head: &N, sample_node_ids: impl IntoIterator<Item = u64>) -> TreeNode {
    let mut samples: HashMap<u64, u64> = HashMap::new();
    for id in sample_node_ids {
        *samples.entry(id).or_insert(0) += 1;
    }
    convert(head, &samples).unwrap_or_else(|| TreeNode {
        function: "(root)".into(),
        url: String::new(),
        line: None,
        column: None,
        kind: CodeKind::V8,
        self_bytes: 0,
        total_bytes: 0,
        self_samples: 0,
        children: Vec::new(),
    })
}

fn convert<N: ProfileNode>(n: &N, samples: &HashMap<u64, u64>) -> Option<TreeNode> {
    let mut children: Vec<TreeNode> = n.children().iter().filter_map(|c| convert(c, samples)).collect();
    children.sort_by(|a, b| b.total_bytes.cmp(&a.total_bytes).then_with(|| a.function.cmp(&b.function)));
    let self_bytes = n.self_size().max(0.0).round() as u64;
    let total_bytes = self_bytes + children.iter().map(|c| c.total_bytes).sum::<u64>();
    let (function_name, url) = (n.function_name(), n.url());
    let is_root = function_name == "(root)" && url.is_empty();
    if total_bytes == 0 && !is_root {
        return None;
    }
    let known = |x: i64| (x >= 0 && !url.is_empty()).then(|| (x + 1) as u32);
    Some(TreeNode {
        function: if function_name.is_empty() { "(anonymous)".into() } else { function_name.to_string() },
        url: url.to_string(),
        line: known(n.line_number()),
        column: known(n.column_number()),
        kind: CodeKind::of(url),
        self_bytes,
        total_bytes,
        self_samples: samples.get(&n.id()).copied().unwrap_or(0),
        children,
    })
}

type SiteKey = (String, String, Option<u32>, Option<u32>);

fn key(n: &TreeNode) -> SiteKey {
    (n.function.clone(), n.url.clone(), n.line, n.column)
}

fn sorted_sites(m: HashMap<SiteKey, Site>) -> Vec<Site> {
    let mut v: Vec<Site> = m.into_values().filter(|s| s.bytes > 0).collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.function.cmp(&b.function)).then_with(|| a.url.cmp(&b.url)));
    v
}

fn add(m: &mut HashMap<SiteKey, Site>, k: SiteKey, kind: CodeKind, bytes: u64, samples: u64) {
    let s = m.entry(k.clone()).or_insert_with(|| Site { function: k.0, url: k.1, line: k.2, column: k.3, kind, bytes: 0, samples: 0 });
    s.bytes += bytes;
    s.samples += samples;
}

/// Bottom-up: self bytes summed per function and location (a function
/// reached by several paths is one site).
pub fn sites(tree: &TreeNode) -> Vec<Site> {
    let mut m = HashMap::new();
    let mut stack = vec![tree];
    while let Some(n) = stack.pop() {
        if n.self_bytes > 0 {
            add(&mut m, key(n), n.kind, n.self_bytes, n.self_samples);
        }
        stack.extend(n.children.iter());
    }
    sorted_sites(m)
}

/// Live bytes per innermost function of the app's own code on the
/// allocating stack; allocations with none of the app's code on their
/// stack are one entry of V8 kind, `(no code of yours on the stack)`.
pub fn user_code(tree: &TreeNode) -> Vec<Site> {
    let mut m = HashMap::new();
    let none: SiteKey = ("(no code of yours on the stack)".into(), String::new(), None, None);
    let mut stack: Vec<(&TreeNode, Option<&TreeNode>)> = vec![(tree, None)];
    while let Some((n, user)) = stack.pop() {
        let user = if n.kind == CodeKind::User { Some(n) } else { user };
        if n.self_bytes > 0 {
            match user {
                Some(u) => add(&mut m, key(u), CodeKind::User, n.self_bytes, n.self_samples),
                None => add(&mut m, none.clone(), CodeKind::V8, n.self_bytes, n.self_samples),
            }
        }
        stack.extend(n.children.iter().map(|c| (c, user)));
    }
    sorted_sites(m)
}

/// A script's name for people: `file://` and percent-escapes undone, and
/// relative to `cwd` when under it.
pub fn display_url(url: &str, cwd: &Path) -> String {
    let path = match url.strip_prefix("file://") {
        Some(p) => percent_decode(p),
        None => url.to_string(),
    };
    if path.starts_with('/') && !cwd.as_os_str().is_empty() {
        if let Ok(rel) = Path::new(&path).strip_prefix(cwd) {
            return rel.display().to_string();
        }
    }
    path
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `fixtures/app.js:12:5`, or empty for V8's own nodes.
pub fn location(url: &str, line: Option<u32>, column: Option<u32>, cwd: &Path) -> String {
    if url.is_empty() {
        return String::new();
    }
    let mut s = display_url(url, cwd);
    if let Some(l) = line {
        s.push_str(&format!(":{l}"));
        if let Some(c) = column {
            s.push_str(&format!(":{c}"));
        }
    }
    s
}

/// `part` as a percentage of `total` (0 when `total` is 0).
pub fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
}

/// One row of the top-down table: a node, or a chain of direct recursion
/// (a node whose only child is the same function) folded into one row.
pub struct TreeRow<'a> {
    pub depth: usize,
    pub node: &'a TreeNode,
    /// Calls in the folded chain (1: no recursion).
    pub calls: usize,
    /// Self bytes of the whole chain.
    pub self_bytes: u64,
}

impl TreeRow<'_> {
    pub fn name(&self) -> String {
        if self.calls > 1 {
            format!("{} (×{} recursive)", self.node.function, self.calls)
        } else {
            self.node.function.clone()
        }
    }
}

/// Tree rows to show, depth-first: the nodes holding at least
/// `min_percent` of the total, at most `max_rows`; and how many more there were.
pub fn tree_rows(tree: &TreeNode, min_percent: f64, max_rows: usize) -> (Vec<TreeRow<'_>>, usize) {
    let min = (tree.total_bytes as f64 * min_percent / 100.0).max(1.0);
    let mut rows = Vec::new();
    let mut hidden = 0;
    let mut stack = vec![(0usize, tree)];
    while let Some((d, n)) = stack.pop() {
        if (n.total_bytes as f64) < min && d > 0 {
            continue;
        }
        let full = rows.len() >= max_rows;
        let (mut last, mut calls, mut self_bytes) = (n, 1, n.self_bytes);
        while let [only] = last.children.as_slice() {
            if key(only) != key(last) {
                break;
            }
            last = only;
            calls += 1;
            self_bytes += only.self_bytes;
        }
        if full {
            hidden += 1;
        } else {
            rows.push(TreeRow { depth: d, node: n, calls, self_bytes });
        }
        for c in last.children.iter().rev() {
            stack.push((d + 1, c));
        }
    }
    (rows, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile node as the inspector's reply has it.
    #[derive(Clone)]
    struct Node {
        id: u64,
        name: &'static str,
        url: &'static str,
        line: i64,
        self_size: f64,
        children: Vec<Node>,
    }

    impl ProfileNode for Node {
        fn function_name(&self) -> &str {
            self.name
        }
        fn url(&self) -> &str {
            self.url
        }
        fn line_number(&self) -> i64 {
            self.line
        }
        fn column_number(&self) -> i64 {
            4
        }
        fn self_size(&self) -> f64 {
            self.self_size
        }
        fn id(&self) -> u64 {
            self.id
        }
        fn children(&self) -> Vec<Node> {
            self.children.clone()
        }
    }

    fn node(id: u64, name: &'static str, url: &'static str, line: i64, self_size: f64, children: Vec<Node>) -> Node {
        Node { id, name, url, line, self_size, children }
    }

    fn profile() -> (Node, Vec<u64>) {
        // (root) -> emit (node:events) -> handler (app) -> retain (app)
        //                                              -> parse (node_modules) -> inner (node)
        //        -> (V8 API), and a dead branch.
        let retain = node(4, "retain", "/srv/app.js", 9, 3000.0, vec![]);
        let inner = node(6, "inner", "node:buffer", 100, 500.0, vec![]);
        let parse = node(5, "", "file:///srv/node_modules/lib/x%20y.js", 0, 200.0, vec![inner]);
        let handler = node(3, "handler", "/srv/app.js", 20, 100.0, vec![retain, parse]);
        let emit = node(2, "emit", "node:events", 50, 0.0, vec![handler]);
        let api = node(7, "(V8 API)", "", -1, 1000.0, vec![]);
        let dead = node(8, "gone", "/srv/app.js", 30, 0.0, vec![node(9, "alsoGone", "/srv/app.js", 40, 0.0, vec![])]);
        let root = node(1, "(root)", "", -1, 0.0, vec![api, emit, dead]);
        (root, vec![4, 4, 4, 6, 7])
    }

    fn tree() -> TreeNode {
        let (head, samples) = profile();
        build_tree(&head, samples)
    }

    #[test]
    fn tree_totals_pruning_and_order() {
        let t = tree();
        assert_eq!((t.function.as_str(), t.total_bytes, t.self_bytes, t.line), ("(root)", 4800, 0, None));
        // The dead branch is gone; the largest child first.
        let names: Vec<&str> = t.children.iter().map(|c| c.function.as_str()).collect();
        assert_eq!(names, ["emit", "(V8 API)"]);
        let handler = &t.children[0].children[0];
        assert_eq!((handler.total_bytes, handler.self_bytes, handler.line, handler.column), (3800, 100, Some(21), Some(5)));
        assert_eq!(handler.children[0].self_samples, 3);
        let parse = &handler.children[1];
        assert_eq!((parse.function.as_str(), parse.kind, parse.total_bytes), ("(anonymous)", CodeKind::NodeModules, 700));
        assert_eq!(parse.children[0].kind, CodeKind::Node);
    }

    #[test]
    fn sites_bottom_up_and_by_user_function() {
        let t = tree();
        let s = sites(&t);
        let top: Vec<(&str, u64)> = s.iter().map(|s| (s.function.as_str(), s.bytes)).collect();
        assert_eq!(top, [("retain", 3000), ("(V8 API)", 1000), ("inner", 500), ("(anonymous)", 200), ("handler", 100)]);
        let u = user_code(&t);
        let top: Vec<(&str, u64)> = u.iter().map(|s| (s.function.as_str(), s.bytes)).collect();
        // parse and inner (node_modules, node) count toward handler.
        assert_eq!(top, [("retain", 3000), ("(no code of yours on the stack)", 1000), ("handler", 800)]);
    }

    #[test]
    fn kinds_and_locations() {
        assert_eq!(CodeKind::of(""), CodeKind::V8);
        assert_eq!(CodeKind::of("node:internal/http"), CodeKind::Node);
        assert_eq!(CodeKind::of("/a/node_modules/express/index.js"), CodeKind::NodeModules);
        assert_eq!(CodeKind::of("file:///a/b.mjs"), CodeKind::User);
        let cwd = Path::new("/srv");
        assert_eq!(location("/srv/app.js", Some(3), Some(7), cwd), "app.js:3:7");
        assert_eq!(location("file:///srv/node_modules/lib/x%20y.js", Some(1), Some(1), cwd), "node_modules/lib/x y.js:1:1");
        assert_eq!(location("/elsewhere/a.js", Some(1), None, cwd), "/elsewhere/a.js:1");
        assert_eq!(location("node:events", Some(50), Some(1), cwd), "node:events:50:1");
        assert_eq!(location("", None, None, cwd), "");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn tree_rows_threshold() {
        let t = tree();
        let (rows, hidden) = tree_rows(&t, 15.0, 100);
        let names: Vec<(usize, &str)> = rows.iter().map(|r| (r.depth, r.node.function.as_str())).collect();
        // 15% of 4800 = 720: parse (700) and handler's self are below.
        assert_eq!(names, [(0, "(root)"), (1, "emit"), (2, "handler"), (3, "retain"), (1, "(V8 API)")]);
        assert_eq!(hidden, 0);
        let (rows, hidden) = tree_rows(&t, 0.0, 3);
        assert_eq!((rows.len(), hidden), (3, 4));
    }

    #[test]
    fn direct_recursion_is_one_row() {
        let leafy = node(9, "keep", "/srv/app.js", 1, 4096.0, vec![]);
        let chain = (0..5).fold(leafy, |c, i| node(10 + i, "descend", "/srv/app.js", 5, 100.0, vec![c]));
        let root = node(1, "(root)", "", -1, 0.0, vec![chain]);
        let t = build_tree(&root, Vec::new());
        let (rows, _) = tree_rows(&t, 0.0, 100);
        let got: Vec<(usize, String, u64)> = rows.iter().map(|r| (r.depth, r.name(), r.self_bytes)).collect();
        assert_eq!(got, [(0, "(root)".to_string(), 0), (1, "descend (×5 recursive)".to_string(), 500), (2, "keep".to_string(), 4096)]);
    }
}
