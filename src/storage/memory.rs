//! The in-memory adapter: the default, and the reference for the contract.
//! Clones share the same map, so a test can "reopen" a store on the storage
//! a dropped store used. It counts writes, for the benchmarks.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use super::{BatchOp, Capabilities, Consistency, Storage};
use crate::error::Result;

#[derive(Debug, Default)]
struct Inner {
    map: RefCell<BTreeMap<String, Vec<u8>>>,
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
        self.inner.map.borrow().iter().map(|(k, v)| k.len() + v.len()).sum()
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
        self.inner.map.borrow_mut().insert(key.to_string(), value);
    }

    /// All keys (for tests and tools).
    pub fn keys(&self) -> Vec<String> {
        self.inner.map.borrow().keys().cloned().collect()
    }

    fn count(&self, key: &str, value_len: usize) {
        self.inner.writes.set(self.inner.writes.get() + 1);
        self.inner.bytes_written.set(self.inner.bytes_written.get() + (key.len() + value_len) as u64);
    }
}

impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.map.borrow().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.count(key, value.len());
        self.inner.map.borrow_mut().insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.count(key, 0);
        self.inner.map.borrow_mut().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        use std::ops::Bound;
        let map = self.inner.map.borrow();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        Ok(map
            .range((start, Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        // Nothing can fail half-way in memory, so applying in order is atomic.
        for op in ops {
            match op {
                BatchOp::Put(k, v) => {
                    self.count(&k, v.len());
                    self.inner.map.borrow_mut().insert(k, v);
                }
                BatchOp::Delete(k) => {
                    self.count(&k, 0);
                    self.inner.map.borrow_mut().remove(&k);
                }
            }
        }
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        // One search (entry) instead of contains_key + insert: this is on
        // every commit's path.
        match self.inner.map.borrow_mut().entry(key.to_string()) {
            std::collections::btree_map::Entry::Occupied(_) => Ok(false),
            std::collections::btree_map::Entry::Vacant(slot) => {
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
            let std::collections::btree_map::Entry::Vacant(slot) = map.entry(k) else { break };
            self.count(slot.key(), v.len());
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
}
