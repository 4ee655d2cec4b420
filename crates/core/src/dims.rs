//! Scope dimensions and their canonical, collision-free encoding.
//!
//! A scope is a map of string dimensions (`{ project: "acme", workflow: "w-1" }`).
//! Key order does not matter, and names and values may hold any characters
//! (separators, NUL, `..`, `__proto__`, emoji). The canonical encoding sorts the
//! entries by name and length-prefixes every string, so two different maps can
//! never encode to the same bytes. Storage keys use a fixed-width digest of that
//! encoding (short enough for every platform's key limits); the full map is
//! stored with the scope and checked on load, so a digest collision would be
//! reported, never silently merged.


use sha2::{Digest, Sha256};

/// The dimensions of a scope, kept sorted by name (unique names).
///
/// A sorted `Vec` rather than a `BTreeMap`: dims are a handful of entries,
/// and the B-tree code for this key/value type cost ~1.8 KB of wasm
/// (BENCHMARKS.md "Size"). Equality, order and hashing are those of the
/// sorted pairs, as they were of the map.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dims(Vec<(String, String)>);

impl std::fmt::Debug for Dims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, v))).finish()
    }
}

impl Dims {
    /// Builds dimensions from pairs in any order. A repeated name keeps its last value.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Dims {
        let mut d = Dims(Vec::new());
        for (k, v) in pairs {
            d.insert(k.into(), v.into());
        }
        d
    }

    fn insert(&mut self, k: String, v: String) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&k)) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (k, v)),
        }
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()?;
        Some(self.0[i].1.as_str())
    }

    /// The canonical encoding: for each entry in name order, the LEB128 length
    /// and bytes of the name, then of the value. Injective by construction.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            push_str(&mut out, k);
            push_str(&mut out, v);
        }
        out
    }

    /// The storage key segment of this scope: 32 lowercase hex digits of the
    /// SHA-256 of the canonical encoding. Contains no `/`.
    pub fn key(&self) -> String {
        let digest = Sha256::digest(self.canonical_bytes());
        let mut s = String::with_capacity(32);
        for b in &digest[..16] {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        s
    }

    /// Whether every dimension of `self` is present with the same value in `other`.
    pub fn is_subset_of(&self, other: &Dims) -> bool {
        self.0.iter().all(|(k, v)| other.get(k) == Some(v.as_str()))
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn order_of_keys_does_not_matter() {
        let a = Dims::new([("project", "acme"), ("workflow", "w")]);
        let b = Dims::new([("workflow", "w"), ("project", "acme")]);
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn separator_tricks_do_not_collide() {
        let cases = [
            Dims::new([("a", "b=c")]),
            Dims::new([("a=b", "c")]),
            Dims::new([("a", "b"), ("c", "")]),
            Dims::new([("a", "b\u{0}c")]),
            Dims::new([("a\u{0}b", "c")]),
            Dims::new([("", "")]),
            Dims::new(Vec::<(String, String)>::new()),
            Dims::new([("__proto__", "..")]),
            Dims::new([("..", "__proto__")]),
        ];
        let keys: std::collections::HashSet<_> = cases.iter().map(Dims::key).collect();
        assert_eq!(keys.len(), cases.len());
        for k in &keys {
            assert_eq!(k.len(), 32);
            assert!(!k.contains('/'));
        }
    }

    fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("\u{0}".to_string()),
            Just("/".to_string()),
            Just("..".to_string()),
            Just("__proto__".to_string()),
            Just("=".to_string()),
            Just("🦀".to_string()),
            "[a=/\u{0}.🦀]{0,4}",
            any::<String>(),
        ]
    }

    fn hostile_dims() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((hostile_string(), hostile_string()), 0..4)
    }

    proptest! {
        #[test]
        fn distinct_maps_never_collide(a in hostile_dims(), b in hostile_dims()) {
            let da = Dims::new(a);
            let db = Dims::new(b);
            prop_assert_eq!(da == db, da.canonical_bytes() == db.canonical_bytes());
            prop_assert_eq!(da == db, da.key() == db.key());
        }
    }
}
