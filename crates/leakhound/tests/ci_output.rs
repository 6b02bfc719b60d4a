//! CI output, offline: `diagnose --format github` prints GitHub Actions
//! workflow commands at the user's line (the format runner.workflow-commands
//! documents: `::error file=F,line=L,col=C,title=T::MESSAGE`, with `%`, CR
//! and LF escaped, and `:`/`,` in properties), and `--junit FILE` writes a
//! JUnit report with one failed test case per suspect. The snapshots come
//! from a real leaky fixture (fixtures/harness.js); paths are relative to the
//! working directory, the repository root, as in a workflow.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn snapshots(dir: &std::path::Path, app: &str) -> Vec<String> {
    let out = Command::new("node")
        .arg(repo_root().join("fixtures/harness.js"))
        .arg(repo_root().join("fixtures").join(app))
        .arg(dir)
        .output()
        .expect("cannot run node");
    assert!(out.status.success(), "harness failed: {}", String::from_utf8_lossy(&out.stderr));
    (1..=3).map(|i| dir.join(format!("s{i}.heapsnapshot")).display().to_string()).collect()
}

#[test]
fn github_annotations_and_junit_for_a_leak_and_a_control() {
    let tmp = tempfile::tempdir().unwrap();
    let leak_dir = tmp.path().join("leak");
    let ok_dir = tmp.path().join("ok");
    std::fs::create_dir_all(&leak_dir).unwrap();
    std::fs::create_dir_all(&ok_dir).unwrap();

    let files = snapshots(&leak_dir, "leaks/listeners.js");
    let junit = tmp.path().join("leak.xml");
    let out = Command::new(BIN)
        .args(["diagnose", "--format", "github", "--fail-on-leak", "--junit"])
        .arg(&junit)
        .args(&files)
        .current_dir(repo_root())
        .env_remove("GITHUB_WORKSPACE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The text report first, then the workflow commands.
    assert!(stdout.starts_with("Verdict: LEAK"), "{stdout}");
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), 2, "{stdout}");
    let error = commands[0];
    let (head, message) = error.split_once("::").map(|(_, rest)| rest.split_once("::").unwrap()).unwrap();
    assert!(
        head.starts_with("error file=fixtures/leaks/listeners.js,line=13,col=")
            && head.ends_with(",title=leakhound diagnose%3A event-listeners leak in bus._events.tick"),
        "{error}"
    );
    // One line: newlines escaped; the path and the fix are in the message.
    assert!(!message.contains('\n') && message.contains("%0Apath: ") && message.contains("%0Afix: "), "{message}");
    assert!(message.starts_with("bus._events.tick grows +"), "{message}");
    assert!(commands[1].starts_with("::notice title=leakhound diagnose%3A leak::1 suspect(s)"), "{}", commands[1]);

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"leakhound\" tests=\"1\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"suspect 1: bus._events.tick [event-listeners]\" file=\"fixtures/leaks/listeners.js\" line=\"13\""),
        "{xml}"
    );
    assert!(xml.contains("<failure type=\"event-listeners\"") && xml.contains("source: fixtures/leaks/listeners.js:13"), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>") && !junit.with_extension("xml.part").exists());

    // A control: a notice, no error, a passing test case; exit 0.
    let files = snapshots(&ok_dir, "controls/listeners-removed.js");
    let junit = tmp.path().join("ok.xml");
    let out = Command::new(BIN)
        .args(["diagnose", "--format", "github", "--fail-on-leak", "--junit"])
        .arg(&junit)
        .args(&files)
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), 1, "{stdout}");
    assert!(commands[0].starts_with("::notice title=leakhound diagnose%3A no-leak::nothing grew in every step"), "{}", commands[0]);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"1\" failures=\"0\"") && xml.contains("name=\"diagnose: verdict\""), "{xml}");
}

/// The `leakhound run` command of a docs/ci.md job (from the line with
/// `leakhound run` to the one ending in `-- node server.js`, YAML folding
/// and continuation lines joined), as arguments after `leakhound`.
fn documented_run(job: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/ci.md")).unwrap();
    let section = doc.split("\n## ").find(|s| s.starts_with(job)).unwrap_or_else(|| panic!("no {job} section in docs/ci.md"));
    let start = section.find("npx leakhound run").expect("no npx leakhound run in the job");
    let end =
        start + section[start..].find("-- node server.js").expect("command does not end in -- node server.js") + "-- node server.js".len();
    let words: Vec<String> = section[start..end].split_whitespace().map(str::to_string).collect();
    assert_eq!(&words[..3], ["npx", "leakhound", "run"], "{words:?}");
    words[2..].to_vec()
}

/// docs/ci.md's GitHub Actions and GitLab commands, run as written on a leaky
/// fixture in place of `server.js` (and a free port in place of 3000): exit 1,
/// the annotation at the fixture's line, and the JUnit file the job uploads.
#[test]
fn the_documented_ci_commands_gate_on_a_leak() {
    for (job, annotations) in [("GitHub Actions", true), ("GitLab CI", false)] {
        let tmp = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let args: Vec<String> = documented_run(job)
            .into_iter()
            .map(|a| {
                if a == "server.js" {
                    repo_root().join("fixtures/leaks/listeners.js").display().to_string()
                } else {
                    a.replace(":3000/", &format!(":{port}/"))
                }
            })
            .collect();
        let junit = args.iter().position(|a| a == "--junit").map(|i| args[i + 1].clone()).expect("the job writes --junit");
        let out = Command::new(BIN)
            .args(&args)
            .env("PORT", port.to_string())
            .env("GITHUB_WORKSPACE", repo_root())
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{job}: {args:?}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::error ")).collect();
        if annotations {
            assert_eq!(errors.len(), 1, "{stdout}");
            assert!(errors[0].starts_with("::error file=fixtures/leaks/listeners.js,line=13,col="), "{}", errors[0]);
        } else {
            assert!(errors.is_empty(), "{stdout}");
        }
        let xml = std::fs::read_to_string(tmp.path().join(&junit)).unwrap();
        assert!(xml.contains("failures=\"1\"") && xml.contains("file=\"fixtures/leaks/listeners.js\" line=\"13\""), "{job}: {xml}");
    }
}
