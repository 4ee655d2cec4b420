//! Small helpers shared by the Cloudflare adapters ([`super::kv`],
//! [`super::durable_object`]): awaiting platform promises, turning thrown JS
//! values into `STORAGE` errors, and moving bytes across the boundary.

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::{Error, Result};

/// A readable description of a thrown JS value (an `Error`'s message, a
/// string, or its type).
pub(crate) fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    if let Some(s) = e.as_string() {
        return s;
    }
    js_sys::JSON::stringify(e).ok().and_then(|s| s.as_string()).unwrap_or_else(|| "a non-Error value".into())
}

/// `<platform>.<what>(<key>) failed: <message>` as a `STORAGE` error.
pub(crate) fn storage_err(platform: &str, what: &str, key: &str, e: &JsValue) -> Error {
    Error::Storage(format!("{platform}.{what}({key:?}) failed: {}", describe(e)))
}

/// Awaits the promise a platform method returned (or the exception it threw
/// synchronously), mapping failures to `STORAGE` errors.
pub(crate) async fn settle(
    platform: &str,
    what: &str,
    key: &str,
    call: std::result::Result<Promise, JsValue>,
) -> Result<JsValue> {
    let p = call.map_err(|e| storage_err(platform, what, key, &e))?;
    JsFuture::from(p).await.map_err(|e| storage_err(platform, what, key, &e))
}

/// The bytes of an `ArrayBuffer` or any `ArrayBufferView`, or `None`.
pub(crate) fn bytes_of(v: &JsValue) -> Option<Vec<u8>> {
    if let Some(u) = v.dyn_ref::<Uint8Array>() {
        return Some(u.to_vec());
    }
    if v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Some(Uint8Array::new(v).to_vec());
    }
    if let Some(view) = v.dyn_ref::<js_sys::DataView>() {
        return Some(Uint8Array::new_with_byte_offset_and_length(&view.buffer(), view.byte_offset() as u32, view.byte_length() as u32).to_vec());
    }
    None
}

/// Copies `bytes` into a fresh `Uint8Array` (its own `ArrayBuffer`).
pub(crate) fn js_bytes(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}

/// `obj[name] = value` on a plain object (never fails on one we created).
pub(crate) fn set(obj: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

/// `obj[name]`, `undefined` when missing or unreadable.
pub(crate) fn get(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A plain object built from `[key, value]` pairs with `Object.fromEntries`,
/// so that a key such as `"__proto__"` stays an ordinary own property.
pub(crate) fn entries_object(pairs: impl IntoIterator<Item = (String, JsValue)>) -> Object {
    let arr = js_sys::Array::new();
    for (k, v) in pairs {
        arr.push(&js_sys::Array::of2(&JsValue::from_str(&k), &v));
    }
    Object::from_entries(&arr).unwrap_or_default()
}
