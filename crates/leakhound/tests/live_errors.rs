//! Bad targets for the live commands: each gives exit code 2 and exactly one
//! line on stderr, `leakhound: error: ...`, naming the pid, address or
//! command, never a panic, no file left behind and no process left running.

#[path = "support/bin.rs"]
mod bin;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::*;

fn leakhound(args: &[&str]) -> Output {
    bin::leakhound(args, Duration::from_secs(90))
}

/// Exit 2, nothing on stdout, one stderr line: `leakhound: error: <expected...>`.
fn one_line_error(args: &[&str], expected: &str) -> String {
    let o = leakhound(args);
    assert_one_line_error(&o, &format!("leakhound {args:?}"), expected)
}

#[test]
fn a_dead_pid() {
    let mut c = Command::new("true").spawn().unwrap();
    let dead = c.id();
    c.wait().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.heapsnapshot");
    one_line_error(&["snapshot", "--pid", &dead.to_string(), "-o", out.to_str().unwrap()], &format!("process {dead} does not exist"));
    one_line_error(&["watch", "--pid", &dead.to_string()], &format!("process {dead} does not exist"));
    assert!(!out.exists());
}

#[test]
fn a_process_that_is_not_node_is_not_signalled() {
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    one_line_error(&["watch", "--pid", &sleeper.id().to_string()], &format!("process {} (sleep) does not handle SIGUSR1", sleeper.id()));
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(sleeper.id()));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn a_port_nobody_listens_on() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.heapsnapshot");
    let expected = format!("no inspector on 127.0.0.1:{port}; connection refused");
    one_line_error(&["snapshot", "--inspect", &format!("127.0.0.1:{port}"), "-o", out.to_str().unwrap()], &expected);
    one_line_error(&["watch", "--inspect", &port.to_string()], &expected);
    one_line_error(&["watch", "--inspect", &format!("ws://127.0.0.1:{port}/a-target")], &expected);
    assert!(!out.exists() && !inspector::part_path(&out).exists());
}

#[test]
fn a_plain_http_server_is_not_an_inspector() {
    let port = fake_server(Some("HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 22\r\n\r\n<h1>no such page</h1>\n"));
    one_line_error(
        &["watch", "--inspect", &format!("localhost:{port}")],
        &format!("127.0.0.1:{port} is not a Node inspector (GET /json/list returned HTTP 404 \"<h1>no such page</h1>\")"),
    );
    // A real Node HTTP server answering 200 with its own page.
    let node = node(20);
    let script = "require('http').createServer((q, s) => s.end('hello')).listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port) }); setTimeout(() => process.exit(0), 60000)";
    let mut server = Command::new(&node).args(["-e", script]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.as_mut().unwrap()), &mut line).unwrap();
    let port: u16 = line.trim().strip_prefix("listening ").unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.heapsnapshot");
    one_line_error(
        &["snapshot", "--inspect", &port.to_string(), "-o", out.to_str().unwrap()],
        &format!(
            "127.0.0.1:{port} is not a Node inspector (GET /json/list returned HTTP 200 with a body that is not a target list: \"hello\")"
        ),
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn only_loopback_addresses() {
    one_line_error(&["watch", "--inspect", "10.1.2.3:9229"], "10.1.2.3:9229 is not a loopback address");
    one_line_error(&["watch", "--inspect", "ws://192.168.0.9:9229/x"], "is not a loopback address");
}

#[test]
fn a_program_that_exits_at_once() {
    let node = node(24);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.heapsnapshot");
    for (cmd, args) in [("watch", vec!["watch", "--interval", "100ms"]), ("snapshot", vec!["snapshot", "-o", out.to_str().unwrap()])] {
        let m = marker(cmd);
        let mut full = args.clone();
        full.extend(["--", node.to_str().unwrap(), "-e", "process.exit(0)", &m]);
        let err = one_line_error(&full, "exited (status 0) before");
        assert!(err.contains(&format!("`{} -e process.exit(0) {m}`", node.display())), "{err}");
        assert!(pids_with(&m).is_empty(), "{cmd}: a process was left running");
    }
    assert!(!out.exists() && !inspector::part_path(&out).exists());
    // Not a program at all.
    one_line_error(&["watch", "--", "/nonexistent/app"], "cannot start `/nonexistent/app`");
    // Not Node: no inspector URL ever comes (`true` exits at once).
    one_line_error(&["watch", "--", "true"], "`true` exited (status 0) before its inspector was listening");
}

#[test]
fn an_unwritable_output() {
    let node = node(20);
    let p = start_node(&node, &["--inspect=127.0.0.1:0", fixture("holder.js").to_str().unwrap(), "60"], "holder ready");
    let url = p.ws_url.clone().unwrap();
    one_line_error(&["snapshot", "--inspect", &url, "-o", "/nonexistent-dir/x.heapsnapshot"], "directory /nonexistent-dir does not exist");
    assert!(alive(p.pid));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["watch"],
        vec!["snapshot", "-o", "x"],
        vec!["watch", "--pid", "1", "--inspect", "9229"],
        vec!["watch", "--inspect", "9229", "--interval", "soon"],
    ] {
        let o = leakhound(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        // One error style: usage errors read like every other error.
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("leakhound: error: "), "{args:?}");
    }
}
