//! Source maps: from a position in generated JavaScript (tsc output, a
//! bundle, a minified file) back to the line the user wrote.
//!
//! Positions in this API are **1-based** lines and columns, as leakhound
//! prints them (`SourceLocation` in heapsnap: the snapshot's 0-based
//! `locations` plus one). Source maps themselves are 0-based; the
//! conversion happens here and only here.

use crate::package::{classify, script_path, CodeKind, Package, Packages};
use crate::rebase::{normalize, Rebase};
use serde::Serialize;
use sourcemap::{DecodedMap, SourceMap, SourceView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Where a generated position came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappedLocation {
    /// The original source: a path resolved against the map's directory
    /// (and `sourceRoot`), or the map's own text for URLs such as `webpack://`.
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    /// The original identifier at that position, when the map names it.
    pub name: Option<String>,
    /// Whose code the original source is.
    pub kind: CodeKind,
    /// The package of the original source (a bundled dependency is named
    /// from the map's `sources`, e.g. `../node_modules/lru-cache/...`).
    pub package: Option<Package>,
}

impl std::fmt::Display for MappedLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a script's map could not be used (kept per script, so a missing map
/// is looked for once).
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{0}: cannot read: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: bad source map: {1}")]
    Decode(String, sourcemap::Error),
    #[error("{0}: no sourceMappingURL")]
    NoReference(PathBuf),
    #[error("{0}: not a local file")]
    NotAFile(String),
}

struct Loaded {
    map: SourceMap,
    /// Sources are relative to the map's directory.
    map_dir: PathBuf,
    /// The generated file's text, to read minified names at their positions.
    generated: SourceView,
    /// Index of the first token of each generated line (tokens are sorted).
    line_first_token: Vec<u32>,
}

/// Loads and caches the source maps of scripts; maps positions and names.
#[derive(Default)]
pub struct SourceMaps {
    rebase: Option<Rebase>,
    maps: HashMap<String, Option<Rc<Loaded>>>,
    errors: HashMap<String, String>,
    packages: Packages,
}

impl SourceMaps {
    pub fn new() -> Self {
        Self::default()
    }

    /// For snapshots taken on another machine: look for scripts, maps and
    /// `package.json` files under `rebase.dir` when the recorded paths do
    /// not exist here (`--source-root DIR`).
    pub fn with_rebase(rebase: Option<Rebase>) -> Self {
        SourceMaps { rebase: rebase.clone(), packages: Packages::with_rebase(rebase), ..Self::default() }
    }

    /// The package a script (or a mapped source path) belongs to.
    pub fn package_of(&mut self, script: &str) -> Option<Package> {
        self.packages.package_of(script)
    }

    /// Whether `script` has a usable source map.
    pub fn has_map(&mut self, script: &str) -> bool {
        self.load(script).is_some()
    }

    /// Why the script's map was not loaded (None if it was, or was not tried).
    pub fn error(&self, script: &str) -> Option<&str> {
        self.errors.get(script).map(String::as_str)
    }

    /// The original position of a 1-based (line, column) in `script`, or
    /// None when the script has no map or the position is not mapped
    /// (bundler runtime code).
    pub fn original(&mut self, script: &str, line: u32, column: u32) -> Option<MappedLocation> {
        let loaded = self.load(script)?;
        let token = lookup(&loaded, line.checked_sub(1)?, column.saturating_sub(1))?;
        let source = token.get_source()?;
        let file = resolve_source(&loaded.map_dir, source);
        let package = self.packages.package_of(&file);
        let kind = if package.is_some() { CodeKind::Package } else { classify(Some(&file)) };
        Some(MappedLocation {
            file,
            line: token.get_src_line() + 1,
            column: token.get_src_col() + 1,
            name: token.get_name().map(str::to_string),
            kind,
            package,
        })
    }

    /// The original name of a function or class that V8 calls `generated_name`
    /// (a minified `a`, `Ke`), defined at the 1-based (line, column) V8
    /// records for it (the function's start). None when the map does not
    /// name it or the name was not changed.
    pub fn original_name(&mut self, script: &str, line: u32, column: u32, generated_name: &str) -> Option<String> {
        if !is_identifier(generated_name) {
            return None;
        }
        let loaded = self.load(script)?;
        let (l0, c0) = (line.checked_sub(1)?, column.saturating_sub(1));
        let (start, end) = line_tokens(&loaded, l0)?;
        // The name token is just before the position (`function a(`,
        // `class a {`, `a(){` for a method) or, for a class, just after
        // `class` when V8 points at the keyword: look at the nearest tokens
        // on the line whose generated text is the name.
        let at = (start..end).rev().find(|&i| loaded.map.get_token(i as usize).is_some_and(|t| t.get_dst_col() <= c0));
        let mut order: Vec<u32> = Vec::new();
        if let Some(at) = at {
            order.extend((start..=at).rev().take(8));
            order.extend((at + 1..end).take(3));
        } else {
            order.extend((start..end).take(3));
        }
        for i in order {
            let t = loaded.map.get_token(i as usize)?;
            let Some(name) = token_name(&loaded, &t) else { continue };
            let text = loaded.generated.get_line(t.get_dst_line()).unwrap_or("");
            let rest = char_slice_from(text, t.get_dst_col());
            if rest.starts_with(generated_name)
                && !rest[generated_name.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$')
            {
                return (name != generated_name).then_some(name);
            }
        }
        // A constructor or method far from its class's name (`class c{...
        // constructor(t){`): the nearest declaration of the name before the
        // position whose token the map names.
        if let Some(n) = declared_name(&loaded, l0, c0, generated_name) {
            return (n != generated_name).then_some(n);
        }
        let token = lookup(&loaded, l0, c0)?;
        loaded
            .map
            .get_original_function_name(token.get_dst_line(), token.get_dst_col(), generated_name, &loaded.generated)
            .filter(|n| *n != generated_name)
            .map(str::to_string)
    }

    /// The text of an original line: from the map's `sourcesContent` when
    /// present, else from the source file (re-based when needed).
    pub fn source_line(&mut self, script: &str, original: &MappedLocation) -> Option<String> {
        let loaded = self.load(script)?;
        let idx = (0..loaded.map.get_source_count())
            .find(|&i| loaded.map.get_source(i).is_some_and(|s| resolve_source(&loaded.map_dir, s) == original.file));
        let l0 = original.line.checked_sub(1)?;
        if let Some(view) = idx.and_then(|i| loaded.map.get_source_view(i)) {
            return view.get_line(l0).map(str::to_string);
        }
        let path = script_path(&original.file)?;
        let text = self.read_local(&path).ok()?;
        text.lines().nth(l0 as usize).map(str::to_string)
    }

    fn read_local(&self, path: &Path) -> std::io::Result<String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(t),
            Err(e) => match self.rebase.as_ref().and_then(|r| r.find(path)) {
                Some(p) => std::fs::read_to_string(p),
                None => Err(e),
            },
        }
    }

    fn load(&mut self, script: &str) -> Option<Rc<Loaded>> {
        if let Some(m) = self.maps.get(script) {
            return m.clone();
        }
        let loaded = match self.read_map(script) {
            Ok(l) => Some(Rc::new(l)),
            Err(e) => {
                self.errors.insert(script.to_string(), e.to_string());
                None
            }
        };
        self.maps.insert(script.to_string(), loaded.clone());
        loaded
    }

    fn read_map(&self, script: &str) -> Result<Loaded, MapError> {
        let recorded = script_path(script).ok_or_else(|| MapError::NotAFile(script.to_string()))?;
        let path = if recorded.is_file() {
            recorded.clone()
        } else {
            self.rebase.as_ref().and_then(|r| r.find(&recorded)).unwrap_or(recorded.clone())
        };
        let text = std::fs::read_to_string(&path).map_err(|e| MapError::Read(path.clone(), e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let reference = sourcemap::locate_sourcemap_reference_slice(text.as_bytes())
            .map_err(|e| MapError::Decode(path.display().to_string(), e))?
            .ok_or_else(|| MapError::NoReference(path.clone()))?;
        let url = reference.get_url();
        let (decoded, map_dir) = if url.starts_with("data:") {
            let m = sourcemap::decode_data_url(url).map_err(|e| MapError::Decode(path.display().to_string(), e))?;
            (m, dir)
        } else {
            let rel = percent_encoding::percent_decode_str(url.strip_prefix("file://").unwrap_or(url)).decode_utf8_lossy().into_owned();
            let map_path = normalize(&dir.join(rel));
            let bytes = std::fs::read(&map_path).map_err(|e| MapError::Read(map_path.clone(), e))?;
            let m = sourcemap::decode_slice(&bytes).map_err(|e| MapError::Decode(map_path.display().to_string(), e))?;
            (m, map_path.parent().map(Path::to_path_buf).unwrap_or_default())
        };
        let map = match decoded {
            DecodedMap::Regular(m) => m,
            DecodedMap::Index(i) => i.flatten().map_err(|e| MapError::Decode(path.display().to_string(), e))?,
            DecodedMap::Hermes(h) => (*h).clone(),
        };
        let mut line_first_token = Vec::new();
        for (i, t) in map.tokens().enumerate() {
            while line_first_token.len() <= t.get_dst_line() as usize {
                line_first_token.push(i as u32);
            }
        }
        line_first_token.push(map.get_token_count());
        Ok(Loaded { map, map_dir, generated: SourceView::from_string(text), line_first_token })
    }
}

/// Token index range [start, end) of one generated line; None when the line has none.
fn line_tokens(loaded: &Loaded, l0: u32) -> Option<(u32, u32)> {
    let starts = &loaded.line_first_token;
    let start = *starts.get(l0 as usize)?;
    let end = *starts.get(l0 as usize + 1)?;
    (start < end).then_some((start, end))
}

/// The token covering (line, column), 0-based: the last one at or before
/// the column on that line, else the line's first (V8 puts a function's
/// start at its parameter list, which a map may not mark). Never a token of
/// another line: that would point at unrelated code.
fn lookup(loaded: &Loaded, l0: u32, c0: u32) -> Option<sourcemap::Token<'_>> {
    let (start, end) = line_tokens(loaded, l0)?;
    let tokens: Vec<u32> = (start..end).collect();
    let after = tokens.partition_point(|&i| loaded.map.get_token(i as usize).is_some_and(|t| t.get_dst_col() <= c0));
    let idx = if after == 0 { tokens[0] } else { tokens[after - 1] };
    let t = loaded.map.get_token(idx as usize)?;
    if t.has_source() {
        return Some(t);
    }
    // An unmapped token (bundler glue) at the position: the next mapped one on the line.
    tokens[after.saturating_sub(1)..].iter().filter_map(|&i| loaded.map.get_token(i as usize)).find(|t| t.has_source())
}

/// The name a token stands for: the identifier the original source has at
/// the token's position when the map carries the source (a compiler may
/// record a renamed `_LRUCache` for `class LRUCache`), else the map's name.
fn token_name(loaded: &Loaded, t: &sourcemap::Token<'_>) -> Option<String> {
    let name = t.get_name()?;
    let from_source = loaded.map.get_source_view(t.get_src_id()).and_then(|v| {
        let line = v.get_line(t.get_src_line())?;
        let ident: String =
            char_slice_from(line, t.get_src_col()).chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$').collect();
        (is_identifier(&ident) && !KEYWORDS.contains(&ident.as_str())).then_some(ident)
    });
    Some(from_source.unwrap_or_else(|| name.to_string()))
}

const KEYWORDS: &[&str] = &["class", "function", "export", "default", "const", "let", "var", "async", "static", "new"];

/// How far back to look for a class's or function's declaration.
const DECLARATION_SCAN_LINES: u32 = 20_000;
const DECLARATION_SCAN_BYTES: usize = 4 << 20;

/// The original name of the nearest `class NAME`, `function NAME` or
/// `NAME=` before (l0, c0), 0-based, taken from the map's token exactly at
/// that identifier.
fn declared_name(loaded: &Loaded, l0: u32, c0: u32, name: &str) -> Option<String> {
    let mut scanned = 0usize;
    for line in (l0.saturating_sub(DECLARATION_SCAN_LINES)..=l0).rev() {
        let text = loaded.generated.get_line(line).unwrap_or("");
        let limit = if line == l0 { char_slice_from(text, 0).len() - char_slice_from(text, c0).len() } else { text.len() };
        let hay = &text[..limit];
        scanned += hay.len();
        let mut end = hay.len();
        while let Some(b) = hay[..end].rfind(name) {
            end = b;
            let before = &hay[..b];
            let after = &hay[b + name.len()..];
            let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
            if before.ends_with(ident) || after.starts_with(ident) {
                continue;
            }
            let b_trim = before.trim_end();
            let a_trim = after.trim_start();
            let declares = b_trim.ends_with("class")
                || b_trim.ends_with("function")
                || b_trim.ends_with("function*")
                || (a_trim.starts_with('=') && !a_trim.starts_with("==") && !a_trim.starts_with("=>"));
            if !declares {
                continue;
            }
            let col = before.encode_utf16().count() as u32;
            if let Some(t) = lookup(loaded, line, col) {
                if t.get_dst_line() == line && t.get_dst_col() == col {
                    if let Some(n) = token_name(loaded, &t) {
                        return Some(n);
                    }
                }
            }
        }
        if scanned > DECLARATION_SCAN_BYTES {
            break;
        }
    }
    None
}

/// A map's source as a path: relative sources are relative to the map's
/// directory (`sourceRoot` is already prefixed by the decoder); absolute
/// paths and `file://` URLs are paths; other URLs (`webpack://`) stay text.
fn resolve_source(map_dir: &Path, source: &str) -> String {
    if let Some(p) = source.strip_prefix("file://") {
        let decoded = percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned();
        return normalize(Path::new(&decoded)).to_string_lossy().into_owned();
    }
    if source.contains("://") {
        return source.to_string();
    }
    normalize(&map_dir.join(source)).to_string_lossy().into_owned()
}

fn char_slice_from(line: &str, col: u32) -> &str {
    // Source map columns count UTF-16 units; generated JS is nearly always
    // ASCII, where units, chars and bytes agree. Fall back to chars.
    match line.char_indices().nth(col as usize) {
        Some((b, _)) => &line[b..],
        None => "",
    }
}

fn is_identifier(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_alphabetic() || c == '_' || c == '$') && cs.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}
