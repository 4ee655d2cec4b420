//! Model-based property tests: random operation sequences run against the
//! store and against a deliberately naive model — a list of every write,
//! re-evaluated from scratch for each query, written straight from API.md's
//! "Precise semantics" — and everything observable is compared: current
//! state at several times, as-of by seq (every seq) and by time, history,
//! why, expiring, diff (seqs and checkpoint names), checkpoints, restore,
//! fork, and the state after reopening on the same storage (with snapshots
//! taken often, rarely or never).

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

// ---- actions ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum MExpiry {
    None,
    Ttl(f64),
    /// validUntil relative to the clock when the op is built.
    Until(f64),
}

#[derive(Debug, Clone)]
enum MOp {
    Set { e: usize, ty: Option<usize>, attrs: Vec<(usize, usize)>, exp: MExpiry },
    Unset { e: usize, attrs: Vec<usize> },
    Delete { e: usize },
}

#[derive(Debug, Clone)]
enum Target {
    /// The i-th existing checkpoint (by name), if any; else seq 0.
    Cp(usize),
    /// A seq, as a fraction of the latest.
    Seq(f64),
}

#[derive(Debug, Clone)]
enum Action {
    Tx { ops: Vec<MOp>, cause: usize, actor: bool, note: bool },
    Clock(f64),
    Checkpoint(usize),
    Restore(Target),
    Reopen,
}

fn expiry() -> impl Strategy<Value = MExpiry> {
    prop_oneof![
        3 => Just(MExpiry::None),
        1 => prop_oneof![Just(0.0), Just(10.0), Just(50.0), Just(200.0)].prop_map(MExpiry::Ttl),
        1 => prop_oneof![Just(-10.0), Just(0.0), Just(20.0), Just(100.0)].prop_map(MExpiry::Until),
    ]
}

fn op() -> impl Strategy<Value = MOp> {
    prop_oneof![
        5 => (0..ENTS.len(), proptest::option::weighted(0.4, 0..TYPES.len()),
              proptest::collection::vec((0..ATTRS.len(), 0..9usize), 0..3), expiry())
            .prop_map(|(e, ty, attrs, exp)| MOp::Set { e, ty, attrs, exp }),
        2 => (0..ENTS.len(), proptest::collection::vec(0..ATTRS.len(), 0..3)).prop_map(|(e, attrs)| MOp::Unset { e, attrs }),
        1 => (0..ENTS.len()).prop_map(|e| MOp::Delete { e }),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![(0..CPS.len()).prop_map(Target::Cp), (0.0..=1.0f64).prop_map(Target::Seq)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => (proptest::collection::vec(op(), 0..4), 0..3usize, any::<bool>(), any::<bool>())
            .prop_map(|(ops, cause, actor, note)| Action::Tx { ops, cause, actor, note }),
        // Mostly forwards; sometimes backwards (tx times must still never decrease).
        4 => prop_oneof![3 => 0.0..120.0f64, 1 => -40.0..0.0f64].prop_map(|d| Action::Clock(d.round())),
        2 => (0..CPS.len()).prop_map(Action::Checkpoint),
        1 => target().prop_map(Action::Restore),
        1 => Just(Action::Reopen),
    ]
}

/// (snapshot_min_bytes, snapshot_factor): every commit, once, now and then, never.
fn snapshot_policy() -> impl Strategy<Value = (usize, f64)> {
    prop_oneof![Just((0, 0.0)), Just((1, 1e9)), Just((200, 0.5)), Just((64 * 1024, 4.0))]
}

// ---- the naive model ----------------------------------------------------------

#[derive(Debug, Clone)]
struct MTx {
    at: f64,
    cause: String,
    actor: Option<String>,
    note: Option<String>,
}

/// One write of an attribute, in application order. `value: None` retracts.
#[derive(Debug, Clone)]
struct Write {
    seq: u64,
    e: String,
    a: String,
    value: Option<Value>,
    vu: Option<f64>,
}

#[derive(Debug, Clone)]
struct TypeWrite {
    seq: u64,
    e: String,
    ty: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Model {
    txs: Vec<MTx>,
    writes: Vec<Write>,
    types: Vec<TypeWrite>,
    cps: Vec<Checkpoint>,
}

impl Model {
    fn seq(&self) -> u64 {
        self.txs.len() as u64
    }

    /// The last write of (e, a) in transactions up to `s`.
    fn stored(&self, e: &str, a: &str, s: u64) -> Option<&Write> {
        self.writes.iter().rev().find(|w| w.seq <= s && w.e == e && w.a == a)
    }

    /// The history of (e, a): the last write of each transaction, oldest first.
    fn versions(&self, e: &str, a: &str) -> Vec<&Write> {
        let mut out: Vec<&Write> = Vec::new();
        for w in self.writes.iter().filter(|w| w.e == e && w.a == a) {
            match out.last_mut() {
                Some(last) if last.seq == w.seq => *last = w,
                _ => out.push(w),
            }
        }
        out
    }

    fn type_at(&self, e: &str, s: u64) -> Option<String> {
        self.types.iter().rev().find(|t| t.seq <= s && t.e == e).and_then(|t| t.ty.clone())
    }

    /// The write behind the value visible at seq `s`, judging expiry at `now`.
    fn visible(&self, e: &str, a: &str, s: u64, now: f64) -> Option<&Write> {
        self.stored(e, a, s).filter(|w| w.value.is_some() && now < w.vu.unwrap_or(f64::INFINITY))
    }

    fn value(&self, e: &str, a: &str, s: u64, now: f64) -> Option<Value> {
        self.visible(e, a, s, now).and_then(|w| w.value.clone())
    }

    fn entity(&self, e: &str, s: u64, now: f64) -> Option<Entity> {
        let mut attributes: Vec<(String, Value)> =
            ATTRS.iter().filter_map(|a| Some((a.to_string(), self.value(e, a, s, now)?))).collect();
        attributes.sort_by(|x, y| x.0.cmp(&y.0));
        // An entity exists while at least one attribute is visible; a type alone does not keep it.
        (!attributes.is_empty()).then(|| Entity { id: e.to_string(), ty: self.type_at(e, s), attributes })
    }

    fn entities(&self, s: u64, now: f64) -> Vec<Entity> {
        let mut out: Vec<Entity> = ENTS.iter().filter_map(|e| self.entity(e, s, now)).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn find(&self, q: &Query, s: u64, now: f64) -> Vec<Entity> {
        self.entities(s, now)
            .into_iter()
            .filter(|e| q.ty.is_none() || e.ty == q.ty)
            .filter(|e| q.where_.iter().all(|(k, v)| e.get(k) == Some(v)))
            .collect()
    }

    fn version(&self, w: &Write) -> FactVersion {
        let tx = &self.txs[w.seq as usize - 1];
        FactVersion {
            entity: w.e.clone(),
            attribute: w.a.clone(),
            value: w.value.clone(),
            seq: w.seq,
            at: tx.at,
            cause: tx.cause.clone(),
            actor: tx.actor.clone(),
            note: tx.note.clone(),
            valid_until: w.vu,
            retracted: w.value.is_none(),
        }
    }

    fn history(&self, e: &str, a: &str) -> Vec<FactVersion> {
        self.versions(e, a).into_iter().map(|w| self.version(w)).collect()
    }

    fn why(&self, e: &str, a: &str, s: u64, now: f64) -> Option<FactVersion> {
        self.visible(e, a, s, now).map(|w| self.version(w))
    }

    /// Visible facts with `validUntil <= now + within`, soonest first.
    fn expiring(&self, now: f64, within: f64) -> Vec<FactVersion> {
        let mut out = Vec::new();
        for e in ENTS {
            for a in ATTRS {
                if let Some(w) = self.visible(e, a, self.seq(), now) {
                    if w.vu.is_some_and(|vu| vu <= now + within) {
                        out.push(self.version(w));
                    }
                }
            }
        }
        out.sort_by(|x, y| {
            x.valid_until
                .partial_cmp(&y.valid_until)
                .unwrap()
                .then_with(|| x.entity.cmp(&y.entity))
                .then_with(|| x.attribute.cmp(&y.attribute))
        });
        out
    }

    /// Stored values (expiry ignored) that differ between `from` and `to`;
    /// seq and cause of the last transaction in the range that wrote each.
    fn diff(&self, from: u64, to: u64) -> Vec<Change> {
        let mut out = Vec::new();
        for e in ENTS {
            for a in ATTRS {
                let before = self.stored(e, a, from).and_then(|w| w.value.clone());
                let after = self.stored(e, a, to).and_then(|w| w.value.clone());
                if before == after {
                    continue;
                }
                let last = self.versions(e, a).into_iter().filter(|w| w.seq > from && w.seq <= to).last().unwrap();
                out.push(Change {
                    entity: e.to_string(),
                    attribute: a.to_string(),
                    before,
                    after,
                    seq: last.seq,
                    cause: self.txs[last.seq as usize - 1].cause.clone(),
                });
            }
        }
        out.sort_by(|x, y| x.entity.cmp(&y.entity).then_with(|| x.attribute.cmp(&y.attribute)));
        out
    }

    /// The seq and expiry time an as-of view shows.
    fn as_of_seq(&self, s: u64) -> (u64, f64) {
        (s, if s == 0 { f64::NEG_INFINITY } else { self.txs[s as usize - 1].at })
    }

    fn as_of_at(&self, t: f64) -> (u64, f64) {
        let included: Vec<u64> = (1..=self.seq()).filter(|&s| self.txs[s as usize - 1].at <= t).collect();
        assert!(included.iter().enumerate().all(|(i, &s)| s == i as u64 + 1), "the included transactions are a prefix");
        (included.len() as u64, t)
    }

    fn live(&self, e: &str, a: &str) -> bool {
        self.stored(e, a, u64::MAX).is_some_and(|w| w.value.is_some())
    }

    fn commit(&mut self, at: f64, prov: &Provenance) -> u64 {
        self.txs.push(MTx { at, cause: prov.cause.clone(), actor: prov.actor.clone(), note: prov.note.clone() });
        self.seq()
    }

    /// Applies the ops of a transaction in order.
    fn transact(&mut self, ops: &[Op], at: f64, prov: &Provenance) -> u64 {
        let seq = self.commit(at, prov);
        for op in ops {
            match op {
                Op::Set { entity, ty, attrs, expiry } => {
                    if let Some(t) = ty {
                        self.types.push(TypeWrite { seq, e: entity.clone(), ty: Some(t.clone()) });
                    }
                    let vu = match expiry {
                        None => None,
                        Some(Expiry::TtlMs(ms)) => Some(at + ms),
                        Some(Expiry::ValidUntil(t)) => Some(*t),
                    };
                    for (a, value) in attrs {
                        self.writes.push(Write {
                            seq,
                            e: entity.clone(),
                            a: a.clone(),
                            value: Some(value.clone()),
                            vu,
                        });
                    }
                }
                Op::Unset { entity, attrs } => {
                    for a in attrs {
                        if self.live(entity, a) {
                            self.writes.push(Write { seq, e: entity.clone(), a: a.clone(), value: None, vu: None });
                        }
                    }
                }
                Op::Delete { entity } => {
                    for a in ATTRS {
                        if self.live(entity, a) {
                            self.writes.push(Write { seq, e: entity.clone(), a: a.to_string(), value: None, vu: None });
                        }
                    }
                    if self.type_at(entity, u64::MAX).is_some() {
                        self.types.push(TypeWrite { seq, e: entity.clone(), ty: None });
                    }
                }
            }
        }
        seq
    }

    /// Puts back the stored values, their validUntil and the types of seq `c`.
    fn restore(&mut self, c: u64, at: f64, prov: &Provenance) -> u64 {
        let latest = self.seq();
        let seq = self.commit(at, prov);
        for e in ENTS {
            for a in ATTRS {
                let then = self.stored(e, a, c).filter(|w| w.value.is_some()).cloned();
                let now = self.stored(e, a, latest).cloned();
                match then {
                    Some(w) if now.as_ref().is_none_or(|n| n.value != w.value || n.vu != w.vu) => {
                        self.writes.push(Write { seq, ..w });
                    }
                    None if now.is_some_and(|n| n.value.is_some()) => {
                        self.writes.push(Write { seq, e: e.to_string(), a: a.to_string(), value: None, vu: None });
                    }
                    _ => {}
                }
            }
            let (then, now) = (self.type_at(e, c), self.type_at(e, latest));
            if then != now {
                self.types.push(TypeWrite { seq, e: e.to_string(), ty: then });
            }
        }
        seq
    }

    /// The model of a fork at seq `p`: the log prefix, no checkpoints.
    fn truncated(&self, p: u64) -> Model {
        Model {
            txs: self.txs[..p as usize].to_vec(),
            writes: self.writes.iter().filter(|w| w.seq <= p).cloned().collect(),
            types: self.types.iter().filter(|t| t.seq <= p).cloned().collect(),
            cps: Vec::new(),
        }
    }

    /// Every time at which something may change, and a little either side.
    fn interesting_times(&self, clock: f64) -> Vec<f64> {
        let mut ts = vec![clock, clock + 1_000.0, 0.0];
        for t in &self.txs {
            ts.extend([t.at - 1.0, t.at, t.at + 1.0]);
        }
        for w in &self.writes {
            if let Some(vu) = w.vu {
                ts.extend([vu - 1.0, vu, vu + 0.5]);
            }
        }
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        ts
    }
}

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

/// Compares one read-only view (current or as-of) with the model at (s, now).
macro_rules! check_view {
    ($view:expr, $m:expr, $s:expr, $now:expr, $what:expr) => {{
        let (view, m, s, now, what) = ($view, $m, $s, $now, $what);
        prop_assert_eq!(view.entities(), m.entities(s, now), "entities, {}", what);
        for e in ENTS {
            prop_assert_eq!(view.entity(e), m.entity(e, s, now), "entity {}, {}", e, what);
            for a in ATTRS {
                prop_assert_eq!(view.value(e, a), m.value(e, a, s, now), "value {}.{}, {}", e, a, what);
                prop_assert_eq!(view.why(e, a), m.why(e, a, s, now), "why {}.{}, {}", e, a, what);
            }
        }
        let mut queries = vec![Query::default(), Query { ty: Some("nope".into()), where_: vec![] }];
        for t in TYPES {
            queries.push(Query { ty: Some(t.into()), where_: vec![] });
            queries.push(Query { ty: Some(t.into()), where_: vec![("a0".into(), pool_value(1))] });
        }
        for val in [1, 3, 5] {
            queries.push(Query { ty: None, where_: vec![("a1".into(), pool_value(val))] });
            queries.push(Query { ty: None, where_: vec![("T".into(), pool_value(val)), ("a0".into(), pool_value(2))] });
        }
        for q in &queries {
            prop_assert_eq!(view.find(q), m.find(q, s, now), "find {:?}, {}", q, what);
        }
    }};
}

/// Compares everything observable about `scope` with `m`. Leaves the clock as it found it.
fn compare(scope: &Scope<MemoryStorage>, m: &Model, clock: &Cell<f64>, what: &str) -> Result<(), TestCaseError> {
    let saved = clock.get();
    let latest = m.seq();
    prop_assert_eq!(scope.seq(), latest, "seq, {}", what);
    prop_assert_eq!(scope.checkpoints(), m.cps.clone(), "checkpoints, {}", what);
    let times = m.interesting_times(saved);

    // Current state, judged at many times (the reads use the store's clock).
    for &t in &times {
        clock.set(t);
        check_view!(scope, m, latest, t, &format!("now = {t}, {what}"));
        for w in [0.0, 10.0, 100.0] {
            prop_assert_eq!(scope.expiring(w), m.expiring(t, w), "expiring({}) at {}, {}", w, t, what);
        }
    }
    clock.set(saved);

    // As of every seq, judging expiry at that transaction's time.
    for s in 0..=latest {
        let view = scope.as_of(AsOf::Seq(s)).unwrap();
        let (ms, now) = m.as_of_seq(s);
        prop_assert_eq!((view.seq(), view.at()), (ms, now), "as of seq {}, {}", s, what);
        check_view!(&view, m, ms, now, &format!("as of seq {s}, {what}"));
    }
    prop_assert_eq!(scope.as_of(AsOf::Seq(latest + 1)).err().map(|e| e.code().as_str()), Some("NOT_FOUND"));

    // As of a time: the transactions with at <= t, expiry judged at t.
    for &t in times.iter().chain(&[f64::NEG_INFINITY, f64::INFINITY]) {
        let view = scope.as_of(AsOf::At(t)).unwrap();
        let (ms, now) = m.as_of_at(t);
        prop_assert_eq!(view.seq(), ms, "as of time {}, {}", t, what);
        check_view!(&view, m, ms, now, &format!("as of time {t}, {what}"));
    }

    for e in ENTS {
        for a in ATTRS {
            prop_assert_eq!(scope.history(e, a), m.history(e, a), "history {}.{}, {}", e, a, what);
        }
    }

    // Diff between every pair of seqs, and from/to every checkpoint name.
    for a in 0..=latest {
        for b in a..=latest {
            prop_assert_eq!(
                scope.diff(&Point::Seq(a), Some(&Point::Seq(b))).unwrap(),
                m.diff(a, b),
                "diff({}, {}), {}",
                a,
                b,
                what
            );
        }
    }
    if latest > 0 {
        let err = scope.diff(&Point::Seq(latest), Some(&Point::Seq(0))).unwrap_err();
        prop_assert_eq!(err.code().as_str(), "INVALID_INPUT");
    }
    for cp in &m.cps {
        let name = Point::Name(cp.name.clone());
        prop_assert_eq!(scope.diff(&name, None).unwrap(), m.diff(cp.seq, latest), "diff({}), {}", cp.name, what);
        prop_assert_eq!(
            scope.diff(&Point::Seq(0), Some(&name)).unwrap(),
            m.diff(0, cp.seq),
            "diff(0, {}), {}",
            cp.name,
            what
        );
    }
    Ok(())
}

/// The stored (value, validUntil) of every attribute, expiry ignored.
fn stored_state(scope: &Scope<MemoryStorage>) -> Vec<(String, String, Option<(Value, Option<f64>)>)> {
    let mut out = Vec::new();
    for e in ENTS {
        for a in ATTRS {
            let last = scope.history(e, a).pop().filter(|v| !v.retracted).map(|v| (v.value.unwrap(), v.valid_until));
            out.push((e.to_string(), a.to_string(), last));
        }
    }
    out
}

fn model_stored_state(m: &Model, s: u64) -> Vec<(String, String, Option<(Value, Option<f64>)>)> {
    let mut out = Vec::new();
    for e in ENTS {
        for a in ATTRS {
            let w = m.stored(e, a, s).filter(|w| w.value.is_some()).map(|w| (w.value.clone().unwrap(), w.vu));
            out.push((e.to_string(), a.to_string(), w));
        }
    }
    out
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
    use Action::*;
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
