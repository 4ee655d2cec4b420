//! Helpers shared by the integration tests: a controllable clock, storage
//! dumps, a storage that fails on demand and one that yields on every call.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use waymark::storage::{BatchOp, Capabilities, MemoryStorage, Storage};
use waymark::store::{Scope, StoreOptions};
use waymark::{AsOf, Dims, Error, Point, Provenance, Result, Value};

pub use futures_executor::block_on;

/// A clock the test moves by hand.
pub fn clock(start: f64) -> (Rc<Cell<f64>>, StoreOptions) {
    let c = Rc::new(Cell::new(start));
    let c2 = c.clone();
    (c, StoreOptions::with_clock(move || c2.get()))
}

/// Options that snapshot after every commit (`min_bytes` 0, factor 0) or on
/// the given thresholds.
pub fn with_snapshots(mut opts: StoreOptions, min_bytes: usize, factor: f64) -> StoreOptions {
    opts.snapshot_min_bytes = min_bytes;
    opts.snapshot_factor = factor;
    opts
}

pub fn prov(cause: &str) -> Provenance {
    Provenance::new(cause)
}

pub fn v(n: i32) -> Value {
    Value::from(n)
}

pub fn code(e: &Error) -> &'static str {
    e.code().as_str()
}

/// Runs a future that completes without waiting (memory storage calls), so
/// that it can be used inside `block_on`.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the future was not ready"),
    }
}

/// Every key and value of a memory storage.
pub fn dump(mem: &MemoryStorage) -> BTreeMap<String, Vec<u8>> {
    mem.keys()
        .into_iter()
        .map(|k| {
            let v = ready(mem.get(&k)).unwrap().unwrap();
            (k, v)
        })
        .collect()
}

/// A new memory storage holding a copy of `entries`.
pub fn memory_from(entries: &BTreeMap<String, Vec<u8>>) -> MemoryStorage {
    let mem = MemoryStorage::new();
    for (k, v) in entries {
        mem.raw_put(k, v.clone());
    }
    mem
}

/// The storage methods a [`Flaky`] storage can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Put,
    PutIfAbsent,
    Delete,
    List,
    GetMany,
    Batch,
}

pub const METHODS: [Method; 7] =
    [Method::Get, Method::Put, Method::PutIfAbsent, Method::Delete, Method::List, Method::GetMany, Method::Batch];

/// A memory storage whose `n`-th call (counting from 0) of one method fails
/// with a `STORAGE` error before touching the data. Counts every call.
#[derive(Clone, Default)]
pub struct Flaky {
    pub inner: MemoryStorage,
    counts: Rc<RefCell<HashMap<Method, usize>>>,
    fail: Rc<Cell<Option<(Method, usize)>>>,
    failed: Rc<Cell<bool>>,
}

impl Flaky {
    pub fn new(inner: MemoryStorage, fail: Option<(Method, usize)>) -> Self {
        Flaky { inner, fail: Rc::new(Cell::new(fail)), ..Default::default() }
    }

    pub fn count(&self, m: Method) -> usize {
        self.counts.borrow().get(&m).copied().unwrap_or(0)
    }

    /// Whether the planned failure happened.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    fn hit(&self, m: Method) -> Result<()> {
        let n = {
            let mut counts = self.counts.borrow_mut();
            let c = counts.entry(m).or_insert(0);
            *c += 1;
            *c - 1
        };
        if self.fail.get() == Some((m, n)) {
            self.failed.set(true);
            return Err(Error::Storage(format!("injected failure of {m:?} call {n}")));
        }
        Ok(())
    }
}

impl Storage for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.hit(Method::Get)?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.hit(Method::Put)?;
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.hit(Method::Delete)?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        self.hit(Method::List)?;
        self.inner.list(prefix, after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        self.hit(Method::Batch)?;
        self.inner.batch(ops).await
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        self.hit(Method::PutIfAbsent)?;
        self.inner.put_if_absent(key, value).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.hit(Method::GetMany)?;
        self.inner.get_many(keys).await
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// Returns `Pending` once (waking itself), so that joined futures interleave.
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// A memory storage that yields to the executor before and after every call,
/// so two stores driven by one `join` interleave at every storage access.
#[derive(Clone, Default)]
pub struct Yielding(pub MemoryStorage);

impl Storage for Yielding {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        yield_now().await;
        let r = self.0.get(key).await;
        yield_now().await;
        r
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        yield_now().await;
        let r = self.0.put(key, value).await;
        yield_now().await;
        r
    }
    async fn delete(&self, key: &str) -> Result<()> {
        yield_now().await;
        let r = self.0.delete(key).await;
        yield_now().await;
        r
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        yield_now().await;
        let r = self.0.list(prefix, after, limit).await;
        yield_now().await;
        r
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        yield_now().await;
        let r = self.0.batch(ops).await;
        yield_now().await;
        r
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        yield_now().await;
        let r = self.0.put_if_absent(key, value).await;
        yield_now().await;
        r
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
}

/// Proptest case count: `default`, or `PROPTEST_CASES` for a longer soak.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Any storage, reported as having no atomic create (Workers KV, a custom
/// adapter without `putIfAbsent`): the store takes its merged-log path.
#[derive(Clone, Default)]
pub struct NonAtomic<S>(pub S);

impl<S: Storage> Storage for NonAtomic<S> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        self.0.list(prefix, after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        self.0.batch(ops).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.0.get_many(keys).await
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { atomic_create: false, ..self.0.capabilities() }
    }
}

// ---- shared by the store tests (store.rs, store_corrupt.rs, store_fork.rs) ----

pub fn dims(p: &str) -> Dims {
    Dims::new([("project", p)])
}

/// Everything observable about a scope, as text, for equality checks.
pub fn fingerprint<S: Storage>(scope: &Scope<S>, entities: &[&str], attrs: &[&str]) -> String {
    use std::fmt::Write;
    let seq = scope.seq();
    let mut out = String::new();
    let _ = writeln!(out, "dims {:?}\nseq {seq}\nentities {:?}", scope.dims(), scope.entities());
    let _ = writeln!(out, "checkpoints {:?}", scope.checkpoints());
    let _ = writeln!(out, "diff {:?}", scope.diff(&Point::Seq(0), None));
    let _ = writeln!(out, "expiring {:?}", scope.expiring(1e12));
    for s in 0..=seq {
        let view = scope.as_of(AsOf::Seq(s)).unwrap();
        let _ = writeln!(out, "as of {s}: {:?}", view.entities());
    }
    for e in entities {
        for a in attrs {
            let _ = writeln!(out, "history {e}.{a}: {:?}", scope.history(e, a));
        }
    }
    out
}

pub fn nested(levels: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..levels {
        v = Value::array([v]);
    }
    v
}
