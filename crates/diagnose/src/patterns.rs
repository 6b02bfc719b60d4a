//! The usual Node.js leaks, recognised from a suspect's evidence, each with
//! the fix a person would suggest. Checked most specific first: a listener
//! array is also a module-level collection, but removing the listener is
//! the fix.

use crate::evidence::{Accumulator, ClassCount, Step};
use heapsnap::source::SourceLocation;
use heapsnap::NodeKind;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// AsyncLocalStorage stores kept alive by pending async operations.
    AsyncContext,
    /// setInterval/setTimeout never cleared.
    Timers,
    /// EventEmitter listeners added and never removed.
    EventListeners,
    /// Sockets or connections never closed.
    Sockets,
    /// A cache kept on a function object, never evicted.
    Memoization,
    /// A Map or Set keyed by objects that should have been weak.
    ObjectKeyedMap,
    /// Closures that keep a large captured scope alive.
    ClosureCapture,
    /// A collection inside each value of a long-lived Map or Set (one per
    /// tenant, session, user) that only grows.
    PerKeyCollection,
    /// A module-level or global collection that only grows.
    GlobalCollection,
    /// Anything else that grows in every step.
    UnboundedGrowth,
    /// Memory that accumulates inside an npm package's own objects (named
    /// by the `sources` crate from the files, not by [`classify`]).
    InPackage,
}

impl Pattern {
    /// The patterns [`classify`] names ([`Pattern::InPackage`] comes from
    /// package attribution, see [`package_advice`]).
    pub const ALL: [Pattern; 10] = [
        Pattern::AsyncContext,
        Pattern::Timers,
        Pattern::EventListeners,
        Pattern::Sockets,
        Pattern::Memoization,
        Pattern::ObjectKeyedMap,
        Pattern::ClosureCapture,
        Pattern::PerKeyCollection,
        Pattern::GlobalCollection,
        Pattern::UnboundedGrowth,
    ];
    /// The name used in JSON and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Pattern::AsyncContext => "async-context",
            Pattern::Timers => "timers",
            Pattern::EventListeners => "event-listeners",
            Pattern::Sockets => "sockets",
            Pattern::Memoization => "memoization",
            Pattern::ObjectKeyedMap => "object-keyed-map",
            Pattern::ClosureCapture => "closure-capture",
            Pattern::PerKeyCollection => "per-key-collection",
            Pattern::GlobalCollection => "global-collection",
            Pattern::UnboundedGrowth => "unbounded-growth",
            Pattern::InPackage => "in-package",
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// A one-line name for people.
pub fn title(p: Pattern) -> &'static str {
    match p {
        Pattern::AsyncContext => "AsyncLocalStorage store kept alive by pending async work",
        Pattern::Timers => "timers never cleared",
        Pattern::EventListeners => "event listeners never removed",
        Pattern::Sockets => "sockets never closed",
        Pattern::Memoization => "unbounded memoization on a function",
        Pattern::ObjectKeyedMap => "Map/Set keyed by objects (should be weak)",
        Pattern::ClosureCapture => "closures capturing large objects",
        Pattern::PerKeyCollection => "per-key collection that only grows",
        Pattern::GlobalCollection => "module-level collection that only grows",
        Pattern::UnboundedGrowth => "unbounded growth",
        Pattern::InPackage => "memory accumulates inside a package",
    }
}

/// What a suspect looks like, for the rules below.
pub struct Evidence<'a> {
    pub accumulator: &'a Accumulator,
    pub accumulator_kind: NodeKind,
    /// From a root to one leaked object, through the accumulator.
    pub path: &'a [Step],
    pub classes: &'a [ClassCount],
    pub roots: u64,
    pub bytes: u64,
    /// Bytes held by leaked closures.
    pub closure_bytes: u64,
    /// Some leaked object hangs off an async resource's store slot.
    pub resource_store: bool,
    /// (leaked objects used as keys, leaked entries, the keys' commonest class) of a Map/Set accumulator.
    pub object_keys: (u64, u64, Option<String>),
    pub location: Option<&'a SourceLocation>,
    pub steps: usize,
    /// The accumulator is a variable of one function call's scope (a
    /// context whose outer scope is not the module's), as `memo` is inside
    /// `function memoize(fn) { const memo = new Map(); return (k) => … }`.
    pub call_scope: bool,
}

impl Evidence<'_> {
    fn path_has_edge(&self, name: &str) -> bool {
        self.path.iter().any(|s| s.edge == name)
    }
    fn path_has_class(&self, want: &[&str]) -> bool {
        self.path.iter().any(|s| want.contains(&s.class.as_str()))
    }
    /// Share of the leaked bytes in objects of these classes.
    fn class_share(&self, want: &[&str]) -> f64 {
        let total: u64 = self.classes.iter().map(|c| c.bytes).sum();
        let hit: u64 = self.classes.iter().filter(|c| want.contains(&c.class.as_str())).map(|c| c.bytes).sum();
        // (closures are listed by function name, e.g. `onTick()`)
        if total == 0 {
            0.0
        } else {
            hit as f64 / total as f64
        }
    }
    /// The path up to (and including) the accumulator.
    fn to_accumulator(&self) -> &[Step] {
        let k = self.path.iter().position(|s| s.node_id == self.accumulator.id).map_or(self.path.len(), |k| k + 1);
        &self.path[..k]
    }
    /// The function object whose property holds the accumulator, if any.
    fn memo_function(&self) -> Option<&Step> {
        let upto = self.to_accumulator();
        let n = upto.len();
        // `fn.cache = {}` (accumulator one property below a function), or
        // `fn[key] = v` (the function itself accumulates).
        if self.accumulator_kind == NodeKind::Closure {
            return upto.last();
        }
        if n >= 2 {
            let holder = &upto[n - 2];
            let into = &upto[n - 1];
            if is_function_step(holder) && into.edge_type == "property" && into.edge != "prototype" {
                return Some(holder);
            }
        }
        // `closure -> {context} -> memo (Map)`: a keyed cache captured by the
        // function a memoizing wrapper returned. Arrays and Sets kept that
        // way are queues and logs, not caches.
        if self.call_scope && n >= 3 && matches!(self.accumulator.class.as_str(), "Map" | "Object") {
            let closure = &upto[n - 3];
            if upto[n - 1].edge_type == "context" && is_function_step(closure) {
                return Some(closure);
            }
        }
        None
    }
    /// The Map or Set on the path to the accumulator whose values each hold
    /// their own collection (the accumulator is below a value, not the Map).
    fn per_key_owner(&self) -> Option<&Step> {
        let upto = self.to_accumulator();
        let t = upto.iter().rposition(|s| s.edge == "table" && s.edge_type == "internal")?;
        let owner = upto.get(t.checked_sub(1)?)?;
        // The table, then the accumulator: a value, or a field of a value
        // (`trails.get(…).#events`). Deeper down, the Map is a registry
        // that only leads to the accumulator (a module map of a loader).
        let acc = upto.len() - 1;
        let field = acc == t + 2 && upto[acc].edge_type == "property";
        (matches!(owner.class.as_str(), "Map" | "Set") && (acc == t + 1 || field)).then_some(owner)
    }
    fn leaked_class(&self) -> String {
        self.classes.first().map(|c| c.class.clone()).unwrap_or_else(|| "objects".into())
    }
}

fn is_function_step(s: &Step) -> bool {
    s.class == "Function" || s.node.contains("() ") || s.node.ends_with("()")
}

/// Name the pattern.
pub fn classify(ev: &Evidence) -> Pattern {
    let timer_classes = ["Timeout", "Immediate", "TimersList"];
    if ev.resource_store {
        return Pattern::AsyncContext;
    }
    if ev.class_share(&timer_classes) >= 0.3 || ev.accumulator.class == "TimersList" {
        return Pattern::Timers;
    }
    if ev.path_has_edge("_events") && ev.accumulator.name.contains("_events") {
        return Pattern::EventListeners;
    }
    if ev.class_share(&["Socket", "TLSSocket", "TCP", "TLSWrap", "ClientRequest", "Agent"]) >= 0.3 || ev.accumulator.class == "Socket" {
        return Pattern::Sockets;
    }
    if ev.memo_function().is_some() {
        return Pattern::Memoization;
    }
    let (keys, entries, _) = ev.object_keys;
    if entries > 0 && keys * 2 >= entries {
        // Functions as keys: a subscriber list (`subscribers.add(fn)`), not
        // a cache of objects; a WeakSet there would drop live callbacks.
        if ev.object_keys.2.as_deref() == Some("Function") {
            return Pattern::EventListeners;
        }
        return Pattern::ObjectKeyedMap;
    }
    if ev.roots > 0 && ev.closure_bytes * 2 >= ev.bytes && ev.bytes / ev.roots >= 1024 {
        return Pattern::ClosureCapture;
    }
    if ev.per_key_owner().is_some() {
        return Pattern::PerKeyCollection;
    }
    let upto = ev.to_accumulator();
    let module_level = match upto.last() {
        Some(last) => {
            last.edge_type == "context"
                || upto.len() == 1
                || upto.iter().rev().take(3).any(|s| s.edge == "exports" || s.edge_type == "context")
        }
        None => false,
    };
    // A variable of a function call's scope (a factory's) is not module-level.
    let module_level = module_level && !ev.call_scope;
    if module_level || ev.path_has_class(&["global"]) && upto.len() <= 2 {
        return Pattern::GlobalCollection;
    }
    Pattern::UnboundedGrowth
}

fn per_step(ev: &Evidence) -> u64 {
    ev.roots / ev.steps.max(1) as u64
}

/// The fix, in the app's own names.
pub fn advice(p: Pattern, ev: &Evidence) -> String {
    let acc = &ev.accumulator.name;
    let class = ev.leaked_class();
    let n = per_step(ev);
    let at = ev.location.map(|l| format!(" (created at {l})")).unwrap_or_default();
    match p {
        Pattern::AsyncContext => format!(
            "{class} objects stay alive because they are AsyncLocalStorage stores captured by async work that never \
             finishes (a pending timer, socket or promise started inside als.run(){at}). Keep only ids in the store \
             and look the data up, and don't start long-lived timers or listeners inside als.run() (call them via \
             als.exit() or clear them)."
        ),
        Pattern::Timers => format!(
            "About {n} timers per step are started and never cleared{at}; each keeps its callback and everything it \
             closes over. Keep the handle and call clearInterval()/clearTimeout() when the work or the request ends \
             (req.on('close')); unref() does not free it."
        ),
        Pattern::EventListeners if !ev.path_has_edge("_events") => format!(
            "{acc} ({}) holds callbacks, and gains about {n} per step that are never removed{at}: subscriptions \
             never undone. Remove the callback when its request or connection ends (call the unsubscribe function, \
             or {acc}.delete(fn), in res.on('close')). Not a {}: it would drop callbacks still subscribed.",
            ev.accumulator.class,
            if ev.accumulator.class == "Map" { "WeakMap" } else { "WeakSet" }
        ),
        Pattern::EventListeners => format!(
            "{acc} gains about {n} listeners per step and none is removed{at}. Remove the listener when its request \
             or connection ends (emitter.off(event, fn) in res.on('close')), or use emitter.once() if it should fire \
             once. Node's MaxListenersExceededWarning was this leak's early sign."
        ),
        Pattern::Sockets => format!(
            "About {n} sockets or connections per step are opened and never closed{at}. End them when done \
             (socket.end()/destroy(), set a timeout), or reuse connections through a pool or a keep-alive Agent with \
             maxSockets."
        ),
        Pattern::Memoization => {
            let f = ev.memo_function().map(|s| s.node.split("()").next().unwrap_or("").to_string()).unwrap_or_default();
            if ev.call_scope {
                return format!(
                    "{acc} is the cache of a memoizing wrapper: {f}() keeps it in the scope of the call that made \
                     it, and every call with a new argument adds an entry that is never evicted{at}. Bound the \
                     cache: an LRU with a max size and a ttl (e.g. lru-cache {{ max: 1000, ttl: 60_000 }}, or \
                     memoizee {{ max: 1000 }}), or memoize only over a small, fixed key space."
                );
            }
            format!(
                "{acc} memoizes on the function object {f}() with a new key for every call, and never evicts. Bound \
                 the cache: an LRU with a max size and a ttl (e.g. lru-cache {{ max: 1000, ttl: 60_000 }}), or \
                 memoize only over a small, fixed key space."
            )
        }
        Pattern::ObjectKeyedMap => format!(
            "{acc} ({}) is keyed by {} objects, so it keeps every key and its value alive after the program is \
             done with them{at}. Use a WeakMap (or WeakSet) keyed by the object, or delete the entry when the \
             object's life ends.",
            ev.accumulator.class,
            ev.object_keys.2.clone().unwrap_or(class)
        ),
        Pattern::ClosureCapture => format!(
            "{acc} keeps about {n} closures per step, each holding {} through its captured scope{at}. Narrow what \
             the closure captures (copy the few fields it needs into locals, set big variables to null), and \
             remove the closures when they are done.",
            human_bytes(ev.bytes / ev.roots.max(1))
        ),
        Pattern::PerKeyCollection => {
            let owner = ev.per_key_owner().map_or_else(|| "the Map".to_string(), |o| format!("{} ({})", o.edge, o.class));
            format!(
                "{acc} ({}): every value of {owner} keeps its own collection, and it gains about {n} {class} per step \
                 that are never removed{at}. Bound each one where it is added (keep the last N, e.g. splice to 100 \
                 after push, or a ring buffer), and evict the keys too: delete the entry when its tenant, session or \
                 user is done, or make the Map an LRU with max.",
                ev.accumulator.class
            )
        }
        Pattern::InPackage => package_advice(&PackagePlace {
            package: "a package",
            accumulator: acc,
            accumulator_class: &ev.accumulator.class,
            objects_per_step: n,
            leaked_class: &class,
            ..Default::default()
        }),
        Pattern::GlobalCollection => format!(
            "{acc} ({}) is module-level and gains about {n} {class} per step that are never removed{at}. Bound it: \
             an LRU cache with max and ttl (e.g. lru-cache {{ max: 1000, ttl: 60_000 }}), a ring buffer of the \
             last N, or delete entries when their request ends.",
            ev.accumulator.class
        ),
        Pattern::UnboundedGrowth => format!(
            "{acc} ({}) gains about {n} {class} per step and nothing removes them{at}. Find where entries are added, \
             and bound it or delete them when done.",
            ev.accumulator.class
        ),
    }
}

/// Bytes in a human unit (decimal, as DevTools shows).
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1000.0 {
        format!("{b} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}

/// Where a leak inside a package is, for [`package_advice`].
#[derive(Default)]
pub struct PackagePlace<'a> {
    /// `name@version` (the name alone when its files are not here).
    pub package: &'a str,
    /// The accumulator's name and class, as the suspect gives them.
    pub accumulator: &'a str,
    pub accumulator_class: &'a str,
    /// Leaked objects per step, and their commonest class.
    pub objects_per_step: u64,
    pub leaked_class: &'a str,
    /// How the user's code holds the package's object (`pages`, or
    /// `validator → Ajv._cache`).
    pub handle: Option<&'a str>,
    /// Where the user's code reaches it: `src/app.ts:12:3`.
    pub user_line: Option<&'a str>,
    /// Where memory accumulates in the package (`lib/core.ts:50:3`).
    pub package_line: Option<&'a str>,
    /// The library table's specific fix, when the use is a known mistake.
    pub fix: Option<&'a str>,
}

/// The advice for a leak inside a package: the library's fix when it is
/// known, else what to look for in the way the app uses the dependency;
/// then the two places (in the package, in the user's code).
pub fn package_advice(p: &PackagePlace) -> String {
    let inside = p.package_line.map(|l| format!(" (at {l})")).unwrap_or_default();
    let reach = match (p.handle, p.user_line) {
        (Some(h), Some(l)) => format!(" Your code reaches it through {h} at {l}."),
        (None, Some(l)) => format!(" Your code reaches it at {l}."),
        (Some(h), None) => format!(" Your code reaches it through {h}."),
        (None, None) => String::new(),
    };
    let head = format!(
        "{} ({}) inside {}{inside} gains about {} {} per step.{reach}",
        p.accumulator, p.accumulator_class, p.package, p.objects_per_step, p.leaked_class
    );
    match p.fix {
        Some(fix) => format!("{fix} {head}"),
        None => format!(
            "The leak is in a dependency, fed by how your code uses it: check {}'s options for a bound or expiry \
             (max, ttl, maxKeys), release what your code registers with it (unsubscribe, cancel, remove, close) when \
             the request ends, and create per-request objects once instead of on every call. {head}",
            p.package
        ),
    }
}
