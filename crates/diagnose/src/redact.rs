//! `--redact`: heap strings out of shared reports.
//!
//! A report quotes the heap: string values (`"Bearer eyJ..."`), and the
//! keys that lead to a leaked object (`sessions.3f9a-...`, a Map's key
//! string). With redaction on, every such text is replaced by a short
//! stable hash, `‹h:3f9a2c01›`: the same text gives the same hash within a
//! report, across reports and across runs (so two reports can still be
//! compared), and the text cannot be read back from it.
//!
//! The rule, on what the snapshot says a name is:
//! - hashed: the text of string nodes (values, including a Map's or a
//!   Set's string keys, which are string nodes in its table); property
//!   names that are not plain code identifiers (anything outside
//!   `[A-Za-z_$][A-Za-z0-9_$]*`, longer than 40 characters, or with a run of
//!   4 or more digits, as ids and tokens have); every property name of a
//!   dictionary-like object (more than 32 named properties: keys made by
//!   the program, not written in its code);
//! - kept: names written in code (class and function names, variable and
//!   plain property names such as `_events` or `requestLogs`), V8's own
//!   names (`{table}`, `{map}`, `system / Context`), element indexes, sizes
//!   and ids, source locations.
//!
//! The hash is HMAC-SHA-256 truncated to 32 bits, keyed by
//! `LEAKHOUND_REDACT_KEY` when set (then a reader of the report cannot test
//! guesses of short values either), else by a fixed public key.
//!
//! It is a switch for the whole process (set once by the command line),
//! applied where names are rendered, never in the analyses: they compare
//! the real names.

use heapsnap::{EdgeIndex, EdgeKind, EdgeName, HeapSnapshot, NodeIndex, NodeKind};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

static ON: AtomicBool = AtomicBool::new(false);
static KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// The public key used without `LEAKHOUND_REDACT_KEY`.
const DEFAULT_KEY: &[u8] = b"leakhound --redact v1";

/// Turn redaction on for everything rendered from now on, keyed by `key`
/// (the command line passes `LEAKHOUND_REDACT_KEY`; None or empty: the
/// fixed public key).
pub fn enable(key: Option<&str>) {
    let _ = KEY.set(match key {
        Some(k) if !k.is_empty() => k.as_bytes().to_vec(),
        _ => DEFAULT_KEY.to_vec(),
    });
    ON.store(true, Ordering::Relaxed);
}

pub fn is_on() -> bool {
    ON.load(Ordering::Relaxed)
}

fn key() -> &'static [u8] {
    KEY.get().map(|k| k.as_slice()).unwrap_or(DEFAULT_KEY)
}

/// `‹h:xxxxxxxx›`: HMAC-SHA-256 of `text`, first 4 bytes in hex.
pub fn hash(text: &str) -> String {
    hash_with(key(), text)
}

fn hash_with(key: &[u8], text: &str) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(text.as_bytes()).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    format!("‹h:{:02x}{:02x}{:02x}{:02x}›", outer[0], outer[1], outer[2], outer[3])
}

/// A heap string value (a string node's text, a clipped preview of it):
/// hashed when redaction is on. Hash the whole text before clipping, so
/// equal values give equal hashes.
pub fn value(text: &str) -> Cow<'_, str> {
    if is_on() {
        Cow::Owned(hash(text))
    } else {
        Cow::Borrowed(text)
    }
}

/// Whether a property name reads like a name written in code.
pub fn is_code_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'$';
    if b.is_empty() || b.len() > 40 || !ident_start(b[0]) || !b.iter().all(|&c| ident_start(c) || c.is_ascii_digit()) {
        return false;
    }
    let mut run = 0;
    for &c in b {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 4 {
            return false;
        }
    }
    true
}

/// More than this many named properties: a dictionary the program fills.
const DICTIONARY_PROPERTIES: usize = 32;

/// The name of edge `e` as a report may show it.
pub fn edge_name(s: &HeapSnapshot, e: EdgeIndex) -> Cow<'_, str> {
    let name = s.edge_name_string(e);
    if !is_on() {
        return name;
    }
    let keep = match (s.edge_kind(e), s.edge_name(e)) {
        (_, EdgeName::Index(_)) => true,
        // Variables of a closure's scope: written in code.
        (EdgeKind::Context, _) => true,
        (EdgeKind::Property | EdgeKind::Shortcut, EdgeName::Name(t)) => {
            is_code_identifier(t) && !is_dictionary(s, heapsnap::retainers::edge_source(s, e))
        }
        // V8's own links: `map`, `table`, `context`, numbered slots.
        (EdgeKind::Internal | EdgeKind::Hidden | EdgeKind::Weak, EdgeName::Name(t)) => {
            is_code_identifier(t) || t.bytes().all(|b| b.is_ascii_digit())
        }
        (EdgeKind::Element, EdgeName::Name(t)) => t.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    };
    if keep {
        name
    } else {
        Cow::Owned(hash(&name))
    }
}

/// Whether `n` is an object with more than `DICTIONARY_PROPERTIES` named
/// properties.
pub fn is_dictionary(s: &HeapSnapshot, n: NodeIndex) -> bool {
    s.kind(n) == NodeKind::Object && s.edges(n).filter(|&f| s.edge_kind(f) == EdgeKind::Property).nth(DICTIONARY_PROPERTIES).is_some()
}

/// Whether a node's name is the text of a string (a value).
pub fn is_string_node(s: &HeapSnapshot, n: NodeIndex) -> bool {
    matches!(s.kind(n), NodeKind::String | NodeKind::ConsString | NodeKind::SlicedString)
}

/// A node's name as a report may show it: hashed for strings.
pub fn node_name(s: &HeapSnapshot, n: NodeIndex) -> Cow<'_, str> {
    if is_string_node(s, n) {
        value(s.name(n))
    } else {
        Cow::Borrowed(s.name(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_short_and_keyed() {
        let a = hash_with(DEFAULT_KEY, "SECRETKEY00000001zz");
        assert_eq!(a, hash_with(DEFAULT_KEY, "SECRETKEY00000001zz"));
        assert_ne!(a, hash_with(DEFAULT_KEY, "SECRETKEY00000002zz"));
        assert_ne!(a, hash_with(b"another key", "SECRETKEY00000001zz"));
        assert!(a.starts_with("‹h:") && a.ends_with('›') && a.chars().count() == 12, "{a}");
        // HMAC-SHA-256 (RFC 4231 test case 2: key "Jefe") starts 5bdcc146.
        assert_eq!(hash_with(b"Jefe", "what do ya want for nothing?"), "‹h:5bdcc146›");
    }

    #[test]
    fn identifiers() {
        for k in ["_events", "requestLogs", "$x", "cache", "timerListMap", "a1b2"] {
            assert!(is_code_identifier(k), "{k}");
        }
        for k in ["sess-3f9a", "SECRETOBJ2628", "3f9a2c", "user@example.com", "", "a b", "x".repeat(41).as_str()] {
            assert!(!is_code_identifier(k), "{k}");
        }
    }
}
