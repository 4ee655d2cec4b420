//! The snapshot layout as a record struct, for the tests: `take_snapshot`
//! reads what `encode_snapshot` wrote, and serde + postcard (which wrote
//! snapshots before `core::wire`) must encode that record to the same bytes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Serialize, Deserialize)]
pub(super) struct SnapRec<'a> {
    pub(super) dims: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(super) names: Vec<Cow<'a, str>>,
    pub(super) txs: Vec<TxRec<'a>>,
    pub(super) facts: Vec<FactRec<'a>>,
    pub(super) types: Vec<(u32, crate::state::TypeHist)>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct TxRec<'a> {
    pub(super) at: f64,
    pub(super) cause: Cow<'a, str>,
    pub(super) actor: Option<Cow<'a, str>>,
    pub(super) note: Option<Cow<'a, str>>,
    pub(super) touched: Cow<'a, [(u32, u32)]>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct FactRec<'a> {
    pub(super) e: u32,
    pub(super) a: u32,
    pub(super) versions: Vec<(u32, Option<f64>, Option<Cow<'a, Value>>)>,
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

