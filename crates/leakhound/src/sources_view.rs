//! Where the suspects of a diagnosis really are, added to their JSON: the
//! npm package, the original (source-mapped) locations, the app's own code
//! that holds what accumulates, and the library table's entry when the use
//! is a known mistake. Works on the JSON of `diagnose` suspects so that the
//! diagnosis itself stays free of file reads (the `sources` crate reads the
//! scripts, maps and package.json files).

use anyhow::Result;
use serde_json::{json, Map, Value};
use sources::{steps_from_json, user_handle, CodeKind, Library, MappedLocation, Rebase, SourceMaps};
use std::path::{Path, PathBuf};

pub struct SourcesView {
    maps: SourceMaps,
    library: Library,
}

impl SourcesView {
    /// `source_root`: where the snapshot's files are on this machine when it
    /// was taken on another (`--source-root DIR`); `libraries`: a user's
    /// extra table in the format of crates/sources/data/libraries.toml.
    pub fn new(source_root: Option<PathBuf>, libraries: Option<&Path>) -> Result<Self> {
        let library = match libraries {
            Some(p) => Library::with_extra(p)?,
            None => Library::builtin(),
        };
        Ok(SourcesView { maps: SourceMaps::with_rebase(source_root.map(Rebase::new)), library })
    }

    /// Adds to each suspect of a `diagnose` JSON document (`suspects` and
    /// `below_threshold`, or a `run` document's `suspects` and
    /// `diagnosis.*`):
    /// - `location` mapped through the script's source map, the snapshot's
    ///   own position kept as `generated_location` (only when it mapped);
    ///   the same on every `retainer_path[]` step that has a location;
    /// - `retainer_path[].package`: `{name, version, path}` of the step's code,
    ///   and `original_class` when the code was minified (`LRUCache` for `c`),
    ///   `original_edge` for a renamed captured variable (`recent` for `tt`),
    ///   and `accumulator.original_name` when the accumulator is one;
    /// - `package`: the package whose code holds the accumulator (the
    ///   nearest before it on the path, after the app's own last step), else
    ///   the leaked objects' package, else the location's; null when it is
    ///   all the app's own code;
    /// - `user_location`: the app's own code that holds it (the last step of
    ///   the retainer path in user code, mapped), and `handle`: the name that
    ///   code holds it by (`responses`), when the path passes through it;
    /// - `library`: `{id, title, fix, docs}` when the library table
    ///   recognises the use, with `advice` prefixed by its fix.
    pub fn enrich_document(&mut self, doc: &mut Value) {
        for key in ["suspects", "below_threshold"] {
            if let Some(list) = doc.get_mut(key).and_then(Value::as_array_mut) {
                list.iter_mut().for_each(|s| self.enrich_suspect(s));
            }
        }
        if let Some(d) = doc.get_mut("diagnosis") {
            self.enrich_document(d);
        }
    }

    pub fn enrich_suspect(&mut self, suspect: &mut Value) {
        let steps = steps_from_json(&suspect["retainer_path"], &mut self.maps);
        let hit = self.library.match_path(&steps).map(|m| (m.entry.clone(), m.package.clone()));
        let handle = user_handle(&steps).map(|(at, name)| (at, name.to_string()));

        // The package: the library match's, else the nearest package code
        // holding the accumulator (after the app's last step: a path that
        // enters through express's router is not express's leak), else the
        // package of the leaked objects beyond it, else the location's.
        let acc_id = suspect["accumulator"]["id"].as_u64();
        let acc_at = suspect["retainer_path"]
            .as_array()
            .and_then(|p| p.iter().position(|st| acc_id.is_some() && st["node_id"].as_u64() == acc_id))
            .unwrap_or(steps.len().saturating_sub(1));
        // The app's last step up to the accumulator (leaked objects the app
        // made, beyond it, do not count: a path from a package's listener
        // through the app's closure to the app's Map is the app's leak).
        let last_user = steps.get(..=acc_at).and_then(|r| r.iter().rposition(|s| s.kind == Some(CodeKind::User)));
        let after_user = last_user.map_or(0, |u| u + 1);
        let holding_at = steps.get(after_user..=acc_at).and_then(|r| r.iter().rposition(|s| s.package.is_some())).map(|i| i + after_user);
        let holding = holding_at.and_then(|i| steps[i].package.clone());
        let beyond = steps.get(acc_at.max(after_user)..).and_then(|r| r.iter().find_map(|s| s.package.clone()));
        let location_pkg = self.package_at(&suspect["location"]);
        // A leak inside the package (its objects hold what accumulates), not
        // a collection of the app's that holds objects a package made.
        let in_package = hit.is_some() || holding.is_some();
        let package = hit.as_ref().map(|(_, p)| p.clone()).or(holding).or(beyond).or(location_pkg);

        // Minified code: the captured variables' original names, looked up
        // from the closure that captures them (`tt` -> `recent`).
        let original_edges: Vec<Option<String>> = (0..steps.len())
            .map(|i| {
                let edge_type = suspect["retainer_path"][i]["edge_type"].as_str();
                if edge_type != Some("context") || i < 2 {
                    return None;
                }
                let closure = &steps[i - 2];
                let (file, line, col) = (closure.file.as_deref()?, closure.line?, closure.column?);
                self.maps.original_name(file, line, col, &steps[i].edge)
            })
            .collect();
        let handle = handle.map(|(at, name)| {
            let original = original_edges.iter().skip(at + 1).take(2).flatten().next().cloned();
            (at, original.unwrap_or(name))
        });

        // The two places of a leak inside a package: where it accumulates
        // (below) and where the user's code reaches it (`held_as` and
        // `user_location`). The package's step on the path: the object of
        // the package that holds the accumulator, else the accumulator's.
        let package_step = holding_at.or_else(|| hit.as_ref().map(|_| acc_at.min(steps.len().saturating_sub(1))));
        let class_of = |i: usize| steps[i].original_class.clone().unwrap_or_else(|| steps[i].class.clone());
        let held_as = match (in_package, &handle, package_step) {
            (true, Some((_, name)), Some(i)) => {
                // `ajv → Ajv._cache`; `ajv → Ajv … ValueScope._values` when
                // the package's first object is not the one that holds it.
                let entry = (after_user..i).find(|&k| steps[k].package.is_some()).map(|k| format!("{} … ", class_of(k)));
                let class = class_of(i);
                let entry = entry.unwrap_or_default();
                match steps.get(i + 1).filter(|_| i < acc_at) {
                    Some(next) => Some(format!("{name} → {entry}{class}.{}", next.edge)),
                    None => Some(format!("{name} → {entry}{class}")),
                }
            }
            _ => None,
        };
        // Where it accumulates: the package's code that makes the leaked
        // objects (the suspect's location), else its object that holds them.
        let own_location = in_package
            && package.is_some()
            && self.package_at(&suspect["location"]).map(|p| p.name) == package.as_ref().map(|p| p.name.clone());
        let mut package_location = if own_location { suspect.get("location").cloned() } else { None }
            .or_else(|| package_step.and_then(|i| suspect["retainer_path"][i].get("location").cloned()));
        if let Some(l) = package_location.as_mut() {
            self.map_location_field(l);
        }

        let Some(obj) = suspect.as_object_mut() else { return };
        // The accumulator's name through a renamed variable.
        let acc_id = obj["accumulator"]["id"].as_u64();
        let acc_step =
            obj["retainer_path"].as_array().and_then(|p| p.iter().position(|st| st["node_id"].as_u64() == acc_id && acc_id.is_some()));
        if let Some(orig) = acc_step.and_then(|i| original_edges.get(i).cloned().flatten()) {
            if let Some(acc) = obj.get_mut("accumulator").and_then(Value::as_object_mut) {
                acc.insert("original_name".into(), json!(orig));
            }
        }
        obj.insert("package".into(), package.map_or(Value::Null, |p| json!(p)));
        if let Some((at, name)) = &handle {
            let user_loc = obj["retainer_path"].get(*at).and_then(|st| st.get("location")).cloned();
            obj.insert("handle".into(), json!(name));
            if let Some(mut l) = user_loc {
                self.map_location_field(&mut l);
                obj.insert("user_location".into(), l);
            }
        }
        if let Some((entry, _)) = &hit {
            obj.insert("library".into(), json!({ "id": entry.id, "title": entry.title, "fix": entry.fix, "docs": entry.docs }));
        }
        if let (true, Some(pkg)) = (in_package, obj.get("package").filter(|p| !p.is_null()).cloned()) {
            let spec = spec_of(&pkg);
            if let Some(h) = &held_as {
                if let Some(acc) = obj.get_mut("accumulator").and_then(Value::as_object_mut) {
                    acc.insert("held_as".into(), json!(h));
                }
            }
            let user_line = obj.get("user_location").and_then(location_text);
            let package_line = package_location.as_ref().and_then(|l| package_relative(l, &pkg));
            if let Some(l) = package_location.take() {
                obj.insert("package_location".into(), l);
            }
            let acc = &obj["accumulator"];
            let objects =
                obj["objects_per_step"].as_array().map_or(0, |v| v.iter().filter_map(Value::as_u64).sum::<u64>() / v.len().max(1) as u64);
            let place = diagnose::patterns::PackagePlace {
                package: &spec,
                accumulator: acc["name"].as_str().unwrap_or(""),
                accumulator_class: acc["class"].as_str().unwrap_or(""),
                objects_per_step: objects,
                leaked_class: obj["classes"][0]["class"].as_str().unwrap_or("objects"),
                handle: held_as.as_deref().or(obj.get("handle").and_then(Value::as_str)),
                user_line: user_line.as_deref(),
                package_line: package_line.as_deref(),
                fix: hit.as_ref().map(|(e, _)| e.fix.as_str()),
            };
            let advice = diagnose::patterns::package_advice(&place);
            let pattern = diagnose::patterns::Pattern::InPackage;
            obj.insert("pattern".into(), json!(pattern.id()));
            obj.insert("title".into(), json!(format!("memory accumulates inside {spec}")));
            obj.insert("advice".into(), json!(advice));
        }
        if let Some(path) = obj.get_mut("retainer_path").and_then(Value::as_array_mut) {
            for (i, (st, step)) in path.iter_mut().zip(&steps).enumerate() {
                if let Some(o) = st.as_object_mut() {
                    if let Some(p) = &step.package {
                        o.insert("package".into(), json!(p));
                    }
                    if let Some(e) = original_edges.get(i).cloned().flatten() {
                        o.insert("original_edge".into(), json!(e));
                    }
                    if let Some(c) = &step.original_class {
                        o.insert("original_class".into(), json!(c));
                    }
                    if let Some(l) = o.get_mut("location") {
                        let generated = l.clone();
                        if self.map_location_field(l) {
                            o.insert("generated_location".into(), generated);
                        }
                    }
                }
            }
        }
        if let Some(l) = obj.get_mut("location") {
            let generated = l.clone();
            if self.map_location_field(l) {
                obj.insert("generated_location".into(), generated);
            }
        }
        self.enrich_stacks(obj);
    }

    /// Allocation stacks: each frame mapped through its source map (the
    /// snapshot's position kept as `generated`), with `code` (`user`,
    /// `package`, `node`, `v8`) and `package`; each stack's `user_frame`
    /// (the innermost frame in the app's own code, or null); and the
    /// suspect's `allocated_by`: that frame of its top stack.
    fn enrich_stacks(&mut self, obj: &mut Map<String, Value>) {
        let mut allocated_by = Value::Null;
        if let Some(stacks) = obj.get_mut("allocation_stacks").and_then(Value::as_array_mut) {
            for (k, stack) in stacks.iter_mut().enumerate() {
                let mut user_frame = Value::Null;
                if let Some(frames) = stack.get_mut("frames").and_then(Value::as_array_mut) {
                    for (i, f) in frames.iter_mut().enumerate() {
                        let Some(fo) = f.as_object_mut() else { continue };
                        let file = fo.get("file").and_then(Value::as_str).unwrap_or("").to_string();
                        let line = fo.get("line").and_then(Value::as_u64).unwrap_or(0) as u32;
                        let column = fo.get("column").and_then(Value::as_u64).unwrap_or(0) as u32;
                        let mapped = (!file.is_empty() && line > 0).then(|| self.maps.original(&file, line, column)).flatten();
                        let (kind, package) = match &mapped {
                            Some(m) => (m.kind, m.package.clone()),
                            None => {
                                let kind = sources::classify(Some(&file));
                                let package = (kind == CodeKind::Package).then(|| self.maps.package_of(&file)).flatten();
                                (kind, package)
                            }
                        };
                        if let Some(m) = mapped {
                            fo.insert("generated".into(), json!({ "file": file, "line": line, "column": column }));
                            fo.insert("file".into(), json!(m.file));
                            fo.insert("line".into(), json!(m.line));
                            fo.insert("column".into(), json!(m.column));
                        }
                        let code = match kind {
                            CodeKind::User => "user",
                            CodeKind::Package => "package",
                            CodeKind::NodeInternal => "node",
                            CodeKind::V8 => "v8",
                        };
                        fo.insert("code".into(), json!(code));
                        fo.insert("package".into(), package.map_or(Value::Null, |p| json!(p)));
                        if user_frame.is_null() && kind == CodeKind::User && line > 0 {
                            user_frame = json!(i);
                            if k == 0 {
                                allocated_by = json!({
                                    "function": fo.get("function").cloned().unwrap_or(Value::Null),
                                    "file": fo.get("file").cloned().unwrap_or(Value::Null),
                                    "line": fo.get("line").cloned().unwrap_or(Value::Null),
                                    "column": fo.get("column").cloned().unwrap_or(Value::Null),
                                });
                            }
                        }
                    }
                }
                if let Some(so) = stack.as_object_mut() {
                    so.insert("user_frame".into(), user_frame);
                }
            }
        }
        if obj.contains_key("allocation_stacks") {
            obj.insert("allocated_by".into(), allocated_by);
        }
    }

    /// Sets the pattern, title and advice of every suspect of `d` whose
    /// memory accumulates inside a package ([`Pattern::InPackage`]), as
    /// [`enrich_document`](Self::enrich_document) decides it, so that the
    /// text and HTML reports and the verdict's reason say it too.
    pub fn attribute(&mut self, d: &mut diagnose::leaks::Diagnosis) {
        for s in d.suspects.iter_mut().chain(d.below_threshold.iter_mut()) {
            let Ok(mut v) = serde_json::to_value(&*s) else { continue };
            self.enrich_suspect(&mut v);
            if v["pattern"] == diagnose::patterns::Pattern::InPackage.id() {
                s.pattern = diagnose::patterns::Pattern::InPackage;
                s.title = v["title"].as_str().unwrap_or_default().to_string();
                s.advice = v["advice"].as_str().unwrap_or_default().to_string();
            }
        }
    }

    /// Every location in a JSON document of `retainers`, `node`,
    /// `listeners`, `allocations` or `handles`, source-mapped in place:
    /// - a `location` object (`{file, line, column}`) or string
    ///   (`file:line:column`) becomes the original position, the
    ///   snapshot's kept beside it as `generated_location` (same shape);
    /// - an object with `url`, `line`, `column` (a V8 profile's call frame)
    ///   gains `location` (mapped, an object) and `generated_location`.
    ///
    /// Only what maps changes: scripts without a source map stay as they are.
    pub fn map_json(&mut self, v: &mut Value) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(|x| self.map_json(x)),
            Value::Object(o) => {
                if !o.contains_key("generated_location") {
                    match o.get("location").cloned() {
                        Some(Value::String(s)) => {
                            if let Some(m) = self.map_location_string(&s) {
                                o.insert("location".into(), json!(m));
                                o.insert("generated_location".into(), json!(s));
                            }
                        }
                        Some(mut l @ Value::Object(_)) => {
                            let generated = l.clone();
                            if self.map_location_field(&mut l) {
                                o.insert("location".into(), l);
                                o.insert("generated_location".into(), generated);
                            }
                        }
                        _ => {}
                    }
                    let frame = (
                        o.get("url").and_then(Value::as_str),
                        o.get("line").and_then(Value::as_u64),
                        o.get("column").and_then(Value::as_u64),
                    );
                    if let (Some(url), Some(line), Some(column)) = frame {
                        if !o.contains_key("location") && !url.is_empty() {
                            let generated = json!({ "file": url, "line": line, "column": column });
                            let mut l = generated.clone();
                            if self.map_location_field(&mut l) {
                                o.insert("location".into(), l);
                                o.insert("generated_location".into(), generated);
                            }
                        }
                    }
                }
                for (k, x) in o.iter_mut() {
                    match (k.as_str(), &*x) {
                        ("location" | "generated_location", _) => {}
                        // Labels and path lines carry locations as text (`onTick() dist/app.js:3:1`).
                        ("node" | "dominator" | "text" | "start", Value::String(s)) => *x = json!(self.map_text(s)),
                        _ => self.map_json(x),
                    }
                }
            }
            _ => {}
        }
    }

    /// A text report with every `file:line:column` that has a source map
    /// replaced by the original position (`src/orders.ts:12:5`). Tokens are
    /// whitespace-separated, possibly in brackets or before punctuation.
    pub fn map_text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let start = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let token = &rest[..end];
            let inner = token.trim_start_matches(['(', '[']).trim_end_matches([')', ']', ',', ';', '.', ':']);
            match self.map_location_string(inner) {
                Some(m) if !inner.is_empty() => {
                    let at = token.find(inner).unwrap_or(0);
                    out.push_str(&token[..at]);
                    out.push_str(&m);
                    out.push_str(&token[at + inner.len()..]);
                }
                _ => out.push_str(token),
            }
            rest = &rest[end..];
        }
        out
    }

    /// A frame's script and 1-based position at its original place, when
    /// the script has a source map: (file, line, column).
    pub fn map_frame(&mut self, url: &str, line: Option<u32>, column: Option<u32>) -> Option<(String, u32, u32)> {
        let mapped = self.map_location_string(&format!("{url}:{}:{}", line?, column?))?;
        let mut parts = mapped.rsplitn(3, ':');
        let column = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        Some((parts.next()?.to_string(), line, column))
    }

    /// `file:line:column` (1-based) mapped through the file's source map.
    fn map_location_string(&mut self, s: &str) -> Option<String> {
        let mut parts = s.rsplitn(3, ':');
        let column: u32 = parts.next()?.parse().ok()?;
        let line: u32 = parts.next()?.parse().ok()?;
        let file = parts.next().filter(|f| !f.is_empty())?;
        let m = self.maps.original(file, line, column)?;
        // A relative script (the allocations report prints paths relative
        // to the working folder) maps to a path that climbs out of it
        // (`../../src/app.ts`): say where that is.
        let file = match Path::new(&m.file) {
            p if p.is_relative() => std::fs::canonicalize(p).map_or(m.file.clone(), |a| a.display().to_string()),
            _ => m.file.clone(),
        };
        Some(format!("{file}:{}:{}", m.line, m.column))
    }

    fn package_at(&mut self, loc: &Value) -> Option<sources::Package> {
        let file = loc.get("file")?.as_str()?;
        let (line, col) = (loc.get("line")?.as_u64()? as u32, loc.get("column")?.as_u64()? as u32);
        match self.maps.original(file, line, col) {
            Some(m) if m.kind == CodeKind::Package => m.package,
            _ => self.maps.package_of(file),
        }
    }

    /// Replaces a location object `{file, line, column, script_id}` by its
    /// mapped position (adding `name` when the map has one); true if mapped.
    fn map_location_field(&mut self, loc: &mut Value) -> bool {
        let Some(m) = self.mapped(loc) else { return false };
        if let Some(o) = loc.as_object_mut() {
            let mut n = Map::new();
            n.insert("file".into(), json!(m.file));
            n.insert("line".into(), json!(m.line));
            n.insert("column".into(), json!(m.column));
            if let Some(id) = o.get("script_id") {
                n.insert("script_id".into(), id.clone());
            }
            if let Some(name) = &m.name {
                n.insert("name".into(), json!(name));
            }
            *o = n;
        }
        true
    }

    fn mapped(&mut self, loc: &Value) -> Option<MappedLocation> {
        let file = loc.get("file")?.as_str()?;
        let line = loc.get("line")?.as_u64()? as u32;
        let column = loc.get("column")?.as_u64()? as u32;
        self.maps.original(file, line, column)
    }
}

/// The enriched suspects in words, for the text reports: per suspect with a
/// package, a mapped location or a library entry, what it is and where the
/// user's code reaches it. Empty when there is nothing to add.
pub fn text_notes(doc: &Value) -> String {
    let Some(suspects) = doc.get("suspects").and_then(Value::as_array) else { return String::new() };
    let loc = location_text;
    let mut out = String::new();
    for (i, s) in suspects.iter().enumerate() {
        let mut lines: Vec<String> = Vec::new();
        if let Some(p) = s.get("package").filter(|p| !p.is_null()) {
            lines.push(format!("package: {} ({})", spec_of(p), p["path"].as_str().unwrap_or("")));
        }
        if let Some(l) = s.get("library") {
            lines.push(format!("known:   {}", l["title"].as_str().unwrap_or("")));
            lines.push(format!("fix:     {}", l["fix"].as_str().unwrap_or("")));
        }
        if let (Some(l), Some(g)) = (s.get("location").and_then(loc), s.get("generated_location").and_then(loc)) {
            lines.push(format!("source:  {l} (generated {g})"));
        }
        if let Some(l) = s.get("package_location").and_then(loc) {
            lines.push(format!("in pkg:  {l}"));
        }
        if let Some(u) = s.get("user_location").and_then(loc) {
            let handle = s["accumulator"]["held_as"].as_str().or(s.get("handle").and_then(Value::as_str)).unwrap_or("it");
            lines.push(format!("yours:   {u} holds {handle}"));
        }
        if let Some(a) = s.get("allocated_by").filter(|a| !a.is_null()) {
            let f = a["file"].as_str().unwrap_or("");
            let f = shorten(f);
            lines.push(format!("allocated by your code at {f}:{} ({})", a["line"], a["function"].as_str().unwrap_or("(anonymous)")));
        }
        for st in s.get("allocation_stacks").and_then(Value::as_array).into_iter().flatten() {
            let frames = st["frames"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let mine = st["user_frame"].as_u64().map(|i| i as usize);
            let shown: Vec<String> = frames
                .iter()
                .enumerate()
                .take(5)
                .map(|(i, f)| {
                    let at = match f["line"].as_u64() {
                        Some(l) if l > 0 => format!(" {}:{l}", shorten(f["file"].as_str().unwrap_or(""))),
                        _ => String::new(),
                    };
                    format!("{}{}{at}", if Some(i) == mine { "▶ " } else { "" }, f["function"].as_str().unwrap_or("?"))
                })
                .collect();
            lines.push(format!(
                "stack:   {} objects, {}: {}{}",
                crate::output::int(st["objects"].as_u64().unwrap_or(0)),
                crate::output::bytes(st["bytes"].as_u64().unwrap_or(0)),
                shown.join(" ← "),
                if frames.len() > 5 { " ← …" } else { "" }
            ));
        }
        if lines.is_empty() {
            continue;
        }
        let acc = s["accumulator"]["original_name"].as_str().or(s["accumulator"]["name"].as_str()).unwrap_or("");
        out.push_str(&format!("  {}. {acc}\n", i + 1));
        for l in lines {
            out.push_str(&format!("     {l}\n"));
        }
    }
    let no_stacks = doc["diagnosis"]["has_allocation_stacks"] == json!(false) || doc["has_allocation_stacks"] == json!(false);
    if no_stacks && !suspects.is_empty() {
        out.push_str(&format!("  {}\n", diagnose::stacks::MISSING));
    }
    if out.is_empty() {
        return out;
    }
    format!("\nWhere it is (packages, source maps, your code)\n{out}")
}

/// A path relative to the working directory when it is under it.
fn shorten(file: &str) -> String {
    let path = file.strip_prefix("file://").unwrap_or(file);
    match std::env::current_dir() {
        Ok(cwd) => Path::new(path).strip_prefix(&cwd).map(|p| p.display().to_string()).unwrap_or_else(|_| file.to_string()),
        Err(_) => file.to_string(),
    }
}

/// `name@version` of a JSON `package` (the name alone without a version).
pub(crate) fn spec_of(p: &Value) -> String {
    let name = p["name"].as_str().unwrap_or("?");
    match p["version"].as_str() {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    }
}

/// `file:line:column` of a location object.
pub(crate) fn location_text(l: &Value) -> Option<String> {
    Some(format!("{}:{}:{}", l.get("file")?.as_str()?, l.get("line")?, l.get("column")?))
}

/// A location inside a package, relative to the package's directory
/// (`lib/core.ts:50:3`), else in full.
fn package_relative(l: &Value, pkg: &Value) -> Option<String> {
    let full = location_text(l)?;
    let dir = pkg["path"].as_str().unwrap_or("");
    Some(match full.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) {
        Some(r) if !dir.is_empty() => r.to_string(),
        _ => full,
    })
}
