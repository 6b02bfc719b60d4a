//! TypeScript through source maps, on real snapshots: `fixtures/ts` (an app
//! whose own leak is in src/orders.ts and which also misuses lru-cache) is
//! built at test time by `fixtures/ts/build.js` with tsc (a .js.map per
//! file), esbuild (one bundle including lru-cache, and the same bundle
//! minified) and swc (inline data: URL maps), each build is run under the
//! harness for three snapshots and diagnosed, and the `sources` crate must
//! map the suspects' locations back to the exact .ts lines, name lru-cache
//! with its version even from inside the bundle, and recover the minified
//! class names.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use sources::{steps_from_json, user_handle, CodeKind, Library, SourceMaps};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

fn node() -> PathBuf {
    find_node(20).unwrap_or_else(|_| any_node())
}

/// The 1-based line of the first line of `file` containing `text`.
fn line_of(file: &str, text: &str) -> u32 {
    let src = std::fs::read_to_string(fixtures().join("ts/src").join(file)).unwrap();
    src.lines().position(|l| l.contains(text)).unwrap_or_else(|| panic!("{text:?} not in {file}")) as u32 + 1
}

/// All four builds, once per test process (in the process directory,
/// removed by a later test process once this one is gone).
fn builds() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if !fixtures().join("node_modules/esbuild/package.json").exists() {
            let st = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(fixtures())
                .status()
                .expect("npm is needed to install the fixtures' toolchains");
            assert!(st.success(), "npm ci in fixtures/ failed");
        }
        let dir = process_dir().join("ts-builds");
        let out =
            Command::new(node()).arg(fixtures().join("ts/build.js")).arg(&dir).stdin(Stdio::null()).output().expect("cannot run node");
        assert!(out.status.success(), "build.js: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

fn diagnose(build: &str) -> Value {
    let tmp = temp_dir();
    let files = snapshots(build, tmp.path());
    let out = Command::new(BIN).arg("diagnose").arg("--json").args(&files).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "diagnose {build}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Three snapshots of a build under the harness, in `dir`.
fn snapshots(build: &str, dir: &Path) -> Vec<String> {
    let app = builds().join(build).join("app.js");
    let out = Command::new(node())
        .arg(fixtures().join("harness.js"))
        .arg(&app)
        .arg(dir)
        .args(["--snapshots", "3", "--requests", "300", "--warmup", "300"])
        // The unbundled builds require lru-cache from the fixtures.
        .env("NODE_PATH", fixtures().join("node_modules"))
        .stdin(Stdio::null())
        .output()
        .expect("cannot run node");
    assert!(out.status.success(), "harness on {build}: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(files.len(), 3);
    files
}

fn loc(v: &Value) -> (String, u32, u32) {
    (v["file"].as_str().unwrap_or("").to_string(), v["line"].as_u64().unwrap_or(0) as u32, v["column"].as_u64().unwrap_or(0) as u32)
}

fn check(build: &str, minified: bool) {
    let d = diagnose(build);
    assert_eq!(d["verdict"], "leak", "{build}");
    let suspects = d["suspects"].as_array().unwrap();
    let mut maps = SourceMaps::new();
    let orders_ts = fixtures().join("ts/src/orders.ts");
    let app_ts = fixtures().join("ts/src/app.ts");

    // The app's own leak: AuditEntry objects, made at orders.ts's constructor
    // line. `diagnose --json` gives the mapped location and keeps the
    // snapshot's as `generated_location`; the crate maps the latter the same.
    let own = suspects
        .iter()
        .find(|s| Path::new(s["location"]["file"].as_str().unwrap_or("")) == orders_ts)
        .unwrap_or_else(|| panic!("{build}: no suspect located in orders.ts: {suspects:#?}"));
    let want_line = line_of("orders.ts", "constructor(readonly order");
    assert_eq!(own["location"]["line"], want_line, "{build}: {}", own["location"]);
    assert!(own["package"].is_null(), "{build}: {}", own["package"]);
    let (file, line, column) = loc(&own["generated_location"]);
    assert!(file.starts_with(builds().join(build).to_str().unwrap()), "{build}: generated in {file}");
    let m = maps.original(&file, line, column).unwrap();
    eprintln!("{build}: {file}:{line}:{column} -> {m} ({:?})", own["accumulator"]["name"]);
    assert_eq!((m.line, m.column), (want_line, loc(&own["location"]).2), "{build}: {m}");
    assert_eq!(m.kind, CodeKind::User);
    assert!(m.package.is_none());
    // The leaked objects' class: `AuditEntry`, whatever the minifier called it.
    let class = own["classes"][0]["class"].as_str().unwrap();
    let original = maps.original_name(&file, line, column, class);
    if minified {
        assert_ne!(class, "AuditEntry", "{build}: the bundle was not minified");
        assert_eq!(original.as_deref(), Some("AuditEntry"), "{build}: class {class}");
    } else {
        assert_eq!(class, "AuditEntry");
        assert_eq!(original, None, "{build}: an unchanged name is not renamed");
    }
    // The original line's text, from sourcesContent (bundles) or the file.
    let text = maps.source_line(&file, &m).unwrap_or_default();
    assert!(text.contains("constructor(readonly order: Order)"), "{build}: {text:?}");

    // The dependency's leak: lru-cache named with its version, also from
    // inside the bundle (the map's sources), held by the app's `recent`.
    let lib = Library::builtin();
    let dep = suspects
        .iter()
        .find_map(|s| {
            let steps = steps_from_json(&s["retainer_path"], &mut maps);
            let hit = lib.match_path(&steps).map(|m| (m.entry.id.clone(), m.package.spec()));
            hit.map(|h| (h, steps))
        })
        .unwrap_or_else(|| panic!("{build}: no library entry on any suspect"));
    let ((id, spec), steps) = dep;
    assert_eq!(id, "lru-cache-ttl-without-max", "{build}");
    let pinned: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("package.json")).unwrap()).unwrap();
    assert_eq!(spec, format!("lru-cache@{}", pinned["dependencies"]["lru-cache"].as_str().unwrap()), "{build}");
    let json_dep = suspects.iter().find(|s| s["library"]["id"] == id.as_str()).expect("library in the JSON");
    assert_eq!(json_dep["package"]["name"], "lru-cache", "{build}");
    assert_eq!(json_dep["package"]["version"], pinned["dependencies"]["lru-cache"], "{build}");
    assert_eq!(Path::new(json_dep["user_location"]["file"].as_str().unwrap_or("")), app_ts, "{build}");
    assert_eq!(json_dep["user_location"]["line"], line_of("app.ts", "http.createServer("), "{build}");
    let (at, handle) = user_handle(&steps).expect("the app's handle on the path");
    // The JSON names the handle by its original name, minified or not.
    assert_eq!(json_dep["handle"], "recent", "{build}");
    if minified {
        assert_ne!(handle, "recent", "{build}: the bundle was not minified");
        assert_eq!(own["accumulator"]["original_name"], "auditTrail", "{build}");
    } else {
        assert_eq!(handle, "recent", "{build}");
        assert_eq!(own["accumulator"]["name"], "auditTrail", "{build}");
        // Nothing of the app's own (unminified) code is renamed; lru-cache's
        // shipped code is minified in every build (its class is `c`).
        for s in suspects {
            assert!(s["accumulator"].get("original_name").is_none(), "{build}: {}", s["accumulator"]);
            for st in s["retainer_path"].as_array().unwrap() {
                assert!(st.get("original_edge").is_none(), "{build}: {st}");
                if st.get("original_class").is_some() {
                    assert_eq!(st["package"]["name"], "lru-cache", "{build}: {st}");
                    assert_eq!(st["original_class"], "LRUCache", "{build}: {st}");
                }
            }
        }
    }
    // The user's line that holds it: the request handler in app.ts.
    let st = &steps[at];
    let (f, l, c) = (st.file.clone().unwrap_or_default(), st.line.unwrap_or(0), st.column.unwrap_or(0));
    let m = maps.original(&f, l, c).unwrap_or_else(|| panic!("{build}: {f}:{l}:{c} not mapped"));
    assert_eq!(Path::new(&m.file), app_ts, "{build}");
    assert_eq!(m.line, line_of("app.ts", "http.createServer("), "{build}: {m}");
}

#[test]
fn tsc_output_maps_to_ts_lines() {
    check("tsc", false);
}

#[test]
fn esbuild_bundle_maps_to_ts_lines_and_names_the_bundled_package() {
    check("esbuild", false);
}

#[test]
fn minified_esbuild_bundle_gives_original_names() {
    check("esbuild-min", true);
}

#[test]
fn swc_inline_maps_to_ts_lines() {
    check("swc", false);
}

/// A snapshot analysed where its files are not at the recorded paths (another
/// machine, a moved build): the locations stay generated, and
/// `--source-root DIR` finds the scripts and maps under DIR again.
#[test]
fn source_root_finds_a_moved_build() {
    let dir = temp_dir();
    let built = dir.path().join("built");
    let out = Command::new(node()).arg(fixtures().join("ts/build.js")).arg(&built).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "build.js: {}", String::from_utf8_lossy(&out.stderr));
    let snaps = dir.path().join("snaps");
    let out = Command::new(node())
        .arg(fixtures().join("harness.js"))
        .arg(built.join("tsc/app.js"))
        .arg(&snaps)
        .env("NODE_PATH", fixtures().join("node_modules"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "harness: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    // The build moves (same depth, so the maps' relative sources still reach fixtures/ts/src).
    let moved = dir.path().join("moved");
    std::fs::rename(&built, &moved).unwrap();
    let diagnose = |extra: &[&str]| -> Value {
        let out = Command::new(BIN).args(["diagnose", "--json"]).args(extra).args(&files).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "diagnose: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let own = |d: &Value| -> Value {
        d["suspects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["accumulator"]["name"] == "auditTrail")
            .cloned()
            .unwrap_or_else(|| panic!("no auditTrail suspect: {}", d["suspects"]))
    };
    let plain = own(&diagnose(&[]));
    assert!(plain["location"]["file"].as_str().unwrap().ends_with("built/tsc/orders.js"), "{}", plain["location"]);
    assert!(plain.get("generated_location").is_none());
    let rebased = own(&diagnose(&["--source-root", moved.to_str().unwrap()]));
    assert_eq!(Path::new(rebased["location"]["file"].as_str().unwrap()), fixtures().join("ts/src/orders.ts"));
    assert_eq!(rebased["location"]["line"], line_of("orders.ts", "constructor(readonly order"));
    assert!(rebased["generated_location"]["file"].as_str().unwrap().ends_with("built/tsc/orders.js"));
    // The same flag on `node`: the leaked entry's constructor at its .ts line.
    let id = rebased["retainer_path"].as_array().unwrap().last().unwrap()["node_id"].as_u64().unwrap().to_string();
    let last = files.last().unwrap().as_str();
    let plain = json(&["node", last, "--id", &id, "--json"], &[]);
    assert!(plain["location"]["file"].as_str().unwrap().ends_with("built/tsc/orders.js"), "{}", plain["location"]);
    let n = json(&["node", last, "--id", &id, "--json", "--source-root", moved.to_str().unwrap()], &[]);
    assert_eq!(Path::new(n["location"]["file"].as_str().unwrap()), fixtures().join("ts/src/orders.ts"), "{}", n["location"]);
    assert!(n["generated_location"]["file"].as_str().unwrap().ends_with("built/tsc/orders.js"), "{}", n["generated_location"]);
}

/// `leakhound CMD ARGS`, its stdout (text, or parsed JSON with --json).
fn leakhound(args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(BIN).args(args).envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "leakhound {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(args: &[&str], env: &[(&str, String)]) -> Value {
    serde_json::from_str(&leakhound(args, env)).unwrap_or_else(|e| panic!("leakhound {args:?}: bad JSON: {e}"))
}

/// A mapped JSON location: at `file`:`line` of the TypeScript source, with
/// the generated position kept beside it, inside the build.
fn assert_mapped(what: &str, holder: &Value, file: &Path, line: u32, build: &str) {
    let (f, l, _) = loc(&holder["location"]);
    assert_eq!((Path::new(&f), l), (file, line), "{build} {what}: {holder}");
    let g = holder["generated_location"]["file"].as_str().unwrap_or_else(|| panic!("{build} {what}: no generated_location: {holder}"));
    assert!(g.starts_with(builds().join(build).to_str().unwrap()), "{build} {what}: generated in {g}");
}

/// `retainers`, `node` and `listeners` print the .ts lines (text and
/// JSON, with `generated_location`) for tsc output, an esbuild bundle and
/// swc's inline maps.
#[test]
fn snapshot_commands_print_ts_lines() {
    let orders_ts = fixtures().join("ts/src/orders.ts");
    let app_ts = fixtures().join("ts/src/app.ts");
    let entry_line = line_of("orders.ts", "constructor(readonly order");
    let handler_line = line_of("app.ts", "http.createServer(");
    for build in ["tsc", "esbuild", "swc"] {
        let tmp = temp_dir();
        let files = snapshots(build, tmp.path());
        let last = files.last().unwrap().as_str();

        // retainers: the object's label and the path's steps.
        let r = json(&["retainers", last, "--class", "AuditEntry", "--objects", "1", "--paths", "1", "--json"], &[]);
        let object = &r["objects"][0];
        let at = format!("{}:{entry_line}:", orders_ts.display());
        assert!(object["node"].as_str().unwrap().contains(&at), "{build}: {}", object["node"]);
        let steps = object["paths"][0]["steps"].as_array().unwrap();
        let step = steps.last().unwrap();
        assert_mapped("retainers step", step, &orders_ts, entry_line, build);
        let text = leakhound(&["retainers", last, "--class", "AuditEntry", "--objects", "1", "--paths", "1"], &[]);
        assert!(text.contains(&format!("(AuditEntry {at}")), "{build}: {text}");
        assert!(!text.contains(builds().join(build).join("orders.js:").to_str().unwrap()), "{build}: {text}");

        // node: where the object's constructor is.
        let id = object["id"].as_u64().unwrap().to_string();
        let n = json(&["node", last, "--id", &id, "--json"], &[]);
        assert_mapped("node", &n, &orders_ts, entry_line, build);
        let text = leakhound(&["node", last, "--id", &id], &[]);
        assert!(text.contains(&format!("defined at  {at}")), "{build}: {text}");

        // listeners: the server's request listener is the handler in app.ts.
        let l = json(&["listeners", last, "--top", "100", "--json"], &[]);
        let server = l["emitters"].as_array().unwrap().iter().find(|e| e["class"] == "Server").expect("the http server");
        let request = server["events"].as_array().unwrap().iter().find(|e| e["event"] == "request").expect("a request listener");
        assert_mapped("listeners", &request["sites"][0], &app_ts, handler_line, build);
        // (The table shows each emitter's largest event only: no site of the build's own files unmapped.)
        let text = leakhound(&["listeners", last, "--top", "100"], &[]);
        assert!(!text.contains(&format!("{}/", builds().join(build).display())), "{build}: {text}");
    }
}

/// `handles` and `allocations` on the running esbuild bundle: callback and
/// allocation sites at the .ts lines.
#[test]
fn live_commands_print_ts_lines() {
    let app = builds().join("esbuild/app.js");
    let app = app.to_str().unwrap();
    let node = node();
    let node = node.to_str().unwrap();
    let app_ts = fixtures().join("ts/src/app.ts");
    let orders_ts = fixtures().join("ts/src/orders.ts");
    let handler_line = line_of("app.ts", "http.createServer(");

    let h = json(&["handles", "--json", "--", node, app], &[]);
    let server = h["handles"].as_array().unwrap().iter().find(|x| x["listener"]["event"] == "request").expect("the server");
    let listener = &server["listener"];
    let want = format!("{}:{handler_line}:", app_ts.display());
    assert!(listener["location"].as_str().unwrap().starts_with(&want), "{listener}");
    assert!(listener["generated_location"].as_str().unwrap().starts_with(app), "{listener}");
    let text = leakhound(&["handles", "--", node, app], &[]);
    assert!(text.contains(&format!("request listener (anonymous) {want}")), "{text}");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("flame.html");
    let a = json(
        &["allocations", "--json", "--duration", "2s", "--load", "/orders", "--html", html.to_str().unwrap(), "--", node, app],
        &[("PORT", port)],
    );
    let mine = a["user_code"].as_array().unwrap();
    let record = mine.iter().find(|s| s["function"] == "recordOrder").unwrap_or_else(|| panic!("no recordOrder in {mine:?}"));
    assert_mapped("allocations", record, &orders_ts, line_of("orders.ts", "export function recordOrder"), "esbuild");
    // The flame page too: the .ts line, never the bundle's.
    let page = std::fs::read_to_string(&html).unwrap();
    let ts_line = format!("orders.ts:{}:", line_of("orders.ts", "export function recordOrder"));
    assert!(page.contains(&ts_line), "the flame page shows {ts_line}");
    assert!(!page.contains("esbuild/app.js:"), "the flame page shows no generated line");
}

/// `leakhound run` on the tsc build: the text report's suspect, its path
/// and its advice all point at src/orders.ts, none at the generated file.
#[test]
fn run_on_the_tsc_build_reports_ts_lines() {
    let app = builds().join("tsc/app.js");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["run", "--load", "/orders", "--"])
        .arg(node())
        .arg(&app)
        .env("PORT", port)
        .env("NODE_PATH", fixtures().join("node_modules"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let at = format!("{}:{}:", fixtures().join("ts/src/orders.ts").display(), line_of("orders.ts", "constructor(readonly order"));
    assert!(text.starts_with("Verdict: LEAK — auditTrail grows"), "{text}");
    assert!(text.contains(&format!("     source: {at}")), "{text}");
    assert!(text.contains(&format!("(created at {at}")), "{text}");
    // The path's last step keeps its whole location however long the
    // build's path, so it too reads at the .ts line.
    let path = text.lines().find(|l| l.trim_start().starts_with("path:")).expect("a retainer path");
    assert!(path.contains(&format!("(AuditEntry {at}")), "{path}");
    // The generated position only where it is said to be one.
    let report = text.split("Where it is").next().unwrap();
    assert!(!report.contains("tsc/orders.js:"), "{text}");
    assert!(text.contains(&format!("{at}3 (generated ")), "{text}");
}
