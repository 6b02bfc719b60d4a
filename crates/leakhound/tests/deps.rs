//! Leaks inside dependencies: each app under `fixtures/deps/` misuses a
//! real npm package (pinned in `fixtures/package.json`) the way its docs
//! warn against; each control under `fixtures/deps/controls/` uses it
//! correctly. The harness drives the app and writes three snapshots,
//! `leakhound diagnose --json` finds the suspect, and the `sources` crate
//! must name the package as `name@version` (the pinned version, read from
//! the installed package.json), recognise the library table's entry on the
//! suspect's retainer path, and name the user's handle on it; the JSON
//! suspect carries the same as `package`, `library`, `handle` and
//! `user_location`.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use sources::{steps_from_json, user_handle, Library, SourceMaps};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn fixtures() -> PathBuf {
    repo_root().join("fixtures")
}

fn node() -> PathBuf {
    find_node(20).unwrap_or_else(|_| any_node())
}

/// The fixtures' npm packages: installed by scripts/test.sh; here as a fallback.
fn ensure_fixture_modules() {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap();
    if *done {
        return;
    }
    if !fixtures().join("node_modules/prom-client/package.json").exists() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(fixtures())
            .status()
            .expect("npm is needed to install the fixtures' packages");
        assert!(st.success(), "npm ci in fixtures/ failed");
    }
    *done = true;
}

/// The exact version pinned in fixtures/package.json.
fn pinned(package: &str) -> String {
    let text = std::fs::read_to_string(fixtures().join("package.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["dependencies"][package].as_str().unwrap_or_else(|| panic!("{package} is not pinned")).to_string()
}

/// `diagnose --json` on the app's three snapshots, and the text report.
fn diagnose(app: &str, dir: &Path) -> Value {
    diagnose_both(app, dir).0
}

fn diagnose_both(app: &str, dir: &Path) -> (Value, String) {
    ensure_fixture_modules();
    let out = Command::new(node())
        .arg(fixtures().join("harness.js"))
        .arg(fixtures().join(app))
        .arg(dir)
        .args(["--snapshots", "3", "--requests", "300", "--warmup", "300"])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run node");
    assert!(out.status.success(), "harness failed on {app}: {}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(files.len(), 3, "harness wrote {files:?}");
    let out = Command::new(BIN).arg("diagnose").arg("--json").args(&files).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "diagnose {app}: {}", String::from_utf8_lossy(&out.stderr));
    let json = serde_json::from_slice(&out.stdout).expect("diagnose --json");
    // The text report, and the HTML page beside it.
    let out = Command::new(BIN)
        .arg("diagnose")
        .arg("--html")
        .arg(dir.join("report.html"))
        .args(&files)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "diagnose {app}: {}", String::from_utf8_lossy(&out.stderr));
    (json, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A leak: diagnose says leak, and its first suspect's path shows `entry`
/// in `package` at the pinned version, held by the user's `handle` (None
/// when the path reaches the package without passing the app's code, e.g.
/// through a timer or express's router).
fn leak(app: &str, package: &str, entry: &str, handle: Option<&str>) {
    let tmp = temp_dir();
    let (d, text) = diagnose_both(app, tmp.path());
    let first = &d["suspects"][0];
    eprintln!(
        "{app}: {} {} {} at {}",
        d["verdict"],
        first["pattern"],
        first["accumulator"]["name"],
        first["location"]["file"].as_str().unwrap_or("-")
    );
    assert_eq!(d["verdict"], "leak", "{app}: {}", d["suspects"]);
    let mut maps = SourceMaps::new();
    let steps = steps_from_json(&first["retainer_path"], &mut maps);
    let lib = Library::builtin();
    let m = lib.match_path(&steps).unwrap_or_else(|| panic!("{app}: no library entry on {}", first["path_text"].as_str().unwrap_or("")));
    assert_eq!(m.entry.id, entry, "{app}");
    assert_eq!(m.package.spec(), format!("{package}@{}", pinned(package)), "{app}");
    assert!(m.package.path.ends_with(&format!("fixtures/node_modules/{package}")), "{app}: package path {}", m.package.path);
    // The text report says it too.
    assert!(text.contains(&format!("package: {}", m.package.spec())), "{app}: {text}");
    assert!(text.contains(&format!("fix:     {}", m.entry.fix)), "{app}: {text}");
    // The HTML card: the package, the known use, the place in the package.
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    let card = html.split(r#"<article class="card suspect""#).nth(1).unwrap_or_else(|| panic!("{app}: no card"));
    assert!(card.contains(&format!(r#"<code class="package">{}</code>"#, m.package.spec())), "{app}: {card}");
    assert!(card.contains(r#"<dd class="library">"#), "{app}: {card}");
    assert!(card.contains(r#"<code class="package-location">"#), "{app}: {card}");
    if let Some(g) = first["generated_location"]["file"].as_str() {
        // A package shipping source maps (ajv, rxjs, lru-cache): both positions.
        assert!(card.contains(r#"<code class="generated-location">"#) && card.contains(g), "{app}: {card}");
    }
    // The same, as `diagnose --json` writes it.
    assert_eq!(first["package"]["name"], package, "{app}");
    assert_eq!(first["package"]["version"], pinned(package).as_str(), "{app}");
    assert_eq!(first["library"]["id"], entry, "{app}");
    let fix = m.entry.fix.as_str();
    assert!(first["advice"].as_str().unwrap_or("").starts_with(fix), "{app}: advice {}", first["advice"]);
    // A leak inside the package: its own pattern, named after the package,
    // with the place in the package where it accumulates.
    assert_eq!(first["pattern"], "in-package", "{app}");
    assert_eq!(first["title"], format!("memory accumulates inside {}", m.package.spec()), "{app}");
    assert!(text.contains(&format!("memory accumulates inside {} [in-package]", m.package.spec())), "{app}: {text}");
    let inside = first["package_location"]["file"].as_str().unwrap_or("");
    assert!(inside.contains(&format!("node_modules/{package}/")), "{app}: package_location {}", first["package_location"]);
    match handle {
        Some(h) => {
            assert_eq!(first["handle"], h, "{app}");
            let user_file = first["user_location"]["file"].as_str().unwrap_or("");
            assert!(user_file.ends_with(app), "{app}: user_location {}", first["user_location"]);
            let (at, name) = user_handle(&steps).unwrap_or_else(|| panic!("{app}: no user step on the path"));
            assert_eq!(name, h, "{app}");
            // The user's own line: the app's function that holds the handle.
            let file = steps[at].file.as_deref().unwrap_or("");
            assert!(file.ends_with(app), "{app}: user step in {file}");
            // The second place, in the advice: the handle and the user's line.
            let held = first["accumulator"]["held_as"].as_str().unwrap_or_else(|| panic!("{app}: no held_as"));
            assert!(held.starts_with(&format!("{h} → ")), "{app}: held_as {held}");
            let reach = format!("Your code reaches it through {held} at {user_file}:");
            assert!(card.contains(r#"<code class="user-location">"#) && card.contains(&html_escape(held)), "{app}: {card}");
            assert!(first["advice"].as_str().unwrap().contains(&reach), "{app}: advice {}", first["advice"]);
        }
        None => {
            if let Some((_, name)) = user_handle(&steps) {
                panic!("{app}: unexpected user handle {name}");
            }
            assert!(first.get("handle").is_none(), "{app}: {}", first["handle"]);
        }
    }
}

fn control(app: &str) {
    let tmp = temp_dir();
    let d = diagnose(app, tmp.path());
    assert_eq!(d["verdict"], "no-leak", "{app}: {}", d["suspects"]);
}

#[test]
fn ajv_per_request() {
    leak("deps/ajv-per-request.js", "ajv", "ajv-compile-per-request", Some("ajv"));
}
#[test]
fn lru_cache_ttl_no_max() {
    // lru-cache ships minified code: the class is `c` in the snapshot, LRUCache through its map.
    leak("deps/lru-cache-ttl-no-max.js", "lru-cache", "lru-cache-ttl-without-max", Some("responses"));
}
#[test]
fn node_cache_no_ttl() {
    // Reached through node-cache's checkperiod timer, not the app's code.
    leak("deps/node-cache-no-ttl.js", "node-cache", "node-cache-without-stdttl", None);
}
#[test]
fn memoizee_no_max() {
    leak("deps/memoizee-no-max.js", "memoizee", "memoizee-without-max", Some("describe"));
}
#[test]
fn rxjs_never_unsubscribed() {
    leak("deps/rxjs-never-unsubscribed.js", "rxjs", "rxjs-subscription-never-unsubscribed", Some("priceUpdates"));
}
#[test]
fn node_schedule_never_cancelled() {
    leak("deps/node-schedule-never-cancelled.js", "node-schedule", "node-schedule-job-never-cancelled", None);
}
#[test]
fn handlebars_partial_per_request() {
    leak("deps/handlebars-partial-per-request.js", "handlebars", "handlebars-partial-per-request", None);
}
#[test]
fn express_session_memorystore() {
    leak("deps/express-session-memorystore.js", "express-session", "express-session-memory-store", None);
}
#[test]
fn prom_client_unbounded_labels() {
    leak("deps/prom-client-unbounded-labels.js", "prom-client", "prom-client-unbounded-label-values", Some("requests"));
}

#[test]
fn controls_are_no_leak() {
    for app in [
        "deps/controls/ajv-compiled-once.js",
        "deps/controls/lru-cache-bounded.js",
        "deps/controls/node-cache-ttl.js",
        "deps/controls/memoizee-max.js",
        "deps/controls/rxjs-unsubscribed.js",
        "deps/controls/node-schedule-cancelled.js",
        "deps/controls/handlebars-partial-once.js",
        "deps/controls/express-session-uninitialized.js",
        "deps/controls/prom-client-bounded-labels.js",
    ] {
        control(app);
    }
}

/// The leaks and controls through `leakhound run` (the app started by
/// leakhound, driven by its own load generator at one constant URL): the
/// verdict, and for a leak the same package, entry and handle in the report.
const RUN_LEAKS: &[(&str, &str, &str, Option<&str>)] = &[
    ("deps/ajv-per-request.js", "ajv", "ajv-compile-per-request", Some("ajv")),
    ("deps/lru-cache-ttl-no-max.js", "lru-cache", "lru-cache-ttl-without-max", Some("responses")),
    ("deps/node-cache-no-ttl.js", "node-cache", "node-cache-without-stdttl", None),
    ("deps/memoizee-no-max.js", "memoizee", "memoizee-without-max", Some("describe")),
    ("deps/rxjs-never-unsubscribed.js", "rxjs", "rxjs-subscription-never-unsubscribed", Some("priceUpdates")),
    ("deps/node-schedule-never-cancelled.js", "node-schedule", "node-schedule-job-never-cancelled", None),
    ("deps/handlebars-partial-per-request.js", "handlebars", "handlebars-partial-per-request", None),
    ("deps/express-session-memorystore.js", "express-session", "express-session-memory-store", None),
    ("deps/prom-client-unbounded-labels.js", "prom-client", "prom-client-unbounded-label-values", Some("requests")),
];

fn run_app(app: &str) -> Value {
    ensure_fixture_modules();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/item?id=1");
    let out = Command::new(BIN)
        .args(["run", "--json", "--load", &url, "--"])
        .arg(node())
        .arg(fixtures().join(app))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run leakhound");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{app}: no JSON report ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn run_names_package_library_and_handle() {
    let mut failures = Vec::new();
    for &(app, package, entry, handle) in RUN_LEAKS {
        let v = run_app(app);
        let s = &v["suspects"][0];
        let row = format!("{app}: {} {} {} {} {}", v["verdict"], s["pattern"], s["accumulator"]["name"], s["package"], s["library"]["id"]);
        eprintln!("{row}");
        let want_version = pinned(package);
        let ok = v["verdict"] == "leak"
            && s["package"]["name"] == package
            && s["package"]["version"] == want_version.as_str()
            && s["library"]["id"] == entry
            && s["pattern"] == "in-package"
            && handle.is_none_or(|h| s["handle"] == h)
            && handle.is_none_or(|_| s["user_location"]["file"].as_str().unwrap_or("").ends_with(app));
        if !ok {
            failures.push(row);
        }
    }
    assert!(failures.is_empty(), "through run:\n{}", failures.join("\n"));
}

#[test]
fn run_gives_controls_no_leak() {
    let mut failures = Vec::new();
    for app in [
        "deps/controls/ajv-compiled-once.js",
        "deps/controls/lru-cache-bounded.js",
        "deps/controls/node-cache-ttl.js",
        "deps/controls/memoizee-max.js",
        "deps/controls/rxjs-unsubscribed.js",
        "deps/controls/node-schedule-cancelled.js",
        "deps/controls/handlebars-partial-once.js",
        "deps/controls/express-session-uninitialized.js",
        "deps/controls/prom-client-bounded-labels.js",
    ] {
        let v = run_app(app);
        eprintln!("{app}: {} {}", v["verdict"], v["reason"]);
        if v["verdict"] == "leak" {
            failures.push(format!("{app}: {}", v["reason"]));
        }
    }
    assert!(failures.is_empty(), "controls through run:\n{}", failures.join("\n"));
}

/// `--libraries FILE`: a team's own entries are tried before the built-in
/// ones; a missing or malformed file is one clear error line, exit 2.
#[test]
fn user_library_entries_come_first_and_bad_files_are_refused() {
    ensure_fixture_modules();
    let tmp = temp_dir();
    let out = Command::new(node())
        .arg(fixtures().join("harness.js"))
        .arg(fixtures().join("deps/memoizee-no-max.js"))
        .arg(tmp.path().join("snaps"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let table = tmp.path().join("ours.toml");
    std::fs::write(
        &table,
        r#"
[[library]]
id = "our-describe-memo"
package = "memoizee"
versions = ">=0.4, <0.5"
title = "our describe() memo"
signatures = [[{ class = "system / Context", edge = "cache" }]]
fix = "Use the shared renderCache instead."
"#,
    )
    .unwrap();
    let run =
        |extra: &[&str]| Command::new(BIN).args(["diagnose", "--json"]).args(extra).args(&files).stdin(Stdio::null()).output().unwrap();
    let out = run(&["--libraries", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["suspects"][0]["library"]["id"], "our-describe-memo");
    assert!(d["suspects"][0]["advice"].as_str().unwrap().starts_with("Use the shared renderCache instead."));

    let missing = tmp.path().join("missing.toml");
    std::fs::write(tmp.path().join("bad.toml"), "[[library]]\nid = 'x'\n").unwrap();
    for (file, what) in [(missing.clone(), "cannot read"), (tmp.path().join("bad.toml"), "bad.toml")] {
        let out = run(&["--libraries", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(what) && err.trim().lines().count() == 1, "{err}");
        assert!(out.stdout.is_empty(), "no half-written output");
    }

    // Every command that prints locations takes the same flag, and refuses a
    // bad table before it reads a snapshot or starts the app.
    let started = tmp.path().join("started");
    let app = tmp.path().join("app.js");
    std::fs::write(&app, format!("require('fs').writeFileSync({:?}, '');\nsetInterval(() => {{}}, 1000);\n", started)).unwrap();
    let (node, app, last) = (node(), app.to_str().unwrap().to_string(), files.last().unwrap().clone());
    let node = node.to_str().unwrap().to_string();
    let bad = ["--libraries", missing.to_str().unwrap()];
    let commands: [Vec<&str>; 6] = [
        vec!["retainers", &last, "--id", "1"],
        vec!["node", &last, "--id", "1"],
        vec!["listeners", &last],
        vec!["run", "--load", "http://127.0.0.1:9/", "--", &node, &app],
        vec!["allocations", "--", &node, &app],
        vec!["handles", "--", &node, &app],
    ];
    for cmd in commands {
        let (head, rest) = cmd.split_at(1);
        let out = Command::new(BIN).args(head).args(bad).args(rest).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("missing.toml: cannot read") && err.trim().lines().count() == 1, "{cmd:?}: {err}");
        assert!(!started.exists(), "{cmd:?} started the app before refusing the table");
    }
}

/// A package the library table does not know (written here, installed in a
/// temporary app's node_modules): the leak inside it still names
/// `package@version`, the user's line and handle, with the generic
/// in-a-dependency advice.
#[test]
fn a_package_not_in_the_table_gets_the_generic_package_pattern() {
    let tmp = temp_dir();
    let app_dir = tmp.path().join("app");
    let pkg = app_dir.join("node_modules/request-journal");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("package.json"), r#"{ "name": "request-journal", "version": "1.4.2", "main": "index.js" }"#).unwrap();
    std::fs::write(
        pkg.join("index.js"),
        "'use strict';\n\
         class Journal {\n  constructor() { this.entries = []; }\n  add(e) { this.entries.push(e); }\n}\n\
         module.exports = { Journal };\n",
    )
    .unwrap();
    std::fs::write(
        app_dir.join("app.js"),
        "'use strict';\n\
         const http = require('http');\n\
         const { Journal } = require('request-journal');\n\
         const journal = new Journal();\n\
         const server = http.createServer((req, res) => {\n  journal.add({ url: req.url, at: Date.now(), note: 'seen ' + req.url });\n  res.end('ok\\n');\n});\n\
         server.listen(0, '127.0.0.1');\n\
         module.exports = server;\n",
    )
    .unwrap();
    let out = Command::new(node())
        .arg(fixtures().join("harness.js"))
        .arg(app_dir.join("app.js"))
        .arg(tmp.path().join("snaps"))
        .args(["--snapshots", "3", "--requests", "300", "--warmup", "300"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let out = Command::new(BIN).args(["diagnose", "--json"]).args(&files).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &d["suspects"][0];
    assert_eq!(d["verdict"], "leak", "{s}");
    assert_eq!(s["pattern"], "in-package", "{s}");
    assert_eq!(s["package"]["name"], "request-journal");
    assert_eq!(s["package"]["version"], "1.4.2");
    assert!(s.get("library").is_none(), "{}", s["library"]);
    assert_eq!(s["handle"], "journal", "{s}");
    assert_eq!(s["accumulator"]["held_as"], "journal → Journal.entries", "{s}");
    assert!(s["user_location"]["file"].as_str().unwrap().ends_with("app/app.js"), "{}", s["user_location"]);
    assert_eq!(s["package_location"]["file"].as_str().unwrap(), pkg.join("index.js").to_str().unwrap(), "{}", s["package_location"]);
    let advice = s["advice"].as_str().unwrap();
    assert!(
        advice.starts_with("The leak is in a dependency, fed by how your code uses it: check request-journal@1.4.2's options"),
        "{advice}"
    );
    assert!(advice.contains("inside request-journal@1.4.2 (at index.js:"), "{advice}");
    assert!(advice.contains("Your code reaches it through journal → Journal.entries at "), "{advice}");
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
