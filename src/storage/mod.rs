//! The storage contract: a small async key-value interface that every
//! backend (memory, IndexedDB, Workers KV, Durable Objects, files, any
//! TypeScript adapter) implements.
//!
//! Keys are UTF-8 strings compared by their bytes; values are byte strings.
//! Waymark only ever writes keys from [`keys`], and never rewrites a log
//! record: concurrent writers claim the next seq with [`Storage::put_if_absent`].

// The platform adapters are compiled only into the wasm build of their
// runtime (Cargo.toml [features]: `idb` for browsers, `edge` for Workers).
#[cfg(all(target_arch = "wasm32", feature = "idb"))]
pub mod idb;
#[cfg(all(target_arch = "wasm32", feature = "edge"))]
pub mod cloudflare;
#[cfg(all(target_arch = "wasm32", feature = "edge"))]
pub mod durable_object;
#[cfg(all(target_arch = "wasm32", feature = "conformance", feature = "edge"))]
pub mod edge_tests;
#[cfg(all(target_arch = "wasm32", feature = "edge"))]
mod js_util;
pub mod keys;
#[cfg(all(target_arch = "wasm32", feature = "edge"))]
pub mod kv;
pub mod memory;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use crate::error::Result;

pub use memory::MemoryStorage;

/// The largest metadata string [`Storage::put_meta`] accepts (Workers KV
/// allows 1,024 bytes of JSON per key; the rest is the JSON wrapping).
pub const MAX_META_BYTES: usize = 960;

/// Keys and values, in order (a log tail, records to create).
pub type Entries = Vec<(String, Vec<u8>)>;

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

    /// [`Storage::put_if_absent`] for the records whose loss would hurt most
    /// after an acknowledged write and a power cut (checkpoints): the backend
    /// reaches durable media before answering (IndexedDB `durability:
    /// "strict"`, which also flushes every earlier relaxed write). A separate
    /// method rather than a parameter, so the other adapters and callers stay
    /// unchanged; the default is `put_if_absent`.
    async fn put_if_absent_durable(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        self.put_if_absent(key, value).await
    }

    /// Writes a value together with a small metadata string (at most
    /// [`MAX_META_BYTES`]) that [`Storage::list_meta`] returns without
    /// reading the value (Workers KV key metadata). The run registry keeps
    /// compact run summaries there on eventually consistent storage, so that
    /// listing runs reads one page of keys instead of every value. The
    /// default drops the metadata: `list_meta` then reports `None` and the
    /// caller reads the value.
    async fn put_meta(&self, key: &str, value: Vec<u8>, meta: &str) -> Result<()> {
        let _ = meta;
        self.put(key, value).await
    }

    /// [`Storage::list`] with each key's metadata from [`Storage::put_meta`]
    /// (`None` when the backend keeps none). Same order, prefix, `after` and
    /// `limit` rules as `list`.
    async fn list_meta(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<(String, Option<String>)>> {
        Ok(self.list(prefix, after, limit).await?.into_iter().map(|k| (k, None)).collect())
    }

    /// One atomic read-then-create at the end of a log: reads every entry
    /// under `prefix` whose key is greater than `after` (keys and values, in
    /// order), passes them to `build`, and creates the entries `build`
    /// returns, with no other writer in between. `build` runs synchronously
    /// inside that step and may run again if the step is retried; its `Err`
    /// aborts the step without writing. `Ok(true)`: done. `Ok(false)`: the
    /// backend cannot do this atomically (the default; `build` was not
    /// called) and the caller claims with [`Storage::put_if_absent`] instead.
    ///
    /// The store uses it after losing a seq claim: a writer that claims the
    /// next seq only after catching up loses every race to a writer that
    /// commits back to back (two tabs in a write loop), and would starve.
    async fn append_after(
        &self,
        prefix: &str,
        after: &str,
        build: &mut dyn FnMut(Entries) -> Result<Entries>,
    ) -> Result<bool> {
        let _ = (prefix, after, build);
        Ok(false)
    }

    /// Creates `entries` in order while their keys are absent, stopping at
    /// the first key that exists (or repeats), in one atomic step:
    /// `Ok(Some(n))` says the first `n` were created, together; the others
    /// were not written. `Err`: none was. `Ok(None)`: the backend cannot do
    /// this atomically (the default; nothing was written) and the caller
    /// creates them one by one with [`Storage::put_if_absent`].
    ///
    /// The store commits several queued transactions of one scope with it,
    /// one log record each with contiguous seqs (`store::scope::pipeline`):
    /// one IndexedDB transaction for all of them instead of one each.
    async fn create_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<Option<usize>> {
        let _ = entries;
        Ok(None)
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

    /// Every future of this storage completes in its first poll (memory):
    /// there is no I/O latency to share, so the write pipeline does not
    /// wait a turn for other transactions to join a group commit.
    fn instant(&self) -> bool {
        false
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
