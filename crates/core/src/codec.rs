//! The stored format (version 1): log records, snapshots and checkpoints.
//!
//! Every stored value starts with two bytes — the format version and a kind
//! tag — followed by a postcard body. Decoding never panics: malformed bytes
//! become `CORRUPT` errors naming the storage key, and decoded snapshots are
//! checked for internal consistency before use. Fixtures of this format are
//! kept in `tests/fixtures/` and read back by `tests/format_compat.rs`.

use std::collections::{BTreeMap, HashMap};

#[cfg(test)]
use serde::Serialize;

use crate::dims::Dims;
use crate::state::{Checkpoint, FactKey, Hist, Interner, ScopeState, TxMeta, TypeHist, Version, TYPE_ATTR};
use crate::tx::{OpRecord, TxRecord};
use crate::value::Value;
use crate::wire::{put_bool, put_f64, put_opt_f64, put_opt_str, put_str, put_u64, put_value, Reader, Wire, WireError};
use crate::error::{Error, Result};

mod commit;
mod replay;
mod snapshot;
pub(crate) use commit::apply_tx;
pub use replay::Replay;
pub use snapshot::{decode_snapshot, decode_snapshot_base, encode_snapshot, SnapshotBase};
#[cfg(test)]
mod snapshot_rec;
#[cfg(test)]
use snapshot_rec::take_snapshot;

/// The version of the stored format written by this build. This build reads
/// versions 1 and 2; version 2 adds value kind 6, an integer (see
/// `wire::as_int`), and is otherwise version 1.
pub const FORMAT_VERSION: u8 = 2;

const KIND_TX: u8 = b'T';
const KIND_SNAPSHOT: u8 = b'S';
const KIND_CHECKPOINT: u8 = b'C';
const KIND_META: u8 = b'M';
const KIND_OTHER: u8 = b'X';

fn encode<T: Wire>(kind: u8, body: &T) -> Vec<u8> {
    // Encoded into a reused buffer, then copied out at its exact length (so
    // memory storage keeps no slack): growing from 2 bytes reallocated ~6
    // times per commit. Against a 256-byte guess shrunk afterwards, measured
    // in the node package with `bench/js/ab.mjs`: 10-attribute transactions
    // 2–4% faster, 1-attribute ones the same, +0.4 KB gzipped.
    thread_local! {
        static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buf = SCRATCH.with(std::cell::Cell::take);
    buf.clear();
    buf.extend_from_slice(&[FORMAT_VERSION, kind]);
    body.put(&mut buf);
    let out = buf.to_vec();
    // A large record's buffer is not kept.
    if buf.capacity() <= 64 * 1024 {
        SCRATCH.with(|s| s.set(buf));
    }
    out
}

fn decode<T: Wire>(kind: u8, key: &str, bytes: &[u8]) -> Result<T> {
    let mut out = None;
    read_body(kind, key, bytes, &mut |r| T::take(r).map(|v| out = Some(v)))?;
    out.ok_or_else(|| Error::corrupt(key, "the record is empty"))
}

/// The part of [`decode`] that does not depend on the record type (one copy).
fn read_body(
    kind: u8,
    key: &str,
    bytes: &[u8],
    take: &mut dyn FnMut(&mut Reader<'_>) -> std::result::Result<(), WireError>,
) -> Result<()> {
    let mut r = Reader::new(body(kind, key, bytes)?);
    take(&mut r).map_err(|e| Error::corrupt(key, e))?;
    no_rest(key, r.rest())
}

/// The postcard body of a record of `kind`, after its two header bytes.
fn body<'a>(kind: u8, key: &str, bytes: &'a [u8]) -> Result<&'a [u8]> {
    match bytes {
        [v, k, body @ ..] if (1..=FORMAT_VERSION).contains(v) && *k == kind => Ok(body),
        [v, ..] if !(1..=FORMAT_VERSION).contains(v) => Err(Error::corrupt(
            key,
            format!("stored format version {v} is not supported by this build (it reads versions 1 to {FORMAT_VERSION})"),
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

impl Wire for TxRecord {
    fn put(&self, w: &mut Vec<u8>) {
        put_u64(w, self.seq);
        put_f64(w, self.at);
        put_str(w, &self.cause);
        put_opt_str(w, self.actor.as_deref());
        put_opt_str(w, self.note.as_deref());
        put_u64(w, self.ops.len() as u64);
        for op in &self.ops {
            put_op(w, op);
        }
    }
    fn take(r: &mut Reader<'_>) -> std::result::Result<Self, WireError> {
        Ok(TxRecord {
            seq: r.u64()?,
            at: r.f64()?,
            cause: r.string()?,
            actor: r.option(Reader::string)?,
            note: r.option(Reader::string)?,
            ops: r.vec(take_op)?,
        })
    }
}

fn put_op(w: &mut Vec<u8>, op: &OpRecord) {
    match op {
        OpRecord::Set { entity, ty, attrs, valid_until } => {
            w.push(0);
            put_str(w, entity);
            put_opt_str(w, ty.as_deref());
            put_u64(w, attrs.len() as u64);
            for (name, v) in attrs {
                put_str(w, name);
                put_value(w, v);
            }
            put_opt_f64(w, *valid_until);
        }
        OpRecord::Unset { entity, attrs } => {
            w.push(1);
            put_str(w, entity);
            put_u64(w, attrs.len() as u64);
            for name in attrs {
                put_str(w, name);
            }
        }
        OpRecord::Delete { entity } => {
            w.push(2);
            put_str(w, entity);
        }
        OpRecord::Type { entity, ty } => {
            w.push(3);
            put_str(w, entity);
            put_opt_str(w, ty.as_deref());
        }
    }
}

fn take_op(r: &mut Reader<'_>) -> std::result::Result<OpRecord, WireError> {
    Ok(match r.u32()? {
        0 => OpRecord::Set {
            entity: r.string()?,
            ty: r.option(Reader::string)?,
            attrs: r.vec(|r| Ok((r.string()?, r.value()?)))?,
            valid_until: r.option(Reader::f64)?,
        },
        1 => OpRecord::Unset { entity: r.string()?, attrs: r.vec(Reader::string)? },
        2 => OpRecord::Delete { entity: r.string()? },
        3 => OpRecord::Type { entity: r.string()?, ty: r.option(Reader::string)? },
        _ => return Err("an operation has an unknown kind"),
    })
}

/// Encodes a log record.
pub fn encode_tx(rec: &TxRecord) -> Vec<u8> {
    encode(KIND_TX, rec)
}

/// The most bytes [`tx_head`] writes.
pub const TX_HEAD_MAX: usize = 2 + 10 + 8;

/// The bytes of a log record before its cause: the record header, `seq`
/// and `at`, in `out`; returns how many. [`encode_tx`] of a record is its
/// head followed by the rest of its fields (for records assembled from
/// their parts, `crate::packed`).
pub fn tx_head(seq: u64, at: f64, out: &mut [u8; TX_HEAD_MAX]) -> usize {
    out[0] = FORMAT_VERSION;
    out[1] = KIND_TX;
    let i = 2 + crate::wire::put_varint(&mut out[2..], seq);
    out[i..i + 8].copy_from_slice(&at.to_le_bytes());
    i + 8
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
#[derive(Debug, Clone, PartialEq)]
pub struct StoreMeta {
    pub created_at: f64,
}

impl Wire for StoreMeta {
    fn put(&self, w: &mut Vec<u8>) {
        put_f64(w, self.created_at);
    }
    fn take(r: &mut Reader<'_>) -> std::result::Result<Self, WireError> {
        Ok(StoreMeta { created_at: r.f64()? })
    }
}

pub fn encode_meta(m: &StoreMeta) -> Vec<u8> {
    encode(KIND_META, m)
}

pub fn decode_meta(key: &str, bytes: &[u8]) -> Result<StoreMeta> {
    decode(KIND_META, key, bytes)
}

/// Encodes any other record (run registry entries, scope headers…).
pub fn encode_record<T: Wire>(body: &T) -> Vec<u8> {
    encode(KIND_OTHER, body)
}

pub fn decode_record<T: Wire>(key: &str, bytes: &[u8]) -> Result<T> {
    decode(KIND_OTHER, key, bytes)
}

/// A checkpoint as stored: `name`, `seq`, `at`, then `ord`, how many
/// checkpoints the writer knew when it created this one. Loading orders by
/// (seq, ord, at, name): `checkpoints()` is ordered by seq, then creation,
/// and neither `at` (clocks repeat and go backwards) nor the key (hex of the
/// name) can carry creation order.
struct CheckpointRec(Checkpoint, u64);

impl Wire for CheckpointRec {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.0.name);
        put_u64(w, self.0.seq);
        put_f64(w, self.0.at);
        put_u64(w, self.1);
    }
    fn take(r: &mut Reader<'_>) -> std::result::Result<Self, WireError> {
        Ok(CheckpointRec(Checkpoint { name: r.string()?, seq: r.u64()?, at: r.f64()? }, r.u64()?))
    }
}

/// Encodes a checkpoint; `ord` is its creation ordinal in the scope (the
/// number of checkpoints that existed before it).
pub fn encode_checkpoint(cp: &Checkpoint, ord: u64) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION, KIND_CHECKPOINT];
    put_str(&mut out, &cp.name);
    put_u64(&mut out, cp.seq);
    put_f64(&mut out, cp.at);
    put_u64(&mut out, ord);
    out
}

/// Decodes a checkpoint and its creation ordinal.
pub fn decode_checkpoint(key: &str, bytes: &[u8]) -> Result<(Checkpoint, u64)> {
    let CheckpointRec(cp, ord) = decode(KIND_CHECKPOINT, key, bytes)?;
    Ok((cp, ord))
}

/// The hand-written wire format (`core::wire`) against postcard + serde,
/// which wrote these records before: the same bytes both ways.
#[cfg(test)]
mod postcard_compat {
    use super::*;

    fn postcard_record<T: Serialize>(kind: u8, body: &T) -> Vec<u8> {
        postcard::to_extend(body, vec![FORMAT_VERSION, kind]).unwrap()
    }

    fn values() -> Vec<Value> {
        let mut deep = Value::array([]);
        for _ in 0..300 {
            deep = Value::array([deep]);
        }
        vec![
            Value::Null,
            Value::from(true),
            Value::from(false),
            Value::from(-1.5e300),
            Value::from("é \u{1F600}"),
            Value::array([Value::from(1.0), Value::Null, Value::array([])]),
            Value::object([("b", Value::from("x".repeat(300))), ("a", Value::object([("k", Value::from(2.0))]))]),
        ]
    }

    fn tx() -> TxRecord {
        TxRecord {
            seq: u64::MAX / 3,
            at: 1_700_000_000_000.25,
            cause: "turn:1".into(),
            actor: Some("assistant".into()),
            note: None,
            ops: vec![
                OpRecord::Set {
                    entity: "e:1".into(),
                    ty: Some("T".into()),
                    attrs: values().into_iter().enumerate().map(|(i, v)| (format!("a{i}"), v)).collect(),
                    valid_until: Some(5.0),
                },
                OpRecord::Set { entity: "e:2".into(), ty: None, attrs: vec![], valid_until: None },
                OpRecord::Unset { entity: "e:3".into(), attrs: vec!["x".into(), "y".into()] },
                OpRecord::Delete { entity: "e:4".into() },
                OpRecord::Type { entity: "e:5".into(), ty: None },
                OpRecord::Type { entity: "e:6".into(), ty: Some("U".into()) },
            ],
        }
    }

    #[test]
    fn log_records_are_postcard() {
        let rec = tx();
        let theirs = postcard_record(KIND_TX, &rec);
        assert_eq!(encode_tx(&rec), theirs);
        assert_eq!(decode_tx("k", &theirs).unwrap(), rec);
    }

    #[test]
    fn snapshots_are_postcard() {
        let mut st = ScopeState::new(Dims::new([("p".to_string(), "q".to_string())]));
        st.apply(&tx()).unwrap_or_default();
        for seq in 1..=200u64 {
            let ops = (0..3)
                .map(|i| OpRecord::Set {
                    entity: format!("e{}", (seq * 7 + i) % 150),
                    ty: (i == 0).then(|| format!("T{}", seq % 3)),
                    attrs: vec![("a".into(), Value::from(seq as f64)), ("b".into(), Value::from("v"))],
                    valid_until: (i == 1).then_some(seq as f64 * 2.0),
                })
                .collect();
            let note = (seq % 2 == 0).then(|| "n".to_string());
            st.apply(&TxRecord { seq, at: seq as f64, cause: "c".into(), actor: None, note, ops }).unwrap();
        }
        let ours = encode_snapshot(&st);
        assert_eq!(ours.capacity(), ours.len(), "allocated to its exact size");
        let mut r = Reader::new(&ours[2..]);
        let rec = take_snapshot(&mut r).unwrap();
        assert!(r.rest().is_empty());
        assert_eq!(postcard_record(KIND_SNAPSHOT, &rec), ours);
        let back = decode_snapshot("k", &ours).unwrap();
        assert_eq!(encode_snapshot(&back), ours);
    }

    #[test]
    fn other_records_are_postcard() {
        #[derive(Serialize)]
        struct Cp<'a>(&'a str, u64, f64, u64);
        let cp = Checkpoint { name: "before-summary".into(), seq: 300, at: 2.5 };
        let theirs = postcard_record(KIND_CHECKPOINT, &Cp(&cp.name, cp.seq, cp.at, 7));
        assert_eq!(encode_checkpoint(&cp, 7), theirs);
        assert_eq!(decode_checkpoint("k", &theirs).unwrap(), (cp, 7));

        let meta = StoreMeta { created_at: 1.25 };
        assert_eq!(encode_meta(&meta), postcard_record(KIND_META, &meta.created_at));
        assert_eq!(decode_meta("k", &encode_meta(&meta)).unwrap(), meta);

        let pairs = vec![("project".to_string(), "acme".to_string()), ("w".to_string(), String::new())];
        assert_eq!(encode_record(&pairs), postcard_record(KIND_OTHER, &pairs));
    }

    #[test]
    fn bad_bytes_are_corrupt_not_panics() {
        let good = encode_tx(&tx());
        for n in 0..good.len() {
            let _ = decode_tx("k", &good[..n]).unwrap_err();
        }
        let mut flipped = good.clone();
        for i in 2..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = decode_tx("k", &flipped);
            flipped[i] ^= 0xff;
        }
        // A huge length must not allocate.
        let mut huge = vec![FORMAT_VERSION, KIND_OTHER];
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode_record::<Vec<(String, String)>>("k", &huge).is_err());
    }
}
