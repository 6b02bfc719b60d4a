//! Known leak-prone uses of popular packages, recognised on a suspect's
//! retainer path by package plus class/field signature. The table is data
//! (`data/libraries.toml`, format described at its top), extensible with a
//! user's own file.

use crate::maps::SourceMaps;
use crate::package::{classify, CodeKind, Package};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The built-in table.
pub const BUILTIN: &str = include_str!("../data/libraries.toml");

/// One or several accepted names.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn contains(&self, x: &str) -> bool {
        match self {
            Names::One(n) => n == x,
            Names::Many(v) => v.iter().any(|n| n == x),
        }
    }
}

/// One step a signature asks for: a node of `class` (any class if absent)
/// retaining the next node through an edge named `edge` (any edge if absent).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sig {
    pub class: Option<Names>,
    pub edge: Option<Names>,
}

/// A known leak-prone use of a package.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryEntry {
    /// Stable id, e.g. `ajv-compile-per-request`.
    pub id: String,
    /// npm package name.
    pub package: String,
    /// Versions it applies to (semver requirement, Cargo syntax:
    /// `">=6, <9"`); any version when absent or when the version is unknown.
    pub versions: Option<String>,
    pub title: String,
    /// Alternative signatures; each is a list of steps that must appear on
    /// the retainer path in this order.
    pub signatures: Vec<Vec<Sig>>,
    /// The specific fix.
    pub fix: String,
    /// Where the package's docs say so.
    pub docs: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    library: Vec<LibraryEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{0}: cannot read: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Parse(String, String),
}

/// The table.
#[derive(Clone, Debug)]
pub struct Library {
    pub entries: Vec<LibraryEntry>,
}

/// One step of a suspect's retainer path, as the matcher needs it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PathStep {
    /// The edge that reaches this step's node.
    pub edge: String,
    /// The node's class as the snapshot names it.
    pub class: String,
    /// The class or function's original name from a source map, when the
    /// code was minified (`LRUCache` for `c`).
    pub original_class: Option<String>,
    /// The script of the node's function or constructor, when it has one.
    pub file: Option<String>,
    /// 1-based position in `file` (the function's start).
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub kind: Option<CodeKind>,
    pub package: Option<Package>,
}

/// A table entry recognised on a path.
#[derive(Clone, Debug, Serialize)]
pub struct LibraryMatch<'a> {
    pub entry: &'a LibraryEntry,
    /// The package as attributed on the path (with its version when known).
    pub package: Package,
    /// The step (index in the path) whose node holds the signature's first edge.
    pub at: usize,
}

impl Library {
    /// The built-in table.
    pub fn builtin() -> Library {
        Library::parse(BUILTIN, "built-in libraries.toml").expect("the built-in libraries.toml is valid")
    }

    /// The built-in table plus a user's file (its entries are tried first).
    pub fn with_extra(path: &Path) -> Result<Library, LibraryError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LibraryError::Read(name.clone(), e))?;
        let mut lib = Library::parse(&text, &name)?;
        lib.entries.extend(Library::builtin().entries);
        Ok(lib)
    }

    /// Parse a table; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Library, LibraryError> {
        let f: File = toml::from_str(text).map_err(|e| LibraryError::Parse(origin.to_string(), e.to_string()))?;
        for e in &f.library {
            if e.signatures.is_empty() || e.signatures.iter().any(Vec::is_empty) {
                return Err(LibraryError::Parse(origin.to_string(), format!("{}: empty signature", e.id)));
            }
            if let Some(v) = &e.versions {
                semver::VersionReq::parse(v)
                    .map_err(|x| LibraryError::Parse(origin.to_string(), format!("{}: versions {v:?}: {x}", e.id)))?;
            }
        }
        Ok(Library { entries: f.library })
    }

    /// The first entry whose package is on the path (some node's code is in
    /// it) and whose signature the path shows.
    pub fn match_path<'a>(&'a self, path: &[PathStep]) -> Option<LibraryMatch<'a>> {
        self.entries.iter().find_map(|e| match_entry(e, path))
    }
}

fn version_ok(e: &LibraryEntry, pkg: &Package) -> bool {
    let (Some(req), Some(v)) = (&e.versions, &pkg.version) else { return true };
    match (semver::VersionReq::parse(req), semver::Version::parse(v)) {
        (Ok(req), Ok(v)) => req.matches(&v),
        _ => true,
    }
}

fn match_entry<'a>(e: &'a LibraryEntry, path: &[PathStep]) -> Option<LibraryMatch<'a>> {
    // The first node whose code is in the package (its version is the one reported).
    let first_in_pkg = path.iter().position(|s| s.package.as_ref().is_some_and(|p| p.name == e.package))?;
    let package = path[first_in_pkg].package.clone()?;
    if !version_ok(e, &package) {
        return None;
    }
    e.signatures.iter().find_map(|sig| {
        // A node of `class` at step i retains step i + 1 through `edge`. The
        // package may show up before (its instance) or after (the leaked
        // objects, when a module's exports hold them: node-schedule's
        // scheduledJobs) the signature.
        let mut from = 0;
        let mut first_at = None;
        for want in sig {
            let i = (from..path.len()).find(|&i| step_matches(want, path, i))?;
            first_at.get_or_insert(i);
            from = i + 1;
        }
        Some(LibraryMatch { entry: e, package: package.clone(), at: first_at? })
    })
}

fn step_matches(want: &Sig, path: &[PathStep], i: usize) -> bool {
    let node = &path[i];
    let class_ok =
        want.class.as_ref().is_none_or(|c| c.contains(&node.class) || node.original_class.as_deref().is_some_and(|o| c.contains(o)));
    let edge_ok = match &want.edge {
        None => true,
        Some(names) => path.get(i + 1).is_some_and(|next| names.contains(&next.edge)),
    };
    class_ok && edge_ok
}

/// How the user's code holds what accumulates: the edge by which the path
/// leaves the app's own code for the package's (`responses` in
/// `responses → LRUCache.#t`), with the index of the app's last step.
pub fn user_handle(path: &[PathStep]) -> Option<(usize, &str)> {
    let last_user = path.iter().rposition(|s| s.kind == Some(CodeKind::User))?;
    // Skip the closure's context: the variable is the edge out of it.
    let next = path.get(last_user + 1)?;
    if next.class == "system / Context" {
        return path.get(last_user + 2).map(|s| (last_user, s.edge.as_str()));
    }
    Some((last_user, next.edge.as_str()))
}

/// Steps from a `leakhound diagnose --json` suspect's `retainer_path`
/// (each step's `generated_location` when present, else `location`):
/// packages attributed from each node's location, original class names
/// from source maps where the code is minified.
pub fn steps_from_json(retainer_path: &serde_json::Value, maps: &mut SourceMaps) -> Vec<PathStep> {
    let Some(steps) = retainer_path.as_array() else { return Vec::new() };
    steps
        .iter()
        .map(|st| {
            let text = |k: &str| st.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let class = text("class");
            // The snapshot's own position (when a location was already mapped, it is kept there).
            let loc = st.get("generated_location").or_else(|| st.get("location"));
            let file = loc.and_then(|l| l.get("file")).and_then(|f| f.as_str()).map(str::to_string);
            let num = |k: &str| loc.and_then(|l| l.get(k)).and_then(|v| v.as_u64()).map(|v| v as u32);
            let (mut kind, mut package, mut original_class) = (None, None, None);
            if let Some(f) = &file {
                kind = Some(classify(Some(f)));
                package = maps.package_of(f);
                if let (Some(line), Some(column)) = (num("line"), num("column")) {
                    // Bundled code: the map's source names the package.
                    if let Some(m) = maps.original(f, line, column) {
                        kind = Some(m.kind);
                        if m.package.is_some() {
                            package = m.package.clone();
                        }
                    }
                    original_class = maps.original_name(f, line, column, &class);
                }
            }
            PathStep { edge: text("edge"), class, original_class, line: num("line"), column: num("column"), file, kind, package }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(edge: &str, class: &str, pkg: Option<(&str, Option<&str>)>) -> PathStep {
        PathStep {
            edge: edge.into(),
            class: class.into(),
            package: pkg.map(|(n, v)| Package { name: n.into(), version: v.map(Into::into), path: format!("/app/node_modules/{n}") }),
            // Only functions and constructor-made objects have a location.
            kind: if pkg.is_some() {
                Some(CodeKind::Package)
            } else if class == "Function" {
                Some(CodeKind::User)
            } else {
                None
            },
            ..Default::default()
        }
    }

    #[test]
    fn builtin_table_parses_and_has_eight_packages() {
        let lib = Library::builtin();
        let mut pkgs: Vec<&str> = lib.entries.iter().map(|e| e.package.as_str()).collect();
        pkgs.sort();
        pkgs.dedup();
        assert!(pkgs.len() >= 8, "{pkgs:?}");
    }

    #[test]
    fn matches_ajv_cache_through_the_users_handle() {
        let lib = Library::builtin();
        let path = vec![
            step("request", "Function", None),
            step("{context}", "system / Context", None),
            step("ajv", "Ajv", Some(("ajv", Some("8.17.1")))),
            step("_cache", "Map", None),
            step("{table}", "(array)", None),
            step("{2286}", "SchemaEnv", Some(("ajv", Some("8.17.1")))),
        ];
        let m = lib.match_path(&path).expect("ajv entry");
        assert_eq!(m.entry.id, "ajv-compile-per-request");
        assert_eq!(m.package.spec(), "ajv@8.17.1");
        assert_eq!(m.at, 2);
        assert_eq!(user_handle(&path), Some((0, "ajv")));
    }

    #[test]
    fn needs_the_package_and_the_signature_in_order() {
        let lib = Library::builtin();
        // Same shape, but the class is the user's own: no package, no match.
        let own = vec![step("cache", "Ajv", None), step("_cache", "Map", None)];
        assert!(lib.match_path(&own).is_none());
        // The package but not the signature.
        let other = vec![step("ajv", "Ajv", Some(("ajv", None))), step("opts", "Object", None)];
        assert!(lib.match_path(&other).is_none());
        // Out of order.
        let rev = vec![step("_cache", "Map", None), step("ajv", "Ajv", Some(("ajv", None)))];
        assert!(lib.match_path(&rev).is_none());
    }

    #[test]
    fn version_ranges_and_user_tables() {
        let lib = Library::parse(
            r#"
[[library]]
id = "x-old"
package = "x"
versions = "<2"
title = "t"
signatures = [[{ class = ["X", "Y"], edge = "items" }]]
fix = "f"
"#,
            "test",
        )
        .unwrap();
        let path = |v: &str| vec![step("x", "Y", Some(("x", Some(v)))), step("items", "Array", None)];
        assert!(lib.match_path(&path("1.4.0")).is_some());
        assert!(lib.match_path(&path("2.0.0")).is_none());
        // Unknown version (files not here): the entry applies.
        let unknown = vec![step("x", "X", Some(("x", None))), step("items", "Array", None)];
        assert!(lib.match_path(&unknown).is_some());
        assert!(Library::parse("[[library]]\nid = 1", "bad").is_err());
        let empty = "[[library]]\nid='a'\npackage='a'\ntitle='t'\nfix='f'\nsignatures=[[]]";
        assert!(Library::parse(empty, "empty").is_err());
    }

    #[test]
    fn minified_class_names_match_by_their_original_name() {
        let lib = Library::builtin();
        let mut lru = step("responses", "c", Some(("lru-cache", Some("11.0.0"))));
        lru.original_class = Some("LRUCache".into());
        let path = vec![step("request", "Function", None), lru, step("#t", "Array", None)];
        assert_eq!(lib.match_path(&path).map(|m| m.entry.id.as_str()), Some("lru-cache-ttl-without-max"));
    }
}
