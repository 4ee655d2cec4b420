//! `open()` and the `Store` class.

use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert::{self, At};
use super::dto;
use super::error::{kind_of, reject, spawn};
use super::scope::JsScope;
use super::storage::Backend;
use crate::error::{Error, Result};
use crate::storage::MemoryStorage;
use crate::store::{Store, StoreOptions};

/// The keys `open()` accepts (more are added by later features).
const OPEN_KEYS: &[&str] = &["storage", "now", "leaseMs"];

/// A Waymark store: the entry point to scopes (and, later, workflow runs).
/// Create one with `open()`; close it with `close()`.
///
/// ```ts
/// const store = await open({ storage: memoryStorage(), now: () => Date.now() });
/// const scope = await store.scope({ project: "acme" });
/// await store.close();
/// ```
#[wasm_bindgen(js_name = Store)]
pub struct JsStore {
    pub(crate) inner: Store<Backend>,
}

impl JsStore {
    /// The Rust store (for sibling binding files such as workflow runs).
    pub fn store(&self) -> &Store<Backend> {
        &self.inner
    }
}

/// Parses `open()`'s options into a backend and store options.
fn options(v: &JsValue) -> Result<(Backend, StoreOptions)> {
    let at = At::root("options");
    let mut storage = None;
    let mut opts = StoreOptions::default();
    for (k, val) in convert::fields(v, &at, OPEN_KEYS)? {
        match k.as_str() {
            "storage" => storage = Some(Backend::from_js(&val)?),
            "now" => {
                let f: Function = val
                    .dyn_into()
                    .map_err(|v| Error::invalid(format!("options.now must be a function returning ms, got {}", kind_of(&v))))?;
                let now = f.call0(&JsValue::UNDEFINED).ok().and_then(|t| t.as_f64());
                if !now.is_some_and(f64::is_finite) {
                    return Err(Error::invalid("options.now() must return a finite number of milliseconds"));
                }
                // A clock that later throws or returns a non-number reads as NaN:
                // commits then fail with INVALID_INPUT and nothing is written.
                opts.clock = Rc::new(move || f.call0(&JsValue::UNDEFINED).ok().and_then(|t| t.as_f64()).unwrap_or(f64::NAN));
            }
            _ => {
                let ms = convert::number(&val, &at)?;
                if ms <= 0.0 {
                    return Err(Error::invalid(format!("options.leaseMs must be > 0, got {}", convert::js_number(ms))));
                }
                opts.lease_ms = ms;
            }
        }
    }
    Ok((storage.unwrap_or_else(|| Backend::Memory(MemoryStorage::new())), opts))
}

/// Opens a store. `storage` defaults to `memoryStorage()`; `now` is the
/// clock in ms since the epoch (tests drive TTLs with it); `leaseMs` is the
/// default lease of a workflow step (30 000). Corrupt stored metadata
/// rejects with `CORRUPT`, a failing adapter with `STORAGE`.
///
/// ```ts
/// import { open, memoryStorage } from "waymark";
/// let t = 0;
/// const store = await open({ storage: memoryStorage(), now: () => t });
/// ```
#[wasm_bindgen(js_name = open, unchecked_return_type = "Promise<Store>")]
pub fn open(#[wasm_bindgen(unchecked_optional_param_type = "OpenOptions")] options: JsValue) -> Promise {
    let (storage, opts) = match self::options(&options) {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    spawn(async move {
        let inner = Store::open(storage, opts).await?;
        Ok(JsStore { inner }.into())
    })
}

#[wasm_bindgen(js_class = Store)]
impl JsStore {
    /// Opens (loading it on first use) the scope with these dimensions. Key
    /// order does not matter; `{}` and `""` are valid. Handles on the same
    /// dimensions share one loaded state.
    ///
    /// ```ts
    /// const scope = await store.scope({ project: "acme", workflow: "research-42" });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Scope>")]
    pub fn scope(&self, #[wasm_bindgen(unchecked_param_type = "Dims")] dims: JsValue) -> Promise {
        let dims = match convert::dims(&dims) {
            Ok(d) => d,
            Err(e) => return reject(e),
        };
        let store = self.inner.clone();
        spawn(async move { Ok(JsScope::from(store.scope(dims).await?).into()) })
    }

    /// The dimensions of every scope that holds at least one transaction.
    ///
    /// ```ts
    /// for (const dims of await store.scopes()) console.log(dims.project);
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<Dims[]>")]
    pub fn scopes(&self) -> Promise {
        let store = self.inner.clone();
        spawn(async move {
            let all = store.scope_dims().await?;
            Ok(dto::build(|j| {
                let list: Vec<_> = all.iter().collect();
                j.list_of(&list, |j, d| j.pairs(d.iter()));
            }))
        })
    }

    /// Whether `close()` was called.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Closes the store: later calls reject (or throw) with `CLOSED`.
    /// Committed data stays in storage.
    ///
    /// ```ts
    /// await store.close();
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        self.inner.close();
        Promise::resolve(&JsValue::UNDEFINED)
    }
}
