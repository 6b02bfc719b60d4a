//! A newcomer's first ten minutes with `leakhound run`, on real apps: no
//! PORT set, an app that listens on a port of its own, a typo'd path, an
//! app that dies mid-round, a chatty app under -q, Ctrl-C, `--pid` of a
//! shell, and an app that never answers. Each step asserts what the user
//! sees: one clear line, the right exit status, a clean stdout, no process
//! left behind, no signal sent where it does not belong.

#[path = "../../heapsnap/tests/common/mod.rs"]
mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");

fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

fn node() -> PathBuf {
    find_node(20).unwrap_or_else(|_| any_node())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// `leakhound run ARGS -- node APP` with small rounds and no PORT.
fn run_cmd(args: &[&str], app: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("run").args(["--warmup", "500"]);
    if !args.contains(&"-n") {
        c.args(["-n", "500"]);
    }
    c.args(args)
        .arg("--")
        .arg(node())
        .arg(fixture(app))
        .env_remove("PORT")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn one_error_line(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("leakhound: error:").count(), 1, "{err}");
    err.lines().find(|l| l.starts_with("leakhound: error:")).unwrap().to_string()
}

#[test]
fn without_port_the_app_gets_one_and_a_path_means_it_and_a_chatty_app_stays_off_stdout() {
    // The orders app logs every request to stdout: under -q only the
    // verdict line may reach ours.
    let out = run_cmd(&["-q", "--load", "/orders"], "live/orders.js").output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "stdout: {stdout}");
    assert!(stdout.starts_with("Verdict: no leak"), "{stdout}");
    // The app's own lines went to stderr, on the port leakhound gave it.
    assert!(stderr.contains("GET /orders"), "{stderr}");
    assert!(stderr.contains("orders service listening on http://127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("listening on http://127.0.0.1:3000"), "{stderr}");
    // Not a terminal, no -q: the full report, still without the app's logs.
    let tmp = temp_dir();
    let page = tmp.path().join("run.html");
    let out = run_cmd(&["--load", "/orders", "--html", page.to_str().unwrap()], "live/orders.js").output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("Verdict: no leak"), "{stdout}");
    assert!(stdout.contains("Load: 2,000 requests (2,000 ok, 0 non-2xx, 0 errors)"), "{stdout}");
    assert!(!stdout.contains("GET /orders"), "{stdout}");
    // Rates with their window: a run of seconds gives no per-hour figure
    // (growth per round and per request, RSS over its window).
    assert!(!stdout.contains("/h"), "a per-hour figure from seconds of data:\n{stdout}");
    assert!(stdout.contains(" per round") && stdout.contains(" per request"), "{stdout}");
    // Every file written is named.
    assert!(stderr.contains(&format!("leakhound: wrote {}", page.display())), "{stderr}");
    assert!(std::fs::metadata(&page).unwrap().len() > 1000);
}

#[test]
fn the_other_live_commands_keep_stdout_for_their_one_result_line() {
    // orders.js says where it listens on its stdout: under -q (and whenever
    // our stdout is not a terminal) that goes to stderr; stdout holds the
    // one result line.
    let app = |c: &mut Command| {
        c.arg("--").arg(node()).arg(fixture("live/orders.js")).env("PORT", free_port().to_string());
    };
    let tmp = temp_dir();
    let snap = tmp.path().join("s.heapsnapshot");
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["doctor", "-q"], "doctor: process "),
        (vec!["handles", "-q", "--delay", "200ms"], "process "),
        (vec!["snapshot", "-q", "-o", snap.to_str().unwrap()], "wrote "),
    ];
    for (args, first) in cases {
        let mut c = Command::new(BIN);
        c.args(&args).stdin(Stdio::null());
        app(&mut c);
        let out = c.output().unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stdout.lines().count(), 1, "{args:?}: {stdout}");
        assert!(stdout.starts_with(first), "{args:?}: {stdout}");
        assert!(stderr.contains("orders service listening on http://127.0.0.1:"), "{args:?}: {stderr}");
    }
    // handles' line counts with plurals and separators.
    let mut c = Command::new(BIN);
    c.args(["handles", "-q", "--delay", "200ms"]).stdin(Stdio::null());
    app(&mut c);
    let line = text(&c.output().unwrap().stdout);
    assert!(line.contains(" active resources; ") && line.trim_end().ends_with(" keep it alive"), "{line}");
}

#[test]
fn an_app_listening_on_its_own_port_is_found_and_named() {
    let own = free_port();
    let out = run_cmd(&["-q", "--load", "/orders"], "live/orders.js")
        .env("IGNORE_PORT", "1")
        .env("LISTEN_PORT", own.to_string())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("leakhound: the app listens on port {own}, not on ")), "{stderr}");
    assert!(stderr.contains(&format!("loading http://127.0.0.1:{own}/orders instead")), "{stderr}");
    assert!(stdout.starts_with("Verdict: no leak"), "{stdout}");
}

#[test]
fn a_typod_path_is_inconclusive_with_the_status_codes_and_fails_ci_when_asked() {
    let out = run_cmd(&["--load", "/orderz", "--fail-on-leak", "--fail-on-inconclusive"], "live/orders.js").output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{}", text(&out.stderr));
    let first = stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("Verdict: inconclusive — 2,000 of 2,000 responses were not 2xx (2,000 × 404)"), "{first}");
    assert!(first.contains("check the --load path (try: curl -i http://127.0.0.1:"), "{first}");
    // Without the flag an inconclusive run passes, as --fail-on-leak documents.
    let out = run_cmd(&["--json", "--load", "/orderz", "--fail-on-leak"], "live/orders.js").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["verdict"], "inconclusive");
    assert!(v["evidence_problem"].as_str().unwrap().contains("× 404"), "{v}");
    let help = text(&Command::new(BIN).args(["run", "--help"]).output().unwrap().stdout);
    assert!(help.contains("--fail-on-inconclusive") && help.contains("PORT"), "{help}");
    // No load at all: no evidence either.
    let out = Command::new(BIN)
        .args(["run", "-q", "--round-duration", "1s", "--"])
        .arg(node())
        .arg(fixture("live/orders.js"))
        .env_remove("PORT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Verdict: inconclusive — no load ran"), "{stdout}{}", text(&out.stderr));
}

#[test]
fn an_app_that_dies_mid_round_ends_the_run_at_once() {
    let t = Instant::now();
    let out = run_cmd(&["--load", "/"], "broken/dies.js").env("HOW", "exit").env("DIE_AT", "700").output().unwrap();
    let line = one_error_line(&out);
    assert!(line.contains("the app exited (status 3) during round 1 after "), "{line}");
    assert!(line.contains("its last stderr lines: dies.js: request 700, failing with HOW=exit"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(25), "took {:?}", t.elapsed());
}

/// The pid of leakhound's child (the app).
fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?.split_whitespace().next()?.parse().ok()
}

fn wait_for_http(port: u16, limit: Duration, log: &std::path::Path) {
    use std::io::{Read, Write};
    let t = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut b = [0u8; 16];
            if s.read(&mut b).unwrap_or(0) > 0 {
                return;
            }
        }
        assert!(t.elapsed() < limit, "the app never answered on {port}: {}", std::fs::read_to_string(log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_stops_the_app_and_prints_a_partial_report_with_status_130() {
    let port = free_port();
    // The chatty app's lines go to a file: a pipe nobody reads would fill
    // and block it.
    let tmp = temp_dir();
    let err_file = tmp.path().join("stderr");
    let child: Child = run_cmd(&["-n", "10000000", "--load", "/orders"], "live/orders.js")
        .env("PORT", port.to_string())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .expect("cannot start leakhound");
    let lh = child.id();
    wait_for_http(port, Duration::from_secs(30), &err_file);
    let app = child_of(lh).expect("leakhound started the app");
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: plain syscall on the leakhound this test started.
    unsafe { libc::kill(lh as i32, libc::SIGINT) };
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), std::fs::read_to_string(&err_file).unwrap());
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?} after Ctrl-C", t.elapsed());
    assert!(stdout.starts_with("Interrupted: no verdict — interrupted during "), "{stdout}");
    assert!(stdout.contains("Heap after GC: "), "{stdout}");
    assert!(stderr.lines().last().unwrap_or("").starts_with("leakhound: interrupted during "), "{stderr}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!pid_alive(app), "the app {app} was left running");
}

#[test]
fn pid_of_a_shell_gets_one_line_and_no_signal() {
    let tmp = temp_dir();
    // A shell with a USR1 trap (it would run the trap), and a bash without
    // one (SIGUSR1 would kill it); `; :` keeps them from exec'ing sleep.
    let marker = tmp.path().join("got-usr1");
    let trap = format!("trap 'touch {}' USR1; sleep 30; :", marker.display());
    for (shell, script) in [("sh", trap.as_str()), ("bash", "sleep 30; :")] {
        let mut sh = Command::new(shell).args(["-c", script]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        for cmd in ["snapshot", "watch"] {
            let out = Command::new(BIN)
                .args([cmd, "--pid", &sh.id().to_string()])
                .args(if cmd == "snapshot" {
                    vec!["-o".to_string(), tmp.path().join("x.heapsnapshot").display().to_string()]
                } else {
                    vec![]
                })
                .output()
                .unwrap();
            let line = one_error_line(&out);
            // sh with its trap handles SIGUSR1 but is not Node; bash without
            // one does not even handle it. Either way: refused, not signalled.
            if shell == "sh" {
                assert!(line.contains(&format!("process {} is not a Node process (it runs ", sh.id())), "{line}");
                assert!(line.contains("nothing was sent"), "{line}");
            } else {
                assert!(line.contains(&format!("process {} (bash) does not handle SIGUSR1", sh.id())), "{line}");
                assert!(line.contains("not sending the signal"), "{line}");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(pid_alive(sh.id()), "{shell} died");
        assert!(!marker.exists(), "the shell got SIGUSR1");
        let _ = sh.kill();
        let _ = sh.wait();
    }
}

#[test]
fn an_app_that_never_answers_gets_one_line_without_repeats() {
    let tmp = temp_dir();
    let idle = tmp.path().join("idle.js");
    std::fs::write(&idle, "setInterval(() => {}, 1000);").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--ready-timeout", "3s", "--load", "/", "--"])
        .arg(node())
        .arg(&idle)
        .env_remove("PORT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = one_error_line(&out);
    assert!(line.contains("the app did not answer http://127.0.0.1:"), "{line}");
    assert_eq!(line.matches("did not answer").count(), 1, "{line}");
    assert_eq!(line.matches("within").count(), 1, "{line}");
}

#[test]
fn a_reader_that_goes_away_leaves_no_temporary_folder_and_no_noise() {
    let tmp = temp_dir();
    let mut child = run_cmd(&["--load", "/orders"], "live/orders.js").env("TMPDIR", tmp.path()).spawn().unwrap();
    // `| head` that already left: the read end is closed before any output.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("error:"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");
}

#[test]
fn a_bad_output_path_fails_before_the_run_starts() {
    let t = Instant::now();
    let out = run_cmd(&["--load", "/orders", "--html", "/nonexistent-dir/report.html"], "live/orders.js").output().unwrap();
    let line = one_error_line(&out);
    assert!(line.contains("--html /nonexistent-dir/report.html: the directory /nonexistent-dir does not exist"), "{line}");
    // Refused before the app started: no app output, quick.
    assert!(!text(&out.stderr).contains("orders service listening"), "{}", text(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
}

#[test]
fn ids_and_class_names_are_accepted_as_printed_and_near_misses_suggested() {
    let tmp = temp_dir();
    let snap = tmp.path().join("ticks.heapsnapshot");
    make_snapshot(
        &node(),
        "class LogEntry { constructor(i) { this.i = i; } }\n\
         globalThis.keep = [];\n\
         for (let i = 0; i < 50; i++) { keep.push(function onTick() { return i; }, new LogEntry(i)); }",
        &snap,
    );
    let lh = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    // The class as printed, with and without its `()`.
    for class in ["onTick()", "onTick"] {
        let out = lh(&["retainers", snap.to_str().unwrap(), "--class", class, "--objects", "1"]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{class}: {}", text(&out.stderr));
        assert!(stdout.contains("onTick") && stdout.contains(" @"), "{class}: {stdout}");
    }
    // `@id`, copied from that output.
    let out = lh(&["retainers", snap.to_str().unwrap(), "--class", "LogEntry", "--objects", "1"]);
    let stdout = text(&out.stdout);
    let id = stdout.split(" @").nth(1).and_then(|r| r.split(':').next()).expect("an @id").to_string();
    let out = lh(&["node", snap.to_str().unwrap(), "--id", &format!("@{id}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("LogEntry"), "{}", text(&out.stdout));
    // A typo'd class: one line, the near miss named.
    let out = lh(&["retainers", snap.to_str().unwrap(), "--class", "LogEntyr"]);
    let line = one_error_line(&out);
    assert!(line.ends_with("no objects of class \"LogEntyr\" (did you mean `LogEntry`?)"), "{line}");
    // A typo'd command, a missing `--`.
    let out = lh(&["rnu"]);
    assert!(text(&out.stderr).contains("a similar subcommand exists: 'run'"), "{}", text(&out.stderr));
    let out = lh(&["run", "--load", "/orders", "node", "app.js"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tip: the app's command goes after `--`"), "{}", text(&out.stderr));
    // One error style, the OS error said once.
    let out = lh(&["summary", "/nonexistent/x.heapsnapshot"]);
    let line = one_error_line(&out);
    assert_eq!(line, "leakhound: error: cannot read /nonexistent/x.heapsnapshot: No such file or directory");
}

#[test]
fn term_dumb_and_no_color_get_no_colour_on_a_terminal() {
    let script = std::path::Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script for a terminal");
        return;
    }
    let line = format!("{BIN} run -q --warmup 100 -n 100 --load /orders -- {} {}", node().display(), fixture("live/orders.js").display());
    let on_terminal = |env: (&str, &str)| {
        let out = Command::new(script)
            .args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .env_remove("PORT")
            .env("TERM", "xterm")
            .env(env.0, env.1)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        text(&out.stdout)
    };
    assert!(on_terminal(("TERM", "xterm")).contains("\x1b[1;"), "a terminal gets colour");
    assert!(!on_terminal(("TERM", "dumb")).contains("\x1b[1;"), "TERM=dumb got colour");
    assert!(!on_terminal(("NO_COLOR", "1")).contains("\x1b[1;"), "NO_COLOR got colour");
}

/// `leakhound CMD --help`'s text.
fn help_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn help_is_grouped_with_examples_and_every_flag_means_one_thing() {
    let top = help_of(&[]);
    let commands = [
        "run",
        "load",
        "diagnose",
        "summary",
        "diff",
        "retainers",
        "node",
        "listeners",
        "snapshot",
        "watch",
        "allocations",
        "handles",
        "doctor",
        "supervise",
        "gclog",
    ];
    for group in ["Hunt a leak (start here):", "Inspect snapshots:", "Live process", "Production:", "Examples:"] {
        assert!(top.contains(group), "{group} missing:\n{top}");
    }
    assert!(top.find("  run ").unwrap() < top.find("  diagnose ").unwrap(), "run comes first");
    for c in commands {
        assert!(top.contains(&format!("\n  {c} ")), "{c} is not listed:\n{top}");
        help_of(&[c]);
    }
    // clap's own list of commands (the error for an unknown one lists none,
    // so ask `help` for each): nothing unlisted.
    let out = Command::new(BIN).args(["help", "nosuchcommand"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    // --min-growth is a size per round/step; the rate is --min-rate.
    for c in ["run", "diagnose"] {
        assert!(help_of(&[c]).contains("--min-growth <"), "{c}");
    }
    for c in [&["watch"][..], &["supervise"][..], &["gclog"][..]] {
        let h = help_of(c);
        assert!(h.contains("--min-rate <RATE>") && !h.contains("--min-growth <"), "{c:?}: {h}");
    }
    // --interval is a duration wherever it is shown; allocations samples by bytes.
    let alloc = help_of(&["allocations"]);
    assert!(alloc.contains("--sampling-interval <SIZE>") && !alloc.contains("--interval <"), "{alloc}");
    // -c has one default; -n and -d are per load phase in run and load.
    for c in ["run", "load", "allocations"] {
        let h = help_of(&[c]);
        let line = h.lines().skip_while(|l| !l.contains("-c, --connections")).take(4).collect::<Vec<_>>().join(" ");
        assert!(line.contains("[default: 10]"), "{c}: {line}");
    }
    let run = help_of(&["run"]);
    assert!(run.contains("-n, --requests") && run.contains("-d, --round-duration") && run.contains("--duration"), "{run}");
    // A verdict means --fail-on-leak and -q, gclog included.
    for c in ["run", "diagnose", "watch", "gclog"] {
        let h = help_of(&[c]);
        assert!(h.contains("--fail-on-leak") && h.contains("-q, --quiet") && h.contains("--json"), "{c}: {h}");
    }
    // -q, --json and --html on every command with a result to print or
    // share; -q and --json worded once (the flags module) on the live ones.
    let quiet_help = "Print only the one result line (the verdict, or what was written or found)";
    for c in ["load", "snapshot", "handles", "allocations", "doctor"] {
        let h = help_of(&[c]);
        assert!(h.contains("-q, --quiet") && h.contains("--json"), "{c}: {h}");
        assert!(h.replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ").contains(quiet_help), "{c}: {h}");
    }
    for c in ["load", "handles", "allocations", "doctor", "run", "watch", "summary", "diff", "diagnose"] {
        assert!(help_of(&[c]).contains("--html <FILE>"), "{c}");
    }
}

#[test]
fn gclog_gates_ci_like_the_other_verdicts() {
    let tmp = temp_dir();
    let log = tmp.path().join("leak.log");
    let out = Command::new(node())
        .args(["--trace-gc", "--expose-gc"])
        .arg(fixture("gc/leak.js"))
        .stdout(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(out.success());
    let lh = |args: &[&str]| Command::new(BIN).arg("gclog").arg(&log).args(args).output().unwrap();
    let out = lh(&["--fail-on-leak", "-q", "--min-rate", "1MB/h"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("verdict: leak"), "{stdout}");
    // Without the gate: 0; the old flag name still reads the same rate.
    assert_eq!(lh(&["-q", "--min-growth", "1MB/h"]).status.code(), Some(0));
}
