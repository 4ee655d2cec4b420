//! The storage factories of the other runtimes' builds. Each runtime gets a
//! wasm with only the adapters it can use (Cargo.toml `[features]`: `idb` in
//! the browser build, `edge` in the workerd build, neither in the Node build;
//! a size budget, STYLE.md habit 12). Every build still exports every
//! factory and adapter class, so `import { kvStorage } from "waymark"` links
//! everywhere and the one `.d.ts` (generated from an all-features build by
//! scripts/build.sh) is true of every build: a factory whose adapter is not
//! in this build throws `INVALID_INPUT` naming the build that has it, and its
//! class is an empty placeholder (`instanceof` is false for everything).

#[allow(unused_imports)]
use wasm_bindgen::prelude::*;

#[allow(unused_imports)]
use super::error::to_js;
#[allow(unused_imports)]
use crate::error::Error;

/// The runtime this build is for (`package.json` export condition).
#[allow(dead_code)]
const THIS_BUILD: &str = if cfg!(feature = "idb") {
    "browser"
} else if cfg!(feature = "edge") {
    "workerd"
} else {
    "node"
};

#[allow(dead_code)]
fn unavailable(factory: &str, build: &str) -> JsValue {
    to_js(Error::invalid(format!(
        "{factory} is not available in the {THIS_BUILD} build of waymark; it is in the {build} build \
         (package.json export condition \"{build}\")"
    )))
}

/// Not in this build: see `indexedDbStorage` in the browser build.
#[cfg(not(feature = "idb"))]
#[wasm_bindgen(js_name = indexedDbStorage, skip_typescript)]
pub fn indexed_db_storage() -> Result<JsValue, JsValue> {
    Err(unavailable("indexedDbStorage", "browser"))
}

/// Not in this build: see `kvStorage` in the Cloudflare Workers build.
#[cfg(not(feature = "edge"))]
#[wasm_bindgen(js_name = kvStorage, skip_typescript)]
pub fn kv_storage() -> Result<JsValue, JsValue> {
    Err(unavailable("kvStorage", "workerd"))
}

/// Not in this build: see `durableObjectStorage` in the Cloudflare Workers build.
#[cfg(not(feature = "edge"))]
#[wasm_bindgen(js_name = durableObjectStorage, skip_typescript)]
pub fn durable_object_storage() -> Result<JsValue, JsValue> {
    Err(unavailable("durableObjectStorage", "workerd"))
}

/// Placeholder for the browser build's `IndexedDbStorage` class.
#[cfg(not(feature = "idb"))]
#[wasm_bindgen(js_name = IndexedDbStorage, skip_typescript)]
pub struct IndexedDbStorageUnavailable {}

/// Placeholder for the Cloudflare Workers build's `KvStorage` class.
#[cfg(not(feature = "edge"))]
#[wasm_bindgen(js_name = KvStorage, skip_typescript)]
pub struct KvStorageUnavailable {}

/// Placeholder for the Cloudflare Workers build's `DurableObjectStorageAdapter` class.
#[cfg(not(feature = "edge"))]
#[wasm_bindgen(js_name = DurableObjectStorageAdapter, skip_typescript)]
pub struct DurableObjectStorageAdapterUnavailable {}
