//! `leakhound handles (--pid PID | --inspect ADDR | -- CMD)`: what keeps a
//! Node process alive: its active resources counted by kind (timers,
//! sockets, servers, file watchers, child processes, pending requests), and
//! each timer, server, socket, watcher and child with its details and the
//! file:line of its callback, like wtfnode but from outside the process.
//!
//! How, on Node 18 to 26 alike:
//! - counts: `process.getActiveResourcesInfo()`;
//! - handles (everything but timers): `process._getActiveHandles()`, told
//!   apart by shape (a child has `pid` and `spawnargs`, a server `address()`
//!   and `listening`, ...), with `hasRef()` saying whether it keeps the
//!   event loop alive;
//! - timers are not handles since Node 11: they are found on the heap with
//!   `Runtime.queryObjects` on the `Timeout` prototype (V8 runs a full GC
//!   first: one pause of the target), keeping those not yet cleared or fired;
//! - callback locations: the `[[FunctionLocation]]` internal property of
//!   each function (`Runtime.getProperties`), its script named through the
//!   Debugger domain's `scriptParsed` events (the domain is enabled for the
//!   moment it takes to list the scripts).
//!
//! Everything is read through one object group released at the end.

use crate::live::{self, ConnectOptions, TargetArgs};
use crate::output::Table;
use anyhow::Result;
use inspector::Session;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// With `-- CMD`: let the program run this long before looking.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::flags::parse_duration)]
    pub delay: Duration,
    #[arg(long, help = crate::flags::JSON_HELP)]
    pub json: bool,
    #[arg(short, long, help = crate::flags::QUIET_HELP)]
    pub quiet: bool,
    #[arg(long, value_name = "FILE", help = crate::flags::HTML_HELP)]
    pub html: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub sources: crate::flags::SourceArgs,
}

const GROUP: &str = "leakhound-handles";

/// Runs with `this` = the array of `Timeout` objects on the heap.
const COLLECT: &str = r#"function () {
  const fns = [];
  const fn = (f) => {
    if (typeof f !== 'function') return null;
    fns.push(f);
    return { index: fns.length - 1, name: f.name || '(anonymous)' };
  };
  const addr = (a, p) => (a === undefined || a === null) ? null : (String(a).includes(':') ? '[' + a + ']:' + p : a + ':' + p);
  const hasRef = (h) => {
    try {
      if (typeof h.hasRef === 'function') return !!h.hasRef();
      if (h._handle && typeof h._handle.hasRef === 'function') return !!h._handle.hasRef();
    } catch (e) {}
    return true;
  };
  const listener = (h, ...events) => {
    for (const ev of events) {
      if (typeof h.listeners !== 'function') return null;
      const l = h.listeners(ev);
      if (l.length) return Object.assign(fn(l[0]), { event: ev, count: l.length });
    }
    return null;
  };
  const timers = [];
  for (const t of this) {
    if (!t || t._destroyed || !(t._idleTimeout >= 0) || typeof t._onTimeout !== 'function') continue;
    const repeat = typeof t._repeat === 'number' && t._repeat > 0;
    timers.push({ type: repeat ? 'setInterval' : 'setTimeout', ms: repeat ? t._repeat : t._idleTimeout,
                  ref: hasRef(t), callback: fn(t._onTimeout) });
  }
  const handles = process._getActiveHandles();
  const childOf = new Map();
  for (const h of handles) {
    if (h && typeof h.pid === 'number' && Array.isArray(h.stdio)) {
      for (const s of h.stdio) if (s) childOf.set(s, h.pid);
    }
  }
  const out = [];
  for (const h of handles) {
    const cls = h && h.constructor ? h.constructor.name : typeof h;
    const kind = h && h._handle && h._handle.constructor ? h._handle.constructor.name : null;
    const d = { class: cls, handle: kind, ref: hasRef(h) };
    if (typeof h.pid === 'number' && Array.isArray(h.spawnargs)) {
      Object.assign(d, { kind: 'child-process', pid: h.pid, command: h.spawnargs.join(' '), listener: listener(h, 'exit', 'close') });
    } else if (typeof h.address === 'function' && 'listening' in h) {
      const a = h.address();
      Object.assign(d, { kind: 'server', address: a && typeof a === 'object' ? addr(a.address, a.port) : a,
        connections: typeof h._connections === 'number' ? h._connections : null,
        listener: listener(h, 'request', 'connection', 'message') });
    } else if (h === process.stdin || h === process.stdout || h === process.stderr) {
      Object.assign(d, { kind: 'stdio', fd: h === process.stdin ? 0 : h === process.stdout ? 1 : 2 });
    } else if (childOf.has(h)) {
      Object.assign(d, { kind: 'child-stdio', pid: childOf.get(h) });
    } else if (typeof h.remotePort === 'number' || typeof h.localPort === 'number' || kind === 'TCP' || kind === 'Pipe') {
      Object.assign(d, { kind: 'socket', local: addr(h.localAddress, h.localPort), remote: addr(h.remoteAddress, h.remotePort),
        path: kind === 'Pipe' ? (h._pipeName || h.path || null) : null, listener: listener(h, 'data', 'end') });
    } else if (cls === 'FSWatcher' || cls === 'StatWatcher') {
      Object.assign(d, { kind: 'watcher', listener: listener(h, 'change') });
    } else if (typeof h.type === 'string' && h.type.startsWith('udp')) {
      let a = null; try { const x = h.address(); a = addr(x.address, x.port); } catch (e) {}
      Object.assign(d, { kind: 'udp', address: a, listener: listener(h, 'message') });
    } else {
      Object.assign(d, { kind: 'other', listener: null });
    }
    out.push(d);
  }
  const requests = process._getActiveRequests().map((r) => (r && r.constructor ? r.constructor.name : typeof r));
  const resources = typeof process.getActiveResourcesInfo === 'function' ? process.getActiveResourcesInfo() : null;
  return { report: { timers, handles: out, requests, resources }, fns };
}"#;

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Callback {
    index: usize,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    /// `file:line:column` (1-based), when found.
    #[serde(default)]
    location: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Timer {
    #[serde(rename = "type")]
    kind: String,
    ms: f64,
    #[serde(rename = "ref")]
    is_ref: bool,
    callback: Option<Callback>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Handle {
    kind: String,
    class: String,
    handle: Option<String>,
    #[serde(rename = "ref")]
    is_ref: bool,
    #[serde(flatten)]
    details: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Report {
    timers: Vec<Timer>,
    handles: Vec<Handle>,
    requests: Vec<String>,
    resources: Option<Vec<String>>,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    schema_version: u32,
    command: &'static str,
    pid: u32,
    node_version: &'a str,
    /// `process.getActiveResourcesInfo()` counted by type.
    resources: BTreeMap<String, usize>,
    keeping_alive: usize,
    timers: &'a [Timer],
    handles: &'a [Handle],
    requests: BTreeMap<String, usize>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    live::block_on(run_async(args))?
}

async fn run_async(args: &Args) -> Result<ExitCode> {
    if let Some(p) = &args.html {
        crate::report::check_output(p, "--html")?;
    }
    // A bad --libraries file is refused before leakhound connects.
    let mut view = args.sources.view()?;
    let mut interrupts = live::Interrupts::new();
    let stdout = crate::flags::child_stdout(args.json, args.quiet);
    let target = tokio::select! {
        t = live::connect(&args.target, ConnectOptions { child_stdout: stdout }) => t?,
        _ = interrupts.recv() => return Ok(interrupted("while connecting")),
    };
    let look = async {
        if target.launched.is_some() {
            tokio::time::sleep(args.delay).await;
        }
        collect(&target.session).await
    };
    // Ctrl-C: nothing listed yet, so nothing to report; let the target go.
    let collected = tokio::select! {
        r = look => r,
        _ = interrupts.recv() => {
            target.finish().await;
            return Ok(interrupted("before the handles were listed"));
        }
    };
    let report = match collected {
        Ok(r) => r,
        Err(e) => return Err(target.fail(e, "before leakhound could list its handles").await),
    };
    let _ = target.session.release_object_group(GROUP).await;
    let (pid, version, label) = (target.info.pid, target.info.node_version.clone(), target.label.clone());
    target.finish().await;

    let resources = count(report.resources.iter().flatten());
    let requests = count(report.requests.iter());
    let keeping_alive =
        report.timers.iter().filter(|t| t.is_ref).count() + report.handles.iter().filter(|h| h.is_ref).count() + report.requests.len();
    if args.json {
        let out = JsonOut {
            schema_version: 1,
            command: "handles",
            pid,
            node_version: &version,
            resources: resources.clone(),
            keeping_alive,
            timers: &report.timers,
            handles: &report.handles,
            requests: requests.clone(),
        };
        // Callback locations at the original (source-mapped) lines.
        let mut doc = serde_json::to_value(&out)?;
        view.map_json(&mut doc);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if args.quiet {
        println!("{}", headline(&label, &resources, keeping_alive));
    } else {
        print!("{}", view.map_text(&human(&label, &report, &resources, &requests, keeping_alive)));
    }
    if let Some(p) = &args.html {
        crate::report::write_page(p, &page(&label, &report, &resources, &requests, keeping_alive))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C before anything was gathered: say so, exit 130.
fn interrupted(when: &str) -> ExitCode {
    eprintln!("leakhound: interrupted {when}; nothing to report");
    ExitCode::from(crate::live::interrupted::EXIT_INTERRUPTED)
}

/// The one line: `process 1 (node app.js, Node v20.1.0): 15 active resources; 15 keep it alive`.
fn headline(label: &str, resources: &BTreeMap<String, usize>, alive: usize) -> String {
    let total: usize = resources.values().sum();
    format!(
        "{label}: {}; {} keep{} it alive",
        crate::output::count(total as u64, "active resource"),
        crate::output::int(alive as u64),
        if alive == 1 { "s" } else { "" }
    )
}

/// `--html`: the counts, the timers and the handles as sortable tables.
fn page(label: &str, r: &Report, resources: &BTreeMap<String, usize>, requests: &BTreeMap<String, usize>, alive: usize) -> String {
    use crate::report::esc;
    use std::fmt::Write;
    let mut p = crate::report::Page::new("leakhound handles");
    p.fact("Process", label);
    p.fact("Command", &crate::report::html::command_line());
    p.fact("Taken", &crate::report::utc_text(crate::report::now_unix()));
    let mut h = format!(
        "<p>{}</p><table class=\"sortable\"><thead><tr><th>Resource</th><th class=\"n\">Count</th></tr></thead><tbody>",
        esc(&headline(label, resources, alive))
    );
    for (k, v) in resources {
        let _ = write!(h, "<tr><td>{}</td><td class=\"n\" data-v=\"{v}\">{}</td></tr>", esc(k), crate::output::int(*v as u64));
    }
    h.push_str("</tbody></table>");
    if !requests.is_empty() {
        let list: Vec<String> = requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(h, "<p>Pending requests: {}</p>", esc(&list.join(", ")));
    }
    p.section("resources", "Active resources", &h);
    let yes_no = |is_ref: bool| if is_ref { "yes" } else { "no (unref'd)" };
    let mut t = String::from("<table class=\"sortable\"><thead><tr><th>Type</th><th class=\"n\">ms</th><th>Callback</th><th>Location</th><th>Keeps alive</th></tr></thead><tbody>");
    for x in &r.timers {
        let (name, loc) = x.callback.as_ref().map_or(("", ""), |c| (c.name.as_str(), c.location.as_deref().unwrap_or("")));
        let _ = write!(
            t,
            "<tr><td>{}</td><td class=\"n\" data-v=\"{}\">{}</td><td><code>{}</code></td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&x.kind),
            x.ms,
            x.ms,
            esc(name),
            esc(loc),
            yes_no(x.is_ref)
        );
    }
    t.push_str("</tbody></table>");
    p.section("timers", &format!("Timers ({})", r.timers.len()), &t);
    let mut t = String::from(
        "<table class=\"sortable\"><thead><tr><th>Kind</th><th>Class</th><th>Details</th><th>Keeps alive</th></tr></thead><tbody>",
    );
    for x in &r.handles {
        let details: Vec<String> = x
            .details
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                Value::Object(o) => format!(
                    "{k}: {} {} {}",
                    o.get("event").and_then(Value::as_str).unwrap_or(""),
                    o.get("name").and_then(Value::as_str).unwrap_or(""),
                    o.get("location").and_then(Value::as_str).unwrap_or("")
                ),
                other => format!("{k}: {other}"),
            })
            .collect();
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&x.kind),
            esc(&format!("{}{}", x.class, x.handle.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())),
            esc(&details.join("; ")),
            yes_no(x.is_ref)
        );
    }
    t.push_str("</tbody></table>");
    p.section("handles", &format!("Handles ({})", r.handles.len()), &t);
    p.finish()
}

fn count<'a>(items: impl Iterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

async fn collect(session: &Session) -> inspector::Result<Report> {
    // The prototype of Node's Timeout class, from a timer made and cleared at once.
    let proto = session
        .evaluate_object(
            "(() => { const t = setTimeout(() => {}, 0x7fffffff); clearTimeout(t); return Object.getPrototypeOf(t); })()",
            GROUP,
        )
        .await?;
    let proto_id = proto.object_id.ok_or_else(|| bad("no Timeout prototype"))?;
    let timers = session.query_objects(&proto_id, GROUP, Some(Duration::from_secs(120))).await?;
    let timers_id = timers.object_id.ok_or_else(|| bad("no timer array"))?;
    let collected = session.call_function_on(&timers_id, COLLECT, GROUP, true).await?;
    let collected_id = collected.object_id.ok_or_else(|| bad("the collector returned nothing"))?;
    let report = session.call_function_on_value(&collected_id, "function () { return this.report; }", GROUP).await?;
    let mut report: Report = serde_json::from_value(report).map_err(|e| bad(&e.to_string()))?;
    let fns = session.call_function_on(&collected_id, "function () { return this.fns; }", GROUP, false).await?;
    let fns_id = fns.object_id.ok_or_else(|| bad("no callbacks"))?;
    let locations = callback_locations(session, &fns_id).await?;
    let fill = |cb: &mut Option<Callback>| {
        if let Some(cb) = cb {
            cb.location = locations.get(&cb.index).cloned();
        }
    };
    for t in &mut report.timers {
        fill(&mut t.callback);
    }
    for h in &mut report.handles {
        if let Some(Value::Object(l)) = h.details.get_mut("listener") {
            let index = l.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
            if let Some(loc) = locations.get(&index) {
                l.insert("location".into(), Value::String(loc.clone()));
            }
        }
    }
    Ok(report)
}

fn bad(why: &str) -> inspector::Error {
    inspector::Error::BadReply { method: "handles".into(), why: why.into() }
}

/// index in the callbacks array -> `file:line:column`.
async fn callback_locations(session: &Session, fns_id: &str) -> inspector::Result<HashMap<usize, String>> {
    let props = session.own_properties(fns_id).await?;
    let fns: Vec<(usize, String)> =
        props.result.into_iter().filter_map(|p| Some((p.name.parse::<usize>().ok()?, p.value?.object_id?))).collect();
    let mut out = HashMap::new();
    if fns.is_empty() {
        return Ok(out);
    }
    let scripts = session.script_urls().await?;
    for (index, id) in fns {
        if let Some(loc) = session.function_location(&id, &scripts).await? {
            out.insert(index, loc);
        }
    }
    Ok(out)
}

fn human(label: &str, r: &Report, resources: &BTreeMap<String, usize>, requests: &BTreeMap<String, usize>, alive: usize) -> String {
    let mut o = String::new();
    o.push_str(&format!("{}\n\n", headline(label, resources, alive)));
    let table = Table { headers: vec!["Resource", "Count"], rows: resources.iter().map(|(k, v)| vec![k.clone(), v.to_string()]).collect() };
    o.push_str(&table.render(crate::output::terminal_width()));
    let unref = |is_ref: bool| if is_ref { "" } else { "  (unref'd)" };
    let cb = |c: &Option<Callback>| match c {
        Some(c) => format!("{} {}", c.name, c.location.as_deref().unwrap_or("(location unknown)")),
        None => String::new(),
    };
    if !r.timers.is_empty() {
        // Many timers from one place (a timer leak) read best grouped.
        let mut groups: Vec<(String, usize)> = Vec::new();
        for t in &r.timers {
            let every = if t.kind == "setInterval" { "every" } else { "after" };
            let line = format!("{:<11} {every} {:>6} ms  {}{}", t.kind, t.ms, cb(&t.callback), unref(t.is_ref));
            match groups.iter_mut().find(|g| g.0 == line) {
                Some(g) => g.1 += 1,
                None => groups.push((line, 1)),
            }
        }
        o.push_str(&format!("\ntimers ({}):\n", r.timers.len()));
        for (line, n) in groups {
            o.push_str(&format!("  {}{line}\n", if n > 1 { format!("{n} x ") } else { String::new() }));
        }
    }
    let listener = |h: &Handle| -> String {
        match h.details.get("listener") {
            Some(Value::Object(l)) => format!(
                "  {} listener {} {}",
                l.get("event").and_then(Value::as_str).unwrap_or(""),
                l.get("name").and_then(Value::as_str).unwrap_or(""),
                l.get("location").and_then(Value::as_str).unwrap_or("(location unknown)")
            ),
            _ => String::new(),
        }
    };
    let s = |h: &Handle, k: &str| h.details.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let sections: [(&str, &str); 8] = [
        ("server", "servers"),
        ("socket", "sockets"),
        ("udp", "UDP sockets"),
        ("child-process", "child processes"),
        ("child-stdio", "child stdio pipes"),
        ("watcher", "file watchers"),
        ("stdio", "stdio"),
        ("other", "other handles"),
    ];
    for (kind, title) in sections {
        let hs: Vec<&Handle> = r.handles.iter().filter(|h| h.kind == kind).collect();
        if hs.is_empty() {
            continue;
        }
        o.push_str(&format!("\n{title} ({}):\n", hs.len()));
        for h in hs {
            let what = match kind {
                "server" => format!(
                    "{} {} ({}, {}){}",
                    h.handle.as_deref().unwrap_or("?"),
                    s(h, "address"),
                    h.class,
                    match h.details.get("connections").and_then(Value::as_u64) {
                        Some(1) => "1 connection".to_string(),
                        Some(c) => format!("{c} connections"),
                        None => "connections unknown".to_string(),
                    },
                    listener(h)
                ),
                "socket" => match h.details.get("path").and_then(Value::as_str) {
                    Some(p) => format!("{} {p}{}", h.handle.as_deref().unwrap_or("?"), listener(h)),
                    None => format!("{} {} -> {}{}", h.handle.as_deref().unwrap_or("?"), s(h, "local"), s(h, "remote"), listener(h)),
                },
                "udp" => format!("{} {}{}", h.class, s(h, "address"), listener(h)),
                "child-process" => {
                    format!("pid {}: {}{}", h.details.get("pid").and_then(Value::as_u64).unwrap_or(0), s(h, "command"), listener(h))
                }
                "child-stdio" => {
                    format!("{} of pid {}", h.handle.as_deref().unwrap_or("?"), h.details.get("pid").and_then(Value::as_u64).unwrap_or(0))
                }
                "watcher" => format!("{} ({}){}", h.class, if h.class == "StatWatcher" { "fs.watchFile" } else { "fs.watch" }, listener(h)),
                "stdio" => {
                    format!("fd {} ({})", h.details.get("fd").and_then(Value::as_u64).unwrap_or(0), h.handle.as_deref().unwrap_or("?"))
                }
                _ => format!("{} ({})", h.class, h.handle.as_deref().unwrap_or("?")),
            };
            o.push_str(&format!("  {what}{}\n", unref(h.is_ref)));
        }
    }
    if !requests.is_empty() {
        let list: Vec<String> = requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
        o.push_str(&format!("\npending requests: {}\n", list.join(", ")));
    }
    o
}
