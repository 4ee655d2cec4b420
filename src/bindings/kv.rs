//! `kvStorage(namespace)`: Workers KV ([`crate::storage::kv`]) for Cloudflare
//! Workers. Like `MemoryStorage` the returned object is itself a
//! `StorageAdapter`, and `open()` recognises it and uses the Rust adapter
//! directly. The shared plumbing of the two Cloudflare classes (the claim
//! slot, the `StorageAdapter` methods) lives here; `durable_object.rs` has the
//! other class.

use std::cell::RefCell;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert::{self, At};
use super::error::{kind_of, reject, spawn, to_js};
use crate::error::{Error, Result};
use crate::storage::cloudflare::CloudflareStorage;
use crate::storage::kv::KvStorage;
use crate::storage::{BatchOp, Storage};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A Workers KV namespace binding (`env.MY_KV`, type `KVNamespace`). */
export interface KvNamespaceLike {
  getWithMetadata(...args: any[]): Promise<any>;
  put(...args: any[]): Promise<any>;
  delete(...args: any[]): Promise<any>;
  list(...args: any[]): Promise<any>;
}
/** A Durable Object's storage (`this.ctx.storage`, type `DurableObjectStorage`). */
export interface DurableObjectStorageLike {
  get(...args: any[]): Promise<any>;
  put(...args: any[]): Promise<any>;
  delete(...args: any[]): Promise<any>;
  list(...args: any[]): Promise<any>;
  transaction(...args: any[]): Promise<any>;
}
/** Options of `kvStorage`. */
export interface KvStorageOptions {
  /** Keeps every key under this prefix, so several stores can share one namespace. */
  prefix?: string;
}
/** Options of `durableObjectStorage`. */
export interface DurableObjectStorageOptions {
  /** Keeps every key under this prefix, so several stores can share one object. */
  prefix?: string;
  /**
   * Largest chunk of a big value, in bytes: 1,900,000 by default (SQLite-backed
   * classes allow 2 MB per key and value); use 129024 for a legacy key-value
   * backed class (128 KiB values) if it is not detected.
   */
  chunkBytes?: number;
}
"#;

thread_local! {
    /// Hand-over slot of [`claim`].
    static CLAIMED: RefCell<Option<CloudflareStorage>> = const { RefCell::new(None) };
}

/// The Rust storage behind `v`, when `v` came from `kvStorage()` or
/// `durableObjectStorage()` (asked through its hidden method, as
/// `MemoryStorage` is).
pub(crate) fn claim(v: &JsValue) -> Option<CloudflareStorage> {
    let f = Reflect::get(v, &JsValue::from_str("__waymarkClaimCf")).ok()?.dyn_into::<Function>().ok()?;
    CLAIMED.with(|c| c.borrow_mut().take());
    f.call0(v).ok()?;
    CLAIMED.with(|c| c.borrow_mut().take())
}

pub(crate) fn fill_slot(s: &CloudflareStorage) {
    CLAIMED.with(|c| *c.borrow_mut() = Some(s.clone()));
}

/// Reads `{ prefix }` (and the extra fields `more`) of an options object.
pub(crate) fn prefix_option(options: &JsValue, more: &[&str]) -> Result<(String, Vec<(String, JsValue)>)> {
    let mut allowed = vec!["prefix"];
    allowed.extend_from_slice(more);
    let at = At::root("options");
    let mut prefix = String::new();
    let mut rest = Vec::new();
    if options.is_undefined() || options.is_null() {
        return Ok((prefix, rest));
    }
    for (k, v) in convert::fields(options, &at, &allowed)? {
        if v.is_undefined() {
            continue;
        }
        if k == "prefix" {
            prefix = convert::string(&v, &at)?;
        } else {
            rest.push((k, v));
        }
    }
    Ok((prefix, rest))
}

fn key_arg(v: &JsValue, name: &'static str) -> Result<String> {
    convert::string(v, &At::root(name))
}

fn bytes_arg(v: &JsValue) -> Result<Vec<u8>> {
    v.dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| Error::invalid(format!("value must be a Uint8Array, got {}", kind_of(v))))
}

fn run(f: impl std::future::Future<Output = Result<JsValue>> + 'static) -> Promise {
    spawn(f)
}

/// The `StorageAdapter` methods of both Cloudflare classes.
pub(crate) mod adapter {
    use super::*;

    pub(crate) fn get(s: &CloudflareStorage, key: &JsValue) -> Promise {
        let s = s.clone();
        match key_arg(key, "key") {
            Ok(k) => run(async move { Ok(s.get(&k).await?.map_or(JsValue::UNDEFINED, |v| Uint8Array::from(&v[..]).into())) }),
            Err(e) => reject(e),
        }
    }

    pub(crate) fn put(s: &CloudflareStorage, key: &JsValue, value: &JsValue) -> Promise {
        let s = s.clone();
        match key_arg(key, "key").and_then(|k| Ok((k, bytes_arg(value)?))) {
            Ok((k, v)) => run(async move { s.put(&k, v).await.map(|_| JsValue::UNDEFINED) }),
            Err(e) => reject(e),
        }
    }

    pub(crate) fn delete(s: &CloudflareStorage, key: &JsValue) -> Promise {
        let s = s.clone();
        match key_arg(key, "key") {
            Ok(k) => run(async move { s.delete(&k).await.map(|_| JsValue::UNDEFINED) }),
            Err(e) => reject(e),
        }
    }

    pub(crate) fn list(s: &CloudflareStorage, prefix: &JsValue, options: &JsValue) -> Promise {
        let parsed = (|| {
            let p = key_arg(prefix, "prefix")?;
            let at = At::root("options");
            let (mut after, mut limit) = (None, None);
            for (k, v) in convert::fields(options, &at, &["after", "limit"])? {
                if k == "after" {
                    after = Some(convert::string(&v, &at)?);
                } else {
                    limit = Some(convert::seq(&v, &at)? as usize);
                }
            }
            Ok((p, after, limit))
        })();
        let s = s.clone();
        match parsed {
            Ok((p, after, limit)) => run(async move {
                let keys = s.list(&p, after.as_deref(), limit).await?;
                Ok(keys.into_iter().map(JsValue::from).collect::<Array>().into())
            }),
            Err(e) => reject(e),
        }
    }

    pub(crate) fn batch(s: &CloudflareStorage, ops: &JsValue) -> Promise {
        let parsed = (|| {
            if !Array::is_array(ops) {
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
        let s = s.clone();
        match parsed {
            Ok(list) => run(async move { s.batch(list).await.map(|_| JsValue::UNDEFINED) }),
            Err(e) => reject(e),
        }
    }

    pub(crate) fn put_if_absent(s: &CloudflareStorage, key: &JsValue, value: &JsValue) -> Promise {
        let s = s.clone();
        match key_arg(key, "key").and_then(|k| Ok((k, bytes_arg(value)?))) {
            Ok((k, v)) => run(async move { s.put_if_absent(&k, v).await.map(JsValue::from_bool) }),
            Err(e) => reject(e),
        }
    }
}

/// Workers KV storage (`kvStorage(env.MY_KV)`): eventually consistent, no
/// compare-and-swap. Every transaction is written once under its own key and
/// merged on read, so two isolates writing one scope never lose each other's
/// transactions (their seqs may be renumbered when merged); steps run at
/// least once, and `leaseMs` is refused — use `durableObjectStorage` for
/// exclusive step claims. Values of any size (chunked under KV's 25 MiB).
///
/// ```ts
/// import { open, kvStorage } from "waymark";
/// export default {
///   async fetch(request: Request, env: { STATE: KVNamespace }) {
///     const store = await open({ storage: kvStorage(env.STATE) });
///     const scope = await store.scope({ user: "u1" });
///     await scope.set("profile", { visits: 1 }, { cause: "request" });
///     return Response.json(scope.entity("profile"));
///   },
/// };
/// ```
#[wasm_bindgen(js_name = KvStorage)]
pub struct JsKvStorage {
    inner: CloudflareStorage,
}

/// Storage over a Workers KV namespace binding; `options.prefix` keeps every
/// key under a prefix.
///
/// ```ts
/// const store = await open({ storage: kvStorage(env.STATE, { prefix: "agent-a/" }) });
/// ```
#[wasm_bindgen(js_name = kvStorage)]
pub fn kv_storage(
    #[wasm_bindgen(unchecked_param_type = "KvNamespaceLike")] namespace: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "KvStorageOptions")] options: JsValue,
) -> std::result::Result<JsKvStorage, JsValue> {
    let make = || -> Result<JsKvStorage> {
        let (prefix, _) = prefix_option(&options, &[])?;
        let kv = KvStorage::from_js(&namespace)?.with_prefix(prefix);
        Ok(JsKvStorage { inner: CloudflareStorage::Kv(kv) })
    };
    make().map_err(to_js)
}

#[wasm_bindgen(js_class = KvStorage)]
impl JsKvStorage {
    #[wasm_bindgen(js_name = "__waymarkClaimCf", skip_typescript)]
    pub fn claim_slot(&self) {
        fill_slot(&self.inner);
    }

    /// `"eventual"`: writes become visible elsewhere up to ~60 s later.
    #[wasm_bindgen(getter)]
    pub fn consistency(&self) -> String {
        "eventual".into()
    }

    /// `StorageAdapter.get`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array | undefined>")]
    pub fn get(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        adapter::get(&self.inner, &key)
    }

    /// `StorageAdapter.put` (large values are chunked).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] value: JsValue,
    ) -> Promise {
        adapter::put(&self.inner, &key, &value)
    }

    /// `StorageAdapter.delete`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        adapter::delete(&self.inner, &key)
    }

    /// `StorageAdapter.list`: keys under `prefix`, ascending byte order.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] prefix: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ListOptions")] options: JsValue,
    ) -> Promise {
        adapter::list(&self.inner, &prefix, &options)
    }

    /// `StorageAdapter.batch` (not atomic on KV: applied in order).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn batch(&self, #[wasm_bindgen(unchecked_param_type = "BatchOp[]")] ops: JsValue) -> Promise {
        adapter::batch(&self.inner, &ops)
    }
}
