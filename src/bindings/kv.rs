//! `kvStorage(namespace)`: Workers KV ([`crate::storage::kv`]) for Cloudflare
//! Workers. Like `MemoryStorage` the returned object is itself a
//! `StorageAdapter`, and `open()` recognises it and uses the Rust adapter
//! directly. The shared plumbing of the two Cloudflare classes (the claim
//! slot, the options) lives here; `durable_object.rs` has the other class.
//! Their `StorageAdapter` methods come from `adapter.rs`.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::adapter::{self, storage_adapter_methods};
use super::convert::{self, At};
use super::error::to_js;
use crate::error::Result;
use crate::storage::cloudflare::CloudflareStorage;
use crate::storage::kv::KvStorage;

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
    adapter::claim(v, "__waymarkClaimCf", &CLAIMED)
}

pub(crate) fn fill_slot(s: &CloudflareStorage) {
    adapter::fill(&CLAIMED, s.clone());
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
}

storage_adapter_methods! {
    JsKvStorage as KvStorage, args: adapter;
    #[doc = " `StorageAdapter.get`."]
    get;
    #[doc = " `StorageAdapter.put` (large values are chunked)."]
    put;
    #[doc = " `StorageAdapter.delete`."]
    delete;
    #[doc = " `StorageAdapter.list`: keys under `prefix`, ascending byte order."]
    list;
    #[doc = " `StorageAdapter.batch` (not atomic on KV: applied in order)."]
    batch;
}
