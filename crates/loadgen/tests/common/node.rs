//! A real Node http server for the load tests (tests/common/server.js), and
//! a plain blocking HTTP GET to read its counters. Standard library only, so
//! that crates/leakhound's CLI tests can include it too.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// System node, else the Node 20 that scripts/install-nodes.sh installs.
pub fn node_bin() -> PathBuf {
    let ok = |p: &Path| Command::new(p).arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    let system = PathBuf::from("node");
    if ok(&system) {
        return system;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for major in [20, 22, 24, 18, 26] {
        let p = root.join(format!(".cache/node/{major}/bin/node"));
        if ok(&p) {
            return p;
        }
    }
    panic!("no node: neither `node` on PATH nor .cache/node/*/bin/node (run scripts/install-nodes.sh)");
}

pub fn server_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../loadgen/tests/common/server.js")
}

/// The Node server, killed when dropped.
pub struct NodeServer {
    child: Child,
    pub port: u16,
}

impl NodeServer {
    pub fn start() -> NodeServer {
        let mut child = Command::new(node_bin())
            .arg(server_js())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("no output from node");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from node: {line:?}"));
        NodeServer { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The server's counters: `{"total": N, "counts": {"GET /": N}, "echo": {...}}`.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = http_get(self.port, "/__stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats are JSON")
    }

    pub fn count(&self, key: &str) -> u64 {
        self.stats()["counts"][key].as_u64().unwrap_or(0)
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET with `Connection: close`; (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read response");
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A port nobody listens on (bound, then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
