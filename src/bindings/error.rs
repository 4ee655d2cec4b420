//! Core errors → real JS `Error` objects whose `code` is the stable
//! `ErrorCode` string (STYLE.md habit 7: never throw bare strings).

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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

fn spawn_boxed(mut f: Pin<Box<dyn Future<Output = Result<JsValue>>>>) -> Promise {
    // Fast path: poll once now. Most calls on memory storage (and reads
    // that need no I/O) finish in that poll, and an already-settled promise
    // saves the task queue, a microtask and a closure. Only when no Rust
    // poll is running (a JS callback called from inside one — a storage
    // adapter, a step function — must not re-enter the store's state
    // machines synchronously) and no earlier call still waits for its first
    // poll (those run in call order from the microtask queue; polling a later
    // call first would let it overtake them). Polling with a no-op waker is
    // sound: a pending future is polled again by `future_to_promise` with
    // its real waker before anything can need waking (Future::poll's
    // contract: only the latest waker counts).
    if SCHEDULER.with(|s| s.polling.get() == 0 && s.waiting.get() == 0) {
        let r = polled(|| f.as_mut().poll(&mut Context::from_waker(futures_util::task::noop_waker_ref())));
        match r {
            Poll::Ready(Ok(v)) => return Promise::resolve(&v),
            Poll::Ready(Err(e)) => return Promise::reject(&to_js(e)),
            Poll::Pending => {}
        }
    } else {
        SCHEDULER.with(|s| s.waiting.set(s.waiting.get() + 1));
        f = Box::pin(FirstPoll { inner: f, counted: true });
    }
    to_promise(Box::pin(Guarded { inner: f }.map_err_js()))
}

/// Whether [`spawn`] would poll a future at once now: no Rust poll is
/// running and no spawned future waits for its first poll.
pub fn can_poll_now() -> bool {
    SCHEDULER.with(|s| s.polling.get() == 0 && s.waiting.get() == 0)
}

/// Polls `f` once, in place, never boxed: its output, or `None` (and `f`
/// is dropped) when it did not complete. For a future known to complete in
/// its first poll (a transaction for which `Scope::commits_now` holds),
/// called when [`can_poll_now`] holds. A memory-storage `transact` future
/// is over a kilobyte (every state of the write pipeline): boxing and
/// moving it was a sizeable part of a transaction (BENCHMARKS.md "Writes,
/// session 5").
pub fn poll_in_place<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match polled(|| f.as_mut().poll(&mut Context::from_waker(futures_util::task::noop_waker_ref()))) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// A boxed future as a JS promise: every caller (here and `run.step`) shares
/// one instance of `future_to_promise` (a size budget, STYLE.md habit 12).
pub(crate) fn to_promise(f: Pin<Box<dyn Future<Output = std::result::Result<JsValue, JsValue>>>>) -> Promise {
    future_to_promise(f)
}

/// Poll bookkeeping of the fast path in [`spawn_boxed`].
#[derive(Default)]
struct Scheduler {
    /// Rust polls of spawned futures running now (nesting depth).
    polling: Cell<u32>,
    /// Spawned futures not yet polled for the first time.
    waiting: Cell<u32>,
}

thread_local! {
    static SCHEDULER: Scheduler = Scheduler::default();
}

fn polled<R>(f: impl FnOnce() -> R) -> R {
    SCHEDULER.with(|s| s.polling.set(s.polling.get() + 1));
    let r = f();
    SCHEDULER.with(|s| s.polling.set(s.polling.get() - 1));
    r
}

/// Marks every poll of a spawned future as running (see [`spawn_boxed`]).
struct Guarded {
    inner: Pin<Box<dyn Future<Output = Result<JsValue>>>>,
}

impl Guarded {
    async fn map_err_js(self) -> std::result::Result<JsValue, JsValue> {
        self.await.map_err(to_js)
    }
}

impl Future for Guarded {
    type Output = Result<JsValue>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        polled(|| self.inner.as_mut().poll(cx))
    }
}

impl Drop for FirstPoll {
    fn drop(&mut self) {
        if self.counted {
            SCHEDULER.with(|s| s.waiting.set(s.waiting.get() - 1));
        }
    }
}

/// Counts a deferred future as waiting until its first poll starts.
struct FirstPoll {
    inner: Pin<Box<dyn Future<Output = Result<JsValue>>>>,
    counted: bool,
}

impl Future for FirstPoll {
    type Output = Result<JsValue>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::take(&mut self.counted) {
            SCHEDULER.with(|s| s.waiting.set(s.waiting.get() - 1));
        }
        self.inner.as_mut().poll(cx)
    }
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
