//! `leakhound node FILE --id ID`: one object in detail.

use crate::flags::SourceArgs;
use crate::output::bytes;
use crate::{load, SnapshotArgs};
use anyhow::{bail, Result};
use diagnose::describe::{class_name, edge_label, node_label};
use heapsnap::retainers::{edge_source, Retainers};
use heapsnap::source::ScriptNames;
use heapsnap::{analyze, classes, distances, AnalysisOptions};
use serde::Serialize;
use std::fmt::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct JsonEdge {
    edge: String,
    edge_type: &'static str,
    node_id: u32,
    node: String,
    retained_size: u64,
}

#[derive(Serialize)]
struct JsonNode {
    schema_version: u32,
    command: &'static str,
    id: u32,
    node_type: &'static str,
    name: String,
    class: String,
    self_size: u64,
    retained_size: u64,
    distance: Option<u32>,
    dominator_id: u32,
    dominator: String,
    location: Option<heapsnap::source::SourceLocation>,
    edge_count: usize,
    edges: Vec<JsonEdge>,
    retainer_count: usize,
    retainers: Vec<JsonEdge>,
}

pub fn run(args: &SnapshotArgs, id: u32, limit: usize, sources: &SourceArgs) -> Result<ExitCode> {
    let mut view = sources.view()?;
    let mut snap = load::load(args)?;
    let Some(n) = snap.node_by_id(id) else {
        bail!("{}: no object with id @{id}", args.file.display());
    };
    let analysis = analyze(
        &mut snap,
        AnalysisOptions { fold_shallow_sizes: !args.raw_sizes, observer: crate::debug_laps::observer(), ..Default::default() },
    );
    let classes = classes::compute(&snap);
    let dist = distances::compute(&snap);
    let retainers = Retainers::build(&snap);
    let scripts = ScriptNames::build(&snap);
    let label = |m| node_label(&snap, &classes, &scripts, m);
    let edges: Vec<JsonEdge> = snap
        .edges(n)
        .take(limit)
        .map(|e| {
            let t = snap.edge_target(e);
            JsonEdge {
                edge: edge_label(&snap, e),
                edge_type: snap.edge_kind(e).type_name(),
                node_id: snap.id(t),
                node: label(t),
                retained_size: analysis.retained[t as usize],
            }
        })
        .collect();
    let rets: Vec<JsonEdge> = retainers
        .of(n)
        .iter()
        .take(limit)
        .map(|&e| {
            let src = edge_source(&snap, e);
            JsonEdge {
                edge: edge_label(&snap, e),
                edge_type: snap.edge_kind(e).type_name(),
                node_id: snap.id(src),
                node: label(src),
                retained_size: analysis.retained[src as usize],
            }
        })
        .collect();
    let dom = analysis.idom[n as usize];
    let j = JsonNode {
        schema_version: 1,
        command: "node",
        id,
        node_type: snap.kind(n).type_name(),
        name: diagnose::redact::node_name(&snap, n).into_owned(),
        class: class_name(&classes, n).to_string(),
        self_size: snap.self_size(n),
        retained_size: analysis.retained[n as usize],
        distance: (dist[n as usize] != distances::UNREACHABLE).then_some(dist[n as usize]),
        dominator_id: snap.id(dom),
        dominator: label(dom),
        location: scripts.location(&snap, n),
        edge_count: snap.edge_count_of(n),
        edges,
        retainer_count: retainers.of(n).len(),
        retainers: rets,
    };
    if args.json {
        let mut doc = serde_json::to_value(&j)?;
        view.map_json(&mut doc);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    // The text, with every location that has a source map at its original line.
    let mut o = String::new();
    let _ = writeln!(o, "@{} {} ({})", j.id, label(n), j.node_type);
    let _ = writeln!(o, "  name        {}", crate::output::clip(&j.name, 100));
    let _ = writeln!(o, "  self size   {} ({})", bytes(j.self_size), crate::output::count(j.self_size, "byte"));
    let _ = writeln!(o, "  retained    {} ({})", bytes(j.retained_size), crate::output::count(j.retained_size, "byte"));
    let _ = writeln!(o, "  distance    {}", distances::display(dist[n as usize]));
    let _ = writeln!(o, "  dominator   @{} {}", j.dominator_id, j.dominator);
    if let Some(l) = &j.location {
        let _ = writeln!(o, "  defined at  {l}");
    }
    let _ = writeln!(o, "  edges ({}):", crate::output::int(j.edge_count as u64));
    for e in &j.edges {
        let _ =
            writeln!(o, "    {:<24} -> @{} {}  [retains {}]", crate::output::clip(&e.edge, 24), e.node_id, e.node, bytes(e.retained_size));
    }
    if j.edge_count > j.edges.len() {
        let _ = writeln!(o, "    … {} more", crate::output::int((j.edge_count - j.edges.len()) as u64));
    }
    let _ = writeln!(o, "  retainers ({}):", crate::output::int(j.retainer_count as u64));
    for e in &j.retainers {
        let _ = writeln!(o, "    @{} {} {} ", e.node_id, e.node, e.edge);
    }
    if j.retainer_count > j.retainers.len() {
        let _ = writeln!(o, "    … {} more", crate::output::int((j.retainer_count - j.retainers.len()) as u64));
    }
    print!("{}", view.map_text(&o));
    Ok(ExitCode::SUCCESS)
}
