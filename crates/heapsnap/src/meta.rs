//! The `snapshot.meta` header: field lists and type names, from which the
//! whole layout of the file is derived. Nothing here is hard-coded by Node
//! version: Node 18-22 write 7 node fields, Node 24+ write 6, Chrome may
//! differ again, and the type lists grow over time.

use crate::error::{Result, SnapshotError};
use serde_json::Value;

/// What kind of heap object a node is, normalised from `meta.node_types`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum NodeKind {
    Hidden = 0,
    Array,
    String,
    Object,
    Code,
    Closure,
    Regexp,
    Number,
    Native,
    Synthetic,
    ConsString,
    SlicedString,
    Symbol,
    BigInt,
    ObjectShape,
    WasmObject,
    Other,
}

impl NodeKind {
    pub const ALL: [NodeKind; 17] = [
        NodeKind::Hidden,
        NodeKind::Array,
        NodeKind::String,
        NodeKind::Object,
        NodeKind::Code,
        NodeKind::Closure,
        NodeKind::Regexp,
        NodeKind::Number,
        NodeKind::Native,
        NodeKind::Synthetic,
        NodeKind::ConsString,
        NodeKind::SlicedString,
        NodeKind::Symbol,
        NodeKind::BigInt,
        NodeKind::ObjectShape,
        NodeKind::WasmObject,
        NodeKind::Other,
    ];

    pub fn from_type_name(name: &str) -> NodeKind {
        match name {
            "hidden" => NodeKind::Hidden,
            "array" => NodeKind::Array,
            "string" => NodeKind::String,
            "object" => NodeKind::Object,
            "code" => NodeKind::Code,
            "closure" => NodeKind::Closure,
            "regexp" => NodeKind::Regexp,
            "number" => NodeKind::Number,
            "native" => NodeKind::Native,
            "synthetic" => NodeKind::Synthetic,
            "concatenated string" => NodeKind::ConsString,
            "sliced string" => NodeKind::SlicedString,
            "symbol" => NodeKind::Symbol,
            "bigint" => NodeKind::BigInt,
            "object shape" => NodeKind::ObjectShape,
            "wasm object" => NodeKind::WasmObject,
            _ => NodeKind::Other,
        }
    }

    /// The type name as V8 writes it in `meta.node_types`.
    pub fn type_name(self) -> &'static str {
        match self {
            NodeKind::Hidden => "hidden",
            NodeKind::Array => "array",
            NodeKind::String => "string",
            NodeKind::Object => "object",
            NodeKind::Code => "code",
            NodeKind::Closure => "closure",
            NodeKind::Regexp => "regexp",
            NodeKind::Number => "number",
            NodeKind::Native => "native",
            NodeKind::Synthetic => "synthetic",
            NodeKind::ConsString => "concatenated string",
            NodeKind::SlicedString => "sliced string",
            NodeKind::Symbol => "symbol",
            NodeKind::BigInt => "bigint",
            NodeKind::ObjectShape => "object shape",
            NodeKind::WasmObject => "wasm object",
            NodeKind::Other => "other",
        }
    }

    pub fn is_string(self) -> bool {
        matches!(self, NodeKind::String | NodeKind::ConsString | NodeKind::SlicedString)
    }

    #[inline]
    pub(crate) fn from_u8(v: u8) -> NodeKind {
        NodeKind::ALL[v as usize]
    }
}

/// What kind of reference an edge is, normalised from `meta.edge_types`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EdgeKind {
    Context = 0,
    Element,
    Property,
    Internal,
    Hidden,
    Shortcut,
    Weak,
    Other,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 8] = [
        EdgeKind::Context,
        EdgeKind::Element,
        EdgeKind::Property,
        EdgeKind::Internal,
        EdgeKind::Hidden,
        EdgeKind::Shortcut,
        EdgeKind::Weak,
        EdgeKind::Other,
    ];

    pub fn from_type_name(name: &str) -> EdgeKind {
        match name {
            "context" => EdgeKind::Context,
            "element" => EdgeKind::Element,
            "property" => EdgeKind::Property,
            "internal" => EdgeKind::Internal,
            "hidden" => EdgeKind::Hidden,
            "shortcut" => EdgeKind::Shortcut,
            "weak" => EdgeKind::Weak,
            _ => EdgeKind::Other,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            EdgeKind::Context => "context",
            EdgeKind::Element => "element",
            EdgeKind::Property => "property",
            EdgeKind::Internal => "internal",
            EdgeKind::Hidden => "hidden",
            EdgeKind::Shortcut => "shortcut",
            EdgeKind::Weak => "weak",
            EdgeKind::Other => "other",
        }
    }

    /// `element` and `hidden` edges carry a number, the others a string index.
    #[inline]
    pub fn name_is_index(self) -> bool {
        matches!(self, EdgeKind::Element | EdgeKind::Hidden)
    }

    #[inline]
    pub(crate) fn from_u8(v: u8) -> EdgeKind {
        EdgeKind::ALL[v as usize]
    }
}

/// What a position in a node record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeField {
    Type,
    Name,
    Id,
    SelfSize,
    EdgeCount,
    TraceNodeId,
    Detachedness,
    Ignored,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EdgeField {
    Type,
    NameOrIndex,
    ToNode,
    Ignored,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LocationField {
    ObjectIndex,
    ScriptId,
    Line,
    Column,
    Ignored,
}

/// The header of a snapshot, with the layout resolved.
#[derive(Clone, Debug)]
pub struct Meta {
    pub title: Option<String>,
    pub node_fields: Vec<String>,
    pub node_type_names: Vec<String>,
    pub edge_fields: Vec<String>,
    pub edge_type_names: Vec<String>,
    pub location_fields: Vec<String>,
    pub declared_node_count: Option<u64>,
    pub declared_edge_count: Option<u64>,
    pub trace_function_count: u64,
    pub extra_native_bytes: Option<u64>,
    /// Chrome's `snapshot.root_index`, a node offset, when present.
    pub root_index: Option<u64>,
    pub(crate) node_layout: Vec<NodeField>,
    pub(crate) edge_layout: Vec<EdgeField>,
    pub(crate) location_layout: Vec<LocationField>,
    pub(crate) node_kinds: Vec<NodeKind>,
    pub(crate) edge_kinds: Vec<EdgeKind>,
    pub(crate) has_trace_node_id: bool,
    /// `trace_function_info_fields` (V8's six when the header has none).
    pub trace_function_info_fields: Vec<String>,
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Vec<String>> {
    let arr =
        v.and_then(Value::as_array).ok_or_else(|| SnapshotError::Foreign(format!("snapshot.meta.{what} is missing or not a list")))?;
    arr.iter()
        .map(|x| {
            x.as_str().map(str::to_owned).ok_or_else(|| SnapshotError::Foreign(format!("snapshot.meta.{what} has a non-string entry")))
        })
        .collect()
}

/// `node_types` / `edge_types` are lists whose entry at the `type` field is
/// itself the list of type names.
fn type_names(types: Option<&Value>, fields: &[String], what: &str) -> Result<Vec<String>> {
    let pos = fields
        .iter()
        .position(|f| f == "type")
        .ok_or_else(|| SnapshotError::Foreign(format!("snapshot.meta.{what}_fields has no `type`")))?;
    let list = types
        .and_then(Value::as_array)
        .and_then(|a| a.get(pos))
        .and_then(Value::as_array)
        .ok_or_else(|| SnapshotError::Foreign(format!("snapshot.meta.{what}_types[{pos}] is not a list of type names")))?;
    list.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_owned)
                .ok_or_else(|| SnapshotError::Foreign(format!("snapshot.meta.{what}_types has a non-string type name")))
        })
        .collect()
}

impl Meta {
    /// Resolve the header object (the value of the top-level `snapshot` key).
    pub fn from_json(header: &Value) -> Result<Meta> {
        let obj = header.as_object().ok_or_else(|| SnapshotError::Foreign("`snapshot` is not an object".into()))?;
        let meta = obj.get("meta").and_then(Value::as_object).ok_or_else(|| SnapshotError::Foreign("`snapshot.meta` is missing".into()))?;
        let node_fields = string_list(meta.get("node_fields"), "node_fields")?;
        let edge_fields = string_list(meta.get("edge_fields"), "edge_fields")?;
        let location_fields = match meta.get("location_fields") {
            Some(v) => string_list(Some(v), "location_fields")?,
            None => Vec::new(),
        };
        let node_type_names = type_names(meta.get("node_types"), &node_fields, "node")?;
        let edge_type_names = type_names(meta.get("edge_types"), &edge_fields, "edge")?;

        let node_layout: Vec<NodeField> = node_fields
            .iter()
            .map(|f| match f.as_str() {
                "type" => NodeField::Type,
                "name" => NodeField::Name,
                "id" => NodeField::Id,
                "self_size" => NodeField::SelfSize,
                "edge_count" => NodeField::EdgeCount,
                "trace_node_id" => NodeField::TraceNodeId,
                "detachedness" => NodeField::Detachedness,
                _ => NodeField::Ignored,
            })
            .collect();
        for (need, label) in [
            (NodeField::Type, "type"),
            (NodeField::Name, "name"),
            (NodeField::Id, "id"),
            (NodeField::SelfSize, "self_size"),
            (NodeField::EdgeCount, "edge_count"),
        ] {
            if !node_layout.contains(&need) {
                return Err(SnapshotError::Foreign(format!("snapshot.meta.node_fields has no `{label}`")));
            }
        }
        let edge_layout: Vec<EdgeField> = edge_fields
            .iter()
            .map(|f| match f.as_str() {
                "type" => EdgeField::Type,
                "name_or_index" => EdgeField::NameOrIndex,
                "to_node" => EdgeField::ToNode,
                _ => EdgeField::Ignored,
            })
            .collect();
        for (need, label) in [(EdgeField::Type, "type"), (EdgeField::NameOrIndex, "name_or_index"), (EdgeField::ToNode, "to_node")] {
            if !edge_layout.contains(&need) {
                return Err(SnapshotError::Foreign(format!("snapshot.meta.edge_fields has no `{label}`")));
            }
        }
        let location_layout = location_fields
            .iter()
            .map(|f| match f.as_str() {
                "object_index" => LocationField::ObjectIndex,
                "script_id" => LocationField::ScriptId,
                "line" => LocationField::Line,
                "column" => LocationField::Column,
                _ => LocationField::Ignored,
            })
            .collect();
        if node_type_names.len() > 255 || edge_type_names.len() > 255 {
            return Err(SnapshotError::Foreign("more than 255 node or edge types".into()));
        }
        let node_kinds = node_type_names.iter().map(|n| NodeKind::from_type_name(n)).collect();
        let edge_kinds = edge_type_names.iter().map(|n| EdgeKind::from_type_name(n)).collect();
        let num = |k: &str| obj.get(k).and_then(Value::as_u64);
        Ok(Meta {
            title: obj.get("title").and_then(Value::as_str).map(str::to_owned),
            has_trace_node_id: node_layout.contains(&NodeField::TraceNodeId),
            trace_function_info_fields: match meta.get("trace_function_info_fields") {
                Some(v) => string_list(Some(v), "trace_function_info_fields")?,
                None => ["function_id", "name", "script_name", "script_id", "line", "column"].map(String::from).to_vec(),
            },
            node_fields,
            node_type_names,
            edge_fields,
            edge_type_names,
            location_fields,
            declared_node_count: num("node_count"),
            declared_edge_count: num("edge_count"),
            trace_function_count: num("trace_function_count").unwrap_or(0),
            extra_native_bytes: num("extra_native_bytes"),
            root_index: num("root_index"),
            node_layout,
            edge_layout,
            location_layout,
            node_kinds,
            edge_kinds,
        })
    }

    pub fn node_field_count(&self) -> usize {
        self.node_fields.len()
    }
    pub fn edge_field_count(&self) -> usize {
        self.edge_fields.len()
    }
}
