//! `patterns::classify` and `patterns::advice`, one row per rule: the
//! evidence a suspect carries, the pattern it must get, and the advice text.
//! (The snapshots in `tests/data` exercise the same functions end to end.)

use diagnose::evidence::{Accumulator, ClassCount, Step};
use diagnose::patterns::{advice, classify, Evidence, Pattern};
use heapsnap::source::SourceLocation;
use heapsnap::NodeKind;

fn step(edge: &str, edge_type: &'static str, node_id: u32, node: &str, class: &str) -> Step {
    Step { edge: edge.into(), edge_type, node_id, node: node.into(), class: class.into(), location: None }
}

fn accumulator(name: &str, class: &str) -> Accumulator {
    Accumulator {
        id: 7,
        name: name.into(),
        class: class.into(),
        alive: vec![true; 3],
        entries: vec![None, None, Some(600)],
        retained: vec![None, None, Some(60_000)],
        grows_every_step: true,
        similar: 0,
    }
}

/// `const lookup = memoize(fn)`: the closure, its context, the Map in it.
fn wrapper_path() -> Vec<Step> {
    vec![
        step("lookup", "context", 3, "memoized() /srv/app.js:3:10", "Function"),
        step("context", "internal", 4, "system / Context", "system / Context"),
        step("memo", "context", 7, "Map", "Map"),
    ]
}

fn count(class: &str, count: u64, bytes: u64) -> ClassCount {
    ClassCount { class: class.into(), count, bytes }
}

/// One row: how the suspect looks.
struct Row {
    what: &'static str,
    acc: Accumulator,
    kind: NodeKind,
    path: Vec<Step>,
    classes: Vec<ClassCount>,
    roots: u64,
    bytes: u64,
    closure_bytes: u64,
    resource_store: bool,
    object_keys: (u64, u64, Option<String>),
    call_scope: bool,
}

fn row(what: &'static str, acc: Accumulator) -> Row {
    Row {
        what,
        acc,
        kind: NodeKind::Object,
        // A local variable's collection, reached through an object: no rule but the last.
        path: vec![step("app", "property", 3, "App", "App"), step("items", "property", 7, "Array", "Array")],
        classes: vec![count("Item", 600, 48_000)],
        roots: 600,
        bytes: 48_000,
        closure_bytes: 0,
        resource_store: false,
        object_keys: (0, 0, None),
        call_scope: false,
    }
}

#[test]
fn each_rule_names_its_pattern_and_advice() {
    let at = SourceLocation { file: Some("/srv/app.js".into()), line: 12, column: 5, script_id: 40 };
    let module_path = vec![step("cache", "context", 7, "Map", "Map")];
    let table: Vec<(Row, Pattern, &str)> = vec![
        (
            Row {
                resource_store: true,
                classes: vec![count("Timeout", 600, 48_000)],
                ..row("store beats timers", accumulator("store", "Object"))
            },
            Pattern::AsyncContext,
            "Timeout objects stay alive because they are AsyncLocalStorage stores captured by async work that never \
             finishes (a pending timer, socket or promise started inside als.run() (created at /srv/app.js:12:5)). Keep \
             only ids in the store and look the data up, and don't start long-lived timers or listeners inside als.run() \
             (call them via als.exit() or clear them).",
        ),
        (
            Row {
                classes: vec![count("Timeout", 300, 20_000), count("Item", 300, 28_000)],
                ..row("timer share 0.42", accumulator("timers", "Array"))
            },
            Pattern::Timers,
            "About 300 timers per step are started and never cleared (created at /srv/app.js:12:5); each keeps its \
             callback and everything it closes over. Keep the handle and call clearInterval()/clearTimeout() when the \
             work or the request ends (req.on('close')); unref() does not free it.",
        ),
        (
            Row {
                path: vec![step("_events", "property", 5, "Object", "Object"), step("tick", "property", 7, "Array", "Array")],
                ..row("listener array", accumulator("bus._events.tick", "Array"))
            },
            Pattern::EventListeners,
            "bus._events.tick gains about 300 listeners per step and none is removed (created at /srv/app.js:12:5). \
             Remove the listener when its request or connection ends (emitter.off(event, fn) in res.on('close')), or \
             use emitter.once() if it should fire once. Node's MaxListenersExceededWarning was this leak's early sign.",
        ),
        (
            Row { classes: vec![count("Socket", 600, 48_000)], ..row("sockets", accumulator("conns", "Set")) },
            Pattern::Sockets,
            "About 300 sockets or connections per step are opened and never closed (created at /srv/app.js:12:5). End \
             them when done (socket.end()/destroy(), set a timeout), or reuse connections through a pool or a \
             keep-alive Agent with maxSockets.",
        ),
        (
            Row {
                path: vec![
                    step("render", "context", 5, "render() /srv/app.js:3:1", "Function"),
                    step("cache", "property", 7, "Object", "Object"),
                ],
                ..row("cache on a function", accumulator("render.cache", "Object"))
            },
            Pattern::Memoization,
            "render.cache memoizes on the function object render() with a new key for every call, and never evicts. \
             Bound the cache: an LRU with a max size and a ttl (e.g. lru-cache { max: 1000, ttl: 60_000 }), or memoize \
             only over a small, fixed key space.",
        ),
        (
            Row { object_keys: (300, 600, Some("Request".into())), ..row("object keys", accumulator("seen", "Map")) },
            Pattern::ObjectKeyedMap,
            "seen (Map) is keyed by Request objects, so it keeps every key and its value alive after the program is \
             done with them (created at /srv/app.js:12:5). Use a WeakMap (or WeakSet) keyed by the object, or delete \
             the entry when the object's life ends.",
        ),
        (
            Row { object_keys: (300, 600, Some("Function".into())), ..row("callbacks as keys", accumulator("feed.#subscribers", "Set")) },
            Pattern::EventListeners,
            "feed.#subscribers (Set) holds callbacks, and gains about 300 per step that are never removed (created at \
             /srv/app.js:12:5): subscriptions never undone. Remove the callback when its request or connection ends \
             (call the unsubscribe function, or feed.#subscribers.delete(fn), in res.on('close')). Not a WeakSet: it \
             would drop callbacks still subscribed.",
        ),
        (
            Row { object_keys: (300, 600, Some("Function".into())), ..row("callbacks as Map keys", accumulator("completionHooks", "Map")) },
            Pattern::EventListeners,
            "completionHooks (Map) holds callbacks, and gains about 300 per step that are never removed (created at \
             /srv/app.js:12:5): subscriptions never undone. Remove the callback when its request or connection ends \
             (call the unsubscribe function, or completionHooks.delete(fn), in res.on('close')). Not a WeakMap: it \
             would drop callbacks still subscribed.",
        ),
        (
            Row { closure_bytes: 1_500_000, bytes: 2_400_000, ..row("big closures", accumulator("handlers", "Array")) },
            Pattern::ClosureCapture,
            "handlers keeps about 300 closures per step, each holding 4.0 kB through its captured scope (created at \
             /srv/app.js:12:5). Narrow what the closure captures (copy the few fields it needs into locals, set big \
             variables to null), and remove the closures when they are done.",
        ),
        (
            Row {
                path: vec![
                    step("trails", "context", 3, "Map", "Map"),
                    step("table", "internal", 4, "(object elements)", "(array)"),
                    step("12", "hidden", 5, "AuditTrail", "AuditTrail"),
                    step("#events", "property", 7, "Array", "Array"),
                ],
                ..row("a field of each Map value", accumulator("trails.get(…).#events", "Array"))
            },
            Pattern::PerKeyCollection,
            "trails.get(…).#events (Array): every value of trails (Map) keeps its own collection, and it gains about \
             300 Item per step that are never removed (created at /srv/app.js:12:5). Bound each one where it is added \
             (keep the last N, e.g. splice to 100 after push, or a ring buffer), and evict the keys too: delete the \
             entry when its tenant, session or user is done, or make the Map an LRU with max.",
        ),
        (
            Row { path: module_path.clone(), ..row("module-level Map", accumulator("cache", "Map")) },
            Pattern::GlobalCollection,
            "cache (Map) is module-level and gains about 300 Item per step that are never removed (created at \
             /srv/app.js:12:5). Bound it: an LRU cache with max and ttl (e.g. lru-cache { max: 1000, ttl: 60_000 }), a \
             ring buffer of the last N, or delete entries when their request ends.",
        ),
        (
            Row {
                // A loader's module registry leads to a module's own array: not per key.
                path: vec![
                    step("idToModuleMap", "property", 3, "Map", "Map"),
                    step("table", "internal", 4, "(object elements)", "(array)"),
                    step("27", "hidden", 5, "EvaluatedModuleNode", "EvaluatedModuleNode"),
                    step("exports", "property", 6, "Module", "Module"),
                    step("get items", "property", 8, "(anonymous)()", "Function"),
                    step("context", "internal", 9, "system / Context", "system / Context"),
                    step("2", "hidden", 7, "Array", "Array"),
                ],
                ..row("a Map far above", accumulator("[2]", "Array"))
            },
            Pattern::UnboundedGrowth,
            "[2] (Array) gains about 300 Item per step and nothing removes them",
        ),
        (
            row("nothing specific", accumulator("app.items", "Array")),
            Pattern::UnboundedGrowth,
            "app.items (Array) gains about 300 Item per step and nothing removes them (created at /srv/app.js:12:5). \
             Find where entries are added, and bound it or delete them when done.",
        ),
        (
            Row {
                kind: NodeKind::Closure,
                path: vec![step("fib", "context", 7, "fib() /srv/app.js:1:1", "Function")],
                ..row("the function itself", accumulator("fib", "Function"))
            },
            Pattern::Memoization,
            "fib memoizes on the function object fib() with a new key for every call",
        ),
        (
            // `const lookup = memoize(fn)`: the Map lives in memoize()'s call scope.
            Row { path: wrapper_path(), call_scope: true, ..row("a memoizing wrapper's Map", accumulator("memo", "Map")) },
            Pattern::Memoization,
            "memo is the cache of a memoizing wrapper: memoized() keeps it in the scope of the call that made it",
        ),
        (
            // The same path with the Map at module level stays a module-level collection.
            Row { path: wrapper_path(), ..row("a module's Map", accumulator("memo", "Map")) },
            Pattern::GlobalCollection,
            "memo (Map) is module-level",
        ),
        (
            // An array in a call scope is a queue or a log, not a cache.
            Row {
                path: vec![
                    step("log", "context", 3, "append() /srv/app.js:3:10", "Function"),
                    step("context", "internal", 4, "system / Context", "system / Context"),
                    step("lines", "context", 7, "Array", "Array"),
                ],
                call_scope: true,
                ..row("a factory's array", accumulator("lines", "Array"))
            },
            Pattern::UnboundedGrowth,
            "lines (Array) gains about 300 Item per step and nothing removes them",
        ),
    ];
    let mut seen: Vec<Pattern> = Vec::new();
    for (r, want, text) in &table {
        let ev = Evidence {
            accumulator: &r.acc,
            accumulator_kind: r.kind,
            path: &r.path,
            classes: &r.classes,
            roots: r.roots,
            bytes: r.bytes,
            closure_bytes: r.closure_bytes,
            resource_store: r.resource_store,
            object_keys: r.object_keys.clone(),
            location: Some(&at),
            steps: 2,
            call_scope: r.call_scope,
        };
        let got = classify(&ev);
        assert_eq!(got, *want, "{}", r.what);
        let said = advice(got, &ev);
        assert!(said.starts_with(text), "{}:\n got: {said}\nwant: {text}", r.what);
        if !seen.contains(&got) {
            seen.push(got);
        }
    }
    // Every pattern has a row.
    assert_eq!(seen.len(), Pattern::ALL.len());
}
