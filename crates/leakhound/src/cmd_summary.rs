//! `leakhound summary FILE`: totals and the class table.

use crate::output::{bytes, terminal_width, Table};
use crate::{load, SnapshotArgs};
use anyhow::Result;
use heapsnap::summary::{apply_distances, class_summaries, ClassSummary};
use heapsnap::{analyze, distances, AnalysisOptions};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SortBy {
    Retained,
    Shallow,
    Count,
}

#[derive(Serialize)]
struct JsonClass<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<[u32; 3]>,
    count: u64,
    shallow_size: u64,
    retained_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance: Option<u32>,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    schema_version: u32,
    command: &'static str,
    file: String,
    nodes: usize,
    edges: usize,
    strings: usize,
    total_size: u64,
    shallow_sizes: &'static str,
    classes_total: usize,
    classes: Vec<JsonClass<'a>>,
}

pub fn run(args: &SnapshotArgs, top: usize, sort: SortBy, html: Option<&std::path::Path>) -> Result<ExitCode> {
    if let Some(p) = html {
        crate::report::check_output(p, "--html")?;
    }
    let mut t = crate::output::Timer::new();
    let mut snap = load::load(args)?;
    t.phase("parse");
    let total_size = snap.total_size();
    // Nothing below follows an edge: they are freed once the dominators are
    // known, so the class table's arrays reuse their memory.
    let edge_count = snap.edge_count();
    let analysis = analyze(
        &mut snap,
        AnalysisOptions {
            fold_shallow_sizes: !args.raw_sizes,
            dominator_tree: true,
            class_distances: true,
            drop_edges: true,
            observer: crate::debug_laps::observer(),
            ..Default::default()
        },
    );
    let classes = analysis.classes.expect("asked for classes");
    let class_dist = analysis.class_distances.expect("asked for class distances");
    t.phase("dominators, retained sizes, classes, distances");
    // The class table walks the dominator tree's child lists; the parent
    // array can go now (memory is what is scarce).
    let tree = analysis.tree.expect("asked for the dominator tree");
    let retained = analysis.retained;
    drop(analysis.idom);
    let mut rows = class_summaries(&snap, &classes, &tree, &retained);
    drop(tree);
    drop(retained);
    apply_distances(&mut rows, &classes, &class_dist);
    t.phase("class aggregates");
    sort_rows(&mut rows, sort);
    let shown = &rows[..rows.len().min(top)];
    if let Some(path) = html {
        // The page lists more than --top: it sorts and scrolls.
        let page_rows: Vec<_> = rows
            .iter()
            .take(crate::report::html::MAX_ROWS + 1)
            .map(|r| crate::report::html::ClassRow {
                name: r.key.name.clone(),
                distance: (r.distance != distances::UNREACHABLE).then_some(r.distance),
                count: r.count,
                shallow: r.shallow_size,
                retained: r.retained_size,
            })
            .collect();
        let file = args.file.display().to_string();
        let cmd = crate::report::html::command_line();
        let page = crate::report::html::summary_page(&file, snap.node_count(), edge_count, total_size, &page_rows, &cmd);
        crate::report::write_page(path, &page)?;
    }

    if args.json {
        let out = JsonSummary {
            schema_version: 1,
            command: "summary",
            file: args.file.display().to_string(),
            nodes: snap.node_count(),
            edges: edge_count,
            strings: snap.strings.len(),
            total_size,
            shallow_sizes: if args.raw_sizes { "raw" } else { "devtools" },
            classes_total: rows.len(),
            classes: shown
                .iter()
                .map(|r| JsonClass {
                    name: &r.key.name,
                    location: r.key.location.map(|(a, b, c)| [a, b, c]),
                    count: r.count,
                    shallow_size: r.shallow_size,
                    retained_size: r.retained_size,
                    distance: (r.distance != distances::UNREACHABLE).then_some(r.distance),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!(
        "{}: {}, {}, {} total",
        args.file.display(),
        crate::output::count(snap.node_count() as u64, "node"),
        crate::output::count(edge_count as u64, "edge"),
        bytes(total_size)
    );
    println!();
    let table = Table {
        headers: vec!["Class", "Distance", "Count", "Shallow", "Retained", "% heap"],
        rows: shown
            .iter()
            .map(|r| {
                vec![
                    r.key.name.clone(),
                    distances::display(r.distance),
                    crate::output::int(r.count),
                    bytes(r.shallow_size),
                    bytes(r.retained_size),
                    format!("{:.1}%", 100.0 * r.retained_size as f64 / total_size.max(1) as f64),
                ]
            })
            .collect(),
    };
    print!("{}", table.render(terminal_width()));
    if rows.len() > shown.len() {
        println!("… {} (--top N to list more)", crate::output::count_of((rows.len() - shown.len()) as u64, "more class", "more classes"));
    }
    Ok(ExitCode::SUCCESS)
}

fn sort_rows(rows: &mut [ClassSummary], sort: SortBy) {
    match sort {
        SortBy::Retained => rows.sort_by(|a, b| b.retained_size.cmp(&a.retained_size).then(a.key.name.cmp(&b.key.name))),
        SortBy::Shallow => rows.sort_by(|a, b| b.shallow_size.cmp(&a.shallow_size).then(a.key.name.cmp(&b.key.name))),
        SortBy::Count => rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.name.cmp(&b.key.name))),
    }
}
