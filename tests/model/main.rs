//! Model-based property tests: random operation sequences run against the
//! store and against a deliberately naive model — a list of every write,
//! re-evaluated from scratch for each query, written straight from API.md's
//! "Precise semantics" — and everything observable is compared: current
//! state at several times, as-of by seq (every seq) and by time, history,
//! why, expiring, diff (seqs and checkpoint names), checkpoints, restore,
//! fork, and the state after reopening on the same storage (with snapshots
//! taken often, rarely or never).

#[path = "../common/mod.rs"]
mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use proptest::prelude::*;
use waymark::storage::MemoryStorage;
use waymark::store::{Scope, Store, StoreOptions};
use waymark::{AsOf, Change, Checkpoint, Dims, Entity, Expiry, FactVersion, Op, Point, Provenance, Query, Value};

// Small pools so that writes collide. Names are shared between entities,
// attributes and types on purpose ("a0", "T", "e1" play two roles).
const ENTS: [&str; 4] = ["a0", "e1", "e2", "e3"];
const ATTRS: [&str; 3] = ["T", "a0", "a1"];
const TYPES: [&str; 2] = ["T", "e1"];
const CPS: [&str; 3] = ["c0", "c1", "c2"];

fn pool_value(i: usize) -> Value {
    match i % 9 {
        0 => Value::Null,
        1 => v(0),
        2 => v(1),
        3 => Value::from("x"),
        4 => Value::from(true),
        5 => Value::object([("k", v(1))]),
        6 => Value::array([v(1), Value::from("x")]),
        7 => Value::from(1.5),
        _ => Value::from(-0.0),
    }
}

mod actions;
mod compare;
mod naive;

use actions::*;
use compare::*;
use naive::*;

// ---- driving the store --------------------------------------------------------

struct World {
    mem: MemoryStorage,
    clock: Rc<Cell<f64>>,
    opts: StoreOptions,
    store: Store<MemoryStorage>,
    scope: Scope<MemoryStorage>,
}

fn main_dims() -> Dims {
    Dims::new([("project", "model"), ("run", "1")])
}

fn fork_dims() -> Dims {
    Dims::new([("project", "model"), ("run", "fork")])
}

async fn open_world(mem: MemoryStorage, clock: Rc<Cell<f64>>, opts: StoreOptions) -> World {
    let store = Store::open(mem.clone(), opts.clone()).await.unwrap();
    let scope = store.scope(main_dims()).await.unwrap();
    World { mem, clock, opts, store, scope }
}

fn build_ops(ops: &[MOp], clock: f64) -> Vec<Op> {
    ops.iter()
        .map(|op| match op {
            MOp::Set { e, ty, attrs, exp } => {
                let mut o = Op::set(ENTS[*e], attrs.iter().map(|(a, val)| (ATTRS[*a], pool_value(*val))));
                if let Some(t) = ty {
                    o = o.with_type(TYPES[*t]);
                }
                match exp {
                    MExpiry::None => o,
                    MExpiry::Ttl(ms) => o.with_expiry(Expiry::TtlMs(*ms)),
                    MExpiry::Until(rel) => o.with_expiry(Expiry::ValidUntil(clock + rel)),
                }
            }
            MOp::Unset { e, attrs } => Op::unset(ENTS[*e], attrs.iter().map(|a| ATTRS[*a])),
            MOp::Delete { e } => Op::delete(ENTS[*e]),
        })
        .collect()
}

fn resolve_target(m: &Model, t: &Target) -> Point {
    match t {
        Target::Cp(i) if !m.cps.is_empty() => Point::Name(m.cps[i % m.cps.len()].name.clone()),
        Target::Cp(_) => Point::Seq(0),
        Target::Seq(f) => Point::Seq(((m.seq() as f64) * f).floor() as u64),
    }
}

fn point_seq(m: &Model, p: &Point) -> u64 {
    match p {
        Point::Seq(s) => *s,
        Point::Name(n) => m.cps.iter().find(|c| &c.name == n).unwrap().seq,
    }
}


fn run(actions: Vec<Action>, policy: (usize, f64), fork_at: Target, fork_op: MOp) -> Result<(), TestCaseError> {
    block_on(async move {
        let (clock, opts) = clock(1_000.0);
        let opts = with_snapshots(opts, policy.0, policy.1);
        let mut w = open_world(MemoryStorage::new(), clock, opts).await;
        let mut m = Model::default();
        for (i, action) in actions.iter().enumerate() {
            let what = format!("action {i} {action:?}");
            match action {
                Action::Tx { ops, cause, actor, note } => {
                    let ops = build_ops(ops, w.clock.get());
                    let mut prov = Provenance::new(format!("turn:{cause}"));
                    if *actor {
                        prov = prov.actor("assistant");
                    }
                    if *note {
                        prov = prov.note(format!("note {i}"));
                    }
                    let info = w.scope.transact(ops.clone(), prov.clone()).await.unwrap();
                    // Tx times never decrease, whatever the clock does.
                    let at = m.txs.last().map_or(w.clock.get(), |t| t.at.max(w.clock.get()));
                    let seq = m.transact(&ops, at, &prov);
                    prop_assert_eq!((info.seq, info.at, info.cause), (seq, at, prov.cause), "{}", what);
                }
                Action::Clock(d) => w.clock.set(w.clock.get() + d),
                Action::Checkpoint(c) => {
                    let name = CPS[*c];
                    let r = w.scope.checkpoint(name).await;
                    if m.cps.iter().any(|cp| cp.name == name) {
                        prop_assert_eq!(r.err().map(|e| e.code().as_str()), Some("CONFLICT"), "{}", what);
                    } else {
                        let cp = Checkpoint { name: name.to_string(), seq: m.seq(), at: w.clock.get() };
                        prop_assert_eq!(r.unwrap(), cp.clone(), "{}", what);
                        m.cps.push(cp);
                    }
                }
                Action::Restore(t) => {
                    let p = resolve_target(&m, t);
                    let c = point_seq(&m, &p);
                    let prov = Provenance::new(format!("rollback:{i}"));
                    let info = w.scope.restore(&p, prov.clone()).await.unwrap();
                    let at = m.txs.last().map_or(w.clock.get(), |t| t.at.max(w.clock.get()));
                    let seq = m.restore(c, at, &prov);
                    prop_assert_eq!((info.seq, info.at), (seq, at), "{}", what);
                    // Values and their validUntil are those of the restored point.
                    prop_assert_eq!(stored_state(&w.scope), model_stored_state(&m, c), "restored state, {}", what);
                    prop_assert_eq!(
                        w.scope.diff(&p, None).unwrap(),
                        vec![],
                        "nothing differs from the restored point, {}",
                        what
                    );
                }
                Action::Reopen => {
                    let World { mem, clock, opts, .. } = w;
                    w = open_world(mem, clock, opts).await;
                    compare(&w.scope, &m, &w.clock, &format!("after reopen at {what}"))?;
                }
            }
        }
        compare(&w.scope, &m, &w.clock, "end")?;

        // Fork at a checkpoint or seq.
        let p = resolve_target(&m, &fork_at);
        let fork = w.scope.fork(&p, fork_dims()).await.unwrap();
        let mut fm = m.truncated(point_seq(&m, &p));
        compare(&fork, &fm, &w.clock, "fork")?;
        compare(&w.scope, &m, &w.clock, "source after fork")?;
        let ops = build_ops(std::slice::from_ref(&fork_op), w.clock.get());
        let prov = Provenance::new("fork:1");
        let info = fork.transact(ops.clone(), prov.clone()).await.unwrap();
        let at = fm.txs.last().map_or(w.clock.get(), |t| t.at.max(w.clock.get()));
        let seq = fm.transact(&ops, at, &prov);
        prop_assert_eq!(info.seq, seq, "seqs continue from the fork point");
        compare(&fork, &fm, &w.clock, "fork after a write")?;
        for target in [main_dims(), fork_dims()] {
            let err = w.scope.fork(&Point::Seq(0), target).await.err().unwrap();
            prop_assert_eq!(err.code().as_str(), "CONFLICT");
        }

        // Reopen on the same storage: everything is still there.
        let World { mem, clock, opts, store, scope } = w;
        drop((store, scope, fork));
        let w = open_world(mem, clock, opts).await;
        compare(&w.scope, &m, &w.clock, "final reopen")?;
        let fork = w.store.scope(fork_dims()).await.unwrap();
        compare(&fork, &fm, &w.clock, "fork after reopen")?;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_store_matches_the_model(
        actions in proptest::collection::vec(action(), 0..28),
        policy in snapshot_policy(),
        fork_at in target(),
        fork_op in op(),
    ) {
        run(actions, policy, fork_at, fork_op)?;
    }
}

/// Fixed sequences for the corners the random ones reach only by luck.
#[test]
fn corners() {
    use actions::Action::*;
    let set = |e, a, val, exp| MOp::Set { e, ty: None, attrs: vec![(a, val)], exp };
    let cases: Vec<Vec<Action>> = vec![
        // Set then unset in one tx; unset then set; set twice.
        vec![
            Tx {
                ops: vec![set(1, 1, 2, MExpiry::None), MOp::Unset { e: 1, attrs: vec![1] }],
                cause: 0,
                actor: false,
                note: false,
            },
            Tx {
                ops: vec![
                    MOp::Unset { e: 1, attrs: vec![1] },
                    set(1, 1, 3, MExpiry::None),
                    set(1, 1, 4, MExpiry::Ttl(10.0)),
                ],
                cause: 1,
                actor: true,
                note: true,
            },
        ],
        // A type alone; delete then set again in one tx; the clock going backwards.
        vec![
            Tx {
                ops: vec![MOp::Set { e: 2, ty: Some(0), attrs: vec![], exp: MExpiry::None }],
                cause: 0,
                actor: false,
                note: false,
            },
            Clock(-30.0),
            Tx {
                ops: vec![
                    set(2, 0, 1, MExpiry::None),
                    MOp::Delete { e: 2 },
                    MOp::Set { e: 2, ty: Some(1), attrs: vec![(2, 5)], exp: MExpiry::Until(5.0) },
                ],
                cause: 1,
                actor: false,
                note: false,
            },
            Checkpoint(0),
            Clock(-500.0),
            Checkpoint(1),
            Tx { ops: vec![], cause: 2, actor: false, note: false },
            Checkpoint(2),
            Restore(Target::Seq(0.0)),
            Restore(Target::Cp(0)),
        ],
        // Expired values put back by restore; equal values are no change.
        vec![
            Tx {
                ops: vec![set(0, 0, 1, MExpiry::Ttl(0.0)), set(3, 2, 7, MExpiry::Until(-10.0))],
                cause: 0,
                actor: false,
                note: false,
            },
            Checkpoint(0),
            Clock(100.0),
            Tx {
                ops: vec![set(0, 0, 1, MExpiry::None), set(3, 2, 8, MExpiry::None)],
                cause: 1,
                actor: false,
                note: false,
            },
            Tx { ops: vec![set(3, 2, 7, MExpiry::Until(-10.0))], cause: 2, actor: false, note: false },
            Restore(Target::Cp(0)),
            Reopen,
            Restore(Target::Seq(1.0)),
        ],
    ];
    for (i, actions) in cases.into_iter().enumerate() {
        for policy in [(0, 0.0), (64 * 1024, 4.0)] {
            for fork_at in [Target::Cp(0), Target::Seq(0.5), Target::Seq(0.0)] {
                run(actions.clone(), policy, fork_at, MOp::Delete { e: 2 }).unwrap_or_else(|e| panic!("case {i}: {e}"));
            }
        }
    }
}
