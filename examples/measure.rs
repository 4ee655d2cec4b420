//! Memory and write-amplification measurements for `BENCHMARKS.md` (issue 2).
//!
//! ```sh
//! cargo run --release --example measure
//! ```
//!
//! 1. Bytes per live fact: a counting global allocator tracks the bytes held,
//!    before and after building a 100k-fact scope state with number values.
//! 2. Bytes persisted per transaction: 10k transactions of an agent workload
//!    through the store on `MemoryStorage`, comparing what storage received
//!    (`write_stats`) with each transaction's postcard-encoded ops.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use waymark::core::codec;
use waymark::core::state::ScopeState;
use waymark::storage::{keys, MemoryStorage, Storage};
use waymark::core::tx::OpRecord;
use waymark::{Op, Value};


#[path = "../benches/support/workload.rs"]
mod workload;
use workload::*;

/// Counts the bytes currently allocated (as requested, without allocator overhead).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes held per live fact by `st`, measured as the live-byte growth of `build`.
fn held_by<T>(build: impl FnOnce() -> T) -> (T, isize) {
    let before = live();
    let t = build();
    (t, live() - before)
}

/// Bytes per live fact of one state layout: as built by `apply`, after
/// `compact()`, and decoded from its snapshot (what a reopened store holds).
fn memory_row(label: &str, build: impl FnOnce() -> ScopeState) {
    let (mut st, built) = held_by(build);
    let facts = st.visible_facts(T0 + 1e9);
    let ((), delta) = held_by(|| st.compact());
    let compacted = built + delta;
    let bytes = codec::encode_snapshot(&st);
    drop(st);
    let (decoded, reopened) = held_by(|| codec::decode_snapshot("snapshot", &bytes).expect("decode"));
    assert_eq!(decoded.visible_facts(T0 + 1e9), facts);
    drop(decoded);
    let per = |b: isize| b as f64 / facts as f64;
    println!("| {label} | {facts} | {:.1} | {:.1} | {:.1} |", per(built), per(compacted), per(reopened));
}

/// Bytes per live fact of a state built through the store (whose snapshots
/// compact it): the bytes freed when the store is dropped, its storage kept.
fn store_memory_row(label: &str, entities: usize, attrs: usize, per_tx: usize) {
    let (storage, store, scope) = store_state(entities, attrs, per_tx, 0, 0);
    let facts = scope.with_state(|st| st.visible_facts(T0 + 1e9));
    let snapshot_seq = block_on(storage.list(&keys::snapshot_prefix(&dims().key()), None, None)).expect("list").pop();
    let seq = scope.seq();
    let ((), freed) = held_by(move || drop((scope, store)));
    let per = -freed as f64 / facts as f64;
    let snap = snapshot_seq.map(|k| keys::seq_of(&k).expect("seq")).unwrap_or(0);
    println!("| {label} (newest snapshot at seq {snap} of {seq}) | {facts} | {per:.1} | | |");
}

/// One turn of the agent workload: update three attributes of an existing
/// task; every other turn also records a new search result.
fn agent_ops(i: usize, tasks: usize) -> Vec<Op> {
    let status = ["queued", "running", "waiting", "done"][i % 4];
    let mut ops = vec![Op::set(
        entity(spread(i, tasks)),
        [("status", Value::from(status)), ("step", Value::from(i as f64)), ("tokens", Value::from((i * 37 % 4096) as f64))],
    )];
    if i % 2 == 0 {
        ops.push(
            Op::set(
                format!("result:{i:06}"),
                [
                    ("url", Value::from(format!("https://example.org/doc/{}", i * 31 % 10_000))),
                    ("relevance_score", Value::from((i % 100) as f64 / 100.0)),
                    ("rank", Value::from((i % 10) as f64)),
                ],
            )
            .with_type("SearchResult"),
        );
    }
    ops
}

#[derive(Default)]
struct WriteReport {
    txs: u64,
    ops: u64,
    provenance: u64,
    header: u64,
    key: u64,
    log: u64,
    written: u64,
    /// (txs so far, bytes written so far, ops bytes so far) at a few points.
    progress: Vec<(usize, u64, u64)>,
    snapshots: u64,
    stored: usize,
}

fn enc_len<T: serde::Serialize>(t: &T) -> u64 {
    postcard::to_allocvec(t).expect("encode").len() as u64
}

/// Runs `txs` agent transactions on a store holding `tasks` tasks of 5 attributes.
fn write_amplification(tasks: usize, txs: usize) -> WriteReport {
    let (storage, store, scope) = store_state(tasks, 5, 100, 0, 0);
    let first = scope.seq() + 1;
    let before = storage.write_stats().bytes;
    let mut newest = newest_snapshot(&storage);
    let mut r = WriteReport { txs: txs as u64, ..Default::default() };
    let mut ops_so_far = 0;
    for i in 0..txs {
        let ops = agent_ops(i, tasks);
        let resolved = ops.iter().map(|op| match op {
            Op::Set { entity, ty, attrs, .. } => OpRecord::Set { entity: entity.clone(), ty: ty.clone(), attrs: attrs.clone(), valid_until: None },
            _ => unreachable!("the workload only sets"),
        });
        ops_so_far += enc_len(&resolved.collect::<Vec<_>>());
        block_on(scope.transact(ops, prov(i))).expect("transact");
        if (i + 1) % (txs / 8) == 0 {
            r.progress.push((i + 1, storage.write_stats().bytes - before, ops_so_far));
        }
        let now = newest_snapshot(&storage);
        if now != newest {
            r.snapshots += 1;
            newest = now;
        }
    }
    r.written = storage.write_stats().bytes - before;
    let key = dims().key();
    for seq in first..=scope.seq() {
        let k = keys::log(&key, seq);
        let v = block_on(storage.get(&k)).expect("get").expect("log record");
        let rec = codec::decode_tx(&k, &v).expect("decode");
        r.ops += enc_len(&rec.ops);
        r.provenance += enc_len(&(&rec.cause, &rec.actor, &rec.note));
        r.header += 2 + enc_len(&(rec.seq, rec.at));
        r.key += k.len() as u64;
        r.log += (k.len() + v.len()) as u64;
    }
    assert_eq!(r.log, r.ops + r.provenance + r.header + r.key, "the breakdown covers the record");
    assert_eq!(r.ops, ops_so_far, "the delta is the resolved ops");
    store.close();
    r.stored = storage.stored_bytes();
    r
}

fn newest_snapshot(storage: &MemoryStorage) -> Option<String> {
    block_on(storage.list(&keys::snapshot_prefix(&dims().key()), None, None)).expect("list").pop()
}

/// The 100-change diff on 1k, 100k and 1M facts, timed interleaved (one
/// batch per size per round) and keeping each size's fastest batch, so that
/// load from other processes on a shared machine cancels out of the ratio.
fn diff_scaling() {
    let sizes = [1_000usize, 100_000, 1_000_000];
    let states: Vec<(ScopeState, u64, u64)> = sizes
        .iter()
        .map(|&facts| {
            let mut st = bulk_state(facts, 10, 1000);
            let from = st.seq();
            spread_updates(&mut st, facts / 10, 10, 100, 10, 0);
            let to = st.seq();
            assert_eq!(st.diff(from, to).expect("diff").len(), 100);
            (st, from, to)
        })
        .collect();
    const ROUNDS: usize = 30;
    const BATCH: u32 = 200;
    let mut best = [f64::INFINITY; 3];
    for _ in 0..ROUNDS {
        for (i, (st, from, to)) in states.iter().enumerate() {
            let t = std::time::Instant::now();
            for _ in 0..BATCH {
                std::hint::black_box(st.diff(*from, *to).expect("diff"));
            }
            best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH));
        }
    }
    println!("| facts | 100-change diff, µs (fastest of {ROUNDS} interleaved batches of {BATCH}) | ratio to 1k |");
    println!("| ---: | ---: | ---: |");
    for (facts, t) in sizes.iter().zip(best) {
        println!("| {facts} | {t:.1} | {:.2} |", t / best[0]);
    }
}

fn main() {
    println!("## Memory: bytes per live fact (number values, counting allocator)\n");
    println!("| state (100k live facts) | facts | built by apply | after compact() | decoded from snapshot |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    memory_row("20k entities x 5 attrs, 10 entities per tx", || bulk_state(100_000, 5, 10));
    store_memory_row("same, through Scope::transact with the default snapshot policy", 20_000, 5, 10);
    memory_row("10k entities x 10 attrs, 1000 entities per tx", || bulk_state(100_000, 10, 1000));
    memory_row("100k entities x 1 attr, 100 entities per tx", || bulk_state(100_000, 1, 100));
    memory_row("20k x 5 (10 per tx), then 100k one-attr updates, 1 per tx", || {
        let mut st = bulk_state(100_000, 5, 10);
        spread_updates(&mut st, 20_000, 5, 100_000, 1, 1);
        st
    });

    println!("\n## Diff scaling\n");
    diff_scaling();

    println!("\n## Storage: bytes written per transaction (agent workload, MemoryStorage::write_stats)\n");
    let r = write_amplification(1000, 10_000);
    let row = |what: &str, b: u64| {
        let per = b as f64 / r.txs as f64;
        println!(
            "| {what} | {b} | {per:.1} | {:.2} | {:.2} |",
            b as f64 / r.ops as f64,
            b as f64 / (r.ops + r.provenance) as f64
        );
    };
    println!("| bytes | total | per tx | / ops | / (ops + provenance) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    row("ops, postcard-encoded (the delta)", r.ops);
    row("provenance (cause, actor, note)", r.provenance);
    row("record header (format, kind, seq, at)", r.header);
    row("log key", r.key);
    row("**write path: log record, key + value**", r.log);
    row("snapshots and deletes", r.written - r.log);
    row("**amortized: everything written**", r.written);
    println!(
        "\n{} transactions on 1000 existing tasks; {} snapshot(s) written during them; {} bytes held at the end.",
        r.txs, r.snapshots, r.stored
    );
    let points: Vec<String> =
        r.progress.iter().map(|(n, w, o)| format!("{n}: {:.2}", *w as f64 / *o as f64)).collect();
    println!("Amortized ratio (everything written / ops) after N transactions: {}.", points.join(", "));
}
