//! Test entry points for workerd (`conformance` feature, wasm32 only): the
//! storage conformance suite and the store-level checks of issue 6, run
//! inside a real Worker / Durable Object against real KV and DO bindings by
//! `tests/workerd/` (`scripts/test-workerd.sh`). Not part of the package.
//!
//! Every function takes the storage kind (`"kv"` or `"do"`), the binding
//! (`env.STATE` or `this.ctx.storage`) and a key prefix that keeps each test's
//! keys apart, and resolves to a JSON string. A failed assertion panics; the
//! panic message is kept for [`edge_last_panic`] (wasm traps on panic).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

use super::durable_object::DoStorage;
use super::kv::KvStorage;
use super::Storage;
use crate::core::value::Value;
use crate::store::{Failure, RunSpec, StepError, StepOptions, Store, StoreOptions};
use crate::{Dims, Error, Op, Provenance, Result};

thread_local! {
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps panic messages for [`edge_last_panic`]. Call once after `initSync`.
#[wasm_bindgen(js_name = edgeInit)]
pub fn edge_init() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        PANIC.with(|p| *p.borrow_mut() = Some(msg));
    }));
}

/// The message of the last panic (a failed assertion), if any.
#[wasm_bindgen(js_name = edgeLastPanic)]
pub fn edge_last_panic() -> Option<String> {
    PANIC.with(|p| p.borrow().clone())
}

use super::cloudflare::CloudflareStorage as Edge;

fn edge(kind: &str, handle: &JsValue, prefix: &str) -> Result<Edge> {
    match kind {
        "kv" => Ok(Edge::Kv(KvStorage::from_js(handle)?.with_prefix(prefix))),
        "do" => Ok(Edge::Do(DoStorage::from_js(handle)?.with_prefix(prefix))),
        other => Err(Error::invalid(format!("unknown storage kind {other:?}"))),
    }
}

fn js(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().as_str().into());
    err.into()
}

fn json(pairs: &[(&str, String)]) -> JsValue {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
    JsValue::from_str(&format!("{{{}}}", body.join(",")))
}

fn opts(holder: &str) -> StoreOptions {
    let mut o = StoreOptions::default();
    if !holder.is_empty() {
        o.holder = holder.to_string();
    }
    o
}

/// Runs the storage conformance suite; every check gets a fresh prefix.
#[wasm_bindgen(js_name = edgeConformance)]
pub async fn edge_conformance(kind: String, handle: JsValue, prefix: String) -> std::result::Result<JsValue, JsValue> {
    edge(&kind, &handle, &prefix).map_err(js)?;
    let n = Cell::new(0u32);
    super::conformance::run_all(|| {
        n.set(n.get() + 1);
        let s = edge(&kind, &handle, &format!("{prefix}{}/", n.get()));
        async move { s.expect("the binding was checked above") }
    })
    .await;
    Ok(json(&[("checks", n.get().to_string())]))
}

fn overlap_scope() -> Dims {
    Dims::new([("test", "overlap")])
}

async fn await_js(f: &js_sys::Function) {
    if let Ok(p) = f.call0(&JsValue::NULL) {
        let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&p)).await;
    }
}

/// Writes `n` transactions into one scope, each awaited in turn, awaiting
/// `pause()` between them (a request's other I/O: it lets a concurrent
/// request run); a second request doing the same at the same time must lose
/// nothing.
#[wasm_bindgen(js_name = edgeWriteMany)]
pub async fn edge_write_many(
    kind: String,
    handle: JsValue,
    prefix: String,
    tag: String,
    n: u32,
    pause: js_sys::Function,
) -> std::result::Result<JsValue, JsValue> {
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let store = Store::open(s, opts("")).await.map_err(js)?;
    let scope = store.scope(overlap_scope()).await.map_err(js)?;
    let mut last = 0;
    for i in 0..n {
        let ops = vec![
            Op::set(format!("{tag}:{i}"), [("n", Value::from(i))]),
            Op::set("shared", [("last", Value::from(format!("{tag}{i}")))]),
        ];
        last = scope.transact(ops, Provenance::new(format!("{tag}:{i}"))).await.map_err(js)?.seq;
        await_js(&pause).await;
    }
    Ok(json(&[("lastSeq", last.to_string())]))
}

/// Loads the overlap scope with a fresh store: its seq and entity count.
#[wasm_bindgen(js_name = edgeReadOverlap)]
pub async fn edge_read_overlap(kind: String, handle: JsValue, prefix: String) -> std::result::Result<JsValue, JsValue> {
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let store = Store::open(s, opts("")).await.map_err(js)?;
    let scope = store.scope(overlap_scope()).await.map_err(js)?;
    let history = scope.history("shared", "last");
    let ordered = history.windows(2).all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at);
    Ok(json(&[
        ("seq", scope.seq().to_string()),
        ("entities", scope.entities().len().to_string()),
        ("history", history.len().to_string()),
        ("ordered", ordered.to_string()),
    ]))
}

/// Drives run `claims/r1` through `steps` (comma-separated) as holder
/// `holder`; each step's function awaits `sleep()` (a JS promise) so that
/// concurrent requests overlap. Reports which steps this call executed and
/// which it found held by another holder.
#[wasm_bindgen(js_name = edgeClaimSteps)]
pub async fn edge_claim_steps(
    kind: String,
    handle: JsValue,
    prefix: String,
    holder: String,
    steps: String,
    sleep: js_sys::Function,
) -> std::result::Result<JsValue, JsValue> {
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let store = Store::open(s, opts(&holder)).await.map_err(js)?;
    let spec = RunSpec { workflow: "claims".into(), id: "r1".into(), scope: Dims::new([("test", "claims")]), input: None, lease_ms: None };
    let run = store.run(spec).await.map_err(js)?;
    let (mut executed, mut conflicts, mut memo) = (Vec::new(), Vec::new(), Vec::new());
    for name in steps.split(',') {
        let ran = Rc::new(Cell::new(false));
        let r = {
            let ran = ran.clone();
            let sleep = sleep.clone();
            let holder = holder.clone();
            run.step(
                name,
                &StepOptions::default(),
                move || {
                    let ran = ran.clone();
                    let sleep = sleep.clone();
                    let holder = holder.clone();
                    async move {
                        ran.set(true);
                        await_js(&sleep).await;
                        Ok::<_, Failure<String>>(Value::from(holder))
                    }
                },
                None,
                None,
            )
            .await
        };
        match r {
            Ok(_) if ran.get() => executed.push(format!("{name:?}")),
            Ok(_) => memo.push(format!("{name:?}")),
            Err(StepError::Waymark(Error::Conflict(_))) => conflicts.push(format!("{name:?}")),
            Err(StepError::Waymark(e)) => return Err(js(e)),
            Err(StepError::Step(e)) => return Err(JsValue::from_str(&e)),
        }
    }
    Ok(json(&[
        ("executed", format!("[{}]", executed.join(","))),
        ("conflicts", format!("[{}]", conflicts.join(","))),
        ("memoized", format!("[{}]", memo.join(","))),
    ]))
}

/// The state of every step of run `claims/r1`, read with a fresh store.
#[wasm_bindgen(js_name = edgeStepStates)]
pub async fn edge_step_states(kind: String, handle: JsValue, prefix: String) -> std::result::Result<JsValue, JsValue> {
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let store = Store::open(s, opts("")).await.map_err(js)?;
    let spec = RunSpec { workflow: "claims".into(), id: "r1".into(), scope: Dims::new([("test", "claims")]), input: None, lease_ms: None };
    let run = store.run(spec).await.map_err(js)?;
    let steps: Vec<String> = run
        .steps()
        .iter()
        .map(|r| format!("{{\"name\":{:?},\"state\":{:?},\"attempts\":{}}}", r.name, r.state.as_str(), r.attempts))
        .collect();
    let transitions = run.transitions().len();
    Ok(json(&[("steps", format!("[{}]", steps.join(","))), ("transitions", transitions.to_string())]))
}

fn pattern(len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

fn digest(b: &[u8]) -> String {
    crate::storage::keys::hex(&Sha256::digest(b))
}

/// A value of `size` bytes: through the adapter (`put`/`get`), then as a
/// fact through the store, read back by a second store (a reopen).
#[wasm_bindgen(js_name = edgeBigValue)]
pub async fn edge_big_value(kind: String, handle: JsValue, prefix: String, size: u32) -> std::result::Result<JsValue, JsValue> {
    let size = size as usize;
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let raw: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let want = digest(&raw);
    s.put("raw/big", raw).await.map_err(js)?;
    let got = s.get("raw/big").await.map_err(js)?.unwrap_or_default();
    let raw_ok = got.len() == size && digest(&got) == want;
    drop(got);
    let text = pattern(size);
    let want = digest(text.as_bytes());
    {
        let store = Store::open(s.clone(), opts("")).await.map_err(js)?;
        let scope = store.scope(Dims::new([("test", "big")])).await.map_err(js)?;
        scope.transact(vec![Op::set("blob", [("data", Value::from(text))])], Provenance::new("big")).await.map_err(js)?;
    }
    let store = Store::open(s, opts("")).await.map_err(js)?;
    let scope = store.scope(Dims::new([("test", "big")])).await.map_err(js)?;
    let back = scope.value("blob", "data");
    let fact_ok = back.as_ref().and_then(Value::as_str).is_some_and(|t| t.len() == size && digest(t.as_bytes()) == want);
    Ok(json(&[("bytes", size.to_string()), ("raw", raw_ok.to_string()), ("fact", fact_ok.to_string())]))
}

fn persist_scope() -> Dims {
    Dims::new([("test", "persist")])
}

/// Writes facts, a checkpoint and a run with one completed step.
#[wasm_bindgen(js_name = edgePersistWrite)]
pub async fn edge_persist_write(kind: String, handle: JsValue, prefix: String) -> std::result::Result<JsValue, JsValue> {
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let store = Store::open(s, opts("")).await.map_err(js)?;
    let scope = store.scope(persist_scope()).await.map_err(js)?;
    for i in 0..10 {
        scope.transact(vec![Op::set("task", [("n", Value::from(i))])], Provenance::new(format!("t{i}"))).await.map_err(js)?;
    }
    scope.checkpoint("ten").await.map_err(js)?;
    let spec = RunSpec { workflow: "persist".into(), id: "r1".into(), scope: persist_scope(), input: None, lease_ms: None };
    let run = store.run(spec).await.map_err(js)?;
    let v = run
        .step("search", &StepOptions::default(), || async { Ok::<_, Failure<String>>(Value::from("found")) }, None, None)
        .await
        .map_err(|e| match e {
            StepError::Waymark(e) => js(e),
            StepError::Step(e) => JsValue::from_str(&e),
        })?;
    Ok(json(&[("seq", scope.seq().to_string()), ("step", v.to_json())]))
}

/// Reads back what [`edge_persist_write`] wrote, with a fresh store.
#[wasm_bindgen(js_name = edgePersistRead)]
pub async fn edge_persist_read(kind: String, handle: JsValue, prefix: String) -> std::result::Result<JsValue, JsValue> {
    let s = edge(&kind, &handle, &prefix).map_err(js)?;
    let store = Store::open(s, opts("")).await.map_err(js)?;
    let scope = store.scope(persist_scope()).await.map_err(js)?;
    let spec = RunSpec { workflow: "persist".into(), id: "r1".into(), scope: persist_scope(), input: None, lease_ms: None };
    let run = store.run(spec).await.map_err(js)?;
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let v = run
        .step(
            "search",
            &StepOptions::default(),
            move || {
                c.set(c.get() + 1);
                async { Ok::<_, Failure<String>>(Value::from("again")) }
            },
            None,
            None,
        )
        .await
        .map_err(|e| match e {
            StepError::Waymark(e) => js(e),
            StepError::Step(e) => JsValue::from_str(&e),
        })?;
    let runs = store.runs(&Default::default()).await.map_err(js)?;
    Ok(json(&[
        ("seq", scope.seq().to_string()),
        ("n", scope.value("task", "n").map_or("null".into(), |v| v.to_json())),
        ("checkpoints", scope.checkpoints().len().to_string()),
        ("step", v.to_json()),
        ("calls", calls.get().to_string()),
        ("runs", runs.len().to_string()),
    ]))
}
