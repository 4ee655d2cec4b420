//! The `StorageAdapter` methods (`get`, `put`, `delete`, `list`, `batch`,
//! `putIfAbsent`) that the Rust storage classes — `MemoryStorage`,
//! `IndexedDbStorage`, `KvStorage`, `DurableObjectStorageAdapter` — expose to
//! JS: one body per method here, over [`Classes`] (one copy of each future
//! whatever the number of classes: a size budget, STYLE.md habit 12), and
//! [`storage_adapter_methods!`], which writes each class's exported wrappers with that class's own doc
//! comments (wasm-bindgen cannot export a generic `impl`).

use std::cell::RefCell;

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert::{self, At};
use super::error::{kind_of, reject, spawn};
use crate::error::{Error, Result};
use crate::storage::{BatchOp, Storage};

/// The storage the methods below run on: [`Backend`](super::storage::Backend)
/// where the build has more than one storage class (one instance of each
/// method instead of one per class: web −0.4 KB, workerd −0.6 KB gzipped),
/// `MemoryStorage` itself where it is the only one (node: going through
/// `Backend` there costs 0.2 KB).
#[cfg(any(feature = "idb", feature = "edge"))]
type Classes = super::storage::Backend;
#[cfg(not(any(feature = "idb", feature = "edge")))]
type Classes = crate::storage::MemoryStorage;

/// A hand-over slot (a `thread_local!`): a storage class's hidden claim
/// method puts a clone of its Rust storage there for [`claim`] to take.
pub(crate) type Slot<T> = std::thread::LocalKey<RefCell<Option<T>>>;

/// The Rust storage behind `v`, when `v` is a live object of a storage
/// class. Asks the object itself (its hidden method `method` fills `slot`)
/// instead of unwrapping it, which would consume the JS object.
pub(crate) fn claim<T: 'static>(v: &JsValue, method: &str, slot: &'static Slot<T>) -> Option<T> {
    let f = Reflect::get(v, &JsValue::from_str(method)).ok()?.dyn_into::<Function>().ok()?;
    slot.with(|c| c.borrow_mut().take());
    f.call0(v).ok()?;
    slot.with(|c| c.borrow_mut().take())
}

/// What a hidden claim method does: puts `storage` in `slot`.
pub(crate) fn fill<T: 'static>(slot: &'static Slot<T>, storage: T) {
    slot.with(|c| *c.borrow_mut() = Some(storage));
}

/// `list`'s parsed arguments: the prefix, `options.after`, `options.limit`.
pub(crate) type ListArgs = (String, Option<String>, Option<usize>);

pub(crate) fn key_arg(v: &JsValue, name: &'static str) -> Result<String> {
    convert::string(v, &At::root(name))
}

pub(crate) fn bytes_arg(v: &JsValue) -> Result<Vec<u8>> {
    v.dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| Error::invalid(format!("value must be a Uint8Array, got {}", kind_of(v))))
}

fn run(f: impl std::future::Future<Output = Result<JsValue>> + 'static) -> Promise {
    spawn(f)
}

pub(crate) fn get(s: Classes, key: &JsValue) -> Promise {
    match key_arg(key, "key") {
        Ok(k) => run(async move { Ok(s.get(&k).await?.map_or(JsValue::UNDEFINED, |v| Uint8Array::from(&v[..]).into())) }),
        Err(e) => reject(e),
    }
}

pub(crate) fn put(s: Classes, key: &JsValue, value: &JsValue) -> Promise {
    match key_arg(key, "key").and_then(|k| Ok((k, bytes_arg(value)?))) {
        Ok((k, v)) => run(async move { s.put(&k, v).await.map(|_| JsValue::UNDEFINED) }),
        Err(e) => reject(e),
    }
}

pub(crate) fn delete(s: Classes, key: &JsValue) -> Promise {
    match key_arg(key, "key") {
        Ok(k) => run(async move { s.delete(&k).await.map(|_| JsValue::UNDEFINED) }),
        Err(e) => reject(e),
    }
}

/// `list` with its arguments already parsed (by [`list_args`], or a class's own).
pub(crate) fn list(s: Classes, args: Result<ListArgs>) -> Promise {
    match args {
        Ok((p, after, limit)) => run(async move {
            let keys = s.list(&p, after.as_deref(), limit).await?;
            Ok(keys.into_iter().map(JsValue::from).collect::<Array>().into())
        }),
        Err(e) => reject(e),
    }
}

/// `batch` with its ops already parsed (by [`batch_ops`], or a class's own).
pub(crate) fn batch(s: Classes, ops: Result<Vec<BatchOp>>) -> Promise {
    match ops {
        Ok(list) => run(async move { s.batch(list).await.map(|_| JsValue::UNDEFINED) }),
        Err(e) => reject(e),
    }
}

pub(crate) fn put_if_absent(s: Classes, key: &JsValue, value: &JsValue) -> Promise {
    match key_arg(key, "key").and_then(|k| Ok((k, bytes_arg(value)?))) {
        Ok((k, v)) => run(async move { s.put_if_absent(&k, v).await.map(JsValue::from_bool) }),
        Err(e) => reject(e),
    }
}

/// The arguments of `list(prefix, { after?, limit? })`.
pub(crate) fn list_args(prefix: &JsValue, options: &JsValue) -> Result<ListArgs> {
    let p = key_arg(prefix, "prefix")?;
    let (mut after, mut limit) = (None, None);
    for (k, v) in convert::fields(options, &At::root("options"), &["after", "limit"])? {
        if k == "after" {
            after = Some(convert::string(&v, &At::root("options.after"))?);
        } else {
            limit = Some(convert::seq(&v, &At::root("options.limit"))? as usize);
        }
    }
    Ok((p, after, limit))
}

/// The ops of `batch([{ put, value } | { delete }])`.
pub(crate) fn batch_ops(ops: &JsValue) -> Result<Vec<BatchOp>> {
    if !Array::is_array(ops) {
        return Err(Error::invalid("batch needs an array of ops"));
    }
    let mut out = Vec::new();
    for op in ops.unchecked_ref::<Array>().iter() {
        let put = Reflect::get(&op, &"put".into()).unwrap_or_default();
        let del = Reflect::get(&op, &"delete".into()).unwrap_or_default();
        if !put.is_undefined() {
            let v = Reflect::get(&op, &"value".into()).unwrap_or_default();
            out.push(BatchOp::Put(key_arg(&put, "put")?, bytes_arg(&v)?));
        } else if !del.is_undefined() {
            out.push(BatchOp::Delete(key_arg(&del, "delete")?));
        } else {
            return Err(Error::invalid("each batch op is { put, value } or { delete }"));
        }
    }
    Ok(out)
}

/// Exports the `StorageAdapter` methods of a storage class whose Rust type
/// has an `inner` field holding a [`Storage`]. Lists the methods to export,
/// each with its doc comment (they become the JSDoc of the `.d.ts`), and the
/// module whose `list_args` and `batch_ops` parse `list`'s and `batch`'s
/// arguments:
///
/// ```ignore
/// storage_adapter_methods! {
///     JsKvStorage as KvStorage, args: adapter;
///     #[doc = " `StorageAdapter.get`."]
///     get;
///     #[doc = " `StorageAdapter.put` (large values are chunked)."]
///     put;
/// }
/// ```
///
/// The docs are `#[doc = " …"]` lines, not `///`: a `///` comment reaches
/// the macro as a raw string (`r" …"`), which wasm-bindgen would copy into
/// the `.d.ts` verbatim, so the macro refuses it at compile time.
///
/// Each method is its own `#[wasm_bindgen] impl` block (a class may have
/// several), so the invocation goes after the class's own methods.
macro_rules! storage_adapter_methods {
    ($class:ident as $js:ident, args: $args:ident; $($(#[doc = $doc:tt])* $method:ident;)+) => {
        $($(
            const _: () = assert!(
                stringify!($doc).as_bytes()[0] == b'"',
                "storage_adapter_methods!: write docs as #[doc = \" …\"], not ///"
            );
        )*)+
        $($crate::bindings::adapter::storage_adapter_methods!(@one $class, $js, $args, $method, [$(#[doc = $doc])*]);)+
    };
    (@one $class:ident, $js:ident, $args:ident, get, [$($doc:tt)*]) => {
        #[::wasm_bindgen::prelude::wasm_bindgen(js_class = $js)]
        impl $class {
            $($doc)*
            #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array | undefined>")]
            pub fn get(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: ::wasm_bindgen::JsValue) -> ::js_sys::Promise {
                $crate::bindings::adapter::get(self.inner.clone().into(), &key)
            }
        }
    };
    (@one $class:ident, $js:ident, $args:ident, put, [$($doc:tt)*]) => {
        #[::wasm_bindgen::prelude::wasm_bindgen(js_class = $js)]
        impl $class {
            $($doc)*
            #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
            pub fn put(
                &self,
                #[wasm_bindgen(unchecked_param_type = "string")] key: ::wasm_bindgen::JsValue,
                #[wasm_bindgen(unchecked_param_type = "Uint8Array")] value: ::wasm_bindgen::JsValue,
            ) -> ::js_sys::Promise {
                $crate::bindings::adapter::put(self.inner.clone().into(), &key, &value)
            }
        }
    };
    (@one $class:ident, $js:ident, $args:ident, delete, [$($doc:tt)*]) => {
        #[::wasm_bindgen::prelude::wasm_bindgen(js_class = $js)]
        impl $class {
            $($doc)*
            #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
            pub fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: ::wasm_bindgen::JsValue) -> ::js_sys::Promise {
                $crate::bindings::adapter::delete(self.inner.clone().into(), &key)
            }
        }
    };
    (@one $class:ident, $js:ident, $args:ident, list, [$($doc:tt)*]) => {
        #[::wasm_bindgen::prelude::wasm_bindgen(js_class = $js)]
        impl $class {
            $($doc)*
            #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
            pub fn list(
                &self,
                #[wasm_bindgen(unchecked_param_type = "string")] prefix: ::wasm_bindgen::JsValue,
                #[wasm_bindgen(unchecked_optional_param_type = "ListOptions")] options: ::wasm_bindgen::JsValue,
            ) -> ::js_sys::Promise {
                $crate::bindings::adapter::list(self.inner.clone().into(), $args::list_args(&prefix, &options))
            }
        }
    };
    (@one $class:ident, $js:ident, $args:ident, batch, [$($doc:tt)*]) => {
        #[::wasm_bindgen::prelude::wasm_bindgen(js_class = $js)]
        impl $class {
            $($doc)*
            #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
            pub fn batch(&self, #[wasm_bindgen(unchecked_param_type = "BatchOp[]")] ops: ::wasm_bindgen::JsValue) -> ::js_sys::Promise {
                $crate::bindings::adapter::batch(self.inner.clone().into(), $args::batch_ops(&ops))
            }
        }
    };
    (@one $class:ident, $js:ident, $args:ident, put_if_absent, [$($doc:tt)*]) => {
        #[::wasm_bindgen::prelude::wasm_bindgen(js_class = $js)]
        impl $class {
            $($doc)*
            #[wasm_bindgen(js_name = putIfAbsent, unchecked_return_type = "Promise<boolean>")]
            pub fn put_if_absent(
                &self,
                #[wasm_bindgen(unchecked_param_type = "string")] key: ::wasm_bindgen::JsValue,
                #[wasm_bindgen(unchecked_param_type = "Uint8Array")] value: ::wasm_bindgen::JsValue,
            ) -> ::js_sys::Promise {
                $crate::bindings::adapter::put_if_absent(self.inner.clone().into(), &key, &value)
            }
        }
    };
}

pub(crate) use storage_adapter_methods;
