//! Futures over IndexedDB requests and transactions, on `web-sys` directly.
//!
//! Hand-written rather than a library (crate policy prefers libraries; this
//! is the size-budget exception, STYLE.md habit 12): the adapter used
//! `indexed_db_futures` 0.6 (with the `tokio` channels it brings). Replacing
//! it by this module and direct `web-sys` calls measured 235,305 → 226,481
//! bytes gzipped for the web build (−8.8 KB; raw 575,125 → 552,309), with
//! scripts/build.sh's steps. All the adapter needed of it is here: await a
//! request, commit a transaction, abort one dropped uncommitted.
//!
//! A request's future is a `Promise` whose `resolve` and `reject` are the
//! request's `onsuccess` and `onerror` handlers, awaited as a `JsFuture`
//! (both already in the wasm for the JS bindings). The browser calls no
//! closure of ours, so a future dropped before its event (an early return)
//! leaves nothing to unhook. The promise settles inside the event's
//! dispatch and the task awaiting it runs in the microtask checkpoint right
//! after the handler, while the transaction is still active: it may issue
//! more requests (group.rs: the probes, then the writes, in one transaction).

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbObjectStore, IdbRequest, IdbTransaction};

use super::conn::js_parts;
use super::STORE;

/// Two bindings web-sys lacks: the `options` overload of `db.transaction`
/// is behind its unstable APIs, and its `commit` is marked deprecated.
#[wasm_bindgen]
extern "C" {
    type Db;
    #[wasm_bindgen(catch, method, structural, js_name = transaction)]
    fn transaction(this: &Db, store: &str, mode: &str, options: &Object) -> Result<IdbTransaction, JsValue>;

    type TxSys;
    #[wasm_bindgen(catch, method, structural)]
    fn commit(this: &TxSys) -> Result<(), JsValue>;
}

/// An issued request and the promise its `success` or `error` event settles.
pub(crate) struct Req {
    req: IdbRequest,
    settled: JsFuture,
}

impl Req {
    /// Takes over a request just issued (before its event can fire).
    pub(crate) fn new(req: IdbRequest) -> Req {
        let settled = Promise::new(&mut |ok, err| {
            req.set_onsuccess(Some(&ok));
            req.set_onerror(Some(&err));
        });
        Req { req, settled: JsFuture::from(settled) }
    }

    /// The request's result, or its error.
    pub(crate) async fn result(self) -> Result<JsValue, JsValue> {
        let _ = self.settled.await;
        match self.req.error() {
            Ok(None) => self.req.result(),
            Ok(Some(e)) => Err(e.into()),
            Err(e) => Err(e),
        }
    }

    /// [`Req::result`] with `undefined` and `null` as `None` (a missing key).
    pub(crate) async fn value(self) -> Result<Option<JsValue>, JsValue> {
        let v = self.result().await?;
        Ok((!v.is_undefined() && !v.is_null()).then_some(v))
    }
}

/// [`Req::new`] of a request call's outcome.
pub(crate) fn req(r: Result<IdbRequest, JsValue>) -> Result<Req, JsValue> {
    r.map(Req::new)
}

/// A transaction on the object store. Dropped without [`Tx::commit`] it is
/// aborted, so an early return (`?`) writes nothing of it.
pub(crate) struct Tx {
    pub(crate) tx: IdbTransaction,
    pub(crate) store: IdbObjectStore,
    committed: bool,
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.tx.abort();
        }
    }
}

impl Tx {
    /// A readonly transaction.
    pub(crate) fn read(db: &IdbDatabase) -> Result<Tx, JsValue> {
        Tx::on(db.transaction_with_str(STORE)?)
    }

    /// A readwrite transaction, `durability: "strict"` or `"relaxed"`.
    pub(crate) fn write(db: &IdbDatabase, strict: bool) -> Result<Tx, JsValue> {
        let options = Object::new();
        Reflect::set(&options, &"durability".into(), &(if strict { "strict" } else { "relaxed" }).into())?;
        Tx::on(db.unchecked_ref::<Db>().transaction(STORE, "readwrite", &options)?)
    }

    fn on(tx: IdbTransaction) -> Result<Tx, JsValue> {
        match tx.object_store(STORE) {
            Ok(store) => Ok(Tx { tx, store, committed: false }),
            Err(e) => {
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// Commits and waits for `complete`. A failure is `(name, message)` of
    /// its cause: the transaction's error once it aborted, else the error of
    /// the request that failed it (an `error` event reaches the transaction
    /// before the abort does), else what `commit()` threw.
    pub(crate) async fn commit(mut self) -> Result<(), (String, String)> {
        self.committed = true;
        let tx = &self.tx;
        let settled = Promise::new(&mut |ok, err| {
            tx.set_oncomplete(Some(&ok));
            tx.set_onabort(Some(&err));
            tx.set_onerror(Some(&err));
        });
        let cause = match tx.unchecked_ref::<TxSys>().commit() {
            Ok(()) => match JsFuture::from(settled).await {
                Ok(_) => return Ok(()),
                Err(event) => failed_request(&event),
            },
            Err(e) => Some(js_parts(&e)),
        };
        Err(match tx.error() {
            Some(d) => (d.name(), d.message()),
            None => cause.unwrap_or_else(|| ("Error".into(), "the transaction was aborted".into())),
        })
    }
}

/// `(name, message)` of the request an `error` event came from, unless it
/// only failed because its transaction aborted (`AbortError`).
fn failed_request(event: &JsValue) -> Option<(String, String)> {
    let req: IdbRequest = event.dyn_ref::<web_sys::Event>()?.target()?.dyn_into().ok()?;
    let d = req.error().ok()??;
    let name = d.name();
    (name != "AbortError").then(|| (name, d.message()))
}
