//! A commit's own log record applied from its bytes.
//!
//! [`ScopeState::apply`] takes a [`TxRecord`]: its strings, lists and
//! values were built for it and dropped after it. A commit that has just
//! written its record (the JS package's packed transactions,
//! `packed.rs`) applies the bytes instead, building only what
//! the state keeps (names it has not seen, values, provenance).

use std::cell::Cell;

use super::*;

/// The touched keys and the attributes of one `Set`.
type Scratch = (Vec<FactKey>, Vec<(u32, Value)>);

thread_local! {
    /// [`Scratch`], reused from one record to the next (taken while in use).
    static SCRATCH: Cell<Scratch> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Applies the log record `bytes`, stored at `key`: the state that
/// `st.apply(&decode_tx(key, bytes)?)` makes. Errors are `decode_tx`'s and
/// `apply`'s, but only a record that does not follow the state is refused
/// before anything changes: the record is not checked whole first (it was,
/// as it was made: [`crate::packed::Packed::apply`]).
pub(crate) fn apply_tx(st: &mut ScopeState, key: &str, bytes: &[u8]) -> Result<()> {
    let body = body(KIND_TX, key, bytes)?;
    let (mut touched, mut attrs) = SCRATCH.with(Cell::take);
    let out = walk(st, key, body, &mut touched, &mut attrs);
    touched.clear();
    attrs.clear();
    SCRATCH.with(|s| s.set((touched, attrs)));
    out
}

/// Decodes the record's fields and applies them.
fn walk(st: &mut ScopeState, key: &str, body: &[u8], touched: &mut Vec<FactKey>, attrs: &mut Vec<(u32, Value)>) -> Result<()> {
    let wire = |e: WireError| Error::corrupt(key, e);
    let mut r = Reader::new(body);
    let seq = r.u64().map_err(wire)?;
    let at = r.f64().map_err(wire)?;
    if !at.is_finite() {
        return Err(Error::corrupt(key, "transaction time is not finite"));
    }
    let seq = st.check_next(seq, at)?;
    let cause = r.str().map_err(wire)?;
    let actor = r.option(Reader::str).map_err(wire)?;
    let note = r.option(Reader::str).map_err(wire)?;
    for _ in 0..r.seq_len().map_err(wire)? {
        match r.u32().map_err(wire)? {
            0 => {
                let entity = r.str().map_err(wire)?;
                let ty = r.option(Reader::str).map_err(wire)?;
                // Interned in `apply`'s order: entity, type, attributes.
                let e = st.set_entity(seq, entity, ty, touched);
                for _ in 0..r.seq_len().map_err(wire)? {
                    let name = r.str().map_err(wire)?;
                    let value = r.value().map_err(wire)?;
                    value.validate().map_err(|e| Error::corrupt(key, format!("attribute {name:?}: {e}")))?;
                    attrs.push((st.names.intern(name), value));
                }
                let until = r.option(Reader::f64).map_err(wire)?;
                if until.is_some_and(f64::is_nan) {
                    return Err(Error::corrupt(key, "a validUntil is not a number"));
                }
                let until = until.unwrap_or(f64::INFINITY);
                for (a, value) in attrs.drain(..) {
                    st.write((e, a), Version { seq, value: Some(value) }, until, touched);
                }
            }
            1 => {
                let entity = r.str().map_err(wire)?;
                for _ in 0..r.seq_len().map_err(wire)? {
                    let attr = r.str().map_err(wire)?;
                    st.unset(seq, entity, attr, touched);
                }
            }
            2 => {
                let entity = r.str().map_err(wire)?;
                st.delete(seq, entity, touched);
            }
            3 => {
                let entity = r.str().map_err(wire)?;
                let ty = r.option(Reader::str).map_err(wire)?;
                let e = st.names.intern(entity);
                let t = ty.map(|t| st.names.intern(t));
                st.write_type(e, seq, t, touched);
            }
            _ => return Err(wire("an operation has an unknown kind")),
        }
    }
    no_rest(key, r.rest())?;
    st.ops_applied();
    st.push_tx(at, cause, actor, note, touched);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENTS: [&str; 3] = ["e0", "e1", "e2"];
    const ATTRS: [&str; 3] = ["a", "b", "c"];

    fn op() -> impl Strategy<Value = OpRecord> {
        let ent = (0..ENTS.len()).prop_map(|i| ENTS[i].to_string());
        let ty = proptest::option::of((0..2usize).prop_map(|i| format!("T{i}")));
        let val = prop_oneof![Just(Value::Null), (0..4i32).prop_map(Value::from), Just(Value::String("s".into())), Just(Value::array([Value::from(1.5)]))];
        prop_oneof![
            6 => (ent.clone(), ty.clone(), proptest::collection::vec((0..ATTRS.len(), val), 0..4), proptest::option::of(0..3u8))
                .prop_map(|(entity, ty, attrs, until)| OpRecord::Set {
                    entity,
                    ty,
                    attrs: attrs.into_iter().map(|(a, v)| (ATTRS[a].to_string(), v)).collect(),
                    valid_until: until.map(|u| [5.0, -1.0, 1e15][usize::from(u)]),
                }),
            2 => (ent.clone(), proptest::collection::vec((0..ATTRS.len()).prop_map(|a| ATTRS[a].to_string()), 0..3))
                .prop_map(|(entity, attrs)| OpRecord::Unset { entity, attrs }),
            1 => ent.clone().prop_map(|entity| OpRecord::Delete { entity }),
            1 => (ent, ty).prop_map(|(entity, ty)| OpRecord::Type { entity, ty }),
        ]
    }

    proptest! {
        /// Records applied from their bytes give the state `apply` gives,
        /// byte for byte in its snapshot (names, transactions and their
        /// touched keys, every version, types).
        #[test]
        fn apply_tx_is_apply(txs in proptest::collection::vec(proptest::collection::vec(op(), 1..5), 1..12)) {
            let mut a = ScopeState::new(Dims::default());
            let mut b = ScopeState::new(Dims::default());
            for (i, ops) in txs.into_iter().enumerate() {
                let seq = i as u64 + 1;
                let rec = TxRecord { seq, at: seq as f64, cause: format!("c{seq}"), actor: (seq % 2 == 0).then(|| "x".into()), note: None, ops };
                a.apply(&rec).unwrap();
                apply_tx(&mut b, "k", &encode_tx(&rec)).unwrap();
            }
            prop_assert_eq!(encode_snapshot(&a), encode_snapshot(&b));
        }
    }

    #[test]
    fn a_record_that_does_not_follow_changes_nothing() {
        let mut st = ScopeState::new(Dims::default());
        let set = |v: i32| vec![OpRecord::Set { entity: "e".into(), ty: Some("T".into()), attrs: vec![("a".into(), Value::from(v))], valid_until: None }];
        let rec = |seq: u64, at: f64, ops| TxRecord { seq, at, cause: "c".into(), actor: None, note: None, ops };
        apply_tx(&mut st, "k", &encode_tx(&rec(1, 10.0, set(1)))).unwrap();
        let before = encode_snapshot(&st);
        for bad in [rec(3, 20.0, set(2)), rec(1, 20.0, set(2)), rec(2, 5.0, set(2))] {
            assert!(apply_tx(&mut st, "k", &encode_tx(&bad)).is_err());
            assert_eq!(encode_snapshot(&st), before);
        }
        apply_tx(&mut st, "k", &encode_tx(&rec(2, 20.0, set(2)))).unwrap();
        assert_eq!(st.seq(), 2);
    }
}
