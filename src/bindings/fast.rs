//! Hidden `Scope` methods behind the package's JS fast paths
//! (`src/bindings/js/*.js`, appended to the wasm-bindgen glue by
//! `scripts/build.sh`). They are not part of the typed API
//! (`skip_typescript`) and keep every check of the public methods.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::convert::{self, At};
use super::dto::Json;
use super::error::{can_poll_now, poll_in_place, reject, spawn, to_js};
use crate::core::tx::TxInfo;
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
        // Rewritten into its log record (`core::packed`), out of the buffer,
        // before anything else runs: a JS callback during the commit (the
        // clock) may encode another transaction into it. Bytes the public
        // path would refuse: `undefined`, and that path reports the problem.
        let Some(p) = SCRATCH.with(|s| s.borrow().get(..len).and_then(packed::pack)) else { return JsValue::UNDEFINED };
        let scope = self.scope();
        if scope.commits_now() && can_poll_now() {
            // Done within this call: the future may borrow the scope.
            return match poll_in_place(scope.commit_packed(p)) {
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
            };
        }
        let scope = scope.clone();
        let cause = p.cause().to_owned();
        spawn(async move {
            let (seq, at) = scope.commit_packed(p).await?;
            Ok(tx_info(&TxInfo { seq, at, cause }))
        })
        .into()
    }
}
