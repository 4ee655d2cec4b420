//! The `MemoryStorage` class and the `memoryStorage()` factory: the Rust
//! in-memory storage, usable both as `open`'s storage (recognised and used
//! directly, with no JS round trips) and as a JS `StorageAdapter`.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::adapter::{self, storage_adapter_methods};
use crate::storage::MemoryStorage;

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
        adapter::claim(v, "__waymarkClaim", &CLAIMED)
    }
}

#[wasm_bindgen(js_class = MemoryStorage)]
impl JsMemoryStorage {
    #[wasm_bindgen(js_name = "__waymarkClaim", skip_typescript)]
    pub fn claim_slot(&self) {
        adapter::fill(&CLAIMED, self.inner.clone());
    }

    /// Number of keys held.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.len()
    }
}

storage_adapter_methods! {
    JsMemoryStorage as MemoryStorage, args: adapter;
    #[doc = " `StorageAdapter.get`: the bytes under `key`, or `undefined`."]
    #[doc = ""]
    #[doc = " ```ts"]
    #[doc = " const bytes = await memoryStorage().get(\"wm/meta\"); // undefined on a fresh storage"]
    #[doc = " ```"]
    get;
    #[doc = " `StorageAdapter.put`: stores a copy of `value` under `key`."]
    put;
    #[doc = " `StorageAdapter.delete`; deleting a missing key is not an error."]
    delete;
    #[doc = " `StorageAdapter.list`: keys starting with `prefix`, after `after`, in"]
    #[doc = " ascending byte order, at most `limit`."]
    #[doc = ""]
    #[doc = " ```ts"]
    #[doc = " const keys = await storage.list(\"s/\", { limit: 100 });"]
    #[doc = " ```"]
    list;
    #[doc = " `StorageAdapter.batch`: applies the ops in order, all or nothing."]
    batch;
    #[doc = " `StorageAdapter.putIfAbsent`: an atomic create; `false` if the key exists."]
    put_if_absent;
}
