//! The in-memory adapter: the default, and the reference for the contract.
//! Clones share the same map, so a test can "reopen" a store on the storage
//! a dropped store used. It counts writes, for the benchmarks.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::{BatchOp, Capabilities, Consistency, Storage};
use crate::error::Result;

/// A stored key. The map keeps keys in *descending* byte order (the
/// reverse of `str`'s; `list` walks it backwards): std's B-tree searches
/// each node from its first key, and the write on every commit is a log
/// key greater than every other key of its scope, which ascending order
/// finds after comparing with all of them in each node on the way down
/// (~30 compares at 1,000 records), descending after about one per node.
/// (Measured in the JS benchmark: BENCHMARKS.md "Writes, session 5".)
/// Compared eight bytes at a time: Waymark's keys share long prefixes
/// (`s/<scope key>/t/<seq>`, ~50 bytes), so each compare meets ~40 equal
/// bytes first; `str`'s order calls `memcmp`, which on wasm32
/// (compiler-builtins) goes byte by byte, and was 7% of a commit's time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key(Box<str>);

impl Key {
    fn new(s: &str) -> Key {
        Key(s.into())
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        bytes_order(self.0.as_bytes(), other.0.as_bytes()).reverse()
    }
}

/// `a.cmp(b)` for byte strings.
fn bytes_order(a: &[u8], b: &[u8]) -> Ordering {
    // Eight bytes at a time, as big-endian words: the first pair of words
    // that differs decides (their order as numbers is the bytes' order);
    // the last partial word and the lengths go bytewise, as for `str`.
    // A plain loop: the release build (opt-level "z") does not inline
    // iterator adapters such as `zip`.
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) {
        let (x, y) = (word(x), word(y));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    a[i..].cmp(&b[i..])
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[inline(always)]
fn word(b: &[u8]) -> u64 {
    // `b` is a chunk of exactly 8 bytes; the fallback is never taken.
    u64::from_be_bytes(b.try_into().unwrap_or([0; 8]))
}

#[derive(Debug, Default)]
struct Inner {
    map: RefCell<BTreeMap<Key, Vec<u8>>>,
    writes: Cell<u64>,
    bytes_written: Cell<u64>,
}

/// A `BTreeMap` behind an `Rc`. Nothing survives the process.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    inner: Rc<Inner>,
}

/// Write counters of a [`MemoryStorage`] (keys and values, in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    pub writes: u64,
    pub bytes: u64,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts and deletes so far, and the bytes of the keys and values they wrote.
    pub fn write_stats(&self) -> WriteStats {
        WriteStats { writes: self.inner.writes.get(), bytes: self.inner.bytes_written.get() }
    }

    /// Total bytes held (keys and values).
    pub fn stored_bytes(&self) -> usize {
        self.inner.map.borrow().iter().map(|(k, v)| k.0.len() + v.len()).sum()
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.inner.map.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Overwrites a key directly (tests use it to corrupt stored bytes).
    pub fn raw_put(&self, key: &str, value: Vec<u8>) {
        self.inner.map.borrow_mut().insert(Key::new(key), value);
    }

    /// All keys (for tests and tools).
    pub fn keys(&self) -> Vec<String> {
        self.inner.map.borrow().keys().rev().map(|k| k.0.to_string()).collect()
    }

    fn count(&self, key: &str, value_len: usize) {
        self.inner.writes.set(self.inner.writes.get() + 1);
        self.inner.bytes_written.set(self.inner.bytes_written.get() + (key.len() + value_len) as u64);
    }
}

impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.map.borrow().get(&Key::new(key)).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.count(key, value.len());
        self.inner.map.borrow_mut().insert(Key::new(key), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.count(key, 0);
        self.inner.map.borrow_mut().remove(&Key::new(key));
        Ok(())
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        use std::ops::Bound;
        let map = self.inner.map.borrow();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(Key::new(a)),
            _ => Bound::Included(Key::new(prefix)),
        };
        // Descending order: the keys from `start` on, in ascending order,
        // are the ones up to `start`, walked backwards.
        Ok(map
            .range((Bound::Unbounded, start))
            .rev()
            .map(|(k, _)| &k.0)
            .take_while(|k| k.starts_with(prefix))
            .take(limit.unwrap_or(usize::MAX))
            .map(|k| k.to_string())
            .collect())
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        // Nothing can fail half-way in memory, so applying in order is atomic.
        for op in ops {
            match op {
                BatchOp::Put(k, v) => {
                    self.count(&k, v.len());
                    self.inner.map.borrow_mut().insert(Key(k.into()), v);
                }
                BatchOp::Delete(k) => {
                    self.count(&k, 0);
                    self.inner.map.borrow_mut().remove(&Key(k.into()));
                }
            }
        }
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        // One search (entry) instead of contains_key + insert: this is on
        // every commit's path.
        match self.inner.map.borrow_mut().entry(Key::new(key)) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(slot) => {
                self.count(key, value.len());
                slot.insert(value);
                Ok(true)
            }
        }
    }

    async fn create_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<Option<usize>> {
        let mut map = self.inner.map.borrow_mut();
        let mut n = 0;
        for (k, v) in entries {
            let Entry::Vacant(slot) = map.entry(Key(k.into())) else { break };
            self.count(&slot.key().0, v.len());
            slot.insert(v);
            n += 1;
        }
        Ok(Some(n))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { atomic_batch: true, atomic_create: true, consistency: Consistency::Strong }
    }

    fn instant(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_passes_the_conformance_suite() {
        futures_executor::block_on(crate::storage::conformance::run_all(|| async { MemoryStorage::new() }));
    }

    proptest::proptest! {
        /// `Key`'s word-at-a-time order is exactly the reverse of `str`'s,
        /// including keys that share long prefixes, prefixes of each other
        /// and non-ASCII.
        #[test]
        fn key_order_is_reverse_str_order(
            prefix in "(s/[a-z0-9]{0,40}/t/){0,1}",
            a in "[0-9a-zé\u{10000}/]{0,20}",
            b in "[0-9a-zé\u{10000}/]{0,20}",
        ) {
            let (a, b) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            proptest::prop_assert_eq!(Key::new(&a).cmp(&Key::new(&b)), b.cmp(&a));
            proptest::prop_assert_eq!(Key::new(&b).cmp(&Key::new(&a)), a.cmp(&b));
        }
    }
}
