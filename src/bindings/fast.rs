//! Hidden `Scope` methods behind the package's JS fast paths
//! (`src/bindings/js/*.js`, appended to the wasm-bindgen glue by
//! `scripts/build.sh`). They are not part of the typed API
//! (`skip_typescript`) and keep every check of the public methods.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert::{self, At, OpParts};
use super::dto::Json;
use super::error::{can_poll_now, poll_in_place, reject, spawn, to_js};
use crate::core::tx::{Expiry, Op, Provenance};
use crate::core::value::Value;
use crate::core::wire::Reader;
use super::scope::JsScope;
use crate::error::{Error, Result};
use crate::core::packed;
use std::cell::RefCell;

#[wasm_bindgen(js_class = Scope)]
impl JsScope {
    /// Changes whenever the loaded state may have changed; throws `CLOSED`
    /// once the store is closed (`reads.js` keys its value cache on it).
    #[wasm_bindgen(js_name = __generation, skip_typescript)]
    pub fn generation(&self) -> std::result::Result<u32, JsValue> {
        self.open().map_err(to_js)?;
        Ok(self.scope().generation())
    }

    /// `value(entity, attribute)` for the cache: `""` when nothing is
    /// visible, `"P" + JSON` for a value without expiry (cacheable until
    /// the generation changes), `"T" + JSON` for one with `validUntil`
    /// (time may hide it, so it is not cached).
    #[wasm_bindgen(js_name = __valueEntry, skip_typescript)]
    pub fn value_entry(&self, entity: JsValue, attribute: JsValue) -> std::result::Result<String, JsValue> {
        let entry = || -> Result<String> {
            self.open()?;
            let e = convert::string(&entity, &At::root("entity"))?;
            let a = convert::string(&attribute, &At::root("attribute"))?;
            let Some(v) = self.scope().why(&e, &a) else { return Ok(String::new()) };
            let Some(value) = v.value else { return Ok(String::new()) };
            let mut j = Json::new();
            j.value(&value);
            let mut out = String::with_capacity(j.as_str().len() + 1);
            out.push(if v.valid_until.is_some() { 'T' } else { 'P' });
            out.push_str(j.as_str());
            Ok(out)
        };
        entry().map_err(to_js)
    }
}

#[wasm_bindgen]
extern "C" {
    /// A plain object being filled in as a `TxInfo`.
    #[wasm_bindgen(extends = js_sys::Object)]
    pub type TxObject;
    #[wasm_bindgen(method, setter = seq)]
    fn set_seq(this: &TxObject, v: f64);
    #[wasm_bindgen(method, setter = at)]
    fn set_at(this: &TxObject, v: f64);
    #[wasm_bindgen(method, setter = cause)]
    fn set_cause(this: &TxObject, v: &str);
}

/// A `TxInfo` as a plain JS object `{ seq, at, cause }`, set field by field
/// (plain property stores, no key strings, no `JSON.parse`): every
/// transaction answers with one, so this is on the write path.
pub fn tx_info(t: &crate::core::tx::TxInfo) -> JsValue {
    let o: TxObject = js_sys::Object::new().unchecked_into();
    o.set_seq(t.seq as f64);
    o.set_at(t.at);
    o.set_cause(&t.cause);
    o.into()
}

/// `v` as the public path builds it: objects with sorted, unique keys
/// (`Value::object`; JS sends them in its own order) and finite numbers.
fn normalized(v: Value) -> Option<Value> {
    Some(match v {
        Value::Number(n) if !n.get().is_finite() => return None,
        Value::Array(items) => Value::Array(items.into_vec().into_iter().map(normalized).collect::<Option<_>>()?),
        Value::Object(fields) => Value::object(
            fields.into_vec().into_iter().map(|(k, v)| Some((k, normalized(v)?))).collect::<Option<Vec<_>>>()?,
        ),
        v => v,
    })
}

/// The ops and provenance `writes.js` encoded, or `None` when the bytes are
/// not exactly what the public path would accept (the caller falls back to
/// it, and it reports the problem). The layout, in the stored records'
/// postcard format (`core::wire`): cause, actor?, note?, then the ops, each
/// entity, type?, delete, unset?, ttlMs?, validUntil?, set?.
fn parse_transaction(bytes: &[u8]) -> Option<(Vec<Op>, Provenance)> {
    let mut r = Reader::new(bytes);
    let r = &mut r;
    let cause = r.string().ok()?;
    let actor = r.option(Reader::string).ok()?;
    let note = r.option(Reader::string).ok()?;
    let n = r.seq_len().ok()?;
    if cause.is_empty() || n == 0 {
        return None;
    }
    let mut ops = Vec::with_capacity(n);
    let at = At::root("ops");
    for _ in 0..n {
        let entity = r.string().ok()?;
        let ty = r.option(Reader::string).ok()?;
        let delete = r.bool().ok()?;
        let unset = r.option(|r| r.vec(Reader::string)).ok()?;
        let ttl = r.option(Reader::f64).ok()?;
        let until = r.option(Reader::f64).ok()?;
        let set = r.option(|r| r.vec(|r| Ok((r.string()?, r.value()?)))).ok()?;
        if entity.is_empty() || ty.as_ref().is_some_and(String::is_empty) {
            return None;
        }
        let expiry = match (ttl, until) {
            (Some(ms), None) if ms >= 0.0 && ms.is_finite() => Some(Expiry::TtlMs(ms)),
            (None, Some(t)) if t.is_finite() => Some(Expiry::ValidUntil(t)),
            (None, None) => None,
            _ => return None,
        };
        let set = match set {
            Some(s) => Some(s.into_iter().map(|(k, v)| Some((k, normalized(v)?))).collect::<Option<Vec<_>>>()?),
            None => None,
        };
        convert::expand(OpParts { entity, ty, delete, unset, set, expiry }, &at, &mut ops).ok()?;
    }
    if !r.rest().is_empty() {
        return None;
    }
    Some((ops, Provenance { cause, actor, note }))
}

thread_local! {
    /// The bytes of the transaction `writes.js` is encoding, written by JS
    /// straight into wasm memory (`Scope.__wmScratch`), and, after a transaction
    /// that committed at once, its seq and time (two little-endian `f64`s
    /// at offset 0). Handing the bytes over as a `&[u8]` argument cost a
    /// `malloc`, a copy and a `free` per call, and the answer object an
    /// externref and two property crossings (BENCHMARKS.md "Writes,
    /// session 5").
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The answer of a transaction that was to commit within its call: `true`
/// with its seq and time at the start of the scratch buffer, or a rejected
/// promise.
fn answer_now(done: Option<Result<(u64, f64)>>) -> JsValue {
    match done {
        Some(Ok((seq, at))) => {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                s[..8].copy_from_slice(&(seq as f64).to_le_bytes());
                s[8..16].copy_from_slice(&at.to_le_bytes());
            });
            JsValue::TRUE
        }
        Some(Err(e)) => reject(e).into(),
        None => reject(Error::Storage("internal: a transaction expected to commit at once is still pending".into())).into(),
    }
}

#[wasm_bindgen(js_class = Scope)]
impl JsScope {
    /// Grows the scratch buffer to at least `len` bytes (keeping its bytes)
    /// and returns its address in wasm memory. `writes.js` calls it before
    /// its first encoding and whenever one needs more room (up to 1 MiB;
    /// larger transactions take the public path). A hidden static method
    /// of `Scope` rather than a function, so that the module exports
    /// nothing beyond API.md.
    #[wasm_bindgen(js_name = __wmScratch, skip_typescript)]
    pub fn scratch(len: usize) -> usize {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < len.max(16) {
                s.resize(len.max(16), 0);
            }
            s.as_ptr() as usize
        })
    }

    /// `transact` for the `len` bytes `writes.js` encoded into the scratch
    /// buffer: `true` when it committed at once (its seq and time are then
    /// at the start of the buffer), else a promise of the `TxInfo`, or
    /// `undefined` to send the call to the public path.
    #[wasm_bindgen(js_name = __transactScratch, skip_typescript)]
    pub fn transact_scratch(&self, len: usize) -> JsValue {
        let scope = self.scope();
        // Done within this call when the scope commits at once (the future
        // may borrow the scope). The bytes are copied out of the buffer
        // before anything else runs: a JS callback during the commit (the
        // clock) may encode another transaction into it.
        let at_once = scope.commits_now() && can_poll_now();
        if at_once {
            // Most transactions: the packed bytes become the log record
            // (`core::packed`), without building ops.
            if let Some(p) = SCRATCH.with(|s| s.borrow().get(..len).and_then(packed::pack)) {
                return answer_now(poll_in_place(scope.commit_packed(p)));
            }
        }
        let parsed = SCRATCH.with(|s| s.borrow().get(..len).and_then(parse_transaction));
        let Some((ops, prov)) = parsed else { return JsValue::UNDEFINED };
        if at_once {
            return answer_now(poll_in_place(scope.transact(ops, prov)).map(|r| r.map(|t| (t.seq, t.at))));
        }
        let scope = scope.clone();
        spawn(async move { Ok(tx_info(&scope.transact(ops, prov).await?)) }).into()
    }
}
