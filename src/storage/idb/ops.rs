//! The [`Storage`] contract on IndexedDB: reads in readonly transactions of
//! their own, writes through the group-commit queue (group.rs), and the
//! conversions of keys and values to and from JS.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::IdbKeyRange;

use super::conn;
use super::group::{Work, Write};
use super::req::req;
use super::IdbStorage;
use crate::error::{Error, Result};
use crate::storage::{BatchOp, Capabilities, Consistency, Entries, Storage};

/// Key bytes as an IndexedDB binary key.
pub(super) fn js_key(key: &str) -> JsValue {
    Uint8Array::from(key.as_bytes()).into()
}

pub(super) fn js_bytes(v: &[u8]) -> JsValue {
    Uint8Array::from(v).into()
}

pub(super) fn decode_key(name: &str, k: JsValue) -> Result<String> {
    let bytes = Uint8Array::new(&k).to_vec();
    String::from_utf8(bytes).map_err(|e| {
        Error::corrupt(format!("hex:{}", crate::storage::keys::hex(e.as_bytes())), format!("IndexedDB {name:?} holds a key that is not UTF-8"))
    })
}

pub(super) fn decode_value(key: &str, v: JsValue) -> Result<Vec<u8>> {
    match v.dyn_into::<Uint8Array>() {
        Ok(a) => Ok(a.to_vec()),
        Err(_) => Err(Error::corrupt(key, "the IndexedDB value is not a Uint8Array")),
    }
}

/// The elements of a `getAll` / `getAllKeys` result.
pub(super) fn js_list(v: JsValue) -> Vec<JsValue> {
    v.unchecked_into::<Array>().to_vec()
}

/// The key range of the keys that start with `prefix` and sort after
/// `after` (all of them when `after` sorts before the prefix): `[lower,
/// prefix ++ 0xFF)`, 0xFF never occurring in UTF-8. With no prefix it has no
/// upper bound, so that a stored key that is not UTF-8 is still listed (and
/// reported). `None` when it is empty.
pub(super) fn prefix_range(prefix: &str, after: Option<&str>) -> std::result::Result<Option<IdbKeyRange>, JsValue> {
    let (lower, open) = match after {
        Some(a) if a >= prefix => (a.as_bytes(), true),
        _ => (prefix.as_bytes(), false),
    };
    if prefix.is_empty() {
        return IdbKeyRange::lower_bound_with_open(&js_bytes(lower), open).map(Some);
    }
    let mut upper = prefix.as_bytes().to_vec();
    upper.push(0xFF);
    if lower >= upper.as_slice() {
        return Ok(None);
    }
    IdbKeyRange::bound_with_lower_open_and_upper_open(&js_bytes(lower), &js_bytes(&upper), open, true).map(Some)
}

impl Storage for IdbStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let name = self.inner.name.clone();
        let v = self
            .read_tx("get", async |store| {
                let req = req(store.get(&js_key(key))).map_err(|e| conn::classify_js(&name, "get", &e))?;
                req.value().await.map_err(|e| conn::classify_js(&name, "get", &e))
            })
            .await?;
        v.map(|v| decode_value(key, v)).transpose()
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        let w = Write::put(key, &value);
        self.enqueue(Work::Batch(vec![w]), false).await.map(|_| ())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.enqueue(Work::Batch(vec![Write::delete(key)]), false).await.map(|_| ())
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        let name = self.inner.name.clone();
        let keys = self
            .read_tx("list", async |store| {
                let fail = |e: JsValue| conn::classify_js(&name, "list", &e);
                let Some(range) = prefix_range(prefix, after).map_err(fail)? else { return Ok(Vec::new()) };
                let req = req(match limit {
                    Some(n) => store.get_all_keys_with_key_and_limit(&range, u32::try_from(n).unwrap_or(u32::MAX)),
                    None => store.get_all_keys_with_key(&range),
                })
                .map_err(fail)?;
                req.result().await.map(js_list).map_err(fail)
            })
            .await?;
        keys.into_iter().map(|k| decode_key(&self.inner.name, k)).collect()
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let writes = ops
            .iter()
            .map(|op| match op {
                BatchOp::Put(k, v) => Write::put(k, v),
                BatchOp::Delete(k) => Write::delete(k),
            })
            .collect();
        drop(ops);
        self.enqueue(Work::Batch(writes), false).await.map(|_| ())
    }

    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        let n = self.enqueue(Work::Create(vec![Write::create(key, value)]), false).await?;
        Ok(n == 1)
    }

    async fn put_if_absent_durable(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        let n = self.enqueue(Work::Create(vec![Write::create(key, value)]), true).await?;
        Ok(n == 1)
    }

    /// One `Create` member of the write queue: its keys are probed and
    /// written in one readwrite transaction (grouped with whatever else is
    /// queued), so the created prefix commits or aborts as one.
    async fn create_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<Option<usize>> {
        if entries.is_empty() {
            return Ok(Some(0));
        }
        let writes = entries.into_iter().map(|(k, v)| Write::create(&k, v)).collect();
        self.enqueue(Work::Create(writes), false).await.map(Some)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let name = self.inner.name.clone();
        let vals = self
            .read_tx("get_many", async |store| {
                // Every request goes out before the first is awaited: one round trip.
                let mut reqs = Vec::with_capacity(keys.len());
                for k in keys {
                    reqs.push(req(store.get(&js_key(k))).map_err(|e| conn::classify_js(&name, "get_many", &e))?);
                }
                let mut out = Vec::with_capacity(keys.len());
                for r in reqs {
                    out.push(r.value().await.map_err(|e| conn::classify_js(&name, "get_many", &e))?);
                }
                Ok(out)
            })
            .await?;
        keys.iter().zip(vals).map(|(k, v)| v.map(|v| decode_value(k, v)).transpose()).collect()
    }

    async fn append_after(
        &self,
        prefix: &str,
        after: &str,
        build: &mut dyn FnMut(Entries) -> Result<Entries>,
    ) -> Result<bool> {
        self.append(prefix, after, build).await?;
        Ok(true)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { atomic_batch: true, atomic_create: true, consistency: Consistency::Strong }
    }
}
