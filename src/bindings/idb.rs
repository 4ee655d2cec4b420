//! `indexedDbStorage(dbName, options?)`: the IndexedDB adapter
//! ([`crate::storage::idb`]) for browser pages, Web Workers and extension
//! service workers. Like `MemoryStorage` it is itself a `StorageAdapter`,
//! and `open()` recognises it and uses the Rust adapter directly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::adapter::{self, storage_adapter_methods};
use super::convert::{self, At};
use super::error::{kind_of, to_js};
use crate::error::{Error, Result};
use crate::storage::idb::{ChangeNotice, Durability, IdbOptions, IdbStorage, Subscription};

thread_local! {
    /// Hand-over slot of [`JsIdbStorage::claim`].
    static CLAIMED: RefCell<Option<IdbStorage>> = const { RefCell::new(None) };
}

/// Persistent storage in IndexedDB: browser pages, Web Workers and
/// browser-extension service workers. Every Waymark transaction commits in
/// one IndexedDB transaction; concurrent ones are grouped. Several tabs or
/// workers may open the same database.
///
/// ```ts
/// import { open, indexedDbStorage } from "waymark";
/// const storage = indexedDbStorage("my-agent", { durability: "relaxed" });
/// const store = await open({ storage });
/// const scope = await store.scope({ project: "acme" });
/// storage.onChange(() => scope.refresh());   // another tab committed
/// ```
#[wasm_bindgen(js_name = IndexedDbStorage)]
pub struct JsIdbStorage {
    inner: IdbStorage,
    subs: Rc<RefCell<HashMap<u32, Subscription>>>,
    next: RefCell<u32>,
}

/// Opens (on first use) the IndexedDB database `dbName`.
/// `options.durability`: `"relaxed"` (default: a power cut may lose a whole
/// recent transaction, never part of one) or `"strict"` (every transaction is
/// flushed to disk before its promise resolves). Checkpoints are always strict.
///
/// ```ts
/// const storage = indexedDbStorage("my-agent", { durability: "strict" });
/// ```
#[wasm_bindgen(js_name = indexedDbStorage)]
pub fn indexed_db_storage(
    #[wasm_bindgen(js_name = dbName, unchecked_param_type = "string")] db_name: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "IndexedDbOptions")] options: JsValue,
) -> std::result::Result<JsIdbStorage, JsValue> {
    let parse = || -> Result<JsIdbStorage> {
        let name = convert::non_empty(&db_name, &At::root("dbName"))?;
        let mut opts = IdbOptions::default();
        if !options.is_undefined() && !options.is_null() {
            for (k, v) in convert::fields(&options, &At::root("options"), &["durability"])? {
                if k == "durability" && !v.is_undefined() {
                    opts.durability = match v.as_string().as_deref() {
                        Some("relaxed") => Durability::Relaxed,
                        Some("strict") => Durability::Strict,
                        _ => {
                            return Err(Error::invalid(format!(
                                "options.durability must be \"relaxed\" or \"strict\", got {}",
                                kind_of(&v)
                            )))
                        }
                    };
                }
            }
        }
        Ok(JsIdbStorage { inner: IdbStorage::new(&name, opts), subs: Rc::default(), next: RefCell::new(0) })
    };
    parse().map_err(to_js)
}

impl JsIdbStorage {
    /// The Rust storage behind `v`, when `v` is an `IndexedDbStorage`.
    pub(crate) fn claim(v: &JsValue) -> Option<IdbStorage> {
        adapter::claim(v, "__waymarkClaimIdb", &CLAIMED)
    }
}

fn notice_to_js(n: &ChangeNotice) -> JsValue {
    let o = Object::new();
    let keys: Array = n.keys.iter().map(|k| JsValue::from_str(k)).collect();
    let scopes: Array = n.scopes().iter().map(|k| JsValue::from_str(k)).collect();
    let _ = Reflect::set(&o, &"keys".into(), &keys);
    let _ = Reflect::set(&o, &"scopes".into(), &scopes);
    let _ = Reflect::set(&o, &"all".into(), &n.all.into());
    o.into()
}

#[wasm_bindgen(js_class = IndexedDbStorage)]
impl JsIdbStorage {
    #[wasm_bindgen(js_name = "__waymarkClaimIdb", skip_typescript)]
    pub fn claim_slot(&self) {
        adapter::fill(&CLAIMED, self.inner.clone());
    }

    /// The database name.
    #[wasm_bindgen(getter, js_name = dbName)]
    pub fn db_name(&self) -> String {
        self.inner.name().to_string()
    }

    /// `"relaxed"` or `"strict"`.
    #[wasm_bindgen(getter)]
    pub fn durability(&self) -> String {
        match self.inner.options().durability {
            Durability::Relaxed => "relaxed".into(),
            Durability::Strict => "strict".into(),
        }
    }

    /// Calls `listener` after another tab, worker or storage object on this
    /// database commits: `{ keys, scopes, all }`, where `scopes` are scope
    /// digests. Typical use: `storage.onChange(() => scope.refresh())`.
    /// Returns a function that unsubscribes. Notices are a hint: a context
    /// that was asleep misses them and refreshes on use.
    #[wasm_bindgen(js_name = onChange, unchecked_return_type = "() => void")]
    pub fn on_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(change: { keys: string[]; scopes: string[]; all: boolean }) => void")]
        listener: Function,
    ) -> JsValue {
        let sub = self.inner.subscribe(move |n| {
            let _ = listener.call1(&JsValue::UNDEFINED, &notice_to_js(n));
        });
        let id = {
            let mut next = self.next.borrow_mut();
            *next += 1;
            *next
        };
        self.subs.borrow_mut().insert(id, sub);
        let subs = Rc::downgrade(&self.subs);
        Closure::once_into_js(move || {
            if let Some(subs) = subs.upgrade() {
                subs.borrow_mut().remove(&id);
            }
        })
    }

    /// Closes the connection (queued writes finish first). Later calls fail
    /// with `STORAGE`.
    pub fn close(&self) {
        self.subs.borrow_mut().clear();
        self.inner.close();
    }
}

storage_adapter_methods! {
    JsIdbStorage as IndexedDbStorage, args: adapter;
    get;
    put;
    delete;
    #[doc = " Keys starting with `prefix`, in ascending UTF-8 byte order."]
    list;
    #[doc = " Applies the ops atomically, in order."]
    batch;
    #[doc = " Creates the key if it is missing; `false` if it exists."]
    put_if_absent;
}

#[wasm_bindgen(typescript_custom_section)]
const TS_IDB: &str = r#"
/** Options of `indexedDbStorage`. */
export interface IndexedDbOptions {
  /** "relaxed" (default) or "strict": flush every transaction to disk before resolving. */
  durability?: "relaxed" | "strict";
}
"#;
