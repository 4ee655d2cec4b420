//! Workers KV ([`KvStorage`]): eventually consistent, no compare-and-swap.
//!
//! Platform facts this adapter is shaped by (PLATFORMS.md, "Workers KV";
//! <https://developers.cloudflare.com/kv/platform/limits/>):
//! - keys ≤ 512 bytes: longer keys are refused with `STORAGE` (Waymark's own
//!   keys stay below 480 bytes: scope and run segments are digests,
//!   checkpoint names are capped at 200 bytes);
//! - values ≤ 25 MiB: larger values are split into chunks of
//!   [`KV_CHUNK_BYTES`]; the value's own key holds the first chunk, and its
//!   metadata names the rest, which live under an internal prefix that
//!   `list` never shows;
//! - metadata ≤ 1,024 bytes of JSON: [`Storage::put_meta`] strings are
//!   capped at [`MAX_META_BYTES`] and come back from `list_meta` without a
//!   value read;
//! - `list({ prefix, limit ≤ 1000, cursor })` only: there is no "start
//!   after" option, so `list(prefix, after, …)` pages from the prefix's first
//!   key. The cursor reached at the end of each answer is remembered, so the
//!   usual page-by-page walk ([`super::list_all`]) costs one KV list per page.
//!   A page may be empty while `list_complete` is false: paging goes on;
//! - no compare-and-swap and 1 write per second per key:
//!   [`Storage::put_if_absent`] is a plain get-then-put and
//!   `capabilities()` says so (`atomic_create: false`, `Eventual`); the store
//!   then names every log record uniquely per writer and merges on read, so
//!   no key is rewritten per transaction (see `store::merge`).
//! - 1,000 KV operations per invocation: `get_many` and `batch` keep at most
//!   [`PARALLEL`] requests in flight; the store bounds how many log records a
//!   load reads by snapshotting more often on this storage.
//!
//! `expirationTtl` is never used to implement Waymark's TTLs (they are
//! logical, may be shorter than KV's 60 s minimum, and expired facts stay in
//! history). [`KvStorage::put_expiring`] exists for clean-up of data that is
//! already dead; it never passes less than 60 s.

use std::cell::RefCell;
use std::task::Poll;

use futures_util::future::LocalBoxFuture;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::js_util::{bytes_of, get};
use super::{BatchOp, Capabilities, Consistency, Storage, MAX_META_BYTES};
use crate::error::{Error, Result};

mod namespace;
pub use namespace::KvNamespace;
use namespace::Meta;

/// Workers KV's key limit, in bytes.
pub const KV_MAX_KEY_BYTES: usize = 512;
/// Workers KV's value limit (25 MiB).
pub const KV_MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;
/// Chunk size of values larger than [`KV_MAX_VALUE_BYTES`] (1 MiB of margin).
pub const KV_CHUNK_BYTES: usize = 24 * 1024 * 1024;
/// KV's smallest `expirationTtl`, in seconds.
pub const KV_MIN_TTL_SECONDS: f64 = 60.0;
/// Requests kept in flight by `get_many` and `batch`.
pub const PARALLEL: usize = 32;
/// KV's largest list page.
const PAGE: usize = 1000;
/// Internal keys (chunks) start with this character, which sorts after every
/// key Waymark writes; `list` skips them.
const INTERNAL: char = '\u{10FFFD}';

const P: &str = "KV";

/// Storage over a Workers KV namespace. Cheap to clone (clones share the
/// list-cursor cache).
///
/// ```ignore
/// let storage = KvStorage::new(env_state.unchecked_into());
/// let store = Store::open(storage, StoreOptions::default()).await?;
/// ```
#[derive(Clone)]
pub struct KvStorage {
    ns: KvNamespace,
    prefix: String,
    chunk: usize,
    /// (prefix, last key returned, KV cursor just after it). At most 65
    /// entries: a `Vec` searched linearly rather than a `HashMap` (~0.8 KB
    /// gzipped of workerd wasm, BENCHMARKS.md "Size").
    cursors: std::rc::Rc<RefCell<Vec<(String, String, String)>>>,
}

impl std::fmt::Debug for KvStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStorage").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl KvStorage {
    /// Storage over the whole namespace.
    pub fn new(ns: KvNamespace) -> Self {
        KvStorage { ns, prefix: String::new(), chunk: KV_CHUNK_BYTES, cursors: Default::default() }
    }

    /// Checks that `v` looks like a KV namespace (has `getWithMetadata`,
    /// `put`, `delete` and `list`).
    pub fn from_js(v: &JsValue) -> Result<Self> {
        for m in ["getWithMetadata", "put", "delete", "list"] {
            if !get(v, m).is_function() {
                return Err(Error::invalid(format!(
                    "kvStorage needs a Workers KV namespace binding (env.MY_KV); the value has no `{m}` method"
                )));
            }
        }
        Ok(Self::new(v.clone().unchecked_into()))
    }

    /// Keeps every key under `prefix` (several stores in one namespace).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Chunk size for large values (tests use small chunks).
    pub fn with_chunk_bytes(mut self, chunk: usize) -> Self {
        self.chunk = chunk.clamp(1, KV_CHUNK_BYTES);
        self
    }

    fn full(&self, key: &str) -> Result<String> {
        let k = format!("{}{key}", self.prefix);
        if k.len() > KV_MAX_KEY_BYTES {
            return Err(Error::Storage(format!(
                "the key {k:?} is {} bytes; Workers KV keys are at most {KV_MAX_KEY_BYTES} bytes",
                k.len()
            )));
        }
        if k.is_empty() || k == "." || k == ".." {
            return Err(Error::Storage(format!("{k:?} is not a valid Workers KV key")));
        }
        Ok(k)
    }

    fn chunk_key(&self, id: &str, i: u32) -> String {
        format!("{}{INTERNAL}wm/c/{id}/{i:06}", self.prefix)
    }

    fn chunk_prefix(&self, id: &str) -> String {
        format!("{}{INTERNAL}wm/c/{id}/", self.prefix)
    }

    /// Writes `value` (chunked when large) with optional user metadata and TTL.
    async fn write(&self, key: &str, value: Vec<u8>, user: Option<&str>, ttl: Option<f64>) -> Result<()> {
        let full = self.full(key)?;
        if let Some(m) = user {
            if m.len() > MAX_META_BYTES {
                return Err(Error::Storage(format!("metadata of {key:?} is {} bytes; at most {MAX_META_BYTES}", m.len())));
            }
        }
        let mut meta = Meta { user: user.map(str::to_string), ..Meta::default() };
        let limit = self.chunk.min(KV_MAX_VALUE_BYTES);
        if value.len() <= limit {
            return self.raw_put(&full, &value, &meta, ttl).await;
        }
        // Chunks first, under a fresh id, then the key itself: a reader sees
        // either the old value or the whole new one.
        let id = crate::store::random_id();
        let parts: Vec<&[u8]> = value.chunks(limit).collect();
        meta.more = (parts.len() - 1) as u32;
        meta.size = value.len();
        meta.id = id.clone();
        for (i, part) in parts.iter().enumerate().skip(1) {
            self.raw_put(&self.chunk_key(&id, i as u32), part, &Meta::default(), ttl).await?;
        }
        self.raw_put(&full, parts[0], &meta, ttl).await
    }

    /// Like `put`, with a clean-up hint: KV may drop the key `ttl_ms` after
    /// this write (never sooner than 60 s, KV's minimum). Only for data that
    /// is already dead for Waymark; Waymark's own TTLs are logical.
    pub async fn put_expiring(&self, key: &str, value: Vec<u8>, ttl_ms: f64) -> Result<()> {
        if !ttl_ms.is_finite() || ttl_ms < 0.0 {
            return Err(Error::invalid("a clean-up TTL must be a finite number of milliseconds >= 0"));
        }
        self.write(key, value, None, Some((ttl_ms / 1000.0).max(KV_MIN_TTL_SECONDS))).await
    }

    async fn assemble(&self, key: &str, first: JsValue, meta: &Meta) -> Result<Vec<u8>> {
        let first = bytes_of(&first).ok_or_else(|| Error::Storage(format!("KV.get({key:?}) did not answer an ArrayBuffer")))?;
        if meta.more == 0 {
            return Ok(first);
        }
        let mut out = Vec::with_capacity(meta.size);
        out.extend_from_slice(&first);
        for i in 1..=meta.more {
            let ck = self.chunk_key(&meta.id, i);
            let Some((v, _)) = self.raw_get(&ck).await? else {
                return Err(Error::Storage(format!(
                    "chunk {i} of {key:?} is missing (written elsewhere and not visible here yet, or being replaced); try again"
                )));
            };
            let b = bytes_of(&v).ok_or_else(|| Error::Storage(format!("KV.get({ck:?}) did not answer an ArrayBuffer")))?;
            out.extend_from_slice(&b);
        }
        if out.len() != meta.size {
            return Err(Error::Storage(format!("{key:?} reassembled to {} bytes, its metadata says {}", out.len(), meta.size)));
        }
        Ok(out)
    }

    /// Keys (and raw metadata) under `prefix` after `after`, at most `limit`.
    async fn list_raw(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<(String, JsValue)>> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let full_prefix = format!("{}{prefix}", self.prefix);
        let after = after.filter(|a| *a >= prefix);
        // Resume where the previous page ended, when that is where we are.
        let mut cursor = after.and_then(|a| {
            let mut cache = self.cursors.borrow_mut();
            let i = cache.iter().position(|(p, l, _)| p == prefix && l == a)?;
            Some(cache.swap_remove(i).2)
        });
        let mut skipping = after.is_some() && cursor.is_none();
        loop {
            let want = if skipping { PAGE } else { (limit - out.len()).min(PAGE) };
            let (page, next) = self.raw_list(&full_prefix, want, cursor.as_deref()).await?;
            let n = page.len();
            let mut taken = 0;
            for (name, meta) in page {
                taken += 1;
                let Some(k) = name.strip_prefix(&self.prefix) else { continue };
                if k.starts_with(INTERNAL) {
                    continue;
                }
                if after.is_some_and(|a| k <= a) {
                    continue;
                }
                skipping = false;
                out.push((k.to_string(), meta));
                if out.len() == limit {
                    break;
                }
            }
            // KV's cursor points after the whole page: it is ours only when
            // every key of the page was consumed.
            let exact = taken == n;
            match next {
                Some(c) if out.len() < limit => cursor = Some(c),
                Some(c) => {
                    if exact {
                        if let Some((last, _)) = out.last() {
                            let mut cache = self.cursors.borrow_mut();
                            if cache.len() > 64 {
                                cache.clear();
                            }
                            match cache.iter_mut().find(|(p, l, _)| p == prefix && l == last) {
                                Some(e) => e.2 = c,
                                None => cache.push((prefix.to_string(), last.clone(), c)),
                            }
                        }
                    }
                    return Ok(out);
                }
                None => return Ok(out),
            }
        }
    }
}

impl Storage for KvStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let full = self.full(key)?;
        match self.raw_get(&full).await? {
            Some((v, meta)) => self.assemble(key, v, &meta).await.map(Some),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.write(key, value, None, None).await
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>, meta: &str) -> Result<()> {
        self.write(key, value, Some(meta), None).await
    }

    /// Deletes the key and, when it was chunked, its chunks (one KV list to
    /// find the key's metadata without reading the value).
    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full(key)?;
        let (page, _) = self.raw_list(&full, 1, None).await?;
        let meta = page.into_iter().find(|(n, _)| *n == full).map(|(_, m)| Meta::from_js(&m)).unwrap_or_default();
        self.raw_delete(&full).await?;
        if meta.more > 0 {
            // The chunk prefix also catches chunks a failed write left behind.
            let (chunks, _) = self.raw_list(&self.chunk_prefix(&meta.id), PAGE, None).await?;
            for (name, _) in chunks {
                self.raw_delete(&name).await?;
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        Ok(self.list_raw(prefix, after, limit).await?.into_iter().map(|(k, _)| k).collect())
    }

    async fn list_meta(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<(String, Option<String>)>> {
        Ok(self.list_raw(prefix, after, limit).await?.into_iter().map(|(k, m)| (k, Meta::from_js(&m).user)).collect())
    }

    /// Not atomic (KV has no transactions): ops run in order, with up to
    /// [`PARALLEL`] in flight as long as no two in flight touch the same key.
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        let mut group: Vec<BatchOp> = Vec::new();
        for op in ops {
            let key = match &op {
                BatchOp::Put(k, _) | BatchOp::Delete(k) => k,
            };
            let clash = group.iter().any(|o| matches!(o, BatchOp::Put(k, _) | BatchOp::Delete(k) if k == key));
            if clash || group.len() == PARALLEL {
                self.run_group(std::mem::take(&mut group)).await?;
            }
            group.push(op);
        }
        self.run_group(group).await
    }

    /// A get then a put: KV has no compare-and-swap (`atomic_create: false`).
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        if self.get(key).await?.is_some() {
            return Ok(false);
        }
        self.put(key, value).await?;
        Ok(true)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PARALLEL) {
            out.extend(join_ok(chunk.iter().map(|k| Box::pin(self.get(k)) as LocalBoxFuture<'_, _>).collect()).await?);
        }
        Ok(out)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { atomic_batch: false, atomic_create: false, consistency: Consistency::Eventual }
    }
}

impl KvStorage {
    async fn run_group(&self, group: Vec<BatchOp>) -> Result<()> {
        let ops = group.into_iter().map(|op| -> LocalBoxFuture<'_, Result<()>> {
            Box::pin(async move {
                match op {
                    BatchOp::Put(k, v) => self.put(&k, v).await,
                    BatchOp::Delete(k) => self.delete(&k).await,
                }
            })
        });
        join_ok(ops.collect()).await.map(drop)
    }
}

/// Runs `futs` concurrently and returns their outputs in order; the first
/// error is returned at once and the others are dropped, as
/// `futures_util::future::try_join_all` does. Hand-written for size: above
/// 30 futures (we run up to [`PARALLEL`] = 32) `try_join_all` switches to
/// `FuturesOrdered`, whose task queue, binary heap and `Arc` wakers cost the
/// workerd wasm ~2.6 KB gzipped (BENCHMARKS.md "Size"). Polling every
/// pending future on each wake is what `try_join_all` does for small sets.
async fn join_ok<T>(futs: Vec<LocalBoxFuture<'_, Result<T>>>) -> Result<Vec<T>> {
    let mut futs: Vec<Option<LocalBoxFuture<'_, Result<T>>>> = futs.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (slot, out) in futs.iter_mut().zip(done.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(Ok(v)) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(done.drain(..).flatten().collect()))
        }
    })
    .await
}
