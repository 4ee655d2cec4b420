//! Workloads shared by `benches/core.rs` and `examples/measure.rs`
//! (included with `#[path]`, so it is not a bench target of its own).
//! Everything is deterministic: no clock, no randomness.

#![allow(dead_code)]

use waymark::core::state::ScopeState;
use waymark::core::tx::{Op, OpRecord, Provenance, TxRecord};
use waymark::storage::MemoryStorage;
use waymark::store::{Scope, Store, StoreOptions};
use waymark::{Dims, Value};

/// The fixed time every workload uses (a store clock that never moves).
pub const T0: f64 = 1_700_000_000_000.0;

/// Attribute names of the synthetic entities (an agent's task records).
pub const ATTRS: [&str; 10] =
    ["status", "score", "step", "tokens", "progress", "updated_at", "priority", "retries", "cost", "latency_ms"];

pub fn dims() -> Dims {
    Dims::new([("project", "bench"), ("workflow", "core")])
}

pub fn entity(i: usize) -> String {
    format!("task:{i:07}")
}

/// A small scalar value (a number), varying with `i`.
pub fn num(i: usize) -> Value {
    Value::from((i % 1000) as f64 + 0.5)
}

/// A multiplicative walk that visits `0..n` without repeats for `k < n`
/// when `n` is not a multiple of 7919 (a prime).
pub fn spread(k: usize, n: usize) -> usize {
    (k * 7919) % n
}

/// One `Set` record: entity `e`, the first `attrs` attributes, numbers from `salt`.
pub fn set_rec(e: usize, attrs: usize, salt: usize) -> OpRecord {
    OpRecord::Set {
        entity: entity(e),
        ty: None,
        attrs: ATTRS[..attrs].iter().enumerate().map(|(j, a)| (a.to_string(), num(salt + j))).collect(),
        valid_until: None,
    }
}

pub fn tx(seq: u64, ops: Vec<OpRecord>) -> TxRecord {
    TxRecord { seq, at: T0 + seq as f64, cause: format!("turn:{seq}"), actor: Some("assistant".into()), note: None, ops }
}

/// A pure state with `facts` live facts: `facts / attrs` entities with `attrs`
/// number attributes each, written `entities_per_tx` entities per transaction.
pub fn bulk_state(facts: usize, attrs: usize, entities_per_tx: usize) -> ScopeState {
    let mut st = ScopeState::new(dims());
    let entities = facts / attrs;
    let mut e = 0;
    while e < entities {
        let end = (e + entities_per_tx).min(entities);
        let ops = (e..end).map(|i| set_rec(i, attrs, i)).collect();
        st.apply(&tx(st.seq() + 1, ops)).expect("apply");
        e = end;
    }
    st
}

/// Applies `changes` single-attribute updates spread over the state, `per_tx`
/// per transaction. Each touches a distinct (entity, attribute) when
/// `changes <= entities`.
pub fn spread_updates(st: &mut ScopeState, entities: usize, attrs: usize, changes: usize, per_tx: usize, salt: usize) {
    let mut k = 0;
    while k < changes {
        let end = (k + per_tx).min(changes);
        let ops = (k..end)
            .map(|k| OpRecord::Set {
                entity: entity(spread(k + salt, entities)),
                ty: None,
                attrs: vec![(ATTRS[k % attrs].to_string(), Value::from(1e6 + (k + salt) as f64))],
                valid_until: None,
            })
            .collect();
        st.apply(&tx(st.seq() + 1, ops)).expect("apply");
        k = end;
    }
}

pub fn options() -> StoreOptions {
    StoreOptions::with_clock(|| T0)
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// Caller-side ops of one `Set` (what `Scope::transact` takes).
pub fn set_op(e: usize, attrs: usize, salt: usize) -> Op {
    Op::set(entity(e), ATTRS[..attrs].iter().enumerate().map(|(j, a)| (*a, num(salt + j))))
}

pub fn prov(i: usize) -> Provenance {
    Provenance::new(format!("turn:{i}")).actor("assistant")
}

/// A store on a fresh `MemoryStorage` holding `entities x attrs` facts written
/// through `Scope::transact` (`entities_per_tx` per transaction), then
/// `update_txs` transactions of `updates_per_tx` single-attribute updates.
pub fn store_state(
    entities: usize,
    attrs: usize,
    entities_per_tx: usize,
    update_txs: usize,
    updates_per_tx: usize,
) -> (MemoryStorage, Store<MemoryStorage>, Scope<MemoryStorage>) {
    let storage = MemoryStorage::new();
    let store = block_on(Store::open(storage.clone(), options())).expect("open");
    let scope = block_on(store.scope(dims())).expect("scope");
    let mut e = 0;
    while e < entities {
        let end = (e + entities_per_tx).min(entities);
        let ops = (e..end).map(|i| set_op(i, attrs, i)).collect();
        block_on(scope.transact(ops, prov(e))).expect("transact");
        e = end;
    }
    for t in 0..update_txs {
        let ops = (0..updates_per_tx)
            .map(|j| {
                let k = t * updates_per_tx + j;
                Op::set(entity(spread(k, entities)), [(ATTRS[k % attrs], Value::from(1e6 + k as f64))])
            })
            .collect();
        block_on(scope.transact(ops, prov(t))).expect("transact");
    }
    (storage, store, scope)
}

/// Makes the newest snapshot cover the whole log: a second store on the same
/// storage with an eager snapshot policy commits one tiny transaction.
pub fn snapshot_now(storage: &MemoryStorage) {
    let opts = StoreOptions { snapshot_factor: 0.0, snapshot_min_bytes: 0, ..options() };
    let store = block_on(Store::open(storage.clone(), opts)).expect("open");
    let scope = block_on(store.scope(dims())).expect("scope");
    block_on(scope.transact(vec![Op::set("bench:meta", [("compacted", Value::Bool(true))])], prov(0))).expect("tx");
}
