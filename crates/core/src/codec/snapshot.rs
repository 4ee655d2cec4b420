//! Snapshots: a whole scope state (history included, checkpoints excluded)
//! in one record, packed so that reopening decodes it without rebuilding
//! from the log. The other records are in `codec.rs`.

use super::*;
use crate::touched::Touched;

/// Encodes a whole scope state (history included, checkpoints excluded), in
/// the layout of `snapshot_rec::SnapRec` (the tests compare with postcard).
///
/// Written straight from the state into a vector of the exact size: the
/// record struct with a vector of versions per fact, and the output doubling
/// as it grew, took about 4 times the snapshot's size at once, which set the
/// wasm memory's high-water mark of a store being written (BENCHMARKS.md).
pub fn encode_snapshot(st: &ScopeState) -> Vec<u8> {
    let mut types: Vec<_> = st.types.iter().collect();
    crate::sort::sort_by_key(&mut types, |(e, _)| **e);
    let mut w = Vec::with_capacity(2 + snapshot_len(st, &types));
    w.extend_from_slice(&[FORMAT_VERSION, KIND_SNAPSHOT]);
    put_u64(&mut w, st.dims.iter().count() as u64);
    for (k, v) in st.dims.iter() {
        put_str(&mut w, k);
        put_str(&mut w, v);
    }
    put_u64(&mut w, st.names.len() as u64);
    for n in st.names.names() {
        put_str(&mut w, n);
    }
    put_u64(&mut w, st.txs.len() as u64);
    for t in &st.txs {
        put_f64(&mut w, t.at);
        put_str(&mut w, &t.cause);
        put_opt_str(&mut w, t.actor.as_deref());
        put_opt_str(&mut w, t.note.as_deref());
        put_u64(&mut w, t.touched.iter().count() as u64);
        for (e, a) in t.touched.iter() {
            put_u64(&mut w, e.into());
            put_u64(&mut w, a.into());
        }
    }
    put_u64(&mut w, st.facts.len() as u64);
    for (&(e, a), h) in &st.facts {
        put_u64(&mut w, e.into());
        put_u64(&mut w, a.into());
        put_u64(&mut w, h.iter().count() as u64);
        for v in h.iter() {
            put_u64(&mut w, v.seq.into());
            put_opt_f64(&mut w, v.valid_until_opt());
            put_bool(&mut w, v.value.is_some());
            if let Some(v) = v.value {
                put_value(&mut w, v);
            }
        }
    }
    put_u64(&mut w, types.len() as u64);
    for (e, h) in types {
        put_u64(&mut w, (*e).into());
        put_u64(&mut w, h.len() as u64);
        for &(seq, ty) in h {
            put_u64(&mut w, seq.into());
            put_bool(&mut w, ty.is_some());
            if let Some(t) = ty {
                put_u64(&mut w, t.into());
            }
        }
    }
    w
}

/// The length [`encode_snapshot`] writes after the two header bytes.
fn snapshot_len(st: &ScopeState, types: &[(&u32, &TypeHist)]) -> usize {
    let str_len = |s: &str| varint_len(s.len() as u64) + s.len();
    let opt_str_len = |s: Option<&str>| 1 + s.map_or(0, str_len);
    let mut n = varint_len(st.dims.iter().count() as u64) + st.dims.iter().map(|(k, v)| str_len(k) + str_len(v)).sum::<usize>();
    n += varint_len(st.names.len() as u64) + st.names.names().map(str_len).sum::<usize>();
    n += varint_len(st.txs.len() as u64);
    for t in &st.txs {
        n += 8 + str_len(&t.cause) + opt_str_len(t.actor.as_deref()) + opt_str_len(t.note.as_deref());
        n += varint_len(t.touched.iter().count() as u64);
        n += t.touched.iter().map(|(e, a)| varint_len(e.into()) + varint_len(a.into())).sum::<usize>();
    }
    n += varint_len(st.facts.len() as u64);
    for (&(e, a), h) in &st.facts {
        n += varint_len(e.into()) + varint_len(a.into()) + varint_len(h.iter().count() as u64);
        for v in h.iter() {
            n += varint_len(v.seq.into()) + 1 + v.valid_until_opt().map_or(0, |_| 8) + 1 + v.value.map_or(0, value_len);
        }
    }
    n += varint_len(types.len() as u64);
    for (e, h) in types {
        n += varint_len((**e).into()) + varint_len(h.len() as u64);
        n += h.iter().map(|&(seq, ty)| varint_len(seq.into()) + 1 + ty.map_or(0, |t| varint_len(t.into()))).sum::<usize>();
    }
    n
}

fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// The length `put_value` writes.
fn value_len(v: &Value) -> usize {
    let str_len = |s: &str| varint_len(s.len() as u64) + s.len();
    1 + match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(n) => crate::wire::as_int(n.get()).map_or(8, |i| varint_len(crate::wire::zigzag(i))),
        Value::String(s) => str_len(s),
        Value::Array(items) => varint_len(items.len() as u64) + items.iter().map(value_len).sum::<usize>(),
        Value::Object(entries) => varint_len(entries.len() as u64) + entries.iter().map(|(k, v)| str_len(k) + value_len(v)).sum::<usize>(),
    }
}

/// Decodes and checks a snapshot stored at `key`.
///
/// Straight into the state, without a [`SnapRec`] (which `take_snapshot`
/// reads for the tests): a vector of versions per fact and the record's
/// vectors were a fifth of a reopen.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<ScopeState> {
    let (mut st, facts) = decode_snapshot_base(key, bytes)?;
    st.facts = crate::state::facts_from_sorted(facts);
    Ok(st)
}

/// [`decode_snapshot`] with the facts left out of the state's (empty) fact
/// map, sorted by key: a reopen hands them to [`Replay::with_base`], which
/// builds the fact map once from them and the log tail together instead of
/// building it for the snapshot and again for the tail.
pub fn decode_snapshot_base(key: &str, bytes: &[u8]) -> Result<SnapshotBase> {
    let mut r = Reader::new(body(KIND_SNAPSHOT, key, bytes)?);
    let base = take_state(key, &mut r)?;
    no_rest(key, r.rest())?;
    Ok(base)
}

/// The snapshot's state with an empty fact map, and its facts, sorted by
/// key: [`decode_snapshot_base`]'s result.
pub type SnapshotBase = (ScopeState, Vec<(FactKey, Hist)>);

fn take_state(key: &str, r: &mut Reader<'_>) -> Result<SnapshotBase> {
    let wire = |e: WireError| Error::corrupt(key, e);
    let bad = |why: &str| Error::corrupt(key, format!("inconsistent snapshot: {why}"));
    let dims = r.vec(|r| Ok((r.string()?, r.string()?))).map_err(wire)?;
    let mut names = Interner::default();
    let count = r.seq_len().map_err(wire)?;
    // Bounded by the bytes left: each name takes at least its length byte.
    names.reserve(count.min(r.rest().len()));
    for i in 0..count {
        if names.intern(r.str().map_err(wire)?) as usize != i {
            return Err(bad("a name appears twice"));
        }
    }
    let n_names = names.len() as u32;
    let id_ok = |id: u32| id < n_names;
    let n = r.seq_len().map_err(wire)?;
    let n_txs = n as u32;
    let mut txs = Vec::with_capacity(n);
    let mut last_at = f64::NEG_INFINITY;
    let mut touched = Vec::new();
    for _ in 0..n {
        let at = r.f64().map_err(wire)?;
        let cause = r.str().map_err(wire)?;
        let actor = r.option(Reader::str).map_err(wire)?;
        let note = r.option(Reader::str).map_err(wire)?;
        touched.clear();
        for _ in 0..r.seq_len().map_err(wire)? {
            touched.push((r.u32().map_err(wire)?, r.u32().map_err(wire)?));
        }
        if !at.is_finite() || at < last_at {
            return Err(bad("transaction times are not finite and non-decreasing"));
        }
        last_at = at;
        if !touched.iter().all(|&(e, a)| id_ok(e) && (id_ok(a) || a == TYPE_ATTR)) {
            return Err(bad("a transaction touches an unknown name"));
        }
        txs.push(TxMeta { at, cause: cause.into(), actor: actor.map(Into::into), note: note.map(Into::into), touched: Touched::new(&touched) });
    }
    // Collected, then built in one go: a B-tree built from sorted entries has
    // full leaves (about 50 bytes per fact instead of about 90 when inserted
    // one by one in key order; BENCHMARKS.md).
    let n = r.seq_len().map_err(wire)?;
    let mut facts = Vec::with_capacity(n);
    for _ in 0..n {
        let (e, a) = (r.u32().map_err(wire)?, r.u32().map_err(wire)?);
        if !id_ok(e) || !id_ok(a) {
            return Err(bad("a fact names an unknown entity or attribute"));
        }
        let mut hist: Option<Hist> = None;
        for _ in 0..r.seq_len().map_err(wire)? {
            let seq = r.u32().map_err(wire)?;
            let until = r.option(Reader::f64).map_err(wire)?.unwrap_or(f64::INFINITY);
            let value = r.option(Reader::value).map_err(wire)?;
            if hist.as_ref().is_some_and(|h| seq <= h.last().seq) || seq == 0 || seq > n_txs {
                return Err(bad("version seqs are not increasing within the log"));
            }
            if let Some(v) = &value {
                v.validate().map_err(|e| Error::corrupt(key, e))?;
            }
            let v = Version { seq, value };
            match &mut hist {
                Some(h) => h.write(v, until),
                None => hist = Some(Hist::new(v, until)),
            }
        }
        let Some(h) = hist else { return Err(bad("a fact has no versions")) };
        facts.push(((e, a), h));
    }
    // Written in key order: one pass checks it (the shared sort's check of
    // sorted input goes through a `dyn` compare, ~4% of a reopen). Bytes
    // from elsewhere may be in any order.
    if !facts.windows(2).all(|w| w[0].0 < w[1].0) {
        crate::sort::sort_by_key(&mut facts, |(k, _)| *k);
        if facts.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(bad("a fact appears twice"));
        }
    }
    let n = r.seq_len().map_err(wire)?;
    let mut types = HashMap::with_capacity(n);
    for _ in 0..n {
        let e = r.u32().map_err(wire)?;
        let h = r.vec(|r| Ok((r.u32()?, r.option(Reader::u32)?))).map_err(wire)?;
        let ordered = h.windows(2).all(|w| w[0].0 < w[1].0);
        if !id_ok(e) || !ordered || !h.iter().all(|(s, t)| *s <= n_txs && t.is_none_or(id_ok)) {
            return Err(bad("entity types are inconsistent"));
        }
        types.insert(e, h);
    }
    let st = ScopeState { dims: Dims::new(dims), names, txs, facts: BTreeMap::new(), types, checkpoints: Vec::new(), loose: 0 };
    Ok((st, facts))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::codec::snapshot_rec::{put_snapshot, FactRec, SnapRec, TxRec};
    use crate::tx::OpRecord;

    fn state() -> ScopeState {
        let mut st = ScopeState::new(Dims::default());
        for seq in 1..=3u64 {
            let ops = (0..50)
                .map(|i| OpRecord::Set {
                    entity: format!("e{i}"),
                    ty: None,
                    attrs: vec![("a".into(), Value::from(seq as f64)), ("b".into(), Value::from(i))],
                    valid_until: None,
                })
                .collect();
            st.apply(&TxRecord { seq, at: seq as f64, cause: "c".into(), actor: None, note: None, ops }).unwrap();
        }
        st
    }

    #[test]
    fn compact_and_decode_keep_the_contents() {
        let st = state();
        let mut packed = st.clone();
        packed.compact();
        let decoded = decode_snapshot("k", &encode_snapshot(&st)).unwrap();
        for other in [&packed, &decoded] {
            assert_eq!(other.current(9.0).entities(), st.current(9.0).entities());
            assert_eq!(other.diff(1, 3).unwrap(), st.diff(1, 3).unwrap());
            assert_eq!(other.history("e7", "a"), st.history("e7", "a"));
        }
    }

    /// `snapshot_len` sizes the output exactly (`snapshots_are_postcard`
    /// checks a whole state): every kind of value and varint width.
    #[test]
    fn lengths_are_what_the_writers_write() {
        for n in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut w = Vec::new();
            put_u64(&mut w, n);
            assert_eq!(varint_len(n), w.len(), "{n}");
        }
        let values = [
            Value::Null,
            Value::from(true),
            Value::from(2.5),
            Value::from("é".repeat(200)),
            Value::array([Value::Null, Value::array([Value::from("x")])]),
            Value::object([("k", Value::object([("z".repeat(130).as_str(), Value::from(1.0))]))]),
        ];
        for v in values {
            let mut w = Vec::new();
            put_value(&mut w, &v);
            assert_eq!(value_len(&v), w.len(), "{v:?}");
        }
    }

    #[test]
    fn a_fact_twice_in_a_snapshot_is_corrupt() {
        let rec = SnapRec {
            dims: vec![],
            names: vec!["e".into(), "a".into()],
            txs: vec![TxRec { at: 1.0, cause: "c".into(), actor: None, note: None, touched: Cow::Owned(vec![(0, 1)]) }],
            facts: (0..2).map(|_| FactRec { e: 0, a: 1, versions: vec![(1, None, None)] }).collect(),
            types: vec![],
        };
        let mut bytes = vec![FORMAT_VERSION, KIND_SNAPSHOT];
        put_snapshot(&mut bytes, &rec);
        let err = decode_snapshot("k", &bytes).unwrap_err();
        assert_eq!(err.code().as_str(), "CORRUPT", "{err}");
        assert!(err.to_string().contains("a fact appears twice"), "{err}");
    }

    /// This build writes facts in key order, and decoding checks that in one
    /// pass; facts in another order (bytes from elsewhere) are sorted.
    #[test]
    fn facts_out_of_order_decode_sorted() {
        let rec = |facts: Vec<FactRec>| {
            let rec = SnapRec {
                dims: vec![],
                names: vec!["e".into(), "f".into(), "a".into()],
                txs: vec![TxRec { at: 1.0, cause: "c".into(), actor: None, note: None, touched: Cow::Owned(vec![(0, 2), (1, 2)]) }],
                facts,
                types: vec![],
            };
            let mut bytes = vec![FORMAT_VERSION, KIND_SNAPSHOT];
            put_snapshot(&mut bytes, &rec);
            bytes
        };
        let fact = |e: u32, v: f64| FactRec { e, a: 2, versions: vec![(1, None, Some(Cow::Owned(Value::from(v))))] };
        let sorted = decode_snapshot("k", &rec(vec![fact(0, 1.0), fact(1, 2.0)])).unwrap();
        let reversed = decode_snapshot("k", &rec(vec![fact(1, 2.0), fact(0, 1.0)])).unwrap();
        assert_eq!(encode_snapshot(&reversed), encode_snapshot(&sorted));
        assert_eq!(reversed.current(9.0).value("f", "a"), Some(Value::from(2.0)));
    }
}
