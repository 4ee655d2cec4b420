//! Core benchmarks (issue 2). Run with
//! `cargo bench --bench core -- --warm-up-time 1 --measurement-time 3`;
//! results and the exact commands are in `BENCHMARKS.md`.
//!
//! - `transact/{store,apply}/{1,10}`: a one-op transaction writing 1 or 10
//!   number attributes, through the async store on `MemoryStorage` and
//!   through the pure `ScopeState::apply`;
//! - `read/value`, `read/as_of_value`: reads on a 100k-fact scope with history;
//! - `diff/100_changes/{1k,100k,1M}`: a 100-change diff on states of growing
//!   size (the target: 1M costs at most 2x 1k);
//! - `reopen/100k`: `Store::open` + `scope()` on a storage holding 100k facts.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use waymark::core::state::ScopeState;
use waymark::storage::{keys, MemoryStorage, Storage};
use waymark::store::Store;
use waymark::AsOf;

#[path = "support/workload.rs"]
mod workload;
use workload::*;

/// Entities cycled through by the transact benchmarks.
const HOT_ENTITIES: usize = 1000;

fn transact(c: &mut Criterion) {
    let mut g = c.benchmark_group("transact");
    for attrs in [1usize, 10] {
        let store = block_on(Store::open(MemoryStorage::new(), options())).expect("open");
        let scope = block_on(store.scope(dims())).expect("scope");
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("store", attrs), |b| {
            b.iter_batched(
                || {
                    i += 1;
                    (vec![set_op(i % HOT_ENTITIES, attrs, i)], prov(i))
                },
                |(ops, p)| block_on(scope.transact(ops, p)).expect("transact"),
                BatchSize::SmallInput,
            )
        });

        let mut st = ScopeState::new(dims());
        let mut next = 0u64;
        g.bench_function(BenchmarkId::new("apply", attrs), |b| {
            b.iter_batched(
                || {
                    // Setups of a batch run before its routines, in order.
                    next += 1;
                    tx(next, vec![set_rec(next as usize % HOT_ENTITIES, attrs, next as usize)])
                },
                |rec| st.apply(&rec).expect("apply"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// 10k entities x 10 attributes, then 1000 transactions of 100 updates
/// (about two versions per fact).
fn reads(c: &mut Criterion) {
    const ENTITIES: usize = 10_000;
    let (_storage, _store, scope) = store_state(ENTITIES, 10, 1000, 1000, 100);
    let latest = scope.seq();
    // Names are made up front so that the loop times the read alone.
    let names: Vec<String> = (0..ENTITIES).map(|i| entity(spread(i, ENTITIES))).collect();
    let mut g = c.benchmark_group("read");
    let mut k = 0usize;
    g.bench_function("value/100k", |b| {
        b.iter(|| {
            k = (k + 1) % ENTITIES;
            black_box(scope.value(&names[k], ATTRS[k % 10]))
        })
    });
    let mut k = 0usize;
    g.bench_function("as_of_value/100k", |b| {
        b.iter(|| {
            k = (k + 1) % ENTITIES;
            let seq = 1 + (k as u64 * 7) % latest;
            let view = scope.as_of(AsOf::Seq(seq)).expect("as_of");
            black_box(view.value(&names[k], ATTRS[k % 10]))
        })
    });
    g.finish();
}

fn diff(c: &mut Criterion) {
    let mut g = c.benchmark_group("diff");
    for (label, facts) in [("1k", 1_000usize), ("100k", 100_000), ("1M", 1_000_000)] {
        let entities = facts / 10;
        let mut st = bulk_state(facts, 10, 1000);
        let from = st.seq();
        spread_updates(&mut st, entities, 10, 100, 10, 0);
        let to = st.seq();
        assert_eq!(st.diff(from, to).expect("diff").len(), 100);
        g.bench_function(BenchmarkId::new("100_changes", label), |b| b.iter(|| black_box(st.diff(from, to).expect("diff"))));
    }
    g.finish();
}

fn reopen(c: &mut Criterion) {
    let mut g = c.benchmark_group("reopen");
    g.sample_size(10);
    // 10k entities x 10 attributes written 100 entities per transaction.
    let (storage, store, _scope) = store_state(10_000, 10, 100, 0, 0);
    store.close();
    describe("100k/default_policy", &storage);
    let tail_default = storage.clone();
    g.bench_function("100k/default_policy", |b| {
        b.iter(|| {
            let store = block_on(Store::open(tail_default.clone(), options())).expect("open");
            black_box(block_on(store.scope(dims())).expect("scope").seq())
        })
    });
    snapshot_now(&storage);
    describe("100k/snapshot", &storage);
    g.bench_function("100k/snapshot", |b| {
        b.iter(|| {
            let store = block_on(Store::open(storage.clone(), options())).expect("open");
            black_box(block_on(store.scope(dims())).expect("scope").seq())
        })
    });
    g.finish();
}

/// Prints what a reopen benchmark reads: the newest snapshot and the log tail after it.
fn describe(name: &str, storage: &MemoryStorage) {
    let key = dims().key();
    let snaps = block_on(storage.list(&keys::snapshot_prefix(&key), None, None)).expect("list");
    let snap = snaps.last().map(|k| keys::seq_of(k).expect("seq")).unwrap_or(0);
    let snap_bytes = snaps.last().and_then(|k| block_on(storage.get(k)).expect("get")).map_or(0, |v| v.len());
    let tail = block_on(storage.list(&keys::log_prefix(&key), Some(&keys::log(&key, snap)), None)).expect("list").len();
    eprintln!("reopen/{name}: snapshot at seq {snap} ({snap_bytes} bytes), then {tail} log records");
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = transact, reads, diff, reopen }
criterion_main!(benches);
