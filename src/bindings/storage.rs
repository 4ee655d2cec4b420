//! Storage reachable from JS: the Rust [`MemoryStorage`] behind the
//! `memoryStorage()` factory (class in [`super::memory`]), and any JS object
//! implementing API.md's `StorageAdapter`, wrapped once in [`JsAdapter`]
//! (STYLE.md habit 6).
//!
//! Every way a JS adapter can misbehave — a missing method, a synchronous
//! throw, a rejected promise, a wrong return type — becomes an
//! `Error::Storage` naming the method and key; nothing panics, and the store
//! applies a write only after the adapter's promise resolved.
//! Other built-in adapters (IndexedDB, Workers KV, Durable Objects) become
//! more variants of [`Backend`].

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::error::{describe, kind_of};
use super::memory::JsMemoryStorage;
use crate::error::{Error, Result};
use crate::storage::{BatchOp, Capabilities, Consistency, Entries, MemoryStorage, Storage};

#[wasm_bindgen]
extern "C" {
    /// A JS object implementing `StorageAdapter` (duck-typed).
    #[wasm_bindgen(typescript_type = "StorageAdapter")]
    pub type StorageAdapter;
    #[wasm_bindgen(method, catch)]
    fn get(this: &StorageAdapter, key: &str) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn put(this: &StorageAdapter, key: &str, value: &Uint8Array) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn delete(this: &StorageAdapter, key: &str) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn list(this: &StorageAdapter, prefix: &str, options: &Object) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn batch(this: &StorageAdapter, ops: &Array) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = putIfAbsent)]
    fn put_if_absent(this: &StorageAdapter, key: &str, value: &Uint8Array) -> std::result::Result<JsValue, JsValue>;
}

/// The storage behind a JS-visible store.
pub enum Backend {
    Memory(MemoryStorage),
    Js(JsAdapter),
    /// `indexedDbStorage(dbName)` ([`super::idb`]; feature `idb`, the browser build).
    #[cfg(feature = "idb")]
    Idb(crate::storage::idb::IdbStorage),
    /// `kvStorage(namespace)` / `durableObjectStorage(storage)` ([`super::kv`],
    /// [`super::durable_object`]; feature `edge`, the workerd build).
    #[cfg(feature = "edge")]
    Cf(crate::storage::cloudflare::CloudflareStorage),
}

impl From<MemoryStorage> for Backend {
    fn from(m: MemoryStorage) -> Self {
        Backend::Memory(m)
    }
}

#[cfg(feature = "idb")]
impl From<crate::storage::idb::IdbStorage> for Backend {
    fn from(i: crate::storage::idb::IdbStorage) -> Self {
        Backend::Idb(i)
    }
}

#[cfg(feature = "edge")]
impl From<crate::storage::cloudflare::CloudflareStorage> for Backend {
    fn from(c: crate::storage::cloudflare::CloudflareStorage) -> Self {
        Backend::Cf(c)
    }
}

impl Backend {
    /// `options.storage` of `open()`: absent → a fresh memory storage; the
    /// object from `memoryStorage()` → that Rust storage; anything else must
    /// be a `StorageAdapter`.
    pub fn from_js(v: &JsValue) -> Result<Backend> {
        if v.is_undefined() || v.is_null() {
            return Ok(Backend::Memory(MemoryStorage::new()));
        }
        if let Some(m) = JsMemoryStorage::claim(v) {
            return Ok(Backend::Memory(m));
        }
        #[cfg(feature = "idb")]
        if let Some(i) = super::idb::JsIdbStorage::claim(v) {
            return Ok(Backend::Idb(i));
        }
        #[cfg(feature = "edge")]
        if let Some(c) = super::kv::claim(v) {
            return Ok(Backend::Cf(c));
        }
        JsAdapter::new(v).map(Backend::Js)
    }
}

impl Storage for Backend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Backend::Memory(m) => m.get(key).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.get(key).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.get(key).await,
            Backend::Js(j) => j.get(key).await,
        }
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        match self {
            Backend::Memory(m) => m.put(key, value).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.put(key, value).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.put(key, value).await,
            Backend::Js(j) => j.put(key, value).await,
        }
    }
    async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Backend::Memory(m) => m.delete(key).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.delete(key).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.delete(key).await,
            Backend::Js(j) => j.delete(key).await,
        }
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        match self {
            Backend::Memory(m) => m.list(prefix, after, limit).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.list(prefix, after, limit).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.list(prefix, after, limit).await,
            Backend::Js(j) => j.list(prefix, after, limit).await,
        }
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        match self {
            Backend::Memory(m) => m.batch(ops).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.batch(ops).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.batch(ops).await,
            Backend::Js(j) => j.batch(ops).await,
        }
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        match self {
            Backend::Memory(m) => m.put_if_absent(key, value).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.put_if_absent(key, value).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.put_if_absent(key, value).await,
            Backend::Js(j) => j.put_if_absent(key, value).await,
        }
    }
    async fn put_if_absent_durable(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        match self {
            Backend::Memory(m) => m.put_if_absent_durable(key, value).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.put_if_absent_durable(key, value).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.put_if_absent_durable(key, value).await,
            Backend::Js(j) => j.put_if_absent(key, value).await,
        }
    }
    async fn put_meta(&self, key: &str, value: Vec<u8>, meta: &str) -> Result<()> {
        match self {
            Backend::Memory(m) => m.put_meta(key, value, meta).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.put_meta(key, value, meta).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.put_meta(key, value, meta).await,
            Backend::Js(j) => j.put(key, value).await,
        }
    }
    async fn list_meta(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<(String, Option<String>)>> {
        match self {
            Backend::Memory(m) => m.list_meta(prefix, after, limit).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.list_meta(prefix, after, limit).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.list_meta(prefix, after, limit).await,
            Backend::Js(j) => Ok(j.list(prefix, after, limit).await?.into_iter().map(|k| (k, None)).collect()),
        }
    }
    async fn append_after(
        &self,
        prefix: &str,
        after: &str,
        build: &mut dyn FnMut(Entries) -> Result<Entries>,
    ) -> Result<bool> {
        match self {
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.append_after(prefix, after, build).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.append_after(prefix, after, build).await,
            Backend::Memory(m) => m.append_after(prefix, after, build).await,
            Backend::Js(_) => Ok(false),
        }
    }
    async fn create_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<Option<usize>> {
        match self {
            Backend::Memory(m) => m.create_all(entries).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.create_all(entries).await,
            _ => Ok(None),
        }
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {
            Backend::Memory(m) => m.get_many(keys).await,
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.get_many(keys).await,
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.get_many(keys).await,
            Backend::Js(j) => j.get_many(keys).await,
        }
    }
    fn capabilities(&self) -> Capabilities {
        match self {
            Backend::Memory(m) => m.capabilities(),
            #[cfg(feature = "idb")]
            Backend::Idb(i) => i.capabilities(),
            #[cfg(feature = "edge")]
            Backend::Cf(c) => c.capabilities(),
            Backend::Js(j) => j.capabilities(),
        }
    }
    fn instant(&self) -> bool {
        matches!(self, Backend::Memory(_))
    }
}

/// A JS `StorageAdapter`, checked once at `open()`.
pub struct JsAdapter {
    obj: StorageAdapter,
    has_batch: bool,
    has_put_if_absent: bool,
}

/// How many `get`s [`JsAdapter::get_many`] keeps in flight (bounded so a file
/// adapter never opens thousands of files at once).
const PARALLEL_GETS: usize = 64;

fn storage_err(what: &str, key: &str, e: &JsValue) -> Error {
    Error::Storage(format!("adapter.{what}({key:?}) failed: {}", describe(e)))
}

fn is_method(obj: &JsValue, name: &str) -> Result<bool> {
    let f = Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|e| Error::invalid(format!("storage.{name} could not be read: {}", describe(&e))))?;
    Ok(f.is_function())
}

/// Awaits whatever an adapter method returned (a promise, a thenable or a plain value).
async fn settle(what: &str, key: &str, r: std::result::Result<JsValue, JsValue>) -> Result<JsValue> {
    let v = r.map_err(|e| storage_err(what, key, &e))?;
    JsFuture::from(Promise::resolve(&v)).await.map_err(|e| storage_err(what, key, &e))
}

fn bytes_of(v: &JsValue, what: &str, key: &str) -> Result<Vec<u8>> {
    if let Some(u) = v.dyn_ref::<Uint8Array>() {
        return Ok(u.to_vec());
    }
    if v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(v).to_vec());
    }
    Err(Error::Storage(format!("adapter.{what}({key:?}) resolved to {}, expected a Uint8Array", kind_of(v))))
}

fn optional_bytes(v: &JsValue, key: &str) -> Result<Option<Vec<u8>>> {
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    bytes_of(v, "get", key).map(Some)
}

impl JsAdapter {
    /// Checks that `v` has `get`, `put`, `delete` and `list` methods and
    /// notes whether it offers `batch` and `putIfAbsent`.
    pub fn new(v: &JsValue) -> Result<JsAdapter> {
        if !v.is_object() {
            return Err(Error::invalid(format!("storage must be a StorageAdapter object, got {}", kind_of(v))));
        }
        for m in ["get", "put", "delete", "list"] {
            if !is_method(v, m)? {
                return Err(Error::invalid(format!("storage is missing the StorageAdapter method `{m}`")));
            }
        }
        Ok(JsAdapter {
            has_batch: is_method(v, "batch")?,
            has_put_if_absent: is_method(v, "putIfAbsent")?,
            obj: v.clone().unchecked_into(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let v = settle("get", key, self.obj.get(key)).await?;
        optional_bytes(&v, key)
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        let arr = Uint8Array::from(&value[..]);
        settle("put", key, self.obj.put(key, &arr)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        settle("delete", key, self.obj.delete(key)).await.map(drop)
    }

    /// Lists keys. The result is re-checked here (prefix, `after`, order,
    /// duplicates, limit), so an adapter that sorts by UTF-16 or ignores the
    /// options still yields the contract's answer.
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        let opts = Object::new();
        if let Some(a) = after {
            let _ = Reflect::set(&opts, &JsValue::from_str("after"), &JsValue::from_str(a));
        }
        if let Some(l) = limit {
            let _ = Reflect::set(&opts, &JsValue::from_str("limit"), &JsValue::from_f64(l as f64));
        }
        let v = settle("list", prefix, self.obj.list(prefix, &opts)).await?;
        if !Array::is_array(&v) {
            return Err(Error::Storage(format!("adapter.list({prefix:?}) resolved to {}, expected an array of keys", kind_of(&v))));
        }
        let mut keys = Vec::new();
        for k in v.unchecked_ref::<Array>().iter() {
            let Some(s) = k.as_string() else {
                return Err(Error::Storage(format!("adapter.list({prefix:?}) returned {} among its keys", kind_of(&k))));
            };
            if s.starts_with(prefix) && after.is_none_or(|a| s.as_str() > a) {
                keys.push(s);
            }
        }
        crate::core::sort::sort_dedup(&mut keys);
        keys.truncate(limit.unwrap_or(usize::MAX));
        Ok(keys)
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        if !self.has_batch {
            for op in ops {
                match op {
                    BatchOp::Put(k, v) => self.put(&k, v).await?,
                    BatchOp::Delete(k) => self.delete(&k).await?,
                }
            }
            return Ok(());
        }
        let first = match ops.first() {
            Some(BatchOp::Put(k, _) | BatchOp::Delete(k)) => k.clone(),
            None => return Ok(()),
        };
        let arr = Array::new();
        for op in ops {
            let o = Object::new();
            let _ = match op {
                BatchOp::Put(k, v) => Reflect::set(&o, &"put".into(), &k.into())
                    .and_then(|_| Reflect::set(&o, &"value".into(), &Uint8Array::from(&v[..]))),
                BatchOp::Delete(k) => Reflect::set(&o, &"delete".into(), &k.into()),
            };
            arr.push(&o);
        }
        settle("batch", &first, self.obj.batch(&arr)).await.map(drop)
    }

    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        if !self.has_put_if_absent {
            // Not atomic: the adapter gives whatever its own writes guarantee.
            if self.get(key).await?.is_some() {
                return Ok(false);
            }
            self.put(key, value).await?;
            return Ok(true);
        }
        let arr = Uint8Array::from(&value[..]);
        let v = settle("putIfAbsent", key, self.obj.put_if_absent(key, &arr)).await?;
        v.as_bool().ok_or_else(|| {
            Error::Storage(format!("adapter.putIfAbsent({key:?}) resolved to {}, expected true or false", kind_of(&v)))
        })
    }

    /// Issues up to [`PARALLEL_GETS`] adapter `get`s at once (the JS calls
    /// start synchronously), then awaits them in order.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(PARALLEL_GETS) {
            let started: Vec<_> = chunk.iter().map(|k| (k, self.obj.get(k))).collect();
            for (k, r) in started {
                out.push(optional_bytes(&settle("get", k, r).await?, k)?);
            }
        }
        Ok(out)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_batch: self.has_batch,
            atomic_create: self.has_put_if_absent,
            consistency: Consistency::Strong,
        }
    }
}
