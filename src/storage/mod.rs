//! The storage contract: a small async key-value interface that every
//! backend (memory, IndexedDB, Workers KV, Durable Objects, files, any
//! TypeScript adapter) implements.
//!
//! Keys are UTF-8 strings compared by their bytes; values are byte strings.
//! Waymark only ever writes keys from [`keys`], and never rewrites a log
//! record: concurrent writers claim the next seq with [`Storage::put_if_absent`].

pub mod keys;
pub mod memory;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use crate::error::Result;

pub use memory::MemoryStorage;

/// One write of an atomic batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOp {
    Put(String, Vec<u8>),
    Delete(String),
}

/// How far two writers sharing the storage can trust each other's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// A read after a completed write sees it, everywhere (memory, IndexedDB, DO).
    Strong,
    /// Writes become visible elsewhere after a delay (Workers KV).
    Eventual,
}

/// What a backend guarantees. The store adapts its strategy to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// [`Storage::batch`] applies all or nothing.
    pub atomic_batch: bool,
    /// [`Storage::put_if_absent`] is an atomic create.
    pub atomic_create: bool,
    pub consistency: Consistency,
}

/// An async key-value store.
///
/// Contract (checked by [`conformance`]):
/// - `get` of a missing key is `Ok(None)`; an empty value is a value.
/// - `put` replaces; `delete` of a missing key is `Ok(())`.
/// - `list(prefix, after, limit)` returns keys starting with `prefix`, strictly
///   greater than `after` when given, in ascending byte order, at most `limit`.
/// - `batch` applies its ops in order; all or nothing when
///   `capabilities().atomic_batch`.
/// - `put_if_absent` writes only when the key is missing and says whether it
///   wrote; atomic when `capabilities().atomic_create`.
/// - Every failure is an `Error::Storage` (or `Corrupt`); nothing panics.
///
/// The futures are not `Send`: on wasm everything runs on one thread.
#[allow(async_fn_in_trait)]
pub trait Storage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>>;

    /// Applies several writes; the default runs them one by one (not atomic).
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        for op in ops {
            match op {
                BatchOp::Put(k, v) => self.put(&k, v).await?,
                BatchOp::Delete(k) => self.delete(&k).await?,
            }
        }
        Ok(())
    }

    /// Creates a key if it is missing; the default (get, then put) is not atomic.
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        if self.get(key).await?.is_some() {
            return Ok(false);
        }
        self.put(key, value).await?;
        Ok(true)
    }

    /// Reads several keys; the default reads them one by one.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { atomic_batch: false, atomic_create: false, consistency: Consistency::Strong }
    }
}

/// Lists every key under `prefix` after `after`, page by page.
pub async fn list_all<S: Storage + ?Sized>(s: &S, prefix: &str, after: Option<&str>) -> Result<Vec<String>> {
    const PAGE: usize = 1000;
    let mut out: Vec<String> = Vec::new();
    let mut cursor = after.map(str::to_string);
    loop {
        let page = s.list(prefix, cursor.as_deref(), Some(PAGE)).await?;
        let done = page.len() < PAGE;
        if let Some(last) = page.last() {
            if cursor.as_deref().is_some_and(|c| last.as_str() <= c) {
                return Err(crate::error::Error::Storage(format!(
                    "list({prefix:?}) did not advance past {last:?}: the adapter ignores `after`"
                )));
            }
            cursor = Some(last.clone());
        }
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}
