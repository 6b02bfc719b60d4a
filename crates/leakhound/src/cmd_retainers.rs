//! `leakhound retainers FILE (--id ID | --class NAME)`: why objects are kept.

use crate::flags::SourceArgs;
use crate::output::bytes;
use crate::{load, SnapshotArgs};
use anyhow::{bail, Result};
use diagnose::describe::{class_name, node_label, path_json, path_text, JsonPath};
use heapsnap::retainers::{shortest_paths, Retainers};
use heapsnap::source::ScriptNames;
use heapsnap::{analyze, classes, distances, AnalysisOptions, NodeIndex};
use serde::Serialize;
use std::fmt::Write;
use std::process::ExitCode;

#[derive(Serialize)]
struct JsonObject {
    id: u32,
    class: String,
    node: String,
    self_size: u64,
    retained_size: u64,
    distance: Option<u32>,
    paths: Vec<JsonPath>,
}

#[derive(Serialize)]
struct JsonRetainers {
    schema_version: u32,
    command: &'static str,
    file: String,
    objects: Vec<JsonObject>,
}

pub fn run(args: &SnapshotArgs, id: Option<u32>, class: Option<&str>, k: usize, objects: usize, sources: &SourceArgs) -> Result<ExitCode> {
    let mut view = sources.view()?;
    let mut snap = load::load(args)?;
    let analysis = analyze(
        &mut snap,
        AnalysisOptions { fold_shallow_sizes: !args.raw_sizes, observer: crate::debug_laps::observer(), ..Default::default() },
    );
    let classes = classes::compute(&snap);
    let targets: Vec<NodeIndex> = match (id, class) {
        (Some(id), _) => match snap.node_by_id(id) {
            Some(n) => vec![n],
            None => bail!("{}: no object with id @{id}", args.file.display()),
        },
        (None, Some(name)) => {
            // As typed, or as printed (`onTick()`).
            let mut members: Vec<NodeIndex> = Vec::new();
            for v in crate::suggest::class_variants(name) {
                members = snap.nodes().filter(|&n| class_name(&classes, n) == v && snap.self_size(n) > 0).collect();
                if !members.is_empty() {
                    break;
                }
            }
            if members.is_empty() {
                // A function as printed in paths: `onTick()` or `onTick() app.js:12`.
                let f = crate::suggest::function_name(name);
                members = snap.nodes().filter(|&n| snap.kind(n) == heapsnap::NodeKind::Closure && snap.name(n) == f).collect();
            }
            if members.is_empty() {
                let names: std::collections::BTreeSet<&str> = snap.nodes().map(|n| class_name(&classes, n)).collect();
                let hint = crate::suggest::did_you_mean(&crate::suggest::near(name, names.into_iter()));
                bail!("{}: no objects of class {name:?}{hint}", args.file.display());
            }
            members.sort_by(|&a, &b| analysis.retained[b as usize].cmp(&analysis.retained[a as usize]).then(a.cmp(&b)));
            members.truncate(objects.max(1));
            members
        }
        (None, None) => bail!("give --id ID or --class NAME"),
    };
    let dist = distances::compute(&snap);
    let retainers = Retainers::build(&snap);
    let scripts = ScriptNames::build(&snap);
    let mut out = Vec::new();
    for &t in &targets {
        let paths = shortest_paths(&snap, &retainers, &dist, t, k);
        out.push((t, paths));
    }
    if args.json {
        let objects = out
            .iter()
            .map(|(t, paths)| JsonObject {
                id: snap.id(*t),
                class: class_name(&classes, *t).to_string(),
                node: node_label(&snap, &classes, &scripts, *t),
                self_size: snap.self_size(*t),
                retained_size: analysis.retained[*t as usize],
                distance: (dist[*t as usize] != distances::UNREACHABLE).then_some(dist[*t as usize]),
                paths: paths.iter().map(|p| path_json(&snap, &classes, &scripts, p)).collect(),
            })
            .collect();
        let j = JsonRetainers { schema_version: 1, command: "retainers", file: args.file.display().to_string(), objects };
        let mut doc = serde_json::to_value(&j)?;
        view.map_json(&mut doc);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    // The text, with every location that has a source map at its original line.
    let mut o = String::new();
    for (t, paths) in &out {
        let _ = writeln!(
            o,
            "{} @{}: self {}, retains {}, distance {}",
            node_label(&snap, &classes, &scripts, *t),
            snap.id(*t),
            bytes(snap.self_size(*t)),
            bytes(analysis.retained[*t as usize]),
            distances::display(dist[*t as usize]),
        );
        if *t == snap.root() {
            let _ = writeln!(o, "  this is the snapshot's root: nothing retains it");
        } else if paths.is_empty() {
            let _ = writeln!(o, "  no path from a root: the object is unreachable (garbage not yet collected)");
        }
        for (i, p) in paths.iter().enumerate() {
            let _ = writeln!(o, "  {}. {}", i + 1, path_text(&snap, &classes, &scripts, p));
        }
        let _ = writeln!(o);
    }
    print!("{}", view.map_text(&o));
    Ok(ExitCode::SUCCESS)
}
