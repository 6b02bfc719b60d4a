//! `leakhound doctor` on real Node 18-26 processes in real memory cgroups.
//!
//! Each test makes its own cgroup v1 child under /sys/fs/cgroup/memory
//! (`leakhound-test-<pid>-<n>`), puts a Node process in it by starting
//! `sh -c 'echo $$ > .../cgroup.procs; exec node ...'`, and removes the
//! cgroup afterwards (a Drop guard, also on failure). A test that cannot
//! make a cgroup (not root, no writable v1 memory controller) prints a
//! SKIP line and returns. cgroup v2 is covered by a directory laid out as
//! cgroupfs (`--cgroup-root`) around a process placed in a real v2 cgroup.

#[path = "support/bin.rs"]
mod bin;
#[path = "support/schema.rs"]
mod schema;
#[path = "../../inspector/tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_leakhound");
const MIB: u64 = 1024 * 1024;
const V1: &str = "/sys/fs/cgroup/memory";
const V2: &str = "/sys/fs/cgroup/unified";
/// A Node program that idles until stopped.
const IDLE: &str = "setInterval(() => {}, 1000)";

/// Cgroups this test made (removed deepest first on drop) and processes
/// it started (killed first).
struct Cgroups {
    dirs: Vec<PathBuf>,
    kids: Vec<Child>,
}

impl Cgroups {
    /// A fresh group under `base`, or None (after a SKIP line) when it
    /// cannot be made.
    fn new(base: &str, test: &str) -> Option<Cgroups> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(base).join(format!("leakhound-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        match std::fs::create_dir(&dir) {
            Ok(()) => Some(Cgroups { dirs: vec![dir], kids: Vec::new() }),
            Err(e) => {
                eprintln!("SKIP {test}: cannot create the cgroup {} ({e}); needs root and a writable cgroup at {base}", dir.display());
                None
            }
        }
    }

    fn root(&self) -> &Path {
        &self.dirs[0]
    }

    fn child(&mut self, name: &str) -> PathBuf {
        let d = self.dirs.last().unwrap().join(name);
        std::fs::create_dir(&d).unwrap();
        self.dirs.push(d.clone());
        d
    }

    /// Start `node ARGS` in cgroup `dir`, kept until the guard drops.
    fn start_in(&mut self, dir: &Path, node: &Path, args: &str) -> u32 {
        let child =
            Command::new("sh").arg("-c").arg(in_cgroup(dir, node, args)).stdin(Stdio::null()).stdout(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        self.kids.push(child);
        pid
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        for d in self.dirs.iter().rev() {
            // A process that just exited leaves its cgroup a moment later.
            let t = Instant::now();
            while std::fs::remove_dir(d).is_err() && d.exists() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if d.exists() {
                eprintln!("warning: could not remove the test cgroup {}", d.display());
            }
        }
    }
}

fn set_limit(dir: &Path, bytes: u64) {
    std::fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string()).unwrap();
}

/// The shell line that moves itself into `dir` and becomes node.
fn in_cgroup(dir: &Path, node: &Path, args: &str) -> String {
    format!("echo $$ > {}/cgroup.procs && exec {} {args}", dir.display(), node.display())
}

fn run(args: &[String], limit: Duration) -> Output {
    bin::leakhound(args, limit)
}

/// `doctor --json` on `sh -c '<move into dir>; exec node ARGS'`, started by leakhound.
fn doctor_in(dir: &Path, node: &Path, args: &str, extra: &[&str]) -> Value {
    let mut a: Vec<String> = vec!["doctor".into(), "--json".into()];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend(["--".into(), "sh".into(), "-c".into(), in_cgroup(dir, node, args)]);
    json_of(&run(&a, Duration::from_secs(60)))
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "doctor failed: {}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)));
    schema::check_schema("doctor", &v);
    let pid = v["pid"].as_u64().unwrap() as u32;
    assert!(gone_within(pid, Duration::from_secs(5)), "the process {pid} doctor started is still running");
    v
}

fn ids(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
}

fn severity(v: &Value, id: &str) -> String {
    v["findings"].as_array().unwrap().iter().find(|f| f["id"] == id).unwrap_or_else(|| panic!("no {id} in {v}"))["severity"]
        .as_str()
        .unwrap()
        .to_string()
}

/// 256 MiB: Node 18 sizes its heap from host RAM; Node 20+ to 259-262 MiB,
/// above the limit. Both get `--max-old-space-size=128`.
#[test]
fn node18_and_node20_plus_in_256_mib() {
    let Some(cg) = Cgroups::new(V1, "node18_and_node20_plus_in_256_mib") else { return };
    set_limit(cg.root(), 256 * MIB);
    for major in [18, 20, 22, 24, 26] {
        let v = doctor_in(cg.root(), &node(major), &format!("-e '{IDLE}'"), &[]);
        let heap = v["heap_limit_bytes"].as_u64().unwrap();
        assert_eq!(v["container_limit_bytes"], 256 * MIB, "Node {major}");
        assert_eq!(v["recommended_max_old_space_size_mb"], 128, "Node {major}");
        assert!(v["rss_bytes"].as_u64().unwrap() > 20 * MIB);
        assert_eq!(v["cgroup"]["version"], "v1");
        assert_eq!(v["cgroup"]["limit_file"], "memory.limit_in_bytes");
        assert_eq!(v["node_processes"], 1);
        assert_eq!(severity(&v, "heap-limit-above-container-limit"), "error", "Node {major}: {v}");
        if major == 18 {
            assert!(heap > 4000 * MIB, "Node 18 sized its heap from host RAM: {heap}");
            assert_eq!(ids(&v), ["heap-limit-above-container-limit", "node18-cgroup-blind"]);
        } else {
            assert!((256 * MIB..300 * MIB).contains(&heap), "Node {major}: heap limit {heap}");
            assert_eq!(ids(&v), ["heap-limit-above-container-limit"], "Node {major}");
        }
    }
}

/// No limit on this host: GC drift warning, no recommendation.
#[test]
fn no_limit() {
    let Some(cg) = Cgroups::new(V1, "no_limit") else { return };
    let v = doctor_in(cg.root(), &node(20), &format!("-e '{IDLE}'"), &[]);
    assert_eq!(v["container_limit_bytes"], Value::Null);
    assert_eq!(v["recommended_max_old_space_size_mb"], Value::Null);
    assert_eq!(ids(&v), ["no-memory-limit"]);
    // This host has 24 GB: a large host.
    if v["host_memory_bytes"].as_u64().unwrap() >= 4096 * MIB {
        assert_eq!(severity(&v, "no-memory-limit"), "warning");
    }
}

/// 1 GiB with --max-old-space-size=600 (Node 20 execArgv, Node 18
/// NODE_OPTIONS): nothing to say; the recommendation is 704.
#[test]
fn comfortable_setting() {
    let Some(cg) = Cgroups::new(V1, "comfortable_setting") else { return };
    set_limit(cg.root(), 1024 * MIB);
    let v = doctor_in(cg.root(), &node(20), &format!("--max-old-space-size=600 -e '{IDLE}'"), &[]);
    assert_eq!(ids(&v), Vec::<String>::new(), "{v}");
    assert_eq!(v["heap_flags"], serde_json::json!(["--max-old-space-size=600"]));
    assert_eq!(v["recommended_max_old_space_size_mb"], 704);
    let heap = v["heap_limit_bytes"].as_u64().unwrap();
    assert!((600 * MIB..680 * MIB).contains(&heap), "{heap}");
    let sh = format!(
        "export NODE_OPTIONS=\"$NODE_OPTIONS --max-old-space-size=600\"; {}",
        in_cgroup(cg.root(), &node(18), &format!("-e '{IDLE}'"))
    );
    let o = run(&["doctor".into(), "--json".into(), "--".into(), "sh".into(), "-c".into(), sh], Duration::from_secs(60));
    let v = json_of(&o);
    assert_eq!(v["node_version"].as_str().unwrap().split('.').next(), Some("v18"));
    assert_eq!(ids(&v), Vec::<String>::new(), "Node 18 with a fitting flag from NODE_OPTIONS: {v}");
    assert_eq!(v["heap_flags"], serde_json::json!(["--max-old-space-size=600"]));
}

/// A child cgroup with no limit under a 256 MiB parent: the limit is the
/// parent's, and Node 22 (which reads only its own level) sized its heap
/// from host RAM.
#[test]
fn child_without_limit_under_limited_parent() {
    let Some(mut cg) = Cgroups::new(V1, "child_without_limit_under_limited_parent") else { return };
    set_limit(cg.root(), 256 * MIB);
    let parent = cg.root().to_path_buf();
    let child = cg.child("app");
    let v = doctor_in(&child, &node(22), &format!("-e '{IDLE}'"), &[]);
    assert_eq!(v["container_limit_bytes"], 256 * MIB);
    assert_eq!(v["cgroup"]["limit_dir"], parent.display().to_string());
    assert_eq!(v["cgroup"]["dir"], child.display().to_string());
    assert!(v["heap_limit_bytes"].as_u64().unwrap() > 4000 * MIB, "{v}");
    assert_eq!(ids(&v), ["heap-limit-above-container-limit", "limit-not-seen-by-node"]);
}

/// Two Node processes under one 512 MiB limit: each gets half.
#[test]
fn several_node_processes_share_one_limit() {
    let Some(mut cg) = Cgroups::new(V1, "several_node_processes_share_one_limit") else { return };
    set_limit(cg.root(), 512 * MIB);
    let root = cg.root().to_path_buf();
    let other = cg.start_in(&root, &node(20), &format!("-e '{IDLE}'"));
    let t = Instant::now();
    while !std::fs::read_to_string(root.join("cgroup.procs")).unwrap().lines().any(|l| l == other.to_string()) {
        assert!(t.elapsed() < Duration::from_secs(10), "the other node never joined the cgroup");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Wait for the exec: until then the process is `sh`, not node.
    while !std::fs::read_link(format!("/proc/{other}/exe")).unwrap().to_string_lossy().contains("node") {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    let v = doctor_in(&root, &node(24), &format!("-e '{IDLE}'"), &[]);
    assert_eq!(v["node_processes"], 2);
    assert_eq!(v["recommended_max_old_space_size_mb"], 128, "75% of 256 MiB minus 64");
    assert_eq!(ids(&v), ["heap-limit-above-container-limit", "shared-limit"]);
    assert!(alive(other), "doctor must not touch a process it did not start");
}

/// A real OOM kill in a 128 MiB cgroup: the counter shows it.
#[test]
fn oom_kill_counter() {
    let Some(cg) = Cgroups::new(V1, "oom_kill_counter") else { return };
    set_limit(cg.root(), 128 * MIB);
    let leak = "const a = []; setInterval(() => { for (let i = 0; i < 200000; i++) a.push({ i, s: \"x\" + i }); }, 1)";
    let mut killed = Command::new("sh").arg("-c").arg(in_cgroup(cg.root(), &node(20), &format!("-e '{leak}'"))).spawn().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = killed.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = killed.kill();
            panic!("the leaking node was not killed within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    let v = doctor_in(cg.root(), &node(20), &format!("--max-old-space-size=32 -e '{IDLE}'"), &[]);
    assert!(v["cgroup"]["oom_kills"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(severity(&v, "oom-killed"), "error");
}

/// cgroup v2, through `--cgroup-root`: the process sits in a real v2
/// cgroup `/leakhound-test-…/app`; the root given to doctor is laid out as
/// cgroupfs with a 256 MiB `memory.max` on the parent, none on `app`, and
/// 3 OOM kills in the parent's `memory.events`.
#[test]
fn cgroup_v2_layout() {
    let Some(mut cg) = Cgroups::new(V2, "cgroup_v2_layout") else { return };
    let name = cg.root().file_name().unwrap().to_string_lossy().to_string();
    let app = cg.child("app");
    let fake = tempfile::tempdir().unwrap();
    let put = |rel: &str, file: &str, text: &str| {
        let d = fake.path().join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), text).unwrap();
    };
    put("", "cgroup.controllers", "cpu io memory pids\n");
    put(&name, "memory.max", "268435456\n");
    put(&name, "memory.high", "max\n");
    put(&name, "memory.events", "low 0\nhigh 0\nmax 12\noom 3\noom_kill 3\n");
    let app_rel = format!("{name}/app");
    put(&app_rel, "memory.max", "max\n");
    put(&app_rel, "memory.high", "max\n");
    put(&app_rel, "memory.current", "52428800\n");
    put(&app_rel, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
    put(&name, "memory.oom.group", "1\n");
    let root = fake.path().display().to_string();
    let v = doctor_in(&app, &node(20), &format!("-e '{IDLE}'"), &["--cgroup-root", &root]);
    assert_eq!(v["cgroup"]["version"], "v2");
    assert_eq!(v["cgroup"]["path"], format!("/{name}/app"));
    assert_eq!(v["cgroup"]["fell_back_to_mount"], false);
    assert_eq!(v["container_limit_bytes"], 256 * MIB);
    assert_eq!(v["cgroup"]["limit_file"], "memory.max");
    assert_eq!(v["cgroup"]["limit_dir"], fake.path().join(&name).display().to_string());
    assert_eq!(v["cgroup"]["oom_kills"], 3);
    assert_eq!(v["headroom_bytes"], (256 - 50) * MIB);
    assert_eq!(v["cgroup"]["oom_group"], true);
    assert_eq!(ids(&v), ["oom-killed", "heap-limit-above-container-limit", "limit-not-seen-by-node", "oom-group-kill"]);
    // memory.high below memory.max on the process's own level binds first.
    put(&app_rel, "memory.high", "209715200\n");
    put(&app_rel, "memory.events", "low 0\nhigh 5\nmax 0\noom 0\noom_kill 0\n");
    let v = doctor_in(&app, &node(20), &format!("-e '{IDLE}'"), &["--cgroup-root", &root]);
    assert_eq!(v["container_limit_bytes"], 200 * MIB);
    assert_eq!(v["cgroup"]["limit_file"], "memory.high");
    assert_eq!(v["cgroup"]["oom_kills"], 0, "read up to the level that binds");
    assert_eq!(v["recommended_max_old_space_size_mb"], 86);
    assert!(!ids(&v).contains(&"limit-not-seen-by-node".to_string()), "{v}");
    assert_eq!(v["cgroup"]["high_events"], 5);
    assert_eq!(severity(&v, "memory-high-throttled"), "warning");
}

/// Bad targets: one line, exit 2, nothing left running.
#[test]
fn bad_targets() {
    let port = free_port();
    let o = run(&["doctor".into(), "--inspect".into(), format!("127.0.0.1:{port}")], Duration::from_secs(30));
    assert_one_line_error(&o, "nobody listening", &port.to_string());
    let mut c = Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    let dead = c.id();
    let o = run(&["doctor".into(), "--pid".into(), dead.to_string()], Duration::from_secs(30));
    assert_one_line_error(&o, "dead pid", &format!("process {dead} does not exist"));
    let notfs = tempfile::tempdir().unwrap();
    let m = marker("doctor-bad-root");
    let o = run(
        &[
            "doctor".into(),
            "--cgroup-root".into(),
            notfs.path().display().to_string(),
            "--".into(),
            node(20).display().to_string(),
            "-e".into(),
            format!("{IDLE} // {m}"),
        ],
        Duration::from_secs(30),
    );
    assert_one_line_error(&o, "not a cgroupfs", "is not a cgroup filesystem");
    assert!(pids_with(&m).is_empty(), "the node doctor started is still running");
    let o = run(
        &["doctor".into(), "--cgroup-root".into(), "/nonexistent-leakhound".into(), "--".into(), "node".into()],
        Duration::from_secs(30),
    );
    assert_one_line_error(&o, "missing root", "no such directory");
}

/// `watch` in a 256 MiB cgroup on a leaking Node 20: the container limit
/// (charge growing at the RSS trend) comes before the 259 MiB heap limit;
/// the doctor's finding is in the JSON, the text and the HTML.
#[test]
fn watch_names_the_limit_reached_first() {
    let Some(cg) = Cgroups::new(V1, "watch_names_the_limit_reached_first") else { return };
    set_limit(cg.root(), 256 * MIB);
    let page = tempfile::tempdir().unwrap();
    let html = page.path().join("watch.html");
    let app = format!("{} 60", fixture("leak.js").display());
    let a: Vec<String> =
        ["watch", "--json", "--interval", "250ms", "--duration", "20s", "--html", html.to_str().unwrap(), "--", "sh", "-c"]
            .iter()
            .map(|s| s.to_string())
            .chain([in_cgroup(cg.root(), &node(20), &app)])
            .collect();
    let o = run(&a, Duration::from_secs(90));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    schema::check_schema("watch", &v);
    let c = &v["container"];
    assert_eq!(c["container_limit_bytes"], 256 * MIB, "{c}");
    assert_eq!(v["verdict"], "leak");
    assert_eq!(c["first_limit"], "container", "{c}");
    let (to_container, to_heap) = (c["time_to_container_limit_s"].as_f64().unwrap(), c["time_to_heap_limit_s"].as_f64().unwrap());
    assert!(to_container < to_heap && to_container > 0.0, "{c}");
    assert_eq!(c["time_to_first_limit_s"].as_f64().unwrap(), to_container);
    assert!(c["findings"].as_array().unwrap().iter().any(|f| f["id"] == "heap-limit-above-container-limit"), "{c}");
    assert_eq!(c["recommended_max_old_space_size_mb"], 128);
    assert_eq!(c["gc_drift"], Value::Null, "a heap leak is not drift");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Container and limits") && page.contains("first limit: the container limit"), "no container section");
    assert!(page.contains("heap-limit-above-container-limit"));
}

/// RSS rising over a flat heap floor, carried by kept Buffers: `watch`
/// says the memory is outside the JS heap (not GC drift). Kept Buffers are a
/// leak all the same (issue 20: native growth over a flat heap is not
/// `no-leak`), named as memory outside the heap.
#[test]
fn watch_explains_rss_over_a_flat_floor() {
    let app = support::repo_root().join("fixtures/supervise/app.js");
    let node = node(20);
    let o = Command::new(BIN)
        .args(["watch", "--json", "--interval", "250ms", "--duration", "8s", "--force-gc", "--"])
        .arg(&node)
        .arg(&app)
        .env("PORT", "0")
        .env("LEAK_RSS_MB_PER_S", "4")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["container"];
    assert_eq!(v["verdict"], "leak", "{}", v["reason"]);
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.starts_with("memory outside the JS heap grows"), "named as native memory: {reason}");
    assert!(c["rss_growth_bytes_per_hour"].as_f64().unwrap() > 3.0 * 3600.0 * 1e6, "{c}");
    assert!(c["external_growth"].as_str().unwrap_or("").contains("outside the JS heap"), "{c}");
    assert_eq!(c["gc_drift"], Value::Null);
}
