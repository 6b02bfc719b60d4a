//! `leakhound supervise --metrics`: a real Prometheus server (Debian's
//! package, installed by scripts/test.sh) scrapes the endpoint every second
//! and evaluates docs/alerts/leakhound.rules.yml; the test reads the series
//! and the alerts back through Prometheus' HTTP API. The rules also pass
//! `promtool check rules` and their unit tests (`promtool test rules`).

mod supervise_support;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use supervise_support::*;

fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin", "/usr/local/bin"]) {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found: install Debian's prometheus package (scripts/test.sh does: apt-get install prometheus)");
}

fn rules() -> PathBuf {
    root().join("docs/alerts/leakhound.rules.yml").canonicalize().unwrap()
}

/// GET on this machine, one request per connection; `None` when nobody
/// answers (yet).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: leakhound\n    static_configs:\n      - targets: ['{target}']\n",
                rules().display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start prometheus");
        Prometheus { child, port, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Instant query: the `result` vector, or empty while Prometheus starts.
    fn query(&self, q: &str) -> Vec<Value> {
        let Some((status, body)) = get(self.port, &format!("/api/v1/query?query={}", encode(q))) else { return Vec::new() };
        if status != 200 {
            return Vec::new();
        }
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    fn wait_query(&self, what: &str, q: &str, timeout: Duration, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let t0 = Instant::now();
        loop {
            let r = self.query(q);
            if ok(&r) {
                return r;
            }
            assert!(t0.elapsed() < timeout, "{what}: `{q}` gave {r:?} for {timeout:?}\nprometheus log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

fn worker(sample: &Value) -> String {
    sample["metric"]["worker"].as_str().unwrap_or("").to_string()
}

/// Two workers of an app whose heap grows 2 MB/s and that keeps 1 MB per
/// request. Prometheus scrapes leakhound every second: the per-worker
/// series come back through its query API with sane values, the leak slope
/// is positive, the fleet alert is pending on it, and a memory restart
/// caused by the test's requests shows in the restart counter.
#[test]
fn prometheus_scrapes_the_metrics_and_evaluates_the_alerts() {
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let mut sup = Supervised::start(
        &["--workers", "2", "--metrics", "127.0.0.1:0", "--max-rss", "250MB"],
        &[("LEAK_HEAP_KB_PER_S", "2000"), ("LEAK_PER_REQUEST_KB", "1024")],
        &[&fixture("app.js")],
    );
    let url =
        sup.wait_for("the metrics endpoint", Duration::from_secs(10), |e| e["event"] == "metrics")["url"].as_str().unwrap().to_string();
    let target = url.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    let prom = Prometheus::start(&target);

    let up = prom.wait_query("the scrape", "up{job=\"leakhound\"}", Duration::from_secs(30), |r| r.len() == 1 && value(&r[0]) == 1.0);
    assert_eq!(up[0]["metric"]["instance"], target);

    let rss = prom.wait_query("rss of both workers", "leakhound_worker_rss_bytes", Duration::from_secs(20), |r| r.len() == 2);
    let mut workers: Vec<String> = rss.iter().map(worker).collect();
    workers.sort();
    assert_eq!(workers, ["0", "1"]);
    for s in &rss {
        let v = value(s);
        assert!((20e6..1e9).contains(&v), "rss of a Node worker: {s}");
    }
    let heap = prom.wait_query("heap used", "leakhound_worker_heap_used_bytes", Duration::from_secs(10), |r| r.len() == 2);
    for s in &heap {
        assert!(value(s) > 1e6, "{s}");
    }
    let limit = prom.query("leakhound_worker_heap_limit_bytes");
    assert_eq!(limit.len(), 2);
    assert!(limit.iter().all(|s| value(s) > 100e6), "{limit:?}");
    let start = prom.query("process_start_time_seconds{job=\"leakhound\"}");
    assert_eq!(start.len(), 1);
    assert!((started - 5.0..started + 5.0).contains(&value(&start[0])), "{start:?} vs {started}");
    let counters = prom.query("leakhound_worker_restarts_total");
    assert_eq!(counters.len(), 10, "2 workers x 5 reasons, from zero: {counters:?}");

    // The post-GC floor rises: each worker's slope is positive, and the
    // fleet rule (median slope > 10 MiB/h over >= 2 workers) holds, so its
    // alert is pending (it fires after 30 minutes).
    let slopes = prom
        .wait_query("positive leak slopes", "leakhound_worker_leak_slope_bytes_per_hour > 0", Duration::from_secs(40), |r| r.len() == 2);
    eprintln!("slopes: {:?}", slopes.iter().map(|s| (worker(s), value(s))).collect::<Vec<_>>());
    let floor = prom.query("leakhound_worker_heap_floor_bytes");
    assert_eq!(floor.len(), 2, "{floor:?}");
    let t0 = Instant::now();
    loop {
        let (_, body) = get(prom.port, "/api/v1/alerts").expect("prometheus answers");
        let v: Value = serde_json::from_str(&body).unwrap();
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        if let Some(a) = alerts.iter().find(|a| a["labels"]["alertname"] == "LeakhoundFleetHeapLeak") {
            assert_eq!(a["state"], "pending", "{a}");
            assert_eq!(a["labels"]["job"], "leakhound");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no LeakhoundFleetHeapLeak alert: {alerts:?}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, rules) = get(prom.port, "/api/v1/rules").expect("prometheus answers");
    let v: Value = serde_json::from_str(&rules).unwrap();
    let loaded: Vec<&Value> = v["data"]["groups"][0]["rules"].as_array().unwrap().iter().collect();
    assert_eq!(loaded.len(), 5);
    for r in loaded {
        assert_eq!(r["health"], "ok", "{r}");
    }

    // 1 MB kept per request: a few hundred requests push a worker past
    // --max-rss; the counter goes up for reason="rss".
    let t0 = Instant::now();
    while sup.count(|e| e["event"] == "exited") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "no restart:\n{}", sup.transcript());
        let (status, _) = get(sup.port, "/").expect("the service answers");
        assert_eq!(status, 200);
    }
    let restarted =
        prom.wait_query("the restart counter", "sum(leakhound_worker_restarts_total{reason=\"rss\"})", Duration::from_secs(15), |r| {
            r.len() == 1 && value(&r[0]) >= 1.0
        });
    eprintln!("restarts for rss, through Prometheus: {}", value(&restarted[0]));
    drop(prom);
    assert!(sup.stop().success(), "{}", sup.transcript());
}

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let promtool = tool("promtool");
    let check = Command::new(&promtool).args(["check", "rules"]).arg(rules()).output().unwrap();
    let out = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() && out.contains("SUCCESS: 5 rules found"), "{out}");
    let tests = root().join("docs/alerts/leakhound.rules.test.yml");
    let test = Command::new(&promtool).args(["test", "rules"]).arg(&tests).output().unwrap();
    let out = String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    assert!(test.status.success() && out.contains("SUCCESS"), "{out}");
}
