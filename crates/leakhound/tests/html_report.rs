//! `--html`: the report of a real `leakhound run` on a leak fixture,
//! opened in headless Chromium, checked for what a person sees: drawn chart
//! lines with points, a suspect card naming the accumulator, a class table
//! that sorts on a click, no errors, no fetches, a small file. The same
//! run's snapshots then feed `diagnose` and `diff` (--html and --json), and
//! every `--json` document is checked against docs/json.md's required
//! fields, parsed from the doc so that doc and output cannot drift.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;

#[path = "support/schema.rs"]
mod schema;
use schema::{check_schema, documented_required};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const MAX_REPORT_BYTES: u64 = 2_000_000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("headless Chromium is not installed (.ci/run installs Debian's chromium): looked for /usr/bin/chromium");
}

/// Open `page` (with the probe script injected first) in headless Chromium
/// and return the probe's findings.
fn probe(page: &Path, work: &Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let script = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/report-probe.js")).unwrap();
    let at = html.find("<head>").expect("the page has a <head>") + "<head>".len();
    let probed = format!("{}<script>{}</script>{}", &html[..at], script, &html[at..]);
    let file = work.join(format!("probed-{}", page.file_name().unwrap().to_string_lossy()));
    std::fs::write(&file, probed).unwrap();
    let profile = work.join("chromium-profile");
    let mut child = Command::new(chromium())
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1200,2000", "--virtual-time-budget=3000", "--dump-dom"])
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start chromium");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(45) {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish rendering {} in 45 s", file.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = reader.join().unwrap();
    let start = dom
        .rfind("<pre id=\"lh-probe\">")
        .unwrap_or_else(|| panic!("the probe did not report; DOM tail: {}", &dom[dom.len().saturating_sub(400)..]))
        + "<pre id=\"lh-probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {text}"))
}

/// `check_file`, then the page in Chromium: no errors, nothing fetched.
fn open_checked(page: &Path, work: &Path) -> Value {
    check_file(page);
    let seen = probe(page, work);
    eprintln!("probe: {seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "errors in the page");
    assert_eq!(seen["resources"], serde_json::json!([]), "the page fetched something");
    seen
}

fn check_file(page: &Path) {
    let size = std::fs::metadata(page).unwrap().len();
    assert!(size < MAX_REPORT_BYTES, "{} is {size} bytes", page.display());
    let html = std::fs::read_to_string(page).unwrap();
    // Self-contained: nothing loaded from elsewhere.
    for bad in ["<script src", "<link ", "<img ", "@import", "url(http"] {
        assert!(!html.contains(bad), "{} has {bad:?}", page.display());
    }
    assert!(!Path::new(&format!("{}.part", page.display())).exists(), "a .part file was left behind");
}

#[test]
fn docs_cover_every_json_command() {
    let docs = documented_required();
    let cmds: Vec<&str> = docs.iter().map(|(c, _)| c.as_str()).collect();
    for c in [
        "summary",
        "retainers",
        "node",
        "gclog",
        "diff",
        "diagnose",
        "run",
        "load",
        "snapshot",
        "watch",
        "allocations",
        "doctor",
        "handles",
        "listeners",
    ] {
        assert!(cmds.contains(&c), "docs/json.md has no section for {c} (has {cmds:?})");
    }
}

#[test]
fn run_report_renders_in_chromium() {
    let node = require_node(20);
    let work = tempfile::tempdir().unwrap();
    let snaps = work.path().join("snaps");
    let page = work.path().join("run.html");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/item?id=1");
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(["run", "--json", "-n", "1500", "--warmup", "1000", "--load", &url, "--keep"])
        .arg(&snaps)
        .arg("--html")
        .arg(&page)
        .arg("--")
        .arg(&node)
        .arg(repo_root().join("fixtures/leaks/listeners.js"))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("leakhound run took {:?}", t.elapsed());
    let json: Value = serde_json::from_slice(&out.stdout).expect("run --json");
    check_schema("run", &json);
    assert_eq!(json["verdict"], "leak");

    let seen = open_checked(&page, work.path());
    let paths = seen["paths"].as_array().unwrap();
    for want in ["heapUsed", "heapTotal", "rss", "heap after GC (floor)", "floor trend (Theil-Sen)"] {
        let p = paths.iter().find(|p| p["series"] == want).unwrap_or_else(|| panic!("no {want} line in {paths:?}"));
        let min = if want.starts_with("floor trend") { 2 } else { 3 };
        assert!(p["points"].as_u64().unwrap() >= min, "{want} has too few points: {p}");
        assert!(p["length"].as_f64().unwrap() > 10.0 && p["width"].as_f64().unwrap() > 10.0, "{want} is not drawn: {p}");
    }
    let samples = json["samples"].as_array().unwrap().len() as u64;
    let used = paths.iter().find(|p| p["series"] == "heapUsed").unwrap();
    assert_eq!(used["points"].as_u64().unwrap(), samples.min(1200), "heapUsed line vs samples");
    assert!(seen["accumulators"].as_array().unwrap().iter().any(|a| a == "bus._events.tick"), "no card names bus._events.tick: {seen}");
    assert!(seen["cards"][0].as_f64().unwrap() > 50.0, "the suspect card is not laid out");
    let chain = seen["chain"].as_array().unwrap();
    assert!(chain.iter().any(|l| l.as_str().unwrap().contains(".tick")), "the retainer chain lacks the .tick edge: {chain:?}");
    assert!(seen["verdict"].as_str().unwrap().starts_with("Leak"), "{}", seen["verdict"]);
    // A run of seconds states its growth with its window, not per hour.
    let rate = seen["rate"].as_str().unwrap();
    assert!(
        rate.contains("warm-up → round 3: +") && rate.contains(" per round") && rate.contains(" per request"),
        "no growth in words: {rate}"
    );
    assert!(!rate.contains("/h"), "a per-hour figure from seconds: {rate}");
    let sort = &seen["sort"];
    assert!(
        sort["rows"].as_u64().unwrap() > 5 && sort["ascending"] == true && sort["descending"] == true && sort["differs"] == true,
        "sorting: {sort}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(json["node_version"].as_str().unwrap()), "the header lacks the Node version");
    assert!(html.contains("@media print"));

    // The same snapshots through diagnose and diff, both --json and --html.
    let files: Vec<PathBuf> = (1..=4).map(|i| snaps.join(format!("s{i}.heapsnapshot"))).collect();
    let dpage = work.path().join("diagnose.html");
    let out = Command::new(BIN).arg("diagnose").args(&files).arg("--json").arg("--html").arg(&dpage).output().unwrap();
    assert!(out.status.success(), "diagnose: {}", String::from_utf8_lossy(&out.stderr));
    check_schema("diagnose", &serde_json::from_slice(&out.stdout).unwrap());
    check_file(&dpage);
    let seen = probe(&dpage, work.path());
    assert_eq!(seen["errors"], serde_json::json!([]));
    assert!(seen["accumulators"].as_array().unwrap().iter().any(|a| a == "bus._events.tick"), "{seen}");

    let fpage = work.path().join("diff.html");
    let out = Command::new(BIN).arg("diff").arg(&files[0]).arg(&files[3]).arg("--json").arg("--html").arg(&fpage).output().unwrap();
    assert!(out.status.success(), "diff: {}", String::from_utf8_lossy(&out.stderr));
    check_schema("diff", &serde_json::from_slice(&out.stdout).unwrap());
    check_file(&fpage);
    let seen = probe(&fpage, work.path());
    assert_eq!(seen["errors"], serde_json::json!([]));
    assert_eq!(seen["sort"]["ascending"], true, "{seen}");

    let spage = work.path().join("summary.html");
    let out = Command::new(BIN).arg("summary").arg(&files[3]).arg("--json").arg("--html").arg(&spage).output().unwrap();
    assert!(out.status.success(), "summary: {}", String::from_utf8_lossy(&out.stderr));
    check_schema("summary", &serde_json::from_slice(&out.stdout).unwrap());
    check_file(&spage);
    assert!(std::fs::read_to_string(&spage).unwrap().contains("EventEmitter"));
    eprintln!("whole test {:?}", t.elapsed());
}

/// `watch --html`: the timeline of a leaking process drawn from the same
/// samples as `--json`, with its floors, their trend and the verdict.
#[test]
fn watch_report_renders_in_chromium() {
    let node = require_node(20);
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("watch.html");
    let out = Command::new(BIN)
        .args(["watch", "--json", "--duration", "8s", "--interval", "250ms", "--html"])
        .arg(&page)
        .arg("--")
        .arg(&node)
        .args(["--max-old-space-size=128", "--max-semi-space-size=1"])
        .arg(repo_root().join("fixtures/live/leak.js"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "watch failed: {}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("watch --json");
    check_schema("watch", &json);
    let seen = open_checked(&page, work.path());
    let paths = seen["paths"].as_array().unwrap();
    let samples = json["samples"].as_array().unwrap().len() as u64;
    let floors = json["floors"].as_array().unwrap().len() as u64;
    assert!(samples >= 20 && floors >= 3, "a leaking process watched for 8 s: {samples} samples, {floors} floors");
    for (want, n) in [
        ("heapUsed", samples),
        ("heapTotal", samples),
        ("rss", samples),
        ("heap after full GC (floor)", floors),
        ("floor trend (Theil-Sen)", 2),
    ] {
        let p = paths.iter().find(|p| p["series"] == want).unwrap_or_else(|| panic!("no {want} line in {paths:?}"));
        assert_eq!(p["points"].as_u64().unwrap(), n, "{want}: points vs the JSON's series");
        assert!(p["length"].as_f64().unwrap() > 10.0 && p["width"].as_f64().unwrap() > 10.0, "{want} is not drawn: {p}");
    }
    // The verdict box says what --json says, and the rate is in words.
    let word = match json["verdict"].as_str().unwrap() {
        "leak" => "Leak",
        "no-leak" => "No leak",
        _ => "Inconclusive",
    };
    assert!(seen["verdict"].as_str().unwrap().starts_with(word), "{} vs {}", seen["verdict"], json["verdict"]);
    assert!(seen["rate"].as_str().unwrap().contains("/h"), "no growth rate in words: {}", seen["rate"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(json["target"]["node_version"].as_str().unwrap()), "the header lacks the Node version");
    assert!(html.contains("consecutive full GCs"), "the summary lines are missing");
}

/// `handles`, `doctor` and `load` write their pages too: self-contained,
/// no errors in Chromium, with what their text says.
#[test]
fn handles_doctor_and_load_pages() {
    let node = require_node(20);
    let work = tempfile::tempdir().unwrap();
    let live = repo_root().join("fixtures/live");
    let out = |args: &[&str]| {
        let o = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let page = work.path().join("handles.html");
    let (line, err) =
        out(&["handles", "-q", "--html", page.to_str().unwrap(), "--", node.to_str().unwrap(), live.join("handles.js").to_str().unwrap()]);
    assert!(err.contains(&format!("leakhound: wrote {}", page.display())), "{err}");
    open_checked(&page, work.path());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&super_esc(line.trim())), "the page lacks the headline {line}");
    assert!(html.contains("<td>Timeout</td>") && html.contains("<code>tick</code>") && html.contains("handles.js:11:14"), "{html}");

    let page = work.path().join("doctor.html");
    let (line, _) = out(&[
        "doctor",
        "-q",
        "--html",
        page.to_str().unwrap(),
        "--",
        node.to_str().unwrap(),
        live.join("holder.js").to_str().unwrap(),
        "5",
    ]);
    open_checked(&page, work.path());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&super_esc(line.trim())), "the page lacks the headline {line}");
    assert!(html.contains("<th>heap limit</th>") && html.contains("<h2>Findings</h2>"), "{html}");

    // load: against a server started here.
    let port = free_port();
    let mut app = Command::new(&node)
        .arg(live.join("orders.js"))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "orders.js never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = work.path().join("load.html");
    let url = format!("http://127.0.0.1:{port}/orders");
    let (line, _) = out(&["load", "-q", "-n", "500", "--html", page.to_str().unwrap(), &url]);
    let _ = app.kill();
    let _ = app.wait();
    assert!(line.starts_with("500 requests in "), "{line}");
    open_checked(&page, work.path());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(&super_esc(line.trim())), "the page lacks the headline {line}");
    assert!(html.contains("<td>200</td><td class=\"n\" data-v=\"500\">500</td>"), "{html}");
}

/// The page's escaping of a text line (as report::esc does for these).
fn super_esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
