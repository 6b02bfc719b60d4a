//! Class names and class keys, as the DevTools Summary groups objects:
//! `(system)`, `(compiled code)`, `Function`, constructor names, and plain
//! `Object`s named by their property set (`{id, name, tags}`). Objects with a
//! constructor location are keyed by it too, so two classes called `Item`
//! from different files stay apart.

use crate::meta::{EdgeKind, NodeKind};
use crate::snapshot::{HeapSnapshot, NodeIndex};
use rustc_hash::FxHashMap as HashMap;

/// Longest generated `{...}` interface name, in UTF-16 code units.
const MAX_INTERFACE_LEN: usize = 120;

/// One row of the Summary: a class name, possibly split by source location.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassKey {
    pub name: String,
    /// (script id, line, column), 0-based, for objects made by a JS constructor.
    pub location: Option<(u32, u32, u32)>,
}

/// Every node's class.
pub struct Classes {
    pub keys: Vec<ClassKey>,
    /// Node ordinal -> index into `keys`, 16 bits while there are few
    /// enough classes (there nearly always are): it is alive while the
    /// dominators are computed, when memory is at its peak.
    ids: ClassIds,
}

enum ClassIds {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl ClassIds {
    fn push(&mut self, c: u32) {
        match self {
            ClassIds::Narrow(v) if c < u16::MAX as u32 => v.push(c as u16),
            ClassIds::Narrow(v) => {
                let mut wide: Vec<u32> = Vec::with_capacity(v.capacity());
                wide.extend(v.iter().map(|&x| x as u32));
                wide.push(c);
                *self = ClassIds::Wide(wide);
            }
            ClassIds::Wide(v) => v.push(c),
        }
    }
}

impl Classes {
    /// The class (index into `keys`) of node `n`.
    #[inline]
    pub fn class_of(&self, n: NodeIndex) -> u32 {
        match &self.ids {
            ClassIds::Narrow(v) => v[n as usize] as u32,
            ClassIds::Wide(v) => v[n as usize],
        }
    }
    /// The class key of node `n`.
    pub fn key_of(&self, n: NodeIndex) -> &ClassKey {
        &self.keys[self.class_of(n) as usize]
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// A property name as DevTools writes it inside `{...}`: quoted as JSON when
/// it contains a character that would make the list ambiguous.
pub fn format_property_name(name: &str) -> String {
    if name.contains([',', '\'', '"', '{', '}']) {
        serde_json::to_string(name).unwrap_or_else(|_| name.to_string())
    } else {
        name.to_string()
    }
}

/// The class name of a node type that is not named by its constructor.
pub fn type_class_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Hidden => "(system)",
        NodeKind::Code => "(compiled code)",
        NodeKind::Closure => "Function",
        NodeKind::Regexp => "RegExp",
        NodeKind::Array => "(array)",
        NodeKind::String => "(string)",
        NodeKind::ConsString => "(concatenated string)",
        NodeKind::SlicedString => "(sliced string)",
        NodeKind::Number => "(number)",
        NodeKind::Synthetic => "(synthetic)",
        NodeKind::Symbol => "(symbol)",
        NodeKind::BigInt => "(bigint)",
        NodeKind::ObjectShape => "(object shape)",
        NodeKind::WasmObject => "(wasm object)",
        NodeKind::Object => "(object)",
        NodeKind::Native => "(native)",
        NodeKind::Other => "(other)",
    }
}

/// An object's or native's name as a class: `<div id=..>` becomes `<div>`.
pub fn object_class_name(raw: &str) -> String {
    if raw.starts_with('<') {
        if let Some(sp) = raw.find(' ') {
            return format!("{}>", &raw[..sp]);
        }
    } else if let Some(rest) = raw.strip_prefix("Detached <") {
        if let Some(sp) = rest.find(' ') {
            return format!("{}>", &raw[..10 + sp]);
        }
    }
    raw.to_string()
}

/// The plain-`Object` interfaces DevTools infers: property-name lists shared
/// by enough objects, most common first.
struct Interfaces {
    /// (display name, sorted property string indexes).
    defs: Vec<(String, Vec<u32>)>,
    /// property string index -> definitions containing it.
    by_property: HashMap<u32, Vec<u32>>,
}

fn is_plain_object(s: &HeapSnapshot, n: NodeIndex, object_name: Option<u32>) -> bool {
    s.kind(n) == NodeKind::Object && Some(s.name_index(n)) == object_name
}

fn infer_interfaces(s: &HeapSnapshot, object_name: Option<u32>, proto: Option<u32>) -> Interfaces {
    let mut total = 0usize;
    // Property lists (string indexes, in edge order, cut where the name
    // would pass MAX_INTERFACE_LEN) -> (count, first-seen order). Most
    // objects share their list with the one before: that is checked first.
    let mut seen: HashMap<Vec<u32>, (usize, usize)> = HashMap::default();
    // Each property name's length as written, in UTF-16 units.
    let mut name_len: HashMap<u32, usize> = HashMap::default();
    // This object's properties; the previous object's, its cut list (empty:
    // not counted), and how many objects since had the same properties
    // (not yet counted in `seen`).
    let mut all: Vec<u32> = Vec::new();
    let mut last_all: Vec<u32> = Vec::new();
    let mut last: Vec<u32> = Vec::new();
    let mut last_count = 0usize;
    let mut first = true;
    for n in s.nodes() {
        if !is_plain_object(s, n, object_name) {
            continue;
        }
        total += 1;
        all.clear();
        all.extend(
            s.edges(n).filter(|&e| s.edge_kind(e) == EdgeKind::Property).map(|e| s.edge_name_raw(e)).filter(|&raw| Some(raw) != proto),
        );
        if !first && all == last_all {
            last_count += !last.is_empty() as usize;
            continue;
        }
        first = false;
        if last_count > 0 {
            seen.get_mut(&last).expect("counted before").0 += last_count;
            last_count = 0;
        }
        std::mem::swap(&mut all, &mut last_all);
        last.clear();
        let mut len = 1;
        for &raw in &last_all {
            let l = *name_len.entry(raw).or_insert_with(|| utf16_len(&format_property_name(s.strings.get(raw).unwrap_or(""))));
            if !last.is_empty() && len + l > MAX_INTERFACE_LEN {
                break;
            }
            if !last.is_empty() {
                len += 2;
            }
            len += l;
            last.push(raw);
        }
        if !last.is_empty() {
            let order = seen.len();
            seen.entry(last.clone()).or_insert((0, order)).0 += 1;
        }
    }
    if last_count > 0 {
        seen.get_mut(&last).expect("counted before").0 += last_count;
    }
    // The interface text: lists that read the same are one interface.
    let mut by_text: HashMap<String, (usize, usize, Vec<u32>)> = HashMap::default();
    for (props, (count, order)) in seen {
        let names: Vec<String> = props.iter().map(|&p| format_property_name(s.strings.get(p).unwrap_or(""))).collect();
        let text = format!("{{{}}}", names.join(", "));
        let entry = by_text.entry(text).or_insert((0, order, props.clone()));
        entry.0 += count;
        if order < entry.1 {
            entry.1 = order;
            entry.2 = props;
        }
    }
    let min = 2.max(total / 1000);
    let mut list: Vec<(String, usize, usize, Vec<u32>)> =
        by_text.into_iter().filter(|(_, v)| v.0 >= min).map(|(k, v)| (k, v.0, v.1, v.2)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    let mut defs = Vec::new();
    let mut by_property: HashMap<u32, Vec<u32>> = HashMap::default();
    for (name, _, _, mut props) in list {
        props.sort_unstable();
        props.dedup();
        let id = defs.len() as u32;
        for &p in &props {
            by_property.entry(p).or_default().push(id);
        }
        defs.push((name, props));
    }
    Interfaces { defs, by_property }
}

impl Interfaces {
    /// The largest definition whose properties all appear in `props` (sorted).
    fn best_match(&self, props: &[u32], hits: &mut HashMap<u32, usize>) -> Option<u32> {
        hits.clear();
        for p in props {
            if let Some(ds) = self.by_property.get(p) {
                for &d in ds {
                    *hits.entry(d).or_insert(0) += 1;
                }
            }
        }
        let mut best: Option<u32> = None;
        for (&d, &c) in hits.iter() {
            let len = self.defs[d as usize].1.len();
            if c == len {
                best = match best {
                    Some(b) => {
                        let bl = self.defs[b as usize].1.len();
                        if len > bl || (len == bl && d < b) {
                            Some(d)
                        } else {
                            Some(b)
                        }
                    }
                    None => Some(d),
                };
            }
        }
        best
    }
}

/// Compute every node's class.
pub fn compute(s: &HeapSnapshot) -> Classes {
    let object_name = s.strings.indexes_of("Object").next();
    let proto = s.strings.indexes_of("__proto__").next();
    let interfaces = infer_interfaces(s, object_name, proto);

    let mut table = KeyTable::default();
    let mut by_type = [u32::MAX; NodeKind::ALL.len()];
    // Object/native names without a location, by string index.
    let mut by_name: HashMap<u32, u32> = HashMap::default();
    // Class instances carry their constructor's location: most objects of
    // a big heap come here, so the key is looked up without building it.
    let mut by_name_at: HashMap<(u32, (u32, u32, u32)), u32> = HashMap::default();
    let mut by_shape_at: HashMap<(u32, (u32, u32, u32)), u32> = HashMap::default();
    // Plain objects by their sorted property list.
    let mut by_shape: HashMap<Vec<u32>, u32> = HashMap::default();
    let mut hits = HashMap::default();
    let mut props: Vec<u32> = Vec::new();
    // One-entry caches: the previous plain object's properties (as found)
    // and class, and the previous class instance's key and class.
    let mut last_shape: Option<(Vec<u32>, u32)> = None;
    // (constructor name, (script, line, column)) and its class.
    #[allow(clippy::type_complexity)]
    let mut last_located: Option<((u32, (u32, u32, u32)), u32)> = None;
    let mut class_of = ClassIds::Narrow(crate::mem::with_capacity(s.node_count()));
    let mut loc_i = 0usize;
    for n in s.nodes() {
        let kind = s.kind(n);
        let class = match kind {
            NodeKind::Object | NodeKind::Native => {
                while loc_i < s.locations.len() && s.locations[loc_i].node < n {
                    loc_i += 1;
                }
                let location = if kind == NodeKind::Object && loc_i < s.locations.len() && s.locations[loc_i].node == n {
                    let l = s.locations[loc_i];
                    Some((l.script_id, l.line, l.column))
                } else {
                    None
                };
                if is_plain_object(s, n, object_name) && !interfaces.defs.is_empty() {
                    props.clear();
                    props.extend(s.edges(n).filter(|&e| s.edge_kind(e) == EdgeKind::Property).map(|e| s.edge_name_raw(e)));
                    // Mostly the same properties as the object before.
                    let name_id = match last_shape {
                        Some((ref p, c)) if *p == props => c,
                        _ => {
                            let raw = props.clone();
                            props.sort_unstable();
                            props.dedup();
                            let c = match by_shape.get(&props) {
                                Some(&c) => c,
                                None => {
                                    let name = match interfaces.best_match(&props, &mut hits) {
                                        Some(d) => interfaces.defs[d as usize].0.clone(),
                                        None => "Object".to_string(),
                                    };
                                    let c = table.intern(ClassKey { name, location: None });
                                    by_shape.insert(props.clone(), c);
                                    c
                                }
                            };
                            last_shape = Some((raw, c));
                            c
                        }
                    };
                    match location {
                        None => name_id,
                        Some(l) => *by_shape_at.entry((name_id, l)).or_insert_with(|| {
                            let name = table.keys[name_id as usize].name.clone();
                            table.intern(ClassKey { name, location: Some(l) })
                        }),
                    }
                } else if let Some(l) = location {
                    let key = (s.name_index(n), l);
                    match last_located {
                        Some((k, c)) if k == key => c,
                        _ => {
                            let c = *by_name_at
                                .entry(key)
                                .or_insert_with(|| table.intern(ClassKey { name: object_class_name(s.name(n)), location: Some(l) }));
                            last_located = Some((key, c));
                            c
                        }
                    }
                } else {
                    let raw = s.name_index(n);
                    match by_name.get(&raw) {
                        Some(&c) => c,
                        None => {
                            let c = table.intern(ClassKey { name: object_class_name(s.name(n)), location: None });
                            by_name.insert(raw, c);
                            c
                        }
                    }
                }
            }
            _ => {
                let slot = &mut by_type[kind as usize];
                if *slot == u32::MAX {
                    *slot = table.intern(ClassKey { name: type_class_name(kind).to_string(), location: None });
                }
                *slot
            }
        };
        class_of.push(class);
    }
    Classes { keys: table.keys, ids: class_of }
}

#[derive(Default)]
struct KeyTable {
    keys: Vec<ClassKey>,
    ids: HashMap<ClassKey, u32>,
}

impl KeyTable {
    fn intern(&mut self, key: ClassKey) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, id);
        id
    }
}
