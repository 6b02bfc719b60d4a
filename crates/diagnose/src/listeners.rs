//! Event listeners per emitter, from a heap snapshot: every object with an
//! `_events` table (Node's EventEmitter and its subclasses: servers,
//! sockets, streams, process), its listener count per event name and where
//! the listener functions are defined. Counts above a threshold are what
//! Node's MaxListenersExceededWarning warns about, and a count that grows
//! between snapshots is the classic listener leak.

use crate::describe::class_name;
use heapsnap::classes::Classes;
use heapsnap::source::{ScriptNames, SourceLocation};
use heapsnap::{EdgeKind, EdgeName, HeapSnapshot, NodeIndex, NodeKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// Where listeners of one event are defined, with how many come from there.
#[derive(Clone, Debug, Serialize)]
pub struct ListenerSite {
    pub function: String,
    pub location: Option<SourceLocation>,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EventListeners {
    pub event: String,
    pub count: u64,
    /// Above the threshold (Node warns above 10 by default).
    pub flagged: bool,
    /// Largest first.
    pub sites: Vec<ListenerSite>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Emitter {
    pub id: u32,
    pub class: String,
    pub total: u64,
    pub events: Vec<EventListeners>,
}

/// Every emitter with at least one listener, the most listeners first.
pub fn emitters(s: &HeapSnapshot, classes: &Classes, scripts: &ScriptNames, threshold: u64) -> Vec<Emitter> {
    let mut out = Vec::new();
    for n in s.nodes() {
        if s.kind(n) != NodeKind::Object {
            continue;
        }
        let Some(table) = s
            .edges(n)
            .find(|&e| s.edge_kind(e) == EdgeKind::Property && matches!(s.edge_name(e), EdgeName::Name("_events")))
            .map(|e| s.edge_target(e))
        else {
            continue;
        };
        if s.kind(table) != NodeKind::Object {
            continue;
        }
        let mut events = Vec::new();
        for e in s.edges(table) {
            if s.edge_kind(e) != EdgeKind::Property {
                continue;
            }
            let EdgeName::Name(event) = s.edge_name(e) else { continue };
            if event == "__proto__" {
                continue;
            }
            let fns = listener_functions(s, s.edge_target(e));
            if fns.is_empty() {
                continue;
            }
            // (listener name, its script and position) -> (where, how many)
            #[allow(clippy::type_complexity)]
            let mut sites: BTreeMap<(String, Option<(u32, u32, u32)>), (Option<SourceLocation>, u64)> = BTreeMap::new();
            for f in &fns {
                let loc = scripts.location(s, *f);
                let name = s.name(*f);
                let key = (
                    if name.is_empty() { "(anonymous)".to_string() } else { name.to_string() },
                    loc.as_ref().map(|l| (l.script_id, l.line, l.column)),
                );
                let slot = sites.entry(key).or_insert((loc, 0));
                slot.1 += 1;
            }
            let mut sites: Vec<ListenerSite> =
                sites.into_iter().map(|((function, _), (location, count))| ListenerSite { function, location, count }).collect();
            sites.sort_by(|a, b| b.count.cmp(&a.count).then(a.function.cmp(&b.function)));
            let count = fns.len() as u64;
            events.push(EventListeners { event: crate::redact::edge_name(s, e).into_owned(), count, flagged: count > threshold, sites });
        }
        if events.is_empty() {
            continue;
        }
        events.sort_by(|a, b| b.count.cmp(&a.count).then(a.event.cmp(&b.event)));
        let total = events.iter().map(|e| e.count).sum();
        out.push(Emitter { id: s.id(n), class: class_name(classes, n).to_string(), total, events });
    }
    out.sort_by(|a, b| {
        let (ma, mb) = (a.events[0].count, b.events[0].count);
        mb.cmp(&ma).then(b.total.cmp(&a.total)).then(a.id.cmp(&b.id))
    });
    out
}

/// The functions behind one `_events` entry: a function, an array of them,
/// or `once` wrappers (objects whose `listener` is the function).
fn listener_functions(s: &HeapSnapshot, t: NodeIndex) -> Vec<NodeIndex> {
    let unwrap = |x: NodeIndex| -> Option<NodeIndex> {
        match s.kind(x) {
            NodeKind::Closure => {
                // `once` registers a bound wrapper carrying `.listener`.
                let wrapped = s.child_by_name(x, "listener").filter(|&f| s.kind(f) == NodeKind::Closure);
                Some(wrapped.unwrap_or(x))
            }
            NodeKind::Object => s.child_by_name(x, "listener").filter(|&f| s.kind(f) == NodeKind::Closure),
            _ => None,
        }
    };
    match s.kind(t) {
        NodeKind::Closure => unwrap(t).into_iter().collect(),
        NodeKind::Object if s.name(t) == "Array" => {
            s.edges(t).filter(|&e| s.edge_kind(e) == EdgeKind::Element).filter_map(|e| unwrap(s.edge_target(e))).collect()
        }
        NodeKind::Object => unwrap(t).into_iter().collect(),
        _ => Vec::new(),
    }
}
