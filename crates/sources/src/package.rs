//! Which npm package a script belongs to, from its path alone and, when the
//! files are on this machine, from the package's own `package.json`.

use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Whose code a location is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeKind {
    /// The application's own code: what the user can change.
    User,
    /// A dependency under `node_modules` (or a bundled one, named by its source map).
    Package,
    /// Node's own JavaScript (`node:internal/...`).
    NodeInternal,
    /// V8's builtins and code without a script.
    V8,
}

/// An npm package a location belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    /// `lru-cache`, `@scope/name`.
    pub name: String,
    /// From the package's `package.json`, else from a pnpm store path; None
    /// when neither is available (files not on this machine).
    pub version: Option<String>,
    /// The package's directory as the location names it (`.../node_modules/ajv`).
    pub path: String,
}

impl Package {
    /// `name@version`, or the name alone when the version is unknown.
    pub fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{v}", self.name),
            None => self.name.clone(),
        }
    }
}

impl std::fmt::Display for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec())
    }
}

/// Whose code a script is: from its name as the snapshot (or a source map)
/// gives it. `None` (no script) is V8's.
pub fn classify(script: Option<&str>) -> CodeKind {
    let Some(s) = script.map(str::trim).filter(|s| !s.is_empty()) else {
        return CodeKind::V8;
    };
    if s.starts_with("node:") || s.starts_with("internal/") || s == "evalmachine.<anonymous>" {
        return CodeKind::NodeInternal;
    }
    if s.starts_with("native ") || s.starts_with("extensions::") || s.starts_with("(") {
        return CodeKind::V8;
    }
    if package_in_path(s).is_some() {
        return CodeKind::Package;
    }
    CodeKind::User
}

/// A file path from a script name: `file://` URLs decoded, webpack's
/// `webpack://name/./x` reduced to `x`; other URLs (http:) are not files.
pub fn script_path(script: &str) -> Option<PathBuf> {
    if let Some(rest) = script.strip_prefix("file://") {
        // file:///abs/path, or file://localhost/abs/path.
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        let decoded = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
        return Some(PathBuf::from(decoded.into_owned()));
    }
    if let Some(rest) = script.strip_prefix("webpack://") {
        // webpack://<namespace>/./src/app.ts -> ./src/app.ts (relative to the project).
        let rest = rest.split_once('/').map(|(_, r)| r).unwrap_or(rest);
        return Some(PathBuf::from(rest));
    }
    if script.contains("://") || script.starts_with("node:") || script.starts_with("data:") {
        return None;
    }
    Some(PathBuf::from(script))
}

/// The package a path is in, from the path's text alone: the innermost
/// `node_modules/<name>` (or `node_modules/@scope/<name>`), with the version
/// from a pnpm store segment (`.pnpm/<name>@<version>/node_modules/<name>`,
/// scoped as `.pnpm/@scope+name@1.2.3/node_modules/@scope/name`) when there
/// is one. Works on relative paths (`../node_modules/x/...` in a source map).
pub fn package_in_path(path: &str) -> Option<Package> {
    let norm = path.replace('\\', "/");
    let parts: Vec<&str> = norm.split('/').collect();
    let nm = parts.iter().rposition(|p| *p == "node_modules")?;
    let first = *parts.get(nm + 1)?;
    if first.is_empty() || first.starts_with('.') {
        return None;
    }
    let (name, end) = if first.starts_with('@') {
        let second = *parts.get(nm + 2).filter(|s| !s.is_empty())?;
        (format!("{first}/{second}"), nm + 3)
    } else {
        (first.to_string(), nm + 2)
    };
    // The file must be inside the package directory, not the directory itself.
    let version = pnpm_version(&parts[..nm], &name);
    Some(Package { name, version, path: parts[..end].join("/") })
}

/// pnpm's store layout: `.../.pnpm/<name>@<version>[_peer...]/node_modules/<name>`.
fn pnpm_version(before_nm: &[&str], name: &str) -> Option<String> {
    let seg = *before_nm.last()?;
    if before_nm.len() < 2 || before_nm[before_nm.len() - 2] != ".pnpm" {
        return None;
    }
    let store_name = name.replace('/', "+");
    let rest = seg.strip_prefix(&store_name)?.strip_prefix('@')?;
    // Peer-dependency suffixes follow an underscore (`1.2.3_react@18.2.0`), or
    // are in parentheses in pnpm 8+ (`1.2.3(react@18.2.0)`).
    let v = rest.split(['_', '(']).next()?;
    (!v.is_empty()).then(|| v.to_string())
}

/// Finds packages of scripts and reads their versions, caching each
/// package directory's `package.json`.
#[derive(Default)]
pub struct Packages {
    versions: HashMap<PathBuf, Option<String>>,
    rebase: Option<crate::Rebase>,
}

impl Packages {
    pub fn new() -> Self {
        Self::default()
    }

    /// Look for files under `rebase` when the snapshot's paths do not exist
    /// here (a snapshot taken on another machine).
    pub fn with_rebase(rebase: Option<crate::Rebase>) -> Self {
        Packages { versions: HashMap::new(), rebase }
    }

    /// The package of a script (path, `file://` URL, or a source map's
    /// source already resolved to a path). The version comes from the
    /// package's `package.json` when it can be read, else from the path.
    pub fn package_of(&mut self, script: &str) -> Option<Package> {
        let path = script_path(script)?;
        let mut pkg = package_in_path(&path.to_string_lossy())?;
        let dir = PathBuf::from(&pkg.path);
        let from_disk = match self.versions.get(&dir) {
            Some(v) => v.clone(),
            None => {
                let v = self.read_version(&dir, &pkg.name);
                self.versions.insert(dir, v.clone());
                v
            }
        };
        if from_disk.is_some() {
            pkg.version = from_disk;
        }
        Some(pkg)
    }

    fn read_version(&self, dir: &Path, name: &str) -> Option<String> {
        let file = dir.join("package.json");
        let found = if file.is_file() { Some(file) } else { self.rebase.as_ref().and_then(|r| r.find(&file)) }?;
        let text = std::fs::read_to_string(found).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        // A package.json of another package (a stale or foreign tree) is not this one's.
        if json.get("name").and_then(|n| n.as_str()).is_some_and(|n| n != name) {
            return None;
        }
        json.get("version").and_then(|v| v.as_str()).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> Option<(String, Option<String>, String)> {
        package_in_path(path).map(|p| (p.name, p.version, p.path))
    }

    #[test]
    fn plain_scoped_nested_and_pnpm_paths() {
        assert_eq!(p("/srv/app/node_modules/ajv/dist/core.js"), Some(("ajv".into(), None, "/srv/app/node_modules/ajv".into())));
        assert_eq!(
            p("/srv/app/node_modules/@fastify/ajv-compiler/index.js"),
            Some(("@fastify/ajv-compiler".into(), None, "/srv/app/node_modules/@fastify/ajv-compiler".into()))
        );
        // Nested: the innermost node_modules wins.
        assert_eq!(p("/a/node_modules/express/node_modules/debug/src/node.js").map(|x| x.0), Some("debug".to_string()));
        assert_eq!(
            p("/a/node_modules/.pnpm/lru-cache@10.2.0/node_modules/lru-cache/dist/commonjs/index.js"),
            Some(("lru-cache".into(), Some("10.2.0".into()), "/a/node_modules/.pnpm/lru-cache@10.2.0/node_modules/lru-cache".into()))
        );
        assert_eq!(
            p("/a/node_modules/.pnpm/@scope+name@1.2.3/node_modules/@scope/name/lib/x.js").map(|x| (x.0, x.1)),
            Some(("@scope/name".into(), Some("1.2.3".into())))
        );
        assert_eq!(
            p("/a/node_modules/.pnpm/react-dom@18.2.0_react@18.2.0/node_modules/react-dom/index.js").map(|x| x.1),
            Some(Some("18.2.0".into()))
        );
        assert_eq!(
            p("/a/node_modules/.pnpm/react-dom@18.2.0(react@18.2.0)/node_modules/react-dom/index.js").map(|x| x.1),
            Some(Some("18.2.0".into()))
        );
        // A dependency of a pnpm package resolved through the store: its own name, no version.
        assert_eq!(
            p("/a/node_modules/.pnpm/express@5.1.0/node_modules/debug/src/index.js").map(|x| (x.0, x.1)),
            Some(("debug".into(), None))
        );
        // Source map sources are relative.
        assert_eq!(p("../node_modules/lru-cache/dist/esm/index.js").map(|x| x.0), Some("lru-cache".to_string()));
        assert_eq!(p("webpack://app/./node_modules/rxjs/dist/cjs/index.js").map(|x| x.0), Some("rxjs".to_string()));
        assert_eq!(p("/srv/app/src/server.js"), None);
        assert_eq!(p("/srv/app/node_modules/.bin/tsc"), None);
    }

    #[test]
    fn classifies_user_package_node_and_v8() {
        assert_eq!(classify(Some("/srv/app/server.js")), CodeKind::User);
        assert_eq!(classify(Some("file:///srv/app/server.mjs")), CodeKind::User);
        assert_eq!(classify(Some("file:///srv/app/node_modules/ajv/dist/core.js")), CodeKind::Package);
        assert_eq!(classify(Some("node:internal/timers")), CodeKind::NodeInternal);
        assert_eq!(classify(Some("node:events")), CodeKind::NodeInternal);
        assert_eq!(classify(None), CodeKind::V8);
        assert_eq!(classify(Some("")), CodeKind::V8);
    }

    #[test]
    fn script_paths_from_urls() {
        assert_eq!(script_path("file:///srv/my%20app/a.js"), Some(PathBuf::from("/srv/my app/a.js")));
        assert_eq!(script_path("/srv/a.js"), Some(PathBuf::from("/srv/a.js")));
        assert_eq!(script_path("node:fs"), None);
        assert_eq!(script_path("https://x/a.js"), None);
        assert_eq!(script_path("webpack://app/./src/a.ts"), Some(PathBuf::from("./src/a.ts")));
    }

    #[test]
    fn version_from_package_json_and_name_alone_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("node_modules/@scope/name");
        std::fs::create_dir_all(pkg.join("lib")).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"name":"@scope/name","version":"3.1.4"}"#).unwrap();
        let file = pkg.join("lib/x.js");
        let mut packages = Packages::new();
        let found = packages.package_of(&format!("file://{}", file.display())).unwrap();
        assert_eq!(found.spec(), "@scope/name@3.1.4");
        assert_eq!(found.path, pkg.to_string_lossy());
        // Not on this machine: the name alone.
        let gone = packages.package_of("/nowhere/node_modules/ajv/dist/core.js").unwrap();
        assert_eq!(gone.spec(), "ajv");
        assert_eq!(gone.version, None);
    }
}
