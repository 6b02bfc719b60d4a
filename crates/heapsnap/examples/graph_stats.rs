//! Shape statistics of a snapshot's graph, per node type: how many nodes are
//! leaves and how many essential retainers they have. Used to tune the
//! dominator pass: `cargo run --release --example graph_stats -- FILE`.
use heapsnap::{flags, read_snapshot, NodeKind, ParseOptions};
use std::collections::BTreeMap;

fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let s = read_snapshot(path.as_ref(), ParseOptions::default()).unwrap();
    let page = flags::page_owned(&s);
    let ess = flags::essential_edges(&s, Some(&page));
    let mut preds = vec![0u32; s.node_count()];
    for e in 0..s.edge_count() as u32 {
        if ess.get(e as usize) {
            preds[s.edge_target(e) as usize] += 1;
        }
    }
    // kind -> [nodes, leaves, leaves with 1 retainer, with 2+, with 0]
    let mut t: BTreeMap<NodeKind, [u64; 5]> = BTreeMap::new();
    for n in s.nodes() {
        let r = t.entry(s.kind(n)).or_default();
        r[0] += 1;
        let leaf = !s.edges(n).any(|e| ess.get(e as usize));
        if leaf {
            r[1] += 1;
            match preds[n as usize] {
                0 => r[4] += 1,
                1 => r[2] += 1,
                _ => r[3] += 1,
            }
        }
    }
    println!("{:<22} {:>10} {:>10} {:>10} {:>10} {:>10}", "kind", "nodes", "leaves", "1 ret", "2+ ret", "0 ret");
    for (k, r) in t {
        println!("{:<22} {:>10} {:>10} {:>10} {:>10} {:>10}", k.type_name(), r[0], r[1], r[2], r[3], r[4]);
    }
}
