//! Workflow benchmarks (issue 3). Run with
//! `cargo bench --bench workflow -- --warm-up-time 1 --measurement-time 3`;
//! results and the exact commands are in `BENCHMARKS.md`.
//!
//! - `step/memoized_hit`: `run.step` on a completed step: the stored result
//!   comes back, nothing runs, nothing is written;
//! - `step/lifecycle`: a fresh step `pending → in_progress → completed`, both
//!   transitions persisted (two transactions plus the registry summary) on
//!   `MemoryStorage`. A new run every 50 steps, a new scope every 20 runs;
//! - `registry/runs_20_of_10k` and `registry/runs_20_of_10k_failed`:
//!   `store.runs({ limit: 20 })` over 10k runs in 100 scopes, without and with
//!   a status filter (1k of the runs are failed);
//! - the setup prints the bytes persisted per step transition
//!   (`MemoryStorage::write_stats` around step lifecycles); the breakdown by
//!   key is in `examples/measure_workflow.rs`.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use futures_executor::block_on;
use waymark::core::workflow::RunStatus;
use waymark::storage::MemoryStorage;
use waymark::store::{Failure, Run, RunFilter, RunSpec, StepOptions, Store, StoreOptions};
use waymark::{Dims, Value};

const T0: f64 = 1_700_000_000_000.0;
const STEPS_PER_RUN: usize = 50;
const RUNS_PER_SCOPE: usize = 20;

fn spec(scope: usize, id: usize) -> RunSpec {
    RunSpec {
        workflow: "research".into(),
        id: format!("run-{id:06}"),
        scope: Dims::new([("project", "bench".to_string()), ("shard", format!("{scope:04}"))]),
        input: Some(Value::from("q")),
        lease_ms: None,
    }
}

fn fixed_clock() -> StoreOptions {
    StoreOptions::with_clock(|| T0)
}

type Res = Result<Value, Failure<String>>;

fn result() -> std::future::Ready<Res> {
    std::future::ready(Ok(Value::from("a short step result")))
}

/// Runs `n` fresh step lifecycles (a new run every 50 steps) and returns the
/// bytes `MemoryStorage` received per transition (2 per lifecycle), counting
/// only the step calls.
fn bytes_per_transition(n: usize) -> f64 {
    let mem = MemoryStorage::new();
    let store = block_on(Store::open(mem.clone(), fixed_clock())).expect("open");
    let opts = StepOptions::default();
    let mut bytes = 0;
    let mut run = None;
    for i in 0..n {
        if i % STEPS_PER_RUN == 0 {
            run = Some(block_on(store.run(spec(0, i / STEPS_PER_RUN))).expect("run"));
        }
        let before = mem.write_stats().bytes;
        let r = run.as_ref().expect("run");
        block_on(r.step(&format!("step-{:02}", i % STEPS_PER_RUN), &opts, result, None, None)).expect("step");
        bytes += mem.write_stats().bytes - before;
    }
    bytes as f64 / (2 * n) as f64
}

fn steps(c: &mut Criterion) {
    eprintln!("bytes persisted per step transition (mean of 1000 lifecycles): {:.0}", bytes_per_transition(1000));
    let mut g = c.benchmark_group("step");

    let store = block_on(Store::open(MemoryStorage::new(), fixed_clock())).expect("open");
    let run = block_on(store.run(spec(0, 0))).expect("run");
    let opts = StepOptions::default();
    block_on(run.step("search", &opts, result, None, None)).expect("step");
    let calls = Cell::new(0u32);
    g.bench_function("memoized_hit", |b| {
        b.iter(|| {
            let v = block_on(run.step(
                "search",
                &opts,
                || {
                    calls.set(calls.get() + 1);
                    result()
                },
                None,
                None,
            ));
            black_box(v.expect("memoized"))
        })
    });
    assert_eq!(calls.get(), 0, "a memoized step never runs");

    let store = block_on(Store::open(MemoryStorage::new(), fixed_clock())).expect("open");
    let mut i = 0usize;
    let mut run: Option<Run<MemoryStorage>> = None;
    g.bench_function("lifecycle", |b| {
        b.iter_batched(
            || {
                if i % STEPS_PER_RUN == 0 {
                    let id = i / STEPS_PER_RUN;
                    run = Some(block_on(store.run(spec(id / RUNS_PER_SCOPE, id))).expect("run"));
                }
                let name = format!("step-{:02}", i % STEPS_PER_RUN);
                i += 1;
                (run.clone().expect("run"), name)
            },
            |(run, name)| block_on(run.step(&name, &opts, result, None, None)).expect("step"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn registry(c: &mut Criterion) {
    let clock = Rc::new(Cell::new(T0));
    let c2 = clock.clone();
    let store = block_on(Store::open(MemoryStorage::new(), StoreOptions::with_clock(move || c2.get()))).expect("open");
    block_on(async {
        for i in 0..10_000usize {
            clock.set(T0 + i as f64);
            let run = store.run(spec(i % 100, i)).await.expect("run");
            match i % 10 {
                0 => run.fail("boom").await.expect("fail"),
                1..=3 => run.complete(Value::Null).await.expect("complete"),
                4 => run.pause().await.expect("pause"),
                _ => {}
            }
        }
    });
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.runs_total(), stats.runs_in(RunStatus::Failed)), (10_000, 1000));

    let mut g = c.benchmark_group("registry");
    let all = RunFilter { limit: Some(20), ..Default::default() };
    g.bench_function("runs_20_of_10k", |b| {
        b.iter(|| {
            let page = block_on(store.runs(&all)).expect("runs");
            assert_eq!(page.len(), 20);
            black_box(page)
        })
    });
    let failed = RunFilter { status: Some(RunStatus::Failed), limit: Some(20), ..Default::default() };
    g.bench_function("runs_20_of_10k_failed", |b| {
        b.iter(|| {
            let page = block_on(store.runs(&failed)).expect("runs");
            assert_eq!(page.len(), 20);
            black_box(page)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = steps, registry
}
criterion_main!(benches);
