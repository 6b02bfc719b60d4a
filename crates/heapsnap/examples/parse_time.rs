//! Times the parse of one snapshot: `cargo run --release --example parse_time -- FILE [threads]`.
fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let threads = std::env::args().nth(2).map(|t| t.parse().unwrap()).unwrap_or(0);
    let t = std::time::Instant::now();
    let s = heapsnap::read_snapshot(path.as_ref(), heapsnap::ParseOptions { threads, ..Default::default() }).unwrap();
    eprintln!(
        "parsed {} nodes, {} edges, {} strings in {:.2?}; {} MiB held",
        s.node_count(),
        s.edge_count(),
        s.strings.len(),
        t.elapsed(),
        s.heap_bytes() >> 20
    );
}
