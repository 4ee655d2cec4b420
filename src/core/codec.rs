//! The stored format (version 1): log records, snapshots and checkpoints.
//!
//! Every stored value starts with two bytes — the format version and a kind
//! tag — followed by a postcard body. Decoding never panics: malformed bytes
//! become `CORRUPT` errors naming the storage key, and decoded snapshots are
//! checked for internal consistency before use. Fixtures of this format are
//! kept in `tests/fixtures/` and read back by `tests/format_compat.rs`.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::core::dims::Dims;
use crate::core::state::{Checkpoint, Hist, Interner, ScopeState, TxMeta, Version, TYPE_ATTR};
use crate::core::tx::{OpRecord, TxRecord};
use crate::core::value::Value;
use crate::error::{Error, Result};

/// The version of the stored format written by this build.
pub const FORMAT_VERSION: u8 = 1;

const KIND_TX: u8 = b'T';
const KIND_SNAPSHOT: u8 = b'S';
const KIND_CHECKPOINT: u8 = b'C';
const KIND_META: u8 = b'M';
const KIND_OTHER: u8 = b'X';

fn encode<T: Serialize>(kind: u8, body: &T) -> Vec<u8> {
    let out = vec![FORMAT_VERSION, kind];
    // Serializing into a Vec cannot fail for these types: postcard only errors
    // on unsupported serde features (none used) or a full fixed buffer.
    match postcard::to_extend(body, out) {
        Ok(v) => v,
        Err(_) => vec![FORMAT_VERSION, kind],
    }
}

fn decode<T: DeserializeOwned>(kind: u8, key: &str, bytes: &[u8]) -> Result<T> {
    // Only the postcard call is generic: the header and trailing-bytes checks
    // and their messages are shared by every record type (one copy, not one
    // per type: ~3 KB of wasm, BENCHMARKS.md "Size").
    let body = body(kind, key, bytes)?;
    let taken = postcard::take_from_bytes(body);
    match taken {
        Ok((val, rest)) => no_rest(key, rest).map(|()| val),
        Err(e) => Err(postcard_error(key, e)),
    }
}

/// The postcard body of a record of `kind`, after its two header bytes.
fn body<'a>(kind: u8, key: &str, bytes: &'a [u8]) -> Result<&'a [u8]> {
    match bytes {
        [v, k, body @ ..] if *v == FORMAT_VERSION && *k == kind => Ok(body),
        [v, ..] if *v != FORMAT_VERSION => Err(Error::corrupt(
            key,
            format!("stored format version {v} is not supported by this build (it reads version {FORMAT_VERSION})"),
        )),
        [_, k, ..] => Err(Error::corrupt(key, format!("expected a record of kind {:?}, found {:?}", kind as char, *k as char))),
        _ => Err(Error::corrupt(key, "the value is too short to be a Waymark record")),
    }
}

fn no_rest(key: &str, rest: &[u8]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::corrupt(key, format!("{} trailing bytes", rest.len())))
    }
}

#[inline(never)]
fn postcard_error(key: &str, e: postcard::Error) -> Error {
    Error::corrupt(key, e)
}

/// Encodes a log record.
pub fn encode_tx(rec: &TxRecord) -> Vec<u8> {
    encode(KIND_TX, rec)
}

/// Decodes a log record stored at `key`.
pub fn decode_tx(key: &str, bytes: &[u8]) -> Result<TxRecord> {
    let rec: TxRecord = decode(KIND_TX, key, bytes)?;
    if !rec.at.is_finite() {
        return Err(Error::corrupt(key, "transaction time is not finite"));
    }
    // The same checks a snapshot's values get: nothing invalid enters the state.
    for op in &rec.ops {
        if let OpRecord::Set { attrs, valid_until, .. } = op {
            if valid_until.is_some_and(f64::is_nan) {
                return Err(Error::corrupt(key, "a validUntil is not a number"));
            }
            for (name, v) in attrs {
                v.validate().map_err(|e| Error::corrupt(key, format!("attribute {name:?}: {e}")))?;
            }
        }
    }
    Ok(rec)
}

/// Store-wide metadata (the first key a store writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreMeta {
    pub created_at: f64,
}

pub fn encode_meta(m: &StoreMeta) -> Vec<u8> {
    encode(KIND_META, m)
}

pub fn decode_meta(key: &str, bytes: &[u8]) -> Result<StoreMeta> {
    decode(KIND_META, key, bytes)
}

/// Encodes any other serde record (run registry entries, scope headers…).
pub fn encode_record<T: Serialize>(body: &T) -> Vec<u8> {
    encode(KIND_OTHER, body)
}

pub fn decode_record<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    decode(KIND_OTHER, key, bytes)
}

#[derive(Serialize, Deserialize)]
struct CheckpointRec<'a> {
    name: Cow<'a, str>,
    seq: u64,
    at: f64,
    /// How many checkpoints the writer knew when it created this one. Loading
    /// orders by (seq, ord, at, name): `checkpoints()` is ordered by seq, then
    /// creation, and neither `at` (clocks repeat and go backwards) nor the key
    /// (hex of the name) can carry creation order.
    ord: u64,
}

/// Encodes a checkpoint; `ord` is its creation ordinal in the scope (the
/// number of checkpoints that existed before it).
pub fn encode_checkpoint(cp: &Checkpoint, ord: u64) -> Vec<u8> {
    encode(KIND_CHECKPOINT, &CheckpointRec { name: Cow::Borrowed(&cp.name), seq: cp.seq, at: cp.at, ord })
}

/// Decodes a checkpoint and its creation ordinal.
pub fn decode_checkpoint(key: &str, bytes: &[u8]) -> Result<(Checkpoint, u64)> {
    let r: CheckpointRec = decode(KIND_CHECKPOINT, key, bytes)?;
    Ok((Checkpoint { name: r.name.into_owned(), seq: r.seq, at: r.at }, r.ord))
}

#[derive(Serialize, Deserialize)]
struct SnapRec<'a> {
    dims: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    names: Vec<Cow<'a, str>>,
    txs: Vec<TxRec<'a>>,
    facts: Vec<FactRec<'a>>,
    types: Vec<(u32, Vec<(u32, Option<u32>)>)>,
}

#[derive(Serialize, Deserialize)]
struct TxRec<'a> {
    at: f64,
    cause: Cow<'a, str>,
    actor: Option<Cow<'a, str>>,
    note: Option<Cow<'a, str>>,
    touched: Cow<'a, [(u32, u32)]>,
}

#[derive(Serialize, Deserialize)]
struct FactRec<'a> {
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
                touched: Cow::Borrowed(&m.touched),
            })
            .collect(),
        facts: st
            .facts
            .iter()
            .map(|(&(e, a), h)| FactRec {
                e,
                a,
                versions: h
                    .as_slice()
                    .iter()
                    .map(|v| (v.seq, v.valid_until_opt(), v.value.as_ref().map(Cow::Borrowed)))
                    .collect(),
            })
            .collect(),
        types,
    };
    encode(KIND_SNAPSHOT, &rec)
}

/// Decodes and checks a snapshot stored at `key`.
pub fn decode_snapshot(key: &str, bytes: &[u8]) -> Result<ScopeState> {
    let rec: SnapRec = decode(KIND_SNAPSHOT, key, bytes)?;
    let bad = |why: &str| Error::corrupt(key, format!("inconsistent snapshot: {why}"));
    let mut names = Interner::default();
    for (i, n) in rec.names.iter().enumerate() {
        if names.intern(n) as usize != i {
            return Err(bad("a name appears twice"));
        }
    }
    let n_names = names.len() as u32;
    let n_txs = rec.txs.len() as u32;
    let id_ok = |id: u32| id < n_names;
    let mut txs = Vec::with_capacity(rec.txs.len());
    let mut last_at = f64::NEG_INFINITY;
    for t in rec.txs {
        if !t.at.is_finite() || t.at < last_at {
            return Err(bad("transaction times are not finite and non-decreasing"));
        }
        last_at = t.at;
        if !t.touched.iter().all(|&(e, a)| id_ok(e) && (id_ok(a) || a == TYPE_ATTR)) {
            return Err(bad("a transaction touches an unknown name"));
        }
        txs.push(TxMeta {
            at: t.at,
            cause: t.cause.into_owned().into_boxed_str(),
            actor: t.actor.map(|s| s.into_owned().into_boxed_str()),
            note: t.note.map(|s| s.into_owned().into_boxed_str()),
            touched: t.touched.into_owned().into_boxed_slice(),
        });
    }
    // Collected, then built in one go: a B-tree built from sorted entries has
    // full leaves (about 50 bytes per fact instead of about 90 when inserted
    // one by one in key order; BENCHMARKS.md).
    let mut facts = Vec::with_capacity(rec.facts.len());
    for f in rec.facts {
        if !id_ok(f.e) || !id_ok(f.a) {
            return Err(bad("a fact names an unknown entity or attribute"));
        }
        let mut versions = Vec::with_capacity(f.versions.len());
        let mut prev = 0u32;
        for (seq, valid_until, value) in f.versions {
            if seq <= prev || seq > n_txs {
                return Err(bad("version seqs are not increasing within the log"));
            }
            prev = seq;
            let value = value.map(Cow::into_owned);
            if let Some(v) = &value {
                v.validate().map_err(|e| Error::corrupt(key, e))?;
            }
            versions.push(Version { seq, valid_until: valid_until.unwrap_or(f64::INFINITY), value });
        }
        let Some(h) = Hist::from_versions(versions) else { return Err(bad("a fact has no versions")) };
        facts.push(((f.e, f.a), h));
    }
    // Written in key order, so this sort only checks (linear on sorted input).
    crate::core::sort::sort_by_key(&mut facts, |(k, _)| *k);
    if facts.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(bad("a fact appears twice"));
    }
    let facts = crate::core::state::facts_from_sorted(facts);
    let mut types = HashMap::with_capacity(rec.types.len());
    for (e, h) in rec.types {
        let ordered = h.windows(2).all(|w| w[0].0 < w[1].0);
        if !id_ok(e) || !ordered || !h.iter().all(|(s, t)| *s <= n_txs && t.is_none_or(id_ok)) {
            return Err(bad("entity types are inconsistent"));
        }
        types.insert(e, h);
    }
    let dims = Dims::new(rec.dims.into_iter().map(|(k, v)| (k.into_owned(), v.into_owned())));
    Ok(ScopeState { dims, names, txs, facts, types, checkpoints: Vec::new() })
}

#[cfg(test)]
mod packing_tests {
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
        let err = decode_snapshot("k", &encode(KIND_SNAPSHOT, &rec)).unwrap_err();
        assert_eq!(err.code().as_str(), "CORRUPT", "{err}");
    }
}
