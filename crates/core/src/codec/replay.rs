//! Log records decoded straight into a state, for reopening a scope: no
//! [`TxRecord`] per record (its strings and vectors were most of the
//! allocations of a reopen), names borrowed from the stored bytes until they
//! are interned, and fact writes merged in bulk ([`Bulk`]).
//!
//! The result is the state [`ScopeState::apply`] builds from the decoded
//! records (`tests/model/` and the tests below compare the two), and every
//! record gets the checks `decode_tx` and `apply` make, with their messages.
//! On an error the state is left part-way: callers discard it.

use super::*;
use crate::bulk::Bulk;
use crate::state::FactKey;
use crate::wire::NOT_UTF8;

/// Replays log records, in order, into a state.
pub struct Replay<'s> {
    st: &'s mut ScopeState,
    bulk: Bulk,
    /// Scratch space of one `Set` (its expiry comes after its attributes).
    attrs: Vec<(u32, Value)>,
    /// The key of the record replayed last, for errors that two records
    /// make together (a time that goes backwards: either may be the bad one).
    prev_key: String,
    /// What the record being replayed touched (reused from record to record).
    touched: Vec<FactKey>,
}

impl<'s> Replay<'s> {
    pub fn new(st: &'s mut ScopeState) -> Self {
        Replay { st, bulk: Bulk::default(), attrs: Vec::new(), prev_key: String::new(), touched: Vec::new() }
    }

    /// Replays into the state of a snapshot whose facts are not in its fact
    /// map yet ([`decode_snapshot_base`](super::decode_snapshot_base)): the
    /// map is built once, from them and the replayed writes together.
    pub fn with_base(st: &'s mut ScopeState, facts: Vec<(FactKey, Hist)>) -> Self {
        Replay { st, bulk: Bulk::with_base(facts), attrs: Vec::new(), prev_key: String::new(), touched: Vec::new() }
    }

    /// Decodes the log record stored at `key` and applies it; its seq must be
    /// `seq`, the one the key names.
    pub fn record(&mut self, key: &str, seq: u64, bytes: &[u8]) -> Result<()> {
        let mut r = Reader::new(body(KIND_TX, key, bytes)?);
        self.take_tx(key, seq, &mut r)?;
        no_rest(key, r.rest())?;
        self.prev_key.clear();
        self.prev_key.push_str(key);
        Ok(())
    }

    /// Puts the pending writes into the state.
    pub fn finish(mut self) {
        self.bulk.flush(self.st);
    }

    fn take_tx<'a>(&mut self, key: &str, key_seq: u64, r: &mut Reader<'a>) -> Result<()> {
        let wire = |e: WireError| Error::corrupt(key, e);
        let rec_seq = r.u64().map_err(wire)?;
        let at = r.f64().map_err(wire)?;
        if rec_seq != key_seq {
            return Err(Error::corrupt(key, format!("the record holds seq {rec_seq}")));
        }
        if !at.is_finite() {
            return Err(Error::corrupt(key, "transaction time is not finite"));
        }
        if rec_seq != self.st.seq() + 1 {
            return Err(Error::corrupt(key, format!("the log has a gap: expected seq {}", self.st.seq() + 1)));
        }
        let seq = self.st.check_next(rec_seq, at).map_err(|e| match self.prev_key.as_str() {
            "" => Error::corrupt(key, e),
            prev => Error::corrupt(key, format!("{e} (the record before it is at key {prev:?})")),
        })?;
        let cause = r.str().map_err(wire)?;
        let actor = r.option(Reader::str).map_err(wire)?;
        let note = r.option(Reader::str).map_err(wire)?;
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        // The attribute names of the record's last `Set`, by position:
        // consecutive ops of one record usually set the same attributes.
        let mut names = Vec::new();
        for _ in 0..r.seq_len().map_err(wire)? {
            self.take_op(key, seq, r, &mut touched, &mut names)?;
        }
        self.st.push_tx(at, cause, actor, note, &mut touched);
        self.touched = touched;
        Ok(())
    }

    fn take_op<'a>(
        &mut self,
        key: &str,
        seq: u32,
        r: &mut Reader<'a>,
        touched: &mut Vec<FactKey>,
        names: &mut Vec<(&'a [u8], u32)>,
    ) -> Result<()> {
        let wire = |e: WireError| Error::corrupt(key, e);
        match r.u32().map_err(wire)? {
            0 => {
                let entity = r.str().map_err(wire)?;
                let ty = r.option(Reader::str).map_err(wire)?;
                let e = self.st.set_entity(seq, entity, ty, touched);
                self.attrs.clear();
                for j in 0..r.seq_len().map_err(wire)? {
                    let name = r.bytes().map_err(wire)?;
                    let a = match names.get(j) {
                        // The same bytes as the previous op's j-th name: its id.
                        Some(&(prev, id)) if prev == name => id,
                        _ => {
                            // Interned from its bytes: UTF-8 is checked only
                            // for a name the scope does not know yet.
                            let id = self.st.names.intern_bytes(name).ok_or_else(|| wire(NOT_UTF8))?;
                            match names.get_mut(j) {
                                Some(slot) => *slot = (name, id),
                                None => names.push((name, id)),
                            }
                            id
                        }
                    };
                    let value = r.value().map_err(wire)?;
                    value.validate().map_err(|e| Error::corrupt(key, format!("attribute {:?}: {e}", self.st.names.name(a))))?;
                    self.attrs.push((a, value));
                }
                let valid_until = r.option(Reader::f64).map_err(wire)?;
                if valid_until.is_some_and(f64::is_nan) {
                    return Err(Error::corrupt(key, "a validUntil is not a number"));
                }
                let valid_until = valid_until.unwrap_or(f64::INFINITY);
                for (a, value) in self.attrs.drain(..) {
                    touched.push((e, a));
                    self.bulk.write((e, a), Version { seq, value: Some(value) }, valid_until);
                }
            }
            1 => {
                self.bulk.flush(self.st);
                let entity = r.str().map_err(wire)?;
                for _ in 0..r.seq_len().map_err(wire)? {
                    let attr = r.str().map_err(wire)?;
                    self.st.unset(seq, entity, attr, touched);
                }
            }
            2 => {
                self.bulk.flush(self.st);
                let entity = r.str().map_err(wire)?;
                self.st.delete(seq, entity, touched);
            }
            3 => {
                let entity = r.str().map_err(wire)?;
                let ty = r.option(Reader::str).map_err(wire)?;
                let e = self.st.names.intern(entity);
                let t = ty.map(|t| self.st.names.intern(t));
                self.st.write_type(e, seq, t, touched);
            }
            _ => return Err(wire("an operation has an unknown kind")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENTS: [&str; 4] = ["e0", "e1", "e2", "e3"];
    const ATTRS: [&str; 3] = ["a", "b", "c"];

    /// Small pools of names so that operations keep meeting the same keys,
    /// within a transaction too.
    fn op() -> impl Strategy<Value = OpRecord> {
        let ent = (0..ENTS.len()).prop_map(|i| ENTS[i].to_string());
        let ty = proptest::option::of((0..2usize).prop_map(|i| format!("T{i}")));
        prop_oneof![
            6 => (ent.clone(), ty.clone(), proptest::collection::vec((0..ATTRS.len(), 0..3u8), 0..4), proptest::option::of(0..3u8))
                .prop_map(|(entity, ty, attrs, until)| OpRecord::Set {
                    entity,
                    ty,
                    attrs: attrs.into_iter().map(|(a, v)| (ATTRS[a].to_string(), Value::from(f64::from(v)))).collect(),
                    valid_until: until.map(|u| [5.0, f64::INFINITY, 1e15][usize::from(u)]),
                }),
            2 => (ent.clone(), proptest::collection::vec((0..ATTRS.len()).prop_map(|a| ATTRS[a].to_string()), 0..3))
                .prop_map(|(entity, attrs)| OpRecord::Unset { entity, attrs }),
            1 => ent.clone().prop_map(|entity| OpRecord::Delete { entity }),
            1 => (ent, ty).prop_map(|(entity, ty)| OpRecord::Type { entity, ty }),
        ]
    }

    fn record(seq: u64, ops: Vec<OpRecord>) -> TxRecord {
        let note = (seq % 3 == 0).then(|| "n".to_string());
        TxRecord { seq, at: seq as f64, cause: format!("c{seq}"), actor: Some("x".into()), note, ops }
    }

    proptest! {
        /// Replaying records gives the state applying them gives, byte for
        /// byte in its snapshot (names, transactions and their touched keys,
        /// every version, types), after a prefix applied one by one (a
        /// snapshot); `big` adds many other facts first, so that flushes
        /// before retractions take the one-by-one path as well as the rebuild.
        /// `from_snapshot` replays onto the prefix's snapshot decoded with its
        /// facts held back (`decode_snapshot_base`, `with_base`), as a reopen does.
        #[test]
        fn replay_is_apply(
            txs in proptest::collection::vec(proptest::collection::vec(op(), 0..5), 1..14),
            prefix in 0..6usize,
            big: bool,
            from_snapshot: bool,
        ) {
            let mut recs: Vec<TxRecord> = Vec::new();
            if big {
                let attrs: Vec<(String, Value)> = (0..3).map(|a| (format!("z{a}"), Value::from("v"))).collect();
                let ops = (0..40).map(|e| OpRecord::Set { entity: format!("big{e}"), ty: None, attrs: attrs.clone(), valid_until: None }).collect();
                recs.push(record(1, ops));
            }
            for ops in txs {
                let seq = recs.len() as u64 + 1;
                recs.push(record(seq, ops));
            }
            let prefix = prefix.min(recs.len());
            let mut applied = ScopeState::new(Dims::default());
            for rec in &recs {
                applied.apply(rec).unwrap();
            }
            let mut replayed = ScopeState::new(Dims::default());
            for rec in &recs[..prefix] {
                replayed.apply(rec).unwrap();
            }
            let base;
            let mut replay = if from_snapshot {
                (replayed, base) = decode_snapshot_base("k", &encode_snapshot(&replayed)).unwrap();
                prop_assert!(replayed.facts.is_empty());
                Replay::with_base(&mut replayed, base)
            } else {
                Replay::new(&mut replayed)
            };
            for rec in &recs[prefix..] {
                replay.record("k", rec.seq, &encode_tx(rec)).unwrap();
            }
            replay.finish();
            prop_assert_eq!(encode_snapshot(&replayed), encode_snapshot(&applied));
        }
    }

    #[test]
    fn replay_checks_what_decode_and_apply_check() {
        // A failed replay leaves its state part-way: every case gets a new one.
        let new = || ScopeState::new(Dims::default());
        let ok = encode_tx(&record(1, vec![]));
        let err = |st: &mut ScopeState, seq, bytes: &[u8]| Replay::new(st).record("k", seq, bytes).unwrap_err().to_string();
        assert!(err(&mut new(), 2, &ok).contains("the record holds seq 1"));
        assert!(err(&mut new(), 2, &encode_tx(&record(2, vec![]))).contains("the log has a gap: expected seq 1"));
        let mut late = record(1, vec![]);
        late.at = f64::NAN;
        assert!(err(&mut new(), 1, &encode_tx(&late)).contains("transaction time is not finite"));
        let nan = OpRecord::Set { entity: "e".into(), ty: None, attrs: vec![("a".into(), Value::Null)], valid_until: Some(f64::NAN) };
        assert!(err(&mut new(), 1, &encode_tx(&record(1, vec![nan]))).contains("a validUntil is not a number"));
        let bad = OpRecord::Set { entity: "e".into(), ty: None, attrs: vec![("a".into(), Value::from(f64::INFINITY))], valid_until: None };
        assert!(err(&mut new(), 1, &encode_tx(&record(1, vec![bad]))).contains("attribute \"a\""));
        assert!(err(&mut new(), 1, &[ok.as_slice(), &[0]].concat()).contains("1 trailing bytes"));
        for n in 0..ok.len() {
            assert_eq!(Replay::new(&mut new()).record("k", 1, &ok[..n]).unwrap_err().code().as_str(), "CORRUPT");
        }
        let mut st = new();
        Replay::new(&mut st).record("k", 1, &ok).unwrap();
        assert_eq!(st.seq(), 1);
        // An attribute name that is not UTF-8 (checked when it is new to the
        // scope; one equal to a known name is valid like it).
        let named = OpRecord::Set { entity: "e".into(), ty: None, attrs: vec![("zz".into(), Value::Null)], valid_until: None };
        let mut bytes = encode_tx(&record(1, vec![named]));
        let at = bytes.windows(2).position(|w| w == b"zz").unwrap();
        bytes[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
        assert!(err(&mut new(), 1, &bytes).contains("a string is not UTF-8"));
        // A time that goes backwards: either record may be the bad one, so
        // the error names both keys.
        let mut st = new();
        let mut replay = Replay::new(&mut st);
        let mut later = record(1, vec![]);
        later.at = 50.0;
        replay.record("k1", 1, &encode_tx(&later)).unwrap();
        let e = replay.record("k2", 2, &encode_tx(&record(2, vec![]))).unwrap_err();
        assert_eq!(e.code().as_str(), "CORRUPT");
        assert!(matches!(&e, Error::Corrupt { key, .. } if key == "k2"), "{e}");
        assert!(e.to_string().contains("is before the previous transaction's (the record before it is at key \"k1\")"), "{e}");
    }
}
