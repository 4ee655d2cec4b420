//! The calls this adapter makes on a Workers KV namespace binding (one
//! `getWithMetadata`, `put`, `delete` or `list` each) and the value-layout
//! metadata they carry. Chunking, paging and the `Storage` contract are in
//! `kv.rs`.

use js_sys::{Array, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::super::js_util::{get, js_bytes, set, settle};
use super::{KvStorage, KV_MIN_TTL_SECONDS, P, PAGE};
use crate::error::{Error, Result};

#[wasm_bindgen]
extern "C" {
    /// A Workers KV namespace binding (`env.MY_KV`).
    #[wasm_bindgen(extends = Object, typescript_type = "KVNamespace")]
    #[derive(Debug, Clone)]
    pub type KvNamespace;

    #[wasm_bindgen(method, catch, js_name = getWithMetadata)]
    fn get_with_metadata(this: &KvNamespace, key: &str, options: &Object) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = put)]
    fn put_js(this: &KvNamespace, key: &str, value: &JsValue, options: &Object) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = delete)]
    fn delete_js(this: &KvNamespace, key: &str) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = list)]
    fn list_js(this: &KvNamespace, options: &Object) -> std::result::Result<Promise, JsValue>;
}

/// How a value is laid out, from its KV metadata.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Meta {
    /// Chunks after the first (0: the value is whole).
    pub(super) more: u32,
    pub(super) size: usize,
    pub(super) id: String,
    pub(super) user: Option<String>,
}

impl Meta {
    pub(super) fn from_js(v: &JsValue) -> Meta {
        if !v.is_object() {
            return Meta::default();
        }
        let num = |n: &str| get(v, n).as_f64().unwrap_or(0.0);
        Meta {
            more: num("c") as u32,
            size: num("z") as usize,
            id: get(v, "i").as_string().unwrap_or_default(),
            user: get(v, "m").as_string(),
        }
    }

    pub(super) fn to_js(&self) -> Option<Object> {
        if self.more == 0 && self.user.is_none() {
            return None;
        }
        let o = Object::new();
        if self.more > 0 {
            set(&o, "c", &JsValue::from(self.more));
            set(&o, "z", &JsValue::from(self.size as f64));
            set(&o, "i", &JsValue::from_str(&self.id));
        }
        if let Some(m) = &self.user {
            set(&o, "m", &JsValue::from_str(m));
        }
        Some(o)
    }
}

fn opts(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        set(&o, k, v);
    }
    o
}

impl KvStorage {
    pub(super) async fn raw_get(&self, full: &str) -> Result<Option<(JsValue, Meta)>> {
        let o = opts(&[("type", JsValue::from_str("arrayBuffer"))]);
        let r = settle(P, "getWithMetadata", full, self.ns.get_with_metadata(full, &o)).await?;
        let value = get(&r, "value");
        if value.is_null() || value.is_undefined() {
            return Ok(None);
        }
        Ok(Some((value, Meta::from_js(&get(&r, "metadata")))))
    }

    pub(super) async fn raw_put(&self, full: &str, value: &[u8], meta: &Meta, ttl: Option<f64>) -> Result<()> {
        let o = Object::new();
        if let Some(m) = meta.to_js() {
            set(&o, "metadata", &m);
        }
        if let Some(t) = ttl {
            set(&o, "expirationTtl", &JsValue::from_f64(t.max(KV_MIN_TTL_SECONDS).ceil()));
        }
        let arr = js_bytes(value).buffer();
        settle(P, "put", full, self.ns.put_js(full, &arr, &o)).await.map(drop)
    }

    pub(super) async fn raw_delete(&self, full: &str) -> Result<()> {
        settle(P, "delete", full, self.ns.delete_js(full)).await.map(drop)
    }

    /// One KV list call: (names, metadata, cursor when not complete).
    pub(super) async fn raw_list(&self, full_prefix: &str, limit: usize, cursor: Option<&str>) -> Result<(Vec<(String, JsValue)>, Option<String>)> {
        let o = opts(&[("prefix", JsValue::from_str(full_prefix)), ("limit", JsValue::from(limit.clamp(1, PAGE) as u32))]);
        if let Some(c) = cursor {
            set(&o, "cursor", &JsValue::from_str(c));
        }
        let r = settle(P, "list", full_prefix, self.ns.list_js(&o)).await?;
        let keys = get(&r, "keys");
        if !Array::is_array(&keys) {
            return Err(Error::Storage(format!("KV.list({full_prefix:?}) answered without a keys array")));
        }
        let mut out = Vec::new();
        for k in keys.unchecked_ref::<Array>().iter() {
            let Some(name) = get(&k, "name").as_string() else {
                return Err(Error::Storage(format!("KV.list({full_prefix:?}) answered a key without a name")));
            };
            out.push((name, get(&k, "metadata")));
        }
        let complete = get(&r, "list_complete").as_bool().unwrap_or(true);
        let next = if complete { None } else { get(&r, "cursor").as_string().filter(|c| !c.is_empty()) };
        if !complete && next.is_none() {
            return Err(Error::Storage(format!("KV.list({full_prefix:?}) is not complete but gave no cursor")));
        }
        Ok((out, next))
    }
}
