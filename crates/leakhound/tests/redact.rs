//! `--redact` on real snapshots (Node 22) of a process holding secrets: a
//! Map keyed by secret session ids, a plain object keyed by secret ids (a
//! dictionary), secret string values, and an event named by a secret. With
//! --redact no output (text, JSON, HTML) contains any of them; without it,
//! they are there (so the test looks where they are). The hash is stable
//! within a run and across runs, and names written in code stay.

#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const SECRET: &str = "SECRET";

const APP: &str = r#"
const v8 = require('v8');
const { EventEmitter } = require('events');
class Session { constructor(token, i) { this.token = token; this.user = 'user-' + i; this.data = new Array(50).fill(i); } }
const sessionsById = new Map();
const plainSessions = {};
const bus = new EventEmitter();
bus.setMaxListeners(0);
let n = 0;
function add(count) {
  for (let i = 0; i < count; i++, n++) {
    const id = 'SECRETKEY' + n.toString(16).padStart(8, '0') + 'zz';
    const s = new Session('SECRETVAL-pass-' + n, n);
    sessionsById.set(id, s);
    plainSessions['SECRETOBJ' + n] = { s };
    bus.on('SECRETEVT' + (n % 3) + '0000', () => s);
  }
}
const dir = process.argv[2];
for (let k = 0; k < 3; k++) {
  add(400 * (k + 1));
  gc();
  v8.writeHeapSnapshot(`${dir}/s${k}.heapsnapshot`);
}
"#;

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let app = dir.join("secrets.js");
    std::fs::write(&app, APP).unwrap();
    let st = Command::new(node(22)).arg("--expose-gc").arg(&app).arg(dir).status().unwrap();
    assert!(st.success());
    (0..3).map(|k| dir.join(format!("s{k}.heapsnapshot"))).collect()
}

/// stdout + stderr of a successful leakhound run.
fn run(args: &[&str]) -> String {
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(o.status.success() || o.status.code() == Some(1), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn with(args: &[&str], redact: bool) -> String {
    let mut a = args.to_vec();
    if redact {
        a.push("--redact");
    }
    run(&a)
}

#[test]
fn no_secret_survives_redact_in_text_json_and_html() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = snapshots(tmp.path());
    let s: Vec<&str> = snaps.iter().map(|p| p.to_str().unwrap()).collect();

    // Where the secrets are: a Session's retainer path goes through the
    // dictionary's key; its `token` edge leads to a secret value; the
    // Map's table holds the secret keys.
    // Paths through plainSessions and through the Map are equally short;
    // ask for enough of them that both kinds are listed.
    let j: Value =
        serde_json::from_str(&run(&["retainers", s[2], "--class", "Session", "--objects", "1", "--paths", "10", "--json"])).unwrap();
    let session = j["objects"][0]["id"].as_u64().unwrap().to_string();
    let table = j["objects"][0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap().iter())
        .find(|st| st["edge"] == "table")
        .map(|st| st["node_id"].as_u64().unwrap().to_string())
        .expect("a path through the Map's table");

    let html = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (h1, h2) = (html("d.html"), html("s.html"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["retainers", s[2], "--class", "Session"],
        vec!["retainers", s[2], "--class", "Session", "--json"],
        vec!["node", s[2], "--id", &session],
        vec!["node", s[2], "--id", &session, "--json"],
        vec!["node", s[2], "--id", &table, "--limit", "20"],
        vec!["node", s[2], "--id", &table, "--limit", "20", "--json"],
        vec!["diagnose", s[0], s[1], s[2]],
        vec!["diagnose", s[0], s[1], s[2], "--json"],
        vec!["listeners", s[2]],
        vec!["listeners", s[2], "--json"],
        vec!["summary", s[2]],
        vec!["diff", s[0], s[2]],
    ];
    let mut seen_without = 0;
    for c in &cases {
        let plain = with(c, false);
        if plain.contains(SECRET) {
            seen_without += 1;
        }
        let red = with(c, true);
        assert!(!red.contains(SECRET), "{c:?} --redact shows a secret:\n{red}");
    }
    // Without --redact the secrets are on show in retainers, node (x2 each,
    // text and JSON), listeners and diagnose's JSON.
    assert!(seen_without >= 7, "only {seen_without} outputs show the secrets without --redact: the test looks in the wrong place");

    // HTML reports.
    run(&["diagnose", s[0], s[1], s[2], "--html", &h1, "--redact"]);
    run(&["summary", s[2], "--html", &h2, "--redact"]);
    for h in [&h1, &h2] {
        let page = std::fs::read_to_string(h).unwrap();
        assert!(!page.contains(SECRET), "{h} --redact shows a secret");
    }

    // What stays: names written in code. What a value becomes: a hash,
    // the same in two runs, different for different values.
    let a = with(&["node", s[2], "--id", &session], true);
    let b = with(&["node", s[2], "--id", &session], true);
    assert_eq!(a, b);
    let token = a.lines().find(|l| l.trim_start().starts_with("token")).expect("the token edge");
    assert!(token.contains("‹h:"), "{token}");
    let user = a.lines().find(|l| l.trim_start().starts_with("user ")).expect("the user edge");
    let hash_of = |l: &str| l[l.find("‹h:").unwrap()..].chars().take(12).collect::<String>();
    assert_ne!(hash_of(token), hash_of(user));
    let paths = with(&["retainers", s[2], "--class", "Session", "--paths", "10"], true);
    for kept in ["plainSessions", "sessionsById", "{table}", "Session"] {
        assert!(paths.contains(kept), "{kept} was hashed:\n{paths}");
    }
    // The dictionary's key in the path is a hash.
    assert!(paths.contains("plainSessions (Object) -> ‹h:"), "{paths}");
    let listeners = with(&["listeners", s[2]], true);
    assert!(listeners.contains("‹h:"), "{listeners}");
    // A key of our own changes every hash.
    let o = Command::new(BIN).args(["node", s[2], "--id", &session, "--redact"]).env("LEAKHOUND_REDACT_KEY", "k2").output().unwrap();
    let keyed = String::from_utf8_lossy(&o.stdout);
    let keyed_token = keyed.lines().find(|l| l.trim_start().starts_with("token")).unwrap();
    assert_ne!(hash_of(keyed_token), hash_of(token));
}
