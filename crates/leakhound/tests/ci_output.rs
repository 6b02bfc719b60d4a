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
