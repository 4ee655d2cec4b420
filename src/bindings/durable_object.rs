//! `durableObjectStorage(storage)`: Durable Object storage
//! ([`crate::storage::durable_object`]), the strongly consistent,
//! transactional choice at the edge. Shares its plumbing with `kv.rs`.

use wasm_bindgen::prelude::*;

use super::adapter::{self, storage_adapter_methods};
use super::convert::{self, At};
use super::error::to_js;
use super::kv::{fill_slot, prefix_option};
use crate::error::{Error, Result};
use crate::storage::cloudflare::CloudflareStorage;
use crate::storage::durable_object::DoStorage;

/// Durable Object storage (`durableObjectStorage(this.ctx.storage)`):
/// strongly consistent, atomic batches and atomic creates, so step claims and
/// leases are exact (a step runs once even under concurrent requests).
/// Values of any size (chunked under the 2 MB row limit, in one transaction).
///
/// ```ts
/// import { DurableObject } from "cloudflare:workers";
/// import { open, durableObjectStorage } from "waymark";
/// export class Agent extends DurableObject {
///   async fetch(request: Request) {
///     const store = await open({ storage: durableObjectStorage(this.ctx.storage) });
///     const run = await store.run({ workflow: "research", id: "q1" });
///     const hits = await run.step("search", async () => ["…"]);
///     return Response.json(hits);
///   }
/// }
/// ```
#[wasm_bindgen(js_name = DurableObjectStorageAdapter)]
pub struct JsDoStorage {
    inner: CloudflareStorage,
}

/// Storage over a Durable Object's `this.ctx.storage`; `options.prefix`
/// keeps every key under a prefix, `options.chunkBytes` sets the largest
/// chunk of a big value.
///
/// ```ts
/// const storage = durableObjectStorage(this.ctx.storage, { prefix: "waymark/" });
/// ```
#[wasm_bindgen(js_name = durableObjectStorage)]
pub fn durable_object_storage(
    #[wasm_bindgen(unchecked_param_type = "DurableObjectStorageLike")] storage: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "DurableObjectStorageOptions")] options: JsValue,
) -> std::result::Result<JsDoStorage, JsValue> {
    let make = || -> Result<JsDoStorage> {
        let (prefix, rest) = prefix_option(&options, &["chunkBytes"])?;
        let mut s = DoStorage::from_js(&storage)?.with_prefix(prefix);
        for (_, v) in rest {
            let n = convert::seq(&v, &At::root("options.chunkBytes"))?;
            if n < 1024 {
                return Err(Error::invalid(format!("options.chunkBytes must be at least 1024, got {n}")));
            }
            s = s.with_chunk_bytes(n as usize);
        }
        Ok(JsDoStorage { inner: CloudflareStorage::Do(s) })
    };
    make().map_err(to_js)
}

#[wasm_bindgen(js_class = DurableObjectStorageAdapter)]
impl JsDoStorage {
    #[wasm_bindgen(js_name = "__waymarkClaimCf", skip_typescript)]
    pub fn claim_slot(&self) {
        fill_slot(&self.inner);
    }

    /// `"strong"`.
    #[wasm_bindgen(getter)]
    pub fn consistency(&self) -> String {
        "strong".into()
    }
}

storage_adapter_methods! {
    JsDoStorage as DurableObjectStorageAdapter, args: adapter;
    #[doc = " `StorageAdapter.get`."]
    get;
    #[doc = " `StorageAdapter.put` (large values are chunked in one transaction)."]
    put;
    #[doc = " `StorageAdapter.delete`."]
    delete;
    #[doc = " `StorageAdapter.list`: keys under `prefix`, ascending byte order."]
    list;
    #[doc = " `StorageAdapter.batch`: all or nothing, in one transaction."]
    batch;
    #[doc = " `StorageAdapter.putIfAbsent`: an atomic create."]
    put_if_absent;
}
