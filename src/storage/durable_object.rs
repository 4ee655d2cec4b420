//! Durable Object storage ([`DoStorage`]): strongly consistent and
//! transactional. The documented choice for strict step claims and leases at
//! the edge.
//!
//! Platform facts this adapter is shaped by (PLATFORMS.md, "Durable Objects
//! storage"; <https://developers.cloudflare.com/durable-objects/api/storage-api/>,
//! <https://developers.cloudflare.com/durable-objects/platform/limits/>):
//! - `storage.transaction(async txn => …)` runs every operation called on
//!   `txn` in one transaction that commits when the closure's promise
//!   resolves and rolls back when it rejects, across `await`s. Every write
//!   here (`put`, `delete`, `batch`, `put_if_absent`) goes through one, so
//!   `batch` is all or nothing whatever its size, and `put_if_absent` is a
//!   get and a put inside one transaction: an atomic create.
//! - `get`/`put`/`delete` of several keys take at most 128 keys per call:
//!   bigger requests are split into calls of 128 inside the one transaction.
//! - SQLite-backed classes: key + value ≤ 2 MB per row. Legacy key-value
//!   backed classes: values ≤ 128 KiB. Values above [`DO_INLINE_BYTES`] are
//!   stored as chunks under an internal prefix plus a small manifest object
//!   at the key itself, all written in the same transaction, so a reader never
//!   sees half a value. Keeping listed values small matters too: DO `list`
//!   returns values with the keys, so a page of 128 keys holds at most
//!   128 × 64 KiB.
//! - Keys sort by their UTF-8 bytes, as the `Storage` contract wants.

use futures_util::future::LocalBoxFuture;

use js_sys::{Array, Function, Map, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use super::js_util::{bytes_of, entries_object, get, js_bytes, set, settle};
use super::{BatchOp, Capabilities, Consistency, Storage};
use crate::error::{Error, Result};

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage` of a Durable Object (or the `txn` of its
    /// `transaction()`, which has the same methods).
    #[wasm_bindgen(extends = Object, typescript_type = "DurableObjectStorage")]
    #[derive(Debug, Clone)]
    pub type DurableObjectStorage;

    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_js(this: &DurableObjectStorage, keys: &JsValue) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_entries(this: &DurableObjectStorage, entries: &Object) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_js(this: &DurableObjectStorage, keys: &JsValue) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = list)]
    fn list_js(this: &DurableObjectStorage, options: &Object) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn transaction(this: &DurableObjectStorage, closure: &Function) -> std::result::Result<Promise, JsValue>;
}

/// Keys per multi-key `get`/`put`/`delete` call (the platform's limit).
pub const DO_MAX_KEYS: usize = 128;
/// Chunk size on SQLite-backed classes: key + value ≤ 2 MB per row, less
/// the longest chunk key and the structured-clone framing, with margin.
pub const DO_SQLITE_CHUNK_BYTES: usize = 1_900_000;
/// Chunk size on legacy key-value backed classes (values ≤ 128 KiB).
pub const DO_LEGACY_CHUNK_BYTES: usize = 126 * 1024;
/// Values up to this size are stored whole at their key.
pub const DO_INLINE_BYTES: usize = 64 * 1024;
/// Internal keys (chunks) start with this character, which sorts after every
/// key Waymark writes; `list` skips them.
const INTERNAL: char = '\u{10FFFD}';
const MANIFEST: &str = "wmChunks";
const P: &str = "DurableObjectStorage";

/// Where keys and chunks go. Cloned into transaction closures.
#[derive(Debug, Clone)]
struct Layout {
    prefix: String,
    chunk: usize,
    inline: usize,
}

/// A stored value as read back.
enum Stored {
    Missing,
    Bytes(Vec<u8>),
    Chunks { n: u32, size: usize, id: String },
}

impl Layout {
    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn chunk_key(&self, id: &str, i: u32) -> String {
        format!("{}{INTERNAL}wm/c/{id}/{i:06}", self.prefix)
    }

    fn classify(&self, key: &str, v: &JsValue) -> Result<Stored> {
        if v.is_undefined() || v.is_null() {
            return Ok(Stored::Missing);
        }
        if let Some(b) = bytes_of(v) {
            return Ok(Stored::Bytes(b));
        }
        let n = get(v, MANIFEST);
        if let Some(n) = n.as_f64() {
            let size = get(v, "size").as_f64().unwrap_or(-1.0);
            let id = get(v, "id").as_string().unwrap_or_default();
            if n >= 1.0 && size >= 0.0 && !id.is_empty() {
                return Ok(Stored::Chunks { n: n as u32, size: size as usize, id });
            }
        }
        Err(Error::corrupt(key, "the Durable Object value is neither bytes nor a Waymark chunk manifest"))
    }

    fn chunk_keys(&self, n: u32, id: &str) -> Vec<String> {
        (0..n).map(|i| self.chunk_key(id, i)).collect()
    }

    /// The entries that store `value` at `full`.
    fn plan(&self, full: &str, value: &[u8]) -> Vec<(String, JsValue)> {
        if value.len() <= self.inline {
            return vec![(full.to_string(), js_bytes(value).into())];
        }
        let id = crate::store::random_id();
        let mut out: Vec<(String, JsValue)> =
            value.chunks(self.chunk).enumerate().map(|(i, c)| (self.chunk_key(&id, i as u32), js_bytes(c).into())).collect();
        let m = Object::new();
        set(&m, MANIFEST, &JsValue::from(out.len() as u32));
        set(&m, "size", &JsValue::from(value.len() as f64));
        set(&m, "id", &JsValue::from_str(&id));
        out.push((full.to_string(), m.into()));
        out
    }
}

/// The body of a `storage.transaction()` (see `DoStorage::transact`).
type TxnFn = dyn FnOnce(DurableObjectStorage, Layout) -> LocalBoxFuture<'static, Result<JsValue>>;

fn js_err(e: Error) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// `get` of up to 128 keys per call; the values in key order (`undefined` if missing).
async fn read_many(ops: &DurableObjectStorage, full: &[String]) -> Result<Vec<JsValue>> {
    let mut out = Vec::with_capacity(full.len());
    for group in full.chunks(DO_MAX_KEYS) {
        let arr: Array = group.iter().map(|k| JsValue::from_str(k)).collect();
        let first = group.first().map(String::as_str).unwrap_or_default();
        let m = settle(P, "get", first, ops.get_js(&arr)).await?;
        let map: Map = m.dyn_into().map_err(|_| Error::Storage("DurableObjectStorage.get([...]) did not answer a Map".into()))?;
        out.extend(group.iter().map(|k| map.get(&JsValue::from_str(k))));
    }
    Ok(out)
}

async fn put_many(ops: &DurableObjectStorage, entries: Vec<(String, JsValue)>) -> Result<()> {
    let mut it = entries.into_iter().peekable();
    while it.peek().is_some() {
        let group: Vec<(String, JsValue)> = it.by_ref().take(DO_MAX_KEYS).collect();
        let first = group[0].0.clone();
        settle(P, "put", &first, ops.put_entries(&entries_object(group))).await?;
    }
    Ok(())
}

async fn delete_many(ops: &DurableObjectStorage, keys: &[String]) -> Result<()> {
    for group in keys.chunks(DO_MAX_KEYS) {
        let arr: Array = group.iter().map(|k| JsValue::from_str(k)).collect();
        settle(P, "delete", &group[0], ops.delete_js(&arr)).await?;
    }
    Ok(())
}

/// Applies `finals` (key → new value, or `None` to delete) inside `txn`,
/// removing the chunks of the values they replace.
async fn write_finals(txn: &DurableObjectStorage, layout: &Layout, finals: Vec<(String, Option<Vec<u8>>)>) -> Result<()> {
    let full: Vec<String> = finals.iter().map(|(k, _)| layout.full(k)).collect();
    let old = read_many(txn, &full).await?;
    let mut deletes = Vec::new();
    for ((k, _), v) in finals.iter().zip(&old) {
        if let Stored::Chunks { n, id, .. } = layout.classify(k, v).unwrap_or(Stored::Missing) {
            deletes.extend(layout.chunk_keys(n, &id));
        }
    }
    let mut puts = Vec::new();
    for ((_, v), f) in finals.into_iter().zip(full) {
        match v {
            Some(bytes) => puts.extend(layout.plan(&f, &bytes)),
            None => deletes.push(f),
        }
    }
    delete_many(txn, &deletes).await?;
    put_many(txn, puts).await
}

/// Storage over a Durable Object's `ctx.storage`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DoStorage {
    js: DurableObjectStorage,
    layout: Layout,
}

impl DoStorage {
    /// Storage over `ctx.storage`. The chunk size follows the class's
    /// backend: SQLite-backed (2 MB rows) unless reading `storage.sql`
    /// throws, as it does on legacy key-value backed classes (128 KiB values).
    pub fn new(js: DurableObjectStorage) -> Self {
        let legacy = js_sys::Reflect::get(&js, &JsValue::from_str("sql")).is_err();
        let chunk = if legacy { DO_LEGACY_CHUNK_BYTES } else { DO_SQLITE_CHUNK_BYTES };
        DoStorage { js, layout: Layout { prefix: String::new(), chunk, inline: DO_INLINE_BYTES.min(chunk) } }
    }

    /// Checks that `v` looks like Durable Object storage.
    pub fn from_js(v: &JsValue) -> Result<Self> {
        for m in ["get", "put", "delete", "list", "transaction"] {
            if !get(v, m).is_function() {
                return Err(Error::invalid(format!(
                    "durableObjectStorage needs a Durable Object's storage (this.ctx.storage); the value has no `{m}` method"
                )));
            }
        }
        Ok(Self::new(v.clone().unchecked_into()))
    }

    /// Keeps every key under `prefix` (several stores in one object).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.layout.prefix = prefix.into();
        self
    }

    /// Sets the chunk size (at most the SQLite row limit); values above
    /// `min(chunk, 64 KiB)` are chunked. Tests use small chunks; use
    /// [`DO_LEGACY_CHUNK_BYTES`] for a key-value backed class.
    pub fn with_chunk_bytes(mut self, chunk: usize) -> Self {
        self.layout.chunk = chunk.clamp(1, DO_SQLITE_CHUNK_BYTES);
        self.layout.inline = DO_INLINE_BYTES.min(self.layout.chunk);
        self
    }

    /// Runs `f` inside `storage.transaction()`: committed when its future
    /// succeeds, rolled back when it fails. `f` is boxed so that one copy of
    /// this function and of its `future_to_promise` serves every caller
    /// (~1 KB gzipped of workerd wasm, BENCHMARKS.md "Size").
    async fn transact(&self, what: &str, key: &str, f: Box<TxnFn>) -> Result<JsValue> {
        let layout = self.layout.clone();
        let closure = Closure::once(move |txn: JsValue| -> Promise {
            let fut = f(txn.unchecked_into(), layout);
            // Boxed as the bindings box theirs (`bindings::error::to_promise`):
            // one instance of `future_to_promise` serves both.
            future_to_promise(Box::pin(async move { fut.await.map_err(js_err) }) as LocalBoxFuture<'static, _>)
        });
        let r = settle(P, what, key, self.js.transaction(closure.as_ref().unchecked_ref())).await;
        drop(closure);
        r
    }

    async fn resolve(&self, ops: &DurableObjectStorage, key: &str, v: &JsValue) -> Result<Option<Vec<u8>>> {
        match self.layout.classify(key, v)? {
            Stored::Missing => Ok(None),
            Stored::Bytes(b) => Ok(Some(b)),
            Stored::Chunks { n, size, id } => {
                let parts = read_many(ops, &self.layout.chunk_keys(n, &id)).await?;
                let mut out = Vec::with_capacity(size);
                for (i, p) in parts.iter().enumerate() {
                    let b = bytes_of(p).ok_or_else(|| Error::corrupt(key, format!("chunk {i} of the value is missing")))?;
                    out.extend_from_slice(&b);
                }
                if out.len() != size {
                    return Err(Error::corrupt(key, format!("the chunks hold {} bytes, the manifest says {size}", out.len())));
                }
                Ok(Some(out))
            }
        }
    }
}

impl Storage for DoStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // Reads in a row see one consistent state: the object's input gate
        // holds other events while a storage read is awaited.
        let v = settle(P, "get", key, self.js.get_js(&JsValue::from_str(&self.layout.full(key)))).await?;
        self.resolve(&self.js, key, &v).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.batch(vec![BatchOp::Put(key.to_string(), value)]).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.batch(vec![BatchOp::Delete(key.to_string())]).await
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut after = after.filter(|a| *a >= prefix).map(str::to_string);
        while out.len() < limit {
            let want = (limit - out.len()).min(DO_MAX_KEYS);
            let o = Object::new();
            set(&o, "prefix", &JsValue::from_str(&self.layout.full(prefix)));
            set(&o, "limit", &JsValue::from(want as u32));
            if let Some(a) = &after {
                set(&o, "startAfter", &JsValue::from_str(&self.layout.full(a)));
            }
            let m = settle(P, "list", prefix, self.js.list_js(&o)).await?;
            let map: Map = m.dyn_into().map_err(|_| Error::Storage("DurableObjectStorage.list() did not answer a Map".into()))?;
            let mut n = 0;
            let mut internal = false;
            for k in map.keys() {
                let k = k.map_err(|e| Error::Storage(format!("DurableObjectStorage.list(): {}", super::js_util::describe(&e))))?;
                n += 1;
                let Some(k) = k.as_string() else { continue };
                let Some(k) = k.strip_prefix(&self.layout.prefix) else { continue };
                if k.starts_with(INTERNAL) {
                    internal = true; // internal keys sort last: nothing of ours follows
                    break;
                }
                after = Some(k.to_string());
                out.push(k.to_string());
            }
            if internal || n < want {
                break;
            }
        }
        Ok(out)
    }

    /// One transaction, whatever the number of ops: the ops' final effect per
    /// key is written with multi-key calls of at most 128 keys.
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let first = match &ops[0] {
            BatchOp::Put(k, _) | BatchOp::Delete(k) => k.clone(),
        };
        // Applying in order inside one transaction is the same as writing
        // each key's last op: intermediate states are never visible.
        let mut finals: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for op in ops {
            let (k, v) = match op {
                BatchOp::Put(k, v) => (k, Some(v)),
                BatchOp::Delete(k) => (k, None),
            };
            match at.get(&k) {
                Some(&i) => finals[i].1 = v,
                None => {
                    at.insert(k.clone(), finals.len());
                    finals.push((k, v));
                }
            }
        }
        self.transact(
            "transaction",
            &first,
            Box::new(move |txn, layout| {
                Box::pin(async move {
                    write_finals(&txn, &layout, finals).await?;
                    Ok(JsValue::UNDEFINED)
                })
            }),
        )
        .await
        .map(drop)
    }

    /// A get and a put inside one `transaction()`: atomic.
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        let key = key.to_string();
        let k2 = key.clone();
        let r = self
            .transact(
                "transaction",
                &k2,
                Box::new(move |txn, layout| {
                    Box::pin(async move {
                        let full = layout.full(&key);
                        let v = settle(P, "get", &key, txn.get_js(&JsValue::from_str(&full))).await?;
                        if !(v.is_undefined() || v.is_null()) {
                            return Ok(JsValue::FALSE);
                        }
                        put_many(&txn, layout.plan(&full, &value)).await?;
                        Ok(JsValue::TRUE)
                    })
                }),
            )
            .await?;
        Ok(r.as_bool() == Some(true))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let full: Vec<String> = keys.iter().map(|k| self.layout.full(k)).collect();
        let vals = read_many(&self.js, &full).await?;
        let mut out = Vec::with_capacity(keys.len());
        for (k, v) in keys.iter().zip(&vals) {
            out.push(self.resolve(&self.js, k, v).await?);
        }
        Ok(out)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { atomic_batch: true, atomic_create: true, consistency: Consistency::Strong }
    }
}
