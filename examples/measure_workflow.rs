//! Bytes persisted per workflow step transition, for `BENCHMARKS.md` (issue 3).
//!
//! ```sh
//! cargo run --release --example measure_workflow
//! ```
//!
//! Every byte the store hands to storage (keys and values of puts; deletes
//! count their key) is counted by key class: the scope's log records, its
//! snapshots, the run registry (`r/...`) and scope headers. Scenarios:
//!
//! 1. 2,000 fresh step lifecycles (`pending → in_progress → completed`, two
//!    transitions each) in 40 runs of 50 steps, one scope — the mean per
//!    transition, snapshots amortized;
//! 2. the same lifecycle as the 1st and as the 50th step of a run (the run's
//!    step list grows by one name per new step);
//! 3. a step that fails once and succeeds on its retry (5 transitions, 4 transactions);
//! 4. a memoized hit (0 bytes).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures_executor::block_on;
use waymark::core::workflow::RetryPolicy;
use waymark::storage::{BatchOp, Capabilities, MemoryStorage, Storage};
use waymark::store::{Failure, Run, RunSpec, StepOptions, Store, StoreOptions};
use waymark::{Dims, Result, Value};

const T0: f64 = 1_700_000_000_000.0;

/// A memory storage that counts written bytes per key class.
#[derive(Clone, Default)]
struct Classified {
    inner: MemoryStorage,
    bytes: Rc<RefCell<BTreeMap<&'static str, u64>>>,
}

impl Classified {
    fn count(&self, key: &str, value_len: usize) {
        let class = if key.starts_with("r/") {
            "registry"
        } else if key.starts_with("sc/") {
            "scope header"
        } else if key.contains("/t/") {
            "log record"
        } else if key.contains("/p/") {
            "snapshot"
        } else {
            "other"
        };
        *self.bytes.borrow_mut().entry(class).or_default() += (key.len() + value_len) as u64;
    }

    fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.bytes.borrow_mut())
    }
}

impl Storage for Classified {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.count(key, value.len());
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.count(key, 0);
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        self.inner.list(prefix, after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        for op in &ops {
            match op {
                BatchOp::Put(k, v) => self.count(k, v.len()),
                BatchOp::Delete(k) => self.count(k, 0),
            }
        }
        self.inner.batch(ops).await
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        let len = value.len();
        let created = self.inner.put_if_absent(key, value).await?;
        if created {
            self.count(key, len);
        }
        Ok(created)
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

fn spec(id: usize) -> RunSpec {
    RunSpec {
        workflow: "research".into(),
        id: format!("run-{id:06}"),
        scope: Dims::new([("project", "bench")]),
        input: Some(Value::from("q")),
        lease_ms: None,
    }
}

type Res = std::result::Result<Value, Failure<String>>;

fn ok() -> std::future::Ready<Res> {
    std::future::ready(Ok(Value::from("a short step result")))
}

fn report(what: &str, transitions: u64, bytes: &BTreeMap<&'static str, u64>) {
    let total: u64 = bytes.values().sum();
    let per = |b: u64| b as f64 / transitions as f64;
    let parts: Vec<String> = bytes.iter().map(|(k, b)| format!("{k} {:.0}", per(*b))).collect();
    println!("{what}: {:.0} bytes per transition ({})", per(total), parts.join(", "));
}

fn step(run: &Run<Classified>, name: &str, opts: &StepOptions) {
    block_on(run.step(name, opts, ok, None, None)).expect("step");
}

fn main() {
    let storage = Classified::default();
    let store = block_on(Store::open(storage.clone(), StoreOptions::with_clock(|| T0))).expect("open");
    let opts = StepOptions::default();
    storage.take(); // the store's metadata

    // 1. 2,000 lifecycles in runs of 50 steps.
    let (mut sum, mut first, mut fiftieth) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let writes_before = storage.inner.write_stats().bytes;
    let mut run_bytes = 0;
    for r in 0..40 {
        let run = block_on(store.run(spec(r))).expect("run");
        run_bytes += storage.take().values().sum::<u64>();
        for s in 0..50 {
            step(&run, &format!("step-{s:02}"), &opts);
            let b = storage.take();
            for (k, v) in &b {
                *sum.entry(*k).or_insert(0) += v;
            }
            if r == 39 && s == 0 {
                first = b;
            } else if r == 39 && s == 49 {
                fiftieth = b;
            }
        }
    }
    let step_bytes: u64 = sum.values().sum();
    assert_eq!(storage.inner.write_stats().bytes - writes_before, step_bytes + run_bytes, "the classes add up");
    report("2,000 step lifecycles (4,000 transitions), snapshots amortized", 2000 * 2, &sum);
    report("  the 1st step of a run", 2, &first);
    report("  the 50th step of a run", 2, &fiftieth);

    // 3. Fail once, succeed on the retry.
    let run = block_on(store.run(spec(100))).expect("run");
    storage.take();
    let retry = StepOptions { retry: RetryPolicy { max: 2, delay_ms: 0.0, ..Default::default() }, ..Default::default() };
    let mut failed = false;
    let f = || {
        let first = !failed;
        failed = true;
        std::future::ready(if first { Err(Failure::new("flaky".to_string())) } else { Ok(Value::from(1)) })
    };
    block_on(run.step("flaky", &retry, f, None, None)).expect("retried");
    assert_eq!(run.transitions().len(), 5);
    report("a step failing once, then completing (5 transitions)", 5, &storage.take());

    // 4. A memoized hit.
    step(&run, "flaky", &retry);
    let memo: u64 = storage.take().values().sum();
    println!("a memoized hit: {memo} bytes");
}
