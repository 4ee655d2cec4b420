//! Helpers shared by the workflow integration tests (`tests/workflow*.rs`):
//! a hand-driven clock over one shared `MemoryStorage` (a second `Store` on it
//! is a reopen after a crash), recording sleepers, sync reviews, gates that
//! hold a step's function open, manual polling and a storage that yields.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_util::future::LocalBoxFuture;
use waymark::core::workflow::StepState;
use waymark::storage::{BatchOp, Capabilities, MemoryStorage, Storage};
use waymark::store::{Failure, Run, RunSpec, Sleeper, StepError, Store, StoreOptions, TransitionInfo};
use waymark::{Dims, Error, Result, Value};

pub use futures_executor::block_on;

/// One storage and one clock; every `open` is a new store instance (and lease
/// holder) on them, as a restarted process would be.
pub struct Env {
    pub storage: MemoryStorage,
    pub clock: Rc<Cell<f64>>,
}

impl Env {
    pub fn new(start: f64) -> Self {
        Env { storage: MemoryStorage::new(), clock: Rc::new(Cell::new(start)) }
    }

    pub fn opts(&self) -> StoreOptions {
        let c = self.clock.clone();
        StoreOptions::with_clock(move || c.get())
    }

    pub async fn open(&self) -> Store<MemoryStorage> {
        Store::open(self.storage.clone(), self.opts()).await.expect("open")
    }

    pub fn set(&self, t: f64) {
        self.clock.set(t);
    }

    pub fn now(&self) -> f64 {
        self.clock.get()
    }
}

pub fn spec(id: &str) -> RunSpec {
    RunSpec {
        workflow: "research".into(),
        id: id.into(),
        scope: Dims::new([("project", "acme")]),
        input: Some(Value::from("q")),
        lease_ms: None,
    }
}

pub fn spec_lease(id: &str, lease_ms: f64) -> RunSpec {
    RunSpec { lease_ms: Some(lease_ms), ..spec(id) }
}

/// A step function's error type, to check that it comes back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Boom(pub u32);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boom #{}", self.0)
    }
}

pub type Res<E = Boom> = std::result::Result<Value, Failure<E>>;

/// A step function counting its calls in `calls` and answering `f(call number)`.
pub fn counted(calls: &Rc<Cell<u32>>, mut f: impl FnMut(u32) -> Res) -> impl FnMut() -> std::future::Ready<Res> {
    let calls = calls.clone();
    move || {
        calls.set(calls.get() + 1);
        std::future::ready(f(calls.get()))
    }
}

pub fn calls() -> Rc<Cell<u32>> {
    Rc::new(Cell::new(0))
}

/// The error code of a step outcome: "OK", "STEP" (the function's own error)
/// or a Waymark code.
pub fn code<E: fmt::Debug>(r: &std::result::Result<Value, StepError<E>>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(StepError::Step(_)) => "STEP",
        Err(StepError::Waymark(e)) => e.code().as_str(),
    }
}

pub fn err_code<T>(r: &Result<T>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code().as_str(),
    }
}

pub fn waymark_err<E: fmt::Debug>(r: std::result::Result<Value, StepError<E>>) -> Error {
    match r {
        Err(StepError::Waymark(e)) => e,
        other => panic!("expected a Waymark error, got {other:?}"),
    }
}

/// A sleeper that records each delay and moves the clock by it.
pub fn sleeper(env: &Env) -> (Sleeper, Rc<RefCell<Vec<f64>>>) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l, c) = (log.clone(), env.clock.clone());
    let s: Sleeper = Rc::new(move |ms| {
        l.borrow_mut().push(ms);
        c.set(c.get() + ms);
        Box::pin(async {})
    });
    (s, log)
}

pub type Review = Box<dyn FnMut(&Value) -> LocalBoxFuture<'_, std::result::Result<bool, Failure<Boom>>>>;

/// A review decided synchronously by `f`.
pub fn review(mut f: impl FnMut(&Value) -> std::result::Result<bool, Failure<Boom>> + 'static) -> Review {
    Box::new(move |v| {
        let r = f(v);
        Box::pin(async move { r })
    })
}

/// A review that sets `entered`, then waits for `gate` and answers `verdict`.
pub fn gated_review(gate: &Gate, entered: &Rc<Cell<bool>>, verdict: bool) -> Review {
    let (gate, entered) = (gate.clone(), entered.clone());
    Box::new(move |_| {
        entered.set(true);
        let wait = gate.wait();
        Box::pin(async move {
            wait.await;
            Ok(verdict)
        })
    })
}

/// Holds a future pending until opened.
#[derive(Clone, Default)]
pub struct Gate(Rc<Cell<bool>>);

impl Gate {
    pub fn open(&self) {
        self.0.set(true);
    }

    pub fn wait(&self) -> impl Future<Output = ()> {
        let open = self.0.clone();
        std::future::poll_fn(move |cx| {
            if open.get() {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    }
}

/// Polls `fut` (with a no-op waker) until it completes or `until()` holds;
/// panics if neither happens within 1000 polls.
pub fn poll_until<F: Future>(mut fut: Pin<&mut F>, until: impl Fn() -> bool) -> Option<F::Output> {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..1000 {
        if until() {
            return None;
        }
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    panic!("the future neither finished nor reached the expected point");
}

/// Polls `fut` to completion with a no-op waker (it must not wait on a real event).
pub fn finish<F: Future>(fut: Pin<&mut F>) -> F::Output {
    poll_until(fut, || false).expect("finished")
}

/// A transition as a compact tuple: (step, from, to, attempt, at).
pub fn brief(t: &TransitionInfo) -> (String, &'static str, &'static str, u32, f64) {
    (t.step.clone(), t.from.as_str(), t.to.as_str(), t.attempt, t.at)
}

pub fn tr(step: &str, from: StepState, to: StepState, attempt: u32, at: f64) -> (String, &'static str, &'static str, u32, f64) {
    (step.to_string(), from.as_str(), to.as_str(), attempt, at)
}

pub fn briefs<S: Storage>(run: &Run<S>) -> Vec<(String, &'static str, &'static str, u32, f64)> {
    run.transitions().iter().map(brief).collect()
}

/// The entity id of a step, found through the facts (`find` by type and name).
pub fn step_entity<S: Storage>(run: &Run<S>, name: &str) -> String {
    let q = waymark::Query {
        ty: Some("WorkflowStep".into()),
        where_: vec![("name".into(), Value::from(name)), ("run".into(), Value::from(run.entity_id()))],
    };
    let found = run.scope().find(&q);
    assert_eq!(found.len(), 1, "one WorkflowStep named {name:?}: {found:?}");
    found[0].id.clone()
}

/// Returns `Pending` once (waking itself), so that joined futures interleave.
pub fn yield_now() -> impl Future<Output = ()> {
    let mut done = false;
    std::future::poll_fn(move |cx| {
        if done {
            Poll::Ready(())
        } else {
            done = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// A memory storage that yields to the executor before every call, so two
/// stores driven by one `join` interleave at every storage access.
#[derive(Clone, Default)]
pub struct Yielding(pub MemoryStorage);

impl Storage for Yielding {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        yield_now().await;
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        yield_now().await;
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        yield_now().await;
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        yield_now().await;
        self.0.list(prefix, after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        yield_now().await;
        self.0.batch(ops).await
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        yield_now().await;
        self.0.put_if_absent(key, value).await
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
}
