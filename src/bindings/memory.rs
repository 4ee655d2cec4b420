//! The `MemoryStorage` class and the `memoryStorage()` factory: the Rust
//! in-memory storage, usable both as `open`'s storage (recognised and used
//! directly, with no JS round trips) and as a JS `StorageAdapter`.

use std::cell::RefCell;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert::{self, At};
use super::error::{kind_of, reject, spawn};
use crate::error::{Error, Result};
use crate::storage::{BatchOp, MemoryStorage, Storage};

thread_local! {
    /// Hand-over slot of [`JsMemoryStorage::claim`].
    static CLAIMED: RefCell<Option<MemoryStorage>> = const { RefCell::new(None) };
}

/// In-memory storage (`memoryStorage()`), the default. Nothing survives the
/// process; stores opened on the same `MemoryStorage` share its data, so a
/// test can "reopen" a store. It is itself a `StorageAdapter`.
///
/// ```ts
/// const storage = memoryStorage();
/// const a = await open({ storage });
/// // … write, close, then read the same data back:
/// const b = await open({ storage });
/// ```
#[wasm_bindgen(js_name = MemoryStorage)]
pub struct JsMemoryStorage {
    inner: MemoryStorage,
}

/// Creates an in-memory storage (the default of `open`).
///
/// ```ts
/// import { open, memoryStorage } from "waymark";
/// const store = await open({ storage: memoryStorage() });
/// ```
#[wasm_bindgen(js_name = memoryStorage)]
pub fn memory_storage() -> JsMemoryStorage {
    JsMemoryStorage { inner: MemoryStorage::new() }
}

impl JsMemoryStorage {
    /// The Rust storage behind `v`, when `v` is a live `MemoryStorage`. Asks
    /// the object itself (its hidden method puts a clone in a slot) instead
    /// of unwrapping it, which would consume the JS object.
    pub(crate) fn claim(v: &JsValue) -> Option<MemoryStorage> {
        let f = Reflect::get(v, &JsValue::from_str("__waymarkClaim")).ok()?.dyn_into::<Function>().ok()?;
        CLAIMED.with(|c| c.borrow_mut().take());
        f.call0(v).ok()?;
        CLAIMED.with(|c| c.borrow_mut().take())
    }
}

fn key_arg(v: &JsValue, name: &'static str) -> Result<String> {
    convert::string(v, &At::root(name))
}

fn bytes_arg(v: &JsValue) -> Result<Vec<u8>> {
    v.dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| Error::invalid(format!("value must be a Uint8Array, got {}", kind_of(v))))
}

fn run<T: Into<JsValue>>(f: impl std::future::Future<Output = Result<T>> + 'static) -> Promise {
    spawn(async move { f.await.map(Into::into) })
}

#[wasm_bindgen(js_class = MemoryStorage)]
impl JsMemoryStorage {
    #[wasm_bindgen(js_name = "__waymarkClaim", skip_typescript)]
    pub fn claim_slot(&self) {
        CLAIMED.with(|c| *c.borrow_mut() = Some(self.inner.clone()));
    }

    /// Number of keys held.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.len()
    }

    /// `StorageAdapter.get`: the bytes under `key`, or `undefined`.
    ///
    /// ```ts
    /// const bytes = await memoryStorage().get("wm/meta"); // undefined on a fresh storage
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array | undefined>")]
    pub fn get(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let m = self.inner.clone();
        match key_arg(&key, "key") {
            Ok(k) => run(async move { Ok(m.get(&k).await?.map_or(JsValue::UNDEFINED, |v| Uint8Array::from(&v[..]).into())) }),
            Err(e) => reject(e),
        }
    }

    /// `StorageAdapter.put`: stores a copy of `value` under `key`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] value: JsValue,
    ) -> Promise {
        let m = self.inner.clone();
        match key_arg(&key, "key").and_then(|k| Ok((k, bytes_arg(&value)?))) {
            Ok((k, v)) => run(async move { m.put(&k, v).await.map(|_| JsValue::UNDEFINED) }),
            Err(e) => reject(e),
        }
    }

    /// `StorageAdapter.delete`; deleting a missing key is not an error.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let m = self.inner.clone();
        match key_arg(&key, "key") {
            Ok(k) => run(async move { m.delete(&k).await.map(|_| JsValue::UNDEFINED) }),
            Err(e) => reject(e),
        }
    }

    /// `StorageAdapter.list`: keys starting with `prefix`, after `after`, in
    /// ascending byte order, at most `limit`.
    ///
    /// ```ts
    /// const keys = await storage.list("s/", { limit: 100 });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] prefix: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ListOptions")] options: JsValue,
    ) -> Promise {
        let parsed = (|| {
            let p = key_arg(&prefix, "prefix")?;
            let at = At::root("options");
            let (mut after, mut limit) = (None, None);
            for (k, v) in convert::fields(&options, &at, &["after", "limit"])? {
                if k == "after" {
                    after = Some(convert::string(&v, &at)?);
                } else {
                    limit = Some(convert::seq(&v, &at)? as usize);
                }
            }
            Ok((p, after, limit))
        })();
        let m = self.inner.clone();
        match parsed {
            Ok((p, after, limit)) => run(async move {
                let keys = m.list(&p, after.as_deref(), limit).await?;
                Ok(keys.into_iter().map(JsValue::from).collect::<Array>())
            }),
            Err(e) => reject(e),
        }
    }

    /// `StorageAdapter.batch`: applies the ops in order, all or nothing.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn batch(&self, #[wasm_bindgen(unchecked_param_type = "BatchOp[]")] ops: JsValue) -> Promise {
        let parsed = (|| {
            if !Array::is_array(&ops) {
                return Err(Error::invalid("batch needs an array of ops"));
            }
            let mut out = Vec::new();
            for op in ops.unchecked_ref::<Array>().iter() {
                let put = Reflect::get(&op, &"put".into()).unwrap_or_default();
                if put.is_undefined() {
                    let del = Reflect::get(&op, &"delete".into()).unwrap_or_default();
                    out.push(BatchOp::Delete(key_arg(&del, "delete")?));
                } else {
                    let v = Reflect::get(&op, &"value".into()).unwrap_or_default();
                    out.push(BatchOp::Put(key_arg(&put, "put")?, bytes_arg(&v)?));
                }
            }
            Ok(out)
        })();
        let m = self.inner.clone();
        match parsed {
            Ok(list) => run(async move { m.batch(list).await.map(|_| JsValue::UNDEFINED) }),
            Err(e) => reject(e),
        }
    }

    /// `StorageAdapter.putIfAbsent`: an atomic create; `false` if the key exists.
    #[wasm_bindgen(js_name = putIfAbsent, unchecked_return_type = "Promise<boolean>")]
    pub fn put_if_absent(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] value: JsValue,
    ) -> Promise {
        let m = self.inner.clone();
        match key_arg(&key, "key").and_then(|k| Ok((k, bytes_arg(&value)?))) {
            Ok((k, v)) => run(async move { m.put_if_absent(&k, v).await.map(JsValue::from_bool) }),
            Err(e) => reject(e),
        }
    }
}
