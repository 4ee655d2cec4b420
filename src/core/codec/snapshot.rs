//! Snapshots: a whole scope state (history included, checkpoints excluded)
//! in one record, packed so that reopening decodes it without rebuilding
//! from the log. The other records are in `codec.rs`.

use std::borrow::Cow;

#[cfg(test)]
use serde::{Deserialize, Serialize};

use super::*;
use crate::core::touched::Touched;

#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(super) struct SnapRec<'a> {
    dims: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    names: Vec<Cow<'a, str>>,
    txs: Vec<TxRec<'a>>,
    facts: Vec<FactRec<'a>>,
    types: Vec<(u32, Vec<(u32, Option<u32>)>)>,
}

#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(super) struct TxRec<'a> {
    at: f64,
    cause: Cow<'a, str>,
    actor: Option<Cow<'a, str>>,
    note: Option<Cow<'a, str>>,
    touched: Cow<'a, [(u32, u32)]>,
}

#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(super) struct FactRec<'a> {
    e: u32,
    a: u32,
    versions: Vec<(u32, Option<f64>, Option<Cow<'a, Value>>)>,
}

/// Encodes a whole scope state (history included, checkpoints excluded).
pub fn encode_snapshot(st: &ScopeState) -> Vec<u8> {
    let mut types: Vec<_> = st.types.iter().map(|(e, h)| (*e, h.clone())).collect();
    crate::core::sort::sort_by_key(&mut types, |(e, _)| *e);
    let rec = SnapRec {
        dims: st.dims.iter().map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v))).collect(),
        names: st.names.names().map(Cow::Borrowed).collect(),
        txs: st
            .txs
            .iter()
            .map(|m| TxRec {
                at: m.at,
                cause: Cow::Borrowed(&m.cause),
                actor: m.actor.as_deref().map(Cow::Borrowed),
                note: m.note.as_deref().map(Cow::Borrowed),
                touched: Cow::Owned(m.touched.iter().collect()),
            })
            .collect(),
        facts: st
            .facts
            .iter()
            .map(|(&(e, a), h)| FactRec {
                e,
                a,
                versions: h.iter().map(|v| (v.seq, v.valid_until_opt(), v.value.map(Cow::Borrowed))).collect(),
            })
            .collect(),
        types,
    };
    let mut out = vec![FORMAT_VERSION, KIND_SNAPSHOT];
    put_snapshot(&mut out, &rec);
    // As `encode`: storage may keep the vector, slack included.
    out.shrink_to_fit();
    out
}

pub(super) fn put_snapshot(w: &mut Vec<u8>, rec: &SnapRec<'_>) {
    put_u64(w, rec.dims.len() as u64);
    for (k, v) in &rec.dims {
        put_str(w, k);
        put_str(w, v);
    }
    put_u64(w, rec.names.len() as u64);
    for n in &rec.names {
        put_str(w, n);
    }
    put_u64(w, rec.txs.len() as u64);
    for t in &rec.txs {
        put_f64(w, t.at);
        put_str(w, &t.cause);
        put_opt_str(w, t.actor.as_deref());
        put_opt_str(w, t.note.as_deref());
        put_u64(w, t.touched.len() as u64);
        for &(e, a) in t.touched.iter() {
            put_u64(w, e.into());
            put_u64(w, a.into());
        }
    }
    put_u64(w, rec.facts.len() as u64);
    for f in &rec.facts {
        put_u64(w, f.e.into());
        put_u64(w, f.a.into());
        put_u64(w, f.versions.len() as u64);
        for (seq, valid_until, value) in &f.versions {
            put_u64(w, (*seq).into());
            put_opt_f64(w, *valid_until);
            put_bool(w, value.is_some());
            if let Some(v) = value {
                put_value(w, v);
            }
        }
    }
    put_u64(w, rec.types.len() as u64);
    for (e, h) in &rec.types {
        put_u64(w, (*e).into());
        put_u64(w, h.len() as u64);
        for &(seq, ty) in h {
            put_u64(w, seq.into());
            put_bool(w, ty.is_some());
            if let Some(t) = ty {
                put_u64(w, t.into());
            }
        }
    }
}

#[cfg(test)]
pub(super) fn take_snapshot<'a>(r: &mut Reader<'a>) -> std::result::Result<SnapRec<'a>, WireError> {
    Ok(SnapRec {
        dims: r.vec(|r| Ok((Cow::Borrowed(r.str()?), Cow::Borrowed(r.str()?))))?,
        names: r.vec(|r| r.str().map(Cow::Borrowed))?,
        txs: r.vec(|r| {
            Ok(TxRec {
                at: r.f64()?,
                cause: Cow::Borrowed(r.str()?),
                actor: r.option(|r| r.str().map(Cow::Borrowed))?,
                note: r.option(|r| r.str().map(Cow::Borrowed))?,
                touched: Cow::Owned(r.vec(|r| Ok((r.u32()?, r.u32()?)))?),
            })
        })?,
        facts: r.vec(|r| {
            Ok(FactRec {
                e: r.u32()?,
                a: r.u32()?,
                versions: r.vec(|r| Ok((r.u32()?, r.option(Reader::f64)?, r.option(|r| r.value().map(Cow::Owned))?)))?,
            })
        })?,
        types: r.vec(|r| Ok((r.u32()?, r.vec(|r| Ok((r.u32()?, r.option(Reader::u32)?)))?)))?,
    })
}

/// Decodes and checks a snapshot stored at `key`.
///
/// Straight into the state, without a [`SnapRec`] (which `take_snapshot`
/// reads for the tests): a vector of versions per fact and the record's
/// vectors were a fifth of a reopen.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<ScopeState> {
    let mut r = Reader::new(body(KIND_SNAPSHOT, key, bytes)?);
    let st = take_state(key, &mut r)?;
    no_rest(key, r.rest())?;
    Ok(st)
}

fn take_state(key: &str, r: &mut Reader<'_>) -> Result<ScopeState> {
    let wire = |e: WireError| Error::corrupt(key, e);
    let bad = |why: &str| Error::corrupt(key, format!("inconsistent snapshot: {why}"));
    let dims = r.vec(|r| Ok((r.string()?, r.string()?))).map_err(wire)?;
    let mut names = Interner::default();
    for i in 0..r.seq_len().map_err(wire)? {
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
    // Written in key order, so this sort only checks (linear on sorted input).
    crate::core::sort::sort_by_key(&mut facts, |(k, _)| *k);
    if facts.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(bad("a fact appears twice"));
    }
    let facts = crate::core::state::facts_from_sorted(facts);
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
    Ok(ScopeState { dims: Dims::new(dims), names, txs, facts, types, checkpoints: Vec::new(), loose: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tx::OpRecord;

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
    }
}
