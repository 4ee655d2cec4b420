//! Core errors → real JS `Error` objects whose `code` is the stable
//! `ErrorCode` string (STYLE.md habit 7: never throw bare strings).

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::future::Future;
use std::pin::Pin;

use wasm_bindgen_futures::future_to_promise;

use crate::error::{Error, Result};

/// A JS `Error` with `.code` set to the error's `ErrorCode` string.
pub fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    // Setting a data property on a fresh Error cannot fail.
    let _ = Reflect::set(&err, &JsValue::from_str("code"), &JsValue::from_str(e.code().as_str()));
    err.into()
}

/// A promise rejected with the JS form of `e` (validation failures of async methods).
pub fn reject(e: Error) -> Promise {
    Promise::reject(&to_js(e))
}

/// Runs `f` as a JS promise; an `Err` rejects it with the JS form of the error.
/// Callers clone their `Rc` handles into `f`, so nothing borrowed from an
/// exported object lives across its awaits (wasm-bindgen #4440).
/// The future is boxed so that `future_to_promise` is instantiated once, not
/// once per method (a size budget: STYLE.md habit 12).
pub fn spawn(f: impl Future<Output = Result<JsValue>> + 'static) -> Promise {
    spawn_boxed(Box::pin(f))
}

fn spawn_boxed(f: Pin<Box<dyn Future<Output = Result<JsValue>>>>) -> Promise {
    future_to_promise(async move { f.await.map_err(to_js) })
}

/// A readable one-line description of a thrown JS value, for wrapping it into
/// a `STORAGE` error (adapters may throw anything, not only `Error`s).
pub fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    if let Some(s) = v.as_string() {
        return s;
    }
    if let Ok(m) = Reflect::get(v, &JsValue::from_str("message")) {
        if let Some(s) = m.as_string() {
            return s;
        }
    }
    kind_of(v)
}

/// A short name of a JS value's kind, for messages ("a function", "null", …).
pub fn kind_of(v: &JsValue) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if v.is_function() {
        "a function".into()
    } else if v.is_symbol() {
        "a symbol".into()
    } else if v.is_bigint() {
        "a BigInt".into()
    } else if v.as_string().is_some() {
        "a string".into()
    } else if let Some(n) = v.as_f64() {
        format!("the number {}", super::convert::js_number(n))
    } else if let Some(b) = v.as_bool() {
        format!("{b}")
    } else if js_sys::Array::is_array(v) {
        "an array".into()
    } else {
        match Reflect::get(v, &JsValue::from_str("constructor"))
            .ok()
            .and_then(|c| Reflect::get(&c, &JsValue::from_str("name")).ok())
            .and_then(|n| n.as_string())
        {
            Some(name) if !name.is_empty() => format!("an object of class {name}"),
            _ => "an object".into(),
        }
    }
}
