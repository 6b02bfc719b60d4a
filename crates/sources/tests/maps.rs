//! Source maps on real files: lru-cache's own minified build as npm ships
//! it (fixtures/node_modules, installed by `npm ci` in fixtures/), and maps
//! written with the `sourcemap` crate's builder to pin the 1-based
//! conventions, inline data: URLs, sourceRoot and re-basing exactly.

use sources::{CodeKind, Rebase, SourceMaps};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn pinned(package: &str) -> String {
    let text = std::fs::read_to_string(fixtures().join("package.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["dependencies"][package].as_str().unwrap().to_string()
}

/// 1-based (line, column) of the first occurrence of `needle` (plus `offset` chars) in `text`.
fn position(text: &str, needle: &str, offset: usize) -> (u32, u32) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not found")) + offset;
    let line = text[..at].matches('\n').count() as u32 + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, col as u32 + 1)
}

#[test]
fn lru_cache_minified_build_maps_to_its_typescript_and_original_class_name() {
    let min = fixtures().join("node_modules/lru-cache/dist/commonjs/node/index.min.js");
    if !min.exists() {
        panic!("run `npm ci` in fixtures/ first ({} is missing)", min.display());
    }
    let text = std::fs::read_to_string(&min).unwrap();
    // V8 records a class's objects at its constructor's parameter list.
    let (line, col) = position(&text, "constructor(t){let{max:", "constructor".len());
    let script = format!("file://{}", min.display());
    let mut maps = SourceMaps::new();
    assert!(maps.has_map(&script), "{:?}", maps.error(&script));
    let m = maps.original(&script, line, col).expect("mapped");
    assert!(m.file.ends_with("node_modules/lru-cache/src/index.ts"), "{m}");
    assert_eq!(m.kind, CodeKind::Package);
    let pkg = m.package.clone().expect("package from the mapped source");
    assert_eq!(pkg.spec(), format!("lru-cache@{}", pinned("lru-cache")));
    // The mapped line is the constructor in the shipped sourcesContent.
    let src = maps.source_line(&script, &m).expect("sourcesContent");
    assert!(src.contains("constructor("), "{src:?}");
    // The snapshot calls the class `c` (in lru-cache 11.5.4); the map knows it as LRUCache.
    let class_at = text[..text.find("constructor(t){let{max:").unwrap()].rfind("class ").unwrap() + "class ".len();
    let minified: String = text[class_at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$').collect();
    assert_ne!(minified, "LRUCache");
    assert_eq!(maps.original_name(&script, line, col, &minified).as_deref(), Some("LRUCache"));
    // A name that is not declared there is not invented.
    assert_eq!(maps.original_name(&script, line, col, "zzNotDeclared"), None);
}

/// A generated file and its map:
///   line 1: `"use strict";`                               (unmapped)
///   line 2: `class a{constructor(b){this.b=b}}`           from src/orders.ts
///   line 3: `function c(d){return new a(d)}`              from src/orders.ts
fn write_app(dir: &Path, inline: bool, source_root: Option<&str>) -> PathBuf {
    let code = "\"use strict\";\nclass a{constructor(b){this.b=b}}\nfunction c(d){return new a(d)}\n";
    let mut b = sourcemap::SourceMapBuilder::new(Some("app.js"));
    if let Some(root) = source_root {
        b.set_source_root(Some(root));
    }
    let src = "../src/orders.ts";
    let original = "// orders\nexport class AuditEntry {\n  constructor(readonly order: Order) {}\n}\nexport function record(o: Order) {\n  return new AuditEntry(o);\n}\n";
    // 0-based raw tokens: (dst_line, dst_col, src_line, src_col, source, name).
    let s = b.add_source(src);
    b.set_source_contents(s, Some(original));
    b.add(1, 0, 1, 0, Some(src), None, false); // class
    b.add(1, 6, 1, 13, Some(src), Some("AuditEntry"), false); // a
    b.add(1, 8, 2, 2, Some(src), None, false); // constructor
    b.add(1, 20, 2, 14, Some(src), Some("order"), false); // (b
    b.add(2, 0, 4, 0, Some(src), None, false); // function
    b.add(2, 9, 4, 16, Some(src), Some("record"), false); // c
    b.add(2, 14, 5, 2, Some(src), None, false); // return
    let map = b.into_sourcemap();
    let mut json = Vec::new();
    map.to_writer(&mut json).unwrap();
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    let app = dir.join("dist/app.js");
    let reference = if inline {
        map.to_data_url().unwrap()
    } else {
        std::fs::write(dir.join("dist/app.js.map"), &json).unwrap();
        "app.js.map".to_string()
    };
    std::fs::write(&app, format!("{code}//# sourceMappingURL={reference}\n")).unwrap();
    app
}

#[test]
fn one_based_positions_map_exactly_from_files_and_data_urls() {
    for inline in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let app = write_app(dir.path(), inline, None);
        let script = app.to_string_lossy().into_owned();
        let mut maps = SourceMaps::new();
        // The snapshot's `constructor(` parameter list: 0-based (1, 19) -> printed 2:20.
        let m = maps.original(&script, 2, 20).expect("mapped");
        assert_eq!(m.file, dir.path().join("src/orders.ts").to_string_lossy(), "inline={inline}");
        assert_eq!((m.line, m.column), (3, 3), "inline={inline}: the constructor line, 1-based");
        assert_eq!(m.kind, CodeKind::User);
        assert_eq!(m.package, None);
        assert_eq!(maps.source_line(&script, &m).as_deref(), Some("  constructor(readonly order: Order) {}"));
        // Exactly on a token with a name.
        let m = maps.original(&script, 3, 10).unwrap();
        assert_eq!((m.line, m.column, m.name.as_deref()), (5, 17, Some("record")));
        // Before the line's first token: that token, never the previous line's.
        let m = maps.original(&script, 2, 1).unwrap();
        assert_eq!(m.line, 2);
        // A line without tokens is not mapped.
        assert_eq!(maps.original(&script, 1, 1), None);
        assert_eq!(maps.original(&script, 40, 1), None);
        // Minified names: the class from its constructor, the function from its parameter list.
        assert_eq!(maps.original_name(&script, 2, 20, "a").as_deref(), Some("AuditEntry"));
        assert_eq!(maps.original_name(&script, 3, 11, "c").as_deref(), Some("record"));
        assert_eq!(maps.original_name(&script, 3, 11, "record"), None);
    }
}

#[test]
fn source_root_and_rebase_for_snapshots_from_another_machine() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_app(dir.path(), false, Some("/build/project"));
    let mut maps = SourceMaps::new();
    let m = maps.original(&app.to_string_lossy(), 2, 20).unwrap();
    // sourceRoot is prefixed to the sources.
    assert_eq!(m.file, "/build/src/orders.ts");

    // The snapshot says /srv/deploy/dist/app.js; the files are in `dir` here.
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path(), false, None);
    let remote = "/srv/deploy/dist/app.js";
    let mut plain = SourceMaps::new();
    assert_eq!(plain.original(remote, 2, 20), None);
    assert!(plain.error(remote).unwrap().contains("/srv/deploy/dist/app.js"), "{:?}", plain.error(remote));
    let mut rebased = SourceMaps::with_rebase(Some(Rebase::new(dir.path())));
    let m = rebased.original(remote, 2, 20).expect("found under the source root");
    assert_eq!((m.line, m.column), (3, 3));
    assert_eq!(m.file, dir.path().join("src/orders.ts").to_string_lossy());
    let mut prefixed = SourceMaps::with_rebase(Some(Rebase::with_prefix(dir.path(), "/srv/deploy")));
    assert_eq!(prefixed.original(remote, 2, 20).map(|m| m.line), Some(3));
}

#[test]
fn scripts_without_maps_or_files_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.js");
    std::fs::write(&plain, "module.exports = 1;\n").unwrap();
    let mut maps = SourceMaps::new();
    let s = plain.to_string_lossy().into_owned();
    assert!(!maps.has_map(&s));
    assert!(maps.error(&s).unwrap().contains("no sourceMappingURL"));
    assert!(!maps.has_map("node:internal/timers"));
    let broken = dir.path().join("broken.js");
    std::fs::write(&broken, "x\n//# sourceMappingURL=broken.js.map\n").unwrap();
    std::fs::write(dir.path().join("broken.js.map"), "{not json").unwrap();
    let b = broken.to_string_lossy().into_owned();
    assert_eq!(maps.original(&b, 1, 1), None);
    assert!(maps.error(&b).unwrap().contains("bad source map"), "{:?}", maps.error(&b));
}
