//! Benchmark peer: the `v8-heap-parser` crate (the engine behind VS Code's
//! heap snapshot viewer) used as a CLI that does the same job as
//! `leakhound summary`: parse a snapshot, compute retained sizes (dominator
//! tree) and print a per-class summary.
//!
//! Usage:
//!   cargo build --release --example v8hp_summary -p heapsnap
//!   target/release/examples/v8hp_summary FILE [--reader] [--top N]
//!
//! By default the whole file is read into memory and decoded with
//! `decode_slice`: that is the path the crate itself uses for its
//! WebAssembly build (`decode_bytes`) and it is much faster than
//! `decode_reader` (serde_json's reader path pulls one byte at a time through
//! the `io::Read` trait). `--reader` switches to `decode_reader` over a
//! `BufReader`, which uses less memory (no copy of the file) but is slower.
//!
//! Timings of each phase go to stderr; the summary goes to stdout.

use std::fs::File;
use std::io::{BufReader, Write};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut path: Option<String> = None;
    let mut use_reader = false;
    let mut top = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reader" => use_reader = true,
            "--slice" => use_reader = false,
            "--top" => {
                top = match args.next().and_then(|v| v.parse().ok()) {
                    Some(n) => n,
                    None => {
                        eprintln!("--top needs a number");
                        return ExitCode::from(2);
                    }
                }
            }
            "-h" | "--help" => {
                eprintln!("usage: v8hp_summary FILE [--reader|--slice] [--top N]");
                return ExitCode::SUCCESS;
            }
            _ if path.is_none() => path = Some(a),
            _ => {
                eprintln!("unexpected argument: {a}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = path else {
        eprintln!("usage: v8hp_summary FILE [--reader|--slice] [--top N]");
        return ExitCode::from(2);
    };

    let t0 = Instant::now();
    let graph = if use_reader {
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("cannot open {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        v8_heap_parser::decode_reader(BufReader::with_capacity(1 << 20, f))
    } else {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        // `bytes` is dropped right after decoding, as a real caller would.
        v8_heap_parser::decode_slice(&bytes)
    };
    let graph = match graph {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cannot parse {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let t_parse = t0.elapsed();

    let t1 = Instant::now();
    // false = compute retained sizes (dominator tree), like `leakhound summary`.
    let groups = graph.get_class_groups(false);
    let t_groups = t1.elapsed();

    let node_count = graph.nodes().len();
    let total_self: u64 = graph.nodes().iter().map(|n| n.weight.self_size).sum();

    // get_class_groups returns groups sorted by retained size, descending.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "nodes: {node_count}");
    let _ = writeln!(out, "classes: {}", groups.len());
    let _ = writeln!(out, "total self size: {total_self}");
    let _ = writeln!(out, "{:<40} {:>10} {:>14} {:>14}", "class", "count", "self size", "retained size");
    for g in groups.iter().take(top) {
        let name = graph.get_node(g.index).map(|n| n.class_name()).unwrap_or("?");
        let name: String =
            if name.chars().count() > 40 { name.chars().take(39).chain(std::iter::once('…')).collect() } else { name.to_string() };
        let _ = writeln!(out, "{:<40} {:>10} {:>14} {:>14}", name, g.nodes.len(), g.self_size, g.retained_size);
    }
    let _ = out.flush();
    eprintln!(
        "[v8hp_summary] decode ({}): {:.3}s, class groups + retained sizes: {:.3}s, total: {:.3}s",
        if use_reader { "reader" } else { "slice" },
        t_parse.as_secs_f64(),
        t_groups.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
