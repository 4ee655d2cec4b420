//! wasm-bindgen tests of the bindings (`src/bindings`). No
//! `wasm_bindgen_test_configure!`: the same suite runs in Node (default) and,
//! with WASM_BINDGEN_USE_BROWSER=1 / _DEDICATED_WORKER / _SERVICE_WORKER, in
//! Chromium. Run with
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!  cargo test --target wasm32-unknown-unknown --features conformance --test wasm_node`.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use waymark::bindings::convert::{self, At};
use waymark::bindings::{dto, error, open, Backend, JsScope, JsStore};
use waymark::storage::{BatchOp, Capabilities, Storage};
use waymark::{Error, Value};

fn js(src: &str) -> JsValue {
    js_sys::eval(src).unwrap_or_else(|e| panic!("eval {src}: {e:?}"))
}

fn code_of(e: &JsValue) -> String {
    Reflect::get(e, &"code".into()).unwrap().as_string().unwrap_or_default()
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

#[wasm_bindgen_test]
fn errors_are_real_js_errors_with_a_code() {
    let e = error::to_js(Error::NotFound("checkpoint \"x\"".into()));
    assert!(e.is_instance_of::<js_sys::Error>());
    assert_eq!(code_of(&e), "NOT_FOUND");
    let msg = String::from(e.unchecked_ref::<js_sys::Error>().message());
    assert!(msg.contains("checkpoint \"x\""), "{msg}");
}

#[wasm_bindgen_test]
fn values_round_trip_through_js() {
    let v = js(r#"JSON.parse('{"__proto__": {"a": [1, 2.5, -0, null, true, "s\\u2028"]}, "z": {}, "e": []}')"#);
    let value = convert::value(&v, &At::root("v")).unwrap();
    assert!(value.get("__proto__").is_some());
    let back = dto::value(&value);
    let again = convert::value(&back, &At::root("v")).unwrap();
    assert_eq!(value, again);
    let keys = js_sys::Object::keys(back.unchecked_ref::<js_sys::Object>());
    assert_eq!(keys.length(), 3);
    assert_eq!(dto::value(&Value::from("x")).as_string().as_deref(), Some("x"));
    assert!(dto::value(&Value::from(f64::NAN)).is_null(), "corrupt non-finite numbers never reach JS");
}

#[wasm_bindgen_test]
fn non_json_values_are_invalid_input_with_a_path() {
    let cases = [
        ("({a: () => 1})", "v.a is a function"),
        ("({a: Symbol('s')})", "v.a is a symbol"),
        ("({a: [1, 2n]})", "v.a[1] is a BigInt"),
        ("(() => { const o = {}; o.o = [o]; return o; })()", "v.o[0] refers back"),
        ("({'a b': NaN})", "v[\"a b\"] is NaN"),
        ("({d: new Date()})", "class Date"),
        ("({u: undefined})", "v.u is undefined"),
    ];
    for (src, want) in cases {
        let err = convert::value(&js(src), &At::root("v")).unwrap_err();
        assert_eq!(err.code().as_str(), "INVALID_INPUT");
        assert!(err.to_string().contains(want), "{src}: {err}");
    }
}

#[wasm_bindgen_test]
fn ops_expand_in_a_documented_order() {
    let ops = convert::ops(&js("[{entity: 'e', delete: true, unset: ['a'], set: {a: 1}, type: 'T', ttlMs: 5}]")).unwrap();
    assert_eq!(ops.len(), 3);
    assert!(matches!(ops[0], waymark::Op::Delete { .. }));
    assert!(matches!(ops[1], waymark::Op::Unset { .. }));
    assert!(matches!(ops[2], waymark::Op::Set { expiry: Some(waymark::Expiry::TtlMs(_)), .. }));
    let err = convert::ops(&js("[{entity: 'e', set: {}, ttlMs: 1, validUntil: 2}]")).unwrap_err();
    assert!(err.to_string().contains("ops[0] gives both"), "{err}");
}

/// A JS StorageAdapter over a Map, as a user would write it.
fn map_adapter() -> JsValue {
    js(r#"(() => { const m = new Map(); return {
        get: async (k) => m.get(k),
        put: async (k, v) => { m.set(k, v.slice()); },
        delete: async (k) => { m.delete(k); },
        list: async (p, o = {}) => [...m.keys()].filter((k) => k.startsWith(p) && (o.after === undefined || k > o.after)).sort().slice(0, o.limit ?? Infinity),
        putIfAbsent: async (k, v) => m.has(k) ? false : (m.set(k, v.slice()), true),
        batch: async (ops) => { for (const o of ops) 'put' in o ? m.set(o.put, o.value.slice()) : m.delete(o.delete); },
    }; })()"#)
}

/// `conformance::run_all` needs a `Clone` storage.
#[derive(Clone)]
struct Shared(Rc<Backend>);

impl Storage for Shared {
    async fn get(&self, key: &str) -> waymark::Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> waymark::Result<()> {
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> waymark::Result<()> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> waymark::Result<Vec<String>> {
        self.0.list(prefix, after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> waymark::Result<()> {
        self.0.batch(ops).await
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> waymark::Result<bool> {
        self.0.put_if_absent(key, value).await
    }
    async fn get_many(&self, keys: &[String]) -> waymark::Result<Vec<Option<Vec<u8>>>> {
        self.0.get_many(keys).await
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
}

#[wasm_bindgen_test]
async fn a_js_adapter_passes_the_storage_conformance_suite() {
    waymark::storage::conformance::run_all(|| async { Shared(Rc::new(Backend::from_js(&map_adapter()).unwrap())) }).await;
}

#[wasm_bindgen_test]
async fn memory_storage_from_js_passes_the_conformance_suite() {
    let m: JsValue = waymark::bindings::memory_storage().into();
    let backend = Backend::from_js(&m).unwrap();
    assert!(matches!(backend, Backend::Memory(_)), "memoryStorage() is recognised, not wrapped as a JS adapter");
    waymark::storage::conformance::run_all(|| async {
        Shared(Rc::new(Backend::from_js(&waymark::bindings::memory_storage().into()).unwrap()))
    })
    .await;
}

#[wasm_bindgen_test]
async fn adapter_failures_are_storage_errors() {
    let thrower = js("({ get() { throw new Error('disk gone'); }, put() {}, delete() {}, list: async () => 7 })");
    let b = Backend::from_js(&thrower).unwrap();
    let e = b.get("k").await.unwrap_err();
    assert_eq!(e.code().as_str(), "STORAGE");
    assert!(e.to_string().contains("disk gone") && e.to_string().contains("\"k\""), "{e}");
    let e = b.list("p", None, None).await.unwrap_err();
    assert!(e.to_string().contains("expected an array"), "{e}");
    let missing = Backend::from_js(&js("({ get() {}, put() {}, delete() {} })")).err().unwrap();
    assert_eq!(missing.code().as_str(), "INVALID_INPUT");
}

async fn open_store(options: &str) -> JsStore {
    let v = settle(open(js(options))).await.unwrap();
    JsStore::try_from_js_value(v).unwrap()
}

async fn scope_of(store: &JsStore, dims: &str) -> JsScope {
    JsScope::try_from_js_value(settle(store.scope(js(dims))).await.unwrap()).unwrap()
}

#[wasm_bindgen_test]
async fn two_hundred_overlapping_transacts_commit_in_call_order() {
    let store = open_store("({ now: () => 1000 })").await;
    let scope = scope_of(&store, "({ p: 'x' })").await;
    let calls: Array = (0..200)
        .map(|i| {
            let ops = js(&format!("[{{ entity: 'e{}', set: {{ i: {i} }} }}]", i % 3));
            JsValue::from(scope.transact(ops, js(&format!("({{ cause: 'c{i}' }})"))))
        })
        .collect();
    let all = settle(Promise::all(&calls)).await.unwrap();
    let seqs: Vec<f64> = all.unchecked_ref::<Array>().iter().map(|t| Reflect::get(&t, &"seq".into()).unwrap().as_f64().unwrap()).collect();
    assert_eq!(seqs, (1..=200).map(f64::from).collect::<Vec<_>>());
    assert_eq!(scope.seq(), 200.0);
}

#[wasm_bindgen_test]
async fn validation_failures_reject_and_sync_reads_throw() {
    let store = open_store("({})").await;
    let scope = scope_of(&store, "({})").await;
    let e = settle(scope.transact(js("[{ entity: '', set: {} }]"), js("({ cause: 'c' })"))).await.unwrap_err();
    assert_eq!(code_of(&e), "INVALID_INPUT");
    let e = settle(scope.set("e".into(), js("({ a: 1 })"), js("({})"), JsValue::UNDEFINED)).await.unwrap_err();
    assert_eq!(code_of(&e), "INVALID_INPUT");
    let e = scope.diff("missing".into(), JsValue::UNDEFINED).unwrap_err();
    assert_eq!(code_of(&e), "NOT_FOUND");
    let e = scope.as_of(js("({ seq: 1 })")).err().unwrap();
    assert_eq!(code_of(&e), "NOT_FOUND");
    settle(store.close()).await.unwrap();
    let e = settle(store.scope(js("({})"))).await.unwrap_err();
    assert_eq!(code_of(&e), "CLOSED");
}
