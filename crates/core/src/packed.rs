//! Transactions packed by the JS package's fast path
//! (`src/bindings/js/writes.js`), turned into their log record without
//! building ops first.
//!
//! The packed layout, in the stored records' postcard format
//! ([`crate::wire`]): cause, actor?, note?, then the ops, each entity,
//! type?, delete, unset?, ttlMs?, validUntil?, set?. [`pack`] checks the
//! bytes and rewrites them straight into the log record the general path
//! (ops read from JS objects, `resolve_ops`, `encode_tx`) would store: the
//! same bytes, compared by the tests below and by the JS package's
//! equivalence test. For a scope that commits at once (the store's
//! `Scope::commit_packed`), [`Packed::apply`] then applies that record from
//! its bytes: no strings, op lists or values are built but those the state
//! keeps.
//!
//! The bindings decode nothing else from these bytes: a transaction that
//! does not commit at once (IndexedDB, Workers storage, a queue ahead of
//! it) goes through [`Packed::unpack`] to the general path. [`pack`]
//! answers `None` for bytes the general path would refuse (an empty cause
//! or entity, numbers that are not finite, a `ttlMs` that is negative,
//! values nested deeper than a stored value may be, bytes that are not
//! well-formed):
//! `writes.js` then calls the public method, which reports the problem.
//! An object value whose keys are not in order is stored as the general
//! path stores it, sorted.

use std::cell::Cell;

use crate::codec::{self, tx_head, TX_HEAD_MAX};
use crate::error::Result;
use crate::state::ScopeState;
use crate::tx::{Expiry, Op, OpRecord, Provenance, TxRecord};
use crate::value::Value;
use crate::wire::{put_f64, put_number, put_opt_str, put_str, put_u64, put_varint, Reader};

/// Nesting copied as it is; deeper values are read whole (`value`). The JS
/// encoder stops at 100 levels; stored values may nest 256.
const MAX_DEPTH: usize = 100;

/// Room for the record's op count, written after the ops (a varint: five
/// bytes hold any count a transaction under the size limit can have).
const COUNT_MAX: usize = 5;

/// A log record being made: its head (seq and time are not known before
/// the commit) and its op count go into room left for them, in a buffer
/// reused from one transaction to the next.
#[derive(Debug)]
pub struct Packed {
    buf: Vec<u8>,
    /// Where the record's fields after its head start.
    body: usize,
    /// Where the record starts (its head), once [`Packed::record`] wrote it.
    start: usize,
    /// The ops with a `ttlMs`: (the record's op index, where its
    /// `validUntil` goes, the ms). Empty (no allocation) without TTLs.
    ttls: Vec<(usize, usize, f64)>,
}

thread_local! {
    /// [`Packed`]'s buffer between transactions (taken while in use).
    static BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

impl Packed {
    /// The log record for `seq` and `at`: its head written into the room
    /// before its fields. May be called again with another seq.
    pub fn record(&mut self, seq: u64, at: f64) -> &[u8] {
        for &(_, pos, ms) in &self.ttls {
            // Counted from the commit's time, as `resolve_ops` counts it.
            self.buf[pos..pos + 8].copy_from_slice(&(at + ms).to_le_bytes());
        }
        let mut head = [0; TX_HEAD_MAX];
        let n = tx_head(seq, at, &mut head);
        self.start = self.body - n;
        self.buf[self.start..self.body].copy_from_slice(&head[..n]);
        &self.buf[self.start..]
    }

    /// Applies the record [`Packed::record`] made last (stored at `key`)
    /// to `st`: what `st.apply` does with the decoded record. `pack` took
    /// only input that makes a valid record, so this fails only when the
    /// record does not follow the state (before anything is applied). Any
    /// other error would mean a record `pack` should not have made, with
    /// the state part-way: the caller then reloads it.
    pub fn apply(&self, st: &mut ScopeState, key: &str) -> Result<()> {
        codec::apply_tx(st, key, &self.buf[self.start..])
    }

    /// The provenance and ops of the transaction, for the general path to
    /// commit (when the scope does not commit at once, or another writer
    /// took the seq). `None` only if the bytes do not decode, which
    /// [`pack`] does not let happen.
    pub fn unpack(&mut self) -> Option<(Provenance, Vec<Op>)> {
        let TxRecord { cause, actor, note, ops, .. } = codec::decode_tx("", self.record(1, 0.0)).ok()?;
        let ttls = &self.ttls;
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| match op {
                OpRecord::Set { entity, ty, attrs, valid_until } => {
                    let expiry = match ttls.iter().find(|t| t.0 == i) {
                        Some(&(_, _, ms)) => Some(Expiry::TtlMs(ms)),
                        None => valid_until.map(Expiry::ValidUntil),
                    };
                    Some(Op::Set { entity, ty, attrs, expiry })
                }
                OpRecord::Unset { entity, attrs } => Some(Op::Unset { entity, attrs }),
                OpRecord::Delete { entity } => Some(Op::Delete { entity }),
                OpRecord::Type { .. } => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some((Provenance { cause, actor, note }, ops))
    }

    /// The transaction's cause.
    pub fn cause(&self) -> &str {
        Reader::new(&self.buf[self.body..]).str().unwrap_or_default()
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        // A large transaction's buffer is not kept.
        if self.buf.capacity() <= 64 * 1024 {
            BUF.with(|b| b.set(std::mem::take(&mut self.buf)));
        }
    }
}

/// Packed transaction bytes as a log record, or `None` when they are not
/// exactly what the general path would store unchanged.
pub fn pack(bytes: &[u8]) -> Option<Packed> {
    let mut buf = BUF.with(Cell::take);
    buf.clear();
    buf.resize(TX_HEAD_MAX, 0);
    let mut p = Packed { buf, body: TX_HEAD_MAX, start: TX_HEAD_MAX, ttls: Vec::new() };
    let mut r = Reader::new(bytes);
    let cause = r.str().ok()?;
    let actor = r.option(Reader::str).ok()?;
    let note = r.option(Reader::str).ok()?;
    let n = r.seq_len().ok()?;
    if cause.is_empty() || n == 0 {
        return None;
    }
    let w = &mut p.buf;
    put_str(w, cause);
    put_opt_str(w, actor);
    put_opt_str(w, note);
    let prov = TX_HEAD_MAX..w.len();
    w.resize(w.len() + COUNT_MAX, 0);
    // One packed op becomes up to three records (delete, unset, set, in
    // that order, as the bindings' `expand` makes them): the count is
    // known at the end. It is written at the end of its room, and the
    // provenance moved up to meet it.
    let mut count = 0;
    for _ in 0..n {
        count += op(&mut r, w, count, &mut p.ttls)?;
    }
    if !r.rest().is_empty() {
        return None;
    }
    let mut c = [0u8; 10];
    let len = put_varint(&mut c, count);
    let gap = COUNT_MAX.checked_sub(len)?;
    w[prov.end + gap..prov.end + COUNT_MAX].copy_from_slice(&c[..len]);
    w.copy_within(prov.clone(), prov.start + gap);
    p.body = prov.start + gap;
    p.start = p.body;
    Some(p)
}

/// One packed op as its records; how many. `index` is the record's op
/// count so far; a `ttlMs` is noted in `ttls`.
fn op(r: &mut Reader<'_>, w: &mut Vec<u8>, index: u64, ttls: &mut Vec<(usize, usize, f64)>) -> Option<u64> {
    let entity = r.str().ok()?;
    let ty = r.option(Reader::str).ok()?;
    let delete = r.bool().ok()?;
    if entity.is_empty() || ty == Some("") {
        return None;
    }
    let mut count = 0;
    if delete {
        w.push(2);
        put_str(w, entity);
        count += 1;
    }
    if r.bool().ok()? {
        // unset
        w.push(1);
        put_str(w, entity);
        let k = r.seq_len().ok()?;
        put_u64(w, k as u64);
        for _ in 0..k {
            put_str(w, r.str().ok()?);
        }
        count += 1;
    }
    let ttl = r.option(Reader::f64).ok()?;
    let until = r.option(Reader::f64).ok()?;
    match (ttl, until) {
        (Some(ms), None) if ms >= 0.0 && ms.is_finite() => {}
        (None, Some(t)) if t.is_finite() => {}
        (None, None) => {}
        _ => return None,
    }
    let set = r.bool().ok()?;
    if !set && (ttl.is_some() || until.is_some() || (ty.is_none() && count == 0)) {
        return None; // an expiry without set, or an op that does nothing
    }
    if set || ty.is_some() {
        w.push(0);
        put_str(w, entity);
        put_opt_str(w, ty);
        if set {
            let k = r.seq_len().ok()?;
            put_u64(w, k as u64);
            for _ in 0..k {
                put_str(w, r.str().ok()?);
                value(r, w, 0)?;
            }
        } else {
            w.push(0);
        }
        match (ttl, until) {
            (Some(ms), _) => {
                // Written by `Packed::record`, once the time is known.
                w.push(1);
                ttls.push(((index + count) as usize, w.len(), ms));
                put_f64(w, 0.0);
            }
            (None, Some(t)) => {
                w.push(1);
                put_f64(w, t);
            }
            (None, None) => w.push(0),
        }
        count += 1;
    }
    Some(count)
}

/// One value, as `wire::put_value` writes it: integers as integers (format
/// version 2), objects with their keys in order.
fn value(r: &mut Reader<'_>, w: &mut Vec<u8>, depth: usize) -> Option<()> {
    let (from, at) = (r.rest(), w.len());
    if copy_value(r, w, depth).is_some() {
        return Some(());
    }
    // An object whose keys are not in order (JS keeps insertion order), or
    // bad input: read whole, as the general path reads it, then written
    // with its objects sorted (`Value::object`, the last of equal keys).
    w.truncate(at);
    *r = Reader::new(from);
    let v = sorted(r.value().ok()?)?;
    v.validate().ok()?;
    crate::wire::put_value(w, &v);
    Some(())
}

/// `v` with its objects' keys sorted, or `None` for a number that is not finite.
fn sorted(v: Value) -> Option<Value> {
    Some(match v {
        Value::Number(n) if !n.get().is_finite() => return None,
        Value::Array(items) => Value::Array(items.into_vec().into_iter().map(sorted).collect::<Option<_>>()?),
        Value::Object(fields) => {
            Value::object(fields.into_vec().into_iter().map(|(k, v)| Some((k, sorted(v)?))).collect::<Option<Vec<_>>>()?)
        }
        v => v,
    })
}

/// [`value`] for a value whose objects all have their keys in order:
/// copied without building it; `None` otherwise.
fn copy_value(r: &mut Reader<'_>, w: &mut Vec<u8>, depth: usize) -> Option<()> {
    match r.u32().ok()? {
        0 => w.push(0),
        1 => {
            let b = r.bool().ok()?;
            w.extend_from_slice(&[1, b.into()]);
        }
        2 => {
            let n = r.f64().ok()?;
            if !n.is_finite() {
                return None;
            }
            put_number(w, n);
        }
        3 => {
            w.push(3);
            put_str(w, r.str().ok()?);
        }
        tag @ (4 | 5) if depth < MAX_DEPTH => {
            let k = r.seq_len().ok()?;
            w.push(tag as u8);
            put_u64(w, k as u64);
            let mut prev: Option<&str> = None;
            for _ in 0..k {
                if tag == 5 {
                    let key = r.str().ok()?;
                    if prev.is_some_and(|p| p >= key) {
                        return None;
                    }
                    prev = Some(key);
                    put_str(w, key);
                }
                copy_value(r, w, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_tx;
    use crate::tx::resolve_ops;
    use crate::value::Value;
    use crate::wire::{put_bool, put_f64, put_opt_str, put_str, put_u64};
    use proptest::prelude::*;

    /// A value as `writes.js` encodes it: every number as an `f64` (kind 2),
    /// object keys in the order given.
    fn put_js_value(w: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Null => w.push(0),
            Value::Bool(b) => {
                w.push(1);
                put_bool(w, *b);
            }
            Value::Number(n) => {
                w.push(2);
                put_f64(w, n.get());
            }
            Value::String(s) => {
                w.push(3);
                put_str(w, s);
            }
            Value::Array(items) => {
                w.push(4);
                put_u64(w, items.len() as u64);
                items.iter().for_each(|v| put_js_value(w, v));
            }
            Value::Object(entries) => {
                w.push(5);
                put_u64(w, entries.len() as u64);
                for (k, v) in entries.iter() {
                    put_str(w, k);
                    put_js_value(w, v);
                }
            }
        }
    }

    /// One op as `writes.js` packs it.
    #[derive(Debug, Clone)]
    struct JsOp {
        entity: String,
        ty: Option<String>,
        delete: bool,
        unset: Option<Vec<String>>,
        /// `ttlMs` (`true`) or `validUntil`.
        expiry: Option<(bool, f64)>,
        set: Option<Vec<(String, Value)>>,
    }

    fn put_js(w: &mut Vec<u8>, prov: &Provenance, ops: &[JsOp]) {
        put_str(w, &prov.cause);
        put_opt_str(w, prov.actor.as_deref());
        put_opt_str(w, prov.note.as_deref());
        put_u64(w, ops.len() as u64);
        for op in ops {
            put_str(w, &op.entity);
            put_opt_str(w, op.ty.as_deref());
            put_bool(w, op.delete);
            put_bool(w, op.unset.is_some());
            if let Some(u) = &op.unset {
                put_u64(w, u.len() as u64);
                u.iter().for_each(|a| put_str(w, a));
            }
            for ttl in [true, false] {
                match op.expiry {
                    Some((is_ttl, n)) if is_ttl == ttl => {
                        put_bool(w, true);
                        put_f64(w, n);
                    }
                    _ => put_bool(w, false),
                }
            }
            put_bool(w, op.set.is_some());
            if let Some(s) = &op.set {
                put_u64(w, s.len() as u64);
                for (k, v) in s {
                    put_str(w, k);
                    put_js_value(w, v);
                }
            }
        }
    }

    /// The ops the bindings make of a packed op (`convert::expand`), with
    /// their values as the bindings read them (objects sorted).
    fn expand(op: &JsOp) -> Vec<Op> {
        let mut out = Vec::new();
        if op.delete {
            out.push(Op::Delete { entity: op.entity.clone() });
        }
        if let Some(attrs) = &op.unset {
            out.push(Op::Unset { entity: op.entity.clone(), attrs: attrs.clone() });
        }
        if op.set.is_some() || op.ty.is_some() {
            out.push(Op::Set {
                entity: op.entity.clone(),
                ty: op.ty.clone(),
                attrs: op.set.iter().flatten().map(|(k, v)| (k.clone(), sorted(v.clone()).unwrap())).collect(),
                expiry: op.expiry.map(|(ttl, n)| if ttl { Expiry::TtlMs(n) } else { Expiry::ValidUntil(n) }),
            });
        }
        out
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            prop_oneof![
                Just(0.0),
                Just(-1.0),
                Just(0.5),
                Just(2f64.powi(53)),
                Just(2f64.powi(53) + 2.0),
                Just(-2f64.powi(53)),
                Just(1e300),
                any::<i32>().prop_map(f64::from),
            ]
            .prop_map(Value::from),
            "[a-c]{0,3}|é|🙂".prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::array),
                // Sorted keys, as a stored object has them.
                proptest::collection::btree_map("[a-d]{0,2}", inner.clone(), 0..4).prop_map(Value::object),
                // Keys in any order, some twice: what a JS object may send
                // (insertion order; the same key twice only in crafted bytes).
                proptest::collection::vec(("[a-d]{0,2}", inner), 0..4).prop_map(|f| {
                    Value::Object(f.into_iter().map(|(k, v)| (k.into_boxed_str(), v)).collect())
                }),
            ]
        })
    }

    fn js_op() -> impl Strategy<Value = JsOp> {
        (
            "e[0-2]",
            proptest::option::of("T|U"),
            any::<bool>(),
            proptest::option::of(proptest::collection::vec("a[0-3]", 0..3)),
            proptest::option::of((any::<bool>(), 0.0..1e15f64)),
            proptest::option::of(proptest::collection::vec(("a[0-3]|__proto__|", value()), 0..4)),
        )
            .prop_map(|(entity, ty, delete, unset, expiry, set)| {
                let expiry = expiry.filter(|_| set.is_some());
                JsOp { entity, ty, delete, unset, expiry, set }
            })
            .prop_filter("does something", |op| op.delete || op.unset.is_some() || op.set.is_some() || op.ty.is_some())
    }

    fn prov() -> impl Strategy<Value = Provenance> {
        ("c[0-9]{1,3}", proptest::option::of("agent|"), proptest::option::of("n🙂|")).prop_map(|(cause, actor, note)| Provenance {
            cause,
            actor,
            note,
        })
    }

    proptest! {
        /// The record `pack` makes is `encode_tx` of what the general path
        /// builds from the same input, byte for byte; and `unpack` gives
        /// back the provenance and ops.
        #[test]
        fn packed_record_is_the_general_paths(prov in prov(), ops in proptest::collection::vec(js_op(), 1..4), seq in 1u64..1u64 << 40, at in 0.0..1e13f64) {
            let mut js = Vec::new();
            put_js(&mut js, &prov, &ops);
            let mut p = pack(&js).expect("packed");
            let record = p.record(seq, at).to_vec();
            let expanded: Vec<Op> = ops.iter().flat_map(expand).collect();
            let rec = TxRecord {
                seq,
                at,
                cause: prov.cause.clone(),
                actor: prov.actor.clone(),
                note: prov.note.clone(),
                ops: resolve_ops(expanded.clone(), at).unwrap(),
            };
            let want = encode_tx(&rec);
            prop_assert_eq!(&record, &want);
            // Applied from its bytes: the state `apply` makes of the record.
            let (mut a, mut b) = (ScopeState::new(Default::default()), ScopeState::new(Default::default()));
            a.apply(&TxRecord { seq: 1, ..rec }).unwrap();
            p.record(1, at);
            p.apply(&mut b, "k").unwrap();
            prop_assert_eq!(crate::codec::encode_snapshot(&a), crate::codec::encode_snapshot(&b));
            let (p2, ops2) = p.unpack().unwrap();
            prop_assert_eq!(p2, prov);
            prop_assert_eq!(ops2, expanded);
        }

        /// Any bytes: `pack` never panics, and a record it makes decodes.
        #[test]
        fn any_bytes_pack_or_not(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(mut p) = pack(&bytes) {
                prop_assert!(crate::codec::decode_tx("k", p.record(1, 0.0)).is_ok());
            }
        }
    }

    fn packed(p: &Provenance, ops: &[JsOp]) -> Option<Packed> {
        let mut js = Vec::new();
        put_js(&mut js, p, ops);
        pack(&js)
    }

    #[test]
    fn what_the_general_path_refuses_is_not_packed() {
        let p = Provenance::new("c");
        let base = JsOp { entity: "e".into(), ty: None, delete: false, unset: None, expiry: None, set: Some(vec![("a".into(), Value::from(1))]) };
        let with = |v: Value| JsOp { set: Some(vec![("a".into(), v)]), ..base.clone() };
        let nest = |levels: usize| (0..levels).fold(Value::Null, |v, _| Value::array([v]));
        let unsorted = |last: Value| Value::Object(vec![("b".into(), Value::Null), ("a".into(), last)].into_boxed_slice());
        // Taken: objects out of order (sorted, by the slower path), values
        // nested deeper than the copying path goes, TTLs.
        for op in [with(unsorted(Value::Null)), with(nest(MAX_DEPTH + 50)), JsOp { expiry: Some((true, 500.0)), ..base.clone() }] {
            assert!(packed(&p, std::slice::from_ref(&op)).is_some(), "{op:?}");
        }
        let cases: Vec<(&str, Provenance, JsOp)> = vec![
            ("empty cause", Provenance::new(""), base.clone()),
            ("empty entity", p.clone(), JsOp { entity: String::new(), ..base.clone() }),
            ("empty type", p.clone(), JsOp { ty: Some(String::new()), ..base.clone() }),
            ("nothing to do", p.clone(), JsOp { set: None, ..base.clone() }),
            ("validUntil without set", p.clone(), JsOp { set: None, delete: true, expiry: Some((false, 5.0)), ..base.clone() }),
            ("ttlMs without set", p.clone(), JsOp { set: None, delete: true, expiry: Some((true, 5.0)), ..base.clone() }),
            ("validUntil not finite", p.clone(), JsOp { expiry: Some((false, f64::INFINITY)), ..base.clone() }),
            ("ttlMs negative", p.clone(), JsOp { expiry: Some((true, -1.0)), ..base.clone() }),
            ("ttlMs not a number", p.clone(), JsOp { expiry: Some((true, f64::NAN)), ..base.clone() }),
            ("NaN value", p.clone(), with(Value::from(f64::NAN))),
            ("NaN in an object out of order", p.clone(), with(unsorted(Value::from(f64::NAN)))),
            ("nested too deep", p.clone(), with(nest(300))),
        ];
        for (why, p, op) in cases {
            assert!(packed(&p, &[op]).is_none(), "{why}");
        }
        // No ops; trailing bytes.
        let mut js = Vec::new();
        put_js(&mut js, &p, &[]);
        assert!(pack(&js).is_none(), "no ops");
        let mut js = Vec::new();
        put_js(&mut js, &p, std::slice::from_ref(&base));
        js.push(0);
        assert!(pack(&js).is_none(), "trailing bytes");
    }
}
