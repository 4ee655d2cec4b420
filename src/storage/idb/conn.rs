//! Opening, upgrading and losing connections, and turning IndexedDB errors
//! into `Error::Storage` messages.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures_util::future::{select, Either};
use js_sys::Reflect;
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbFactory};

use super::req::Req;
use super::{sync, Fail, IdbStorage, Inner, STORE};
use crate::error::{Error, Result};

/// An open connection and the handler that closes it on `versionchange`
/// and `close`.
pub(crate) struct Conn {
    pub(crate) db: IdbDatabase,
    handler: Closure<dyn FnMut(web_sys::Event)>,
}

impl Conn {
    /// Closes the connection. The handler may be running right now (this is
    /// called from it), so it is freed on a later tick.
    pub(crate) fn close(self) {
        self.db.set_onversionchange(None);
        self.db.set_onclose(None);
        self.db.close();
        let handler = self.handler;
        wasm_bindgen_futures::spawn_local(async move { drop(handler) });
    }
}

/// The schema upgrade. Version 1: the `kv` object store (out-of-line binary
/// keys, `Uint8Array` values). A later version adds its step here, guarded by
/// what is missing, so any older database upgrades in one go.
fn upgrade(req: &web_sys::IdbOpenDbRequest) -> std::result::Result<(), JsValue> {
    let db: web_sys::IdbDatabase = req.result()?.unchecked_into();
    if !db.object_store_names().contains(STORE) {
        db.create_object_store(STORE)?;
    }
    Ok(())
}

/// The `upgradeneeded` and `blocked` handlers of an open request. Dropping
/// this clears the handlers first.
struct OpenHandlers {
    req: web_sys::IdbOpenDbRequest,
    _blocked: Closure<dyn FnMut(web_sys::Event)>,
    _upgrade: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for OpenHandlers {
    fn drop(&mut self) {
        self.req.set_onblocked(None);
        self.req.set_onupgradeneeded(None);
    }
}

pub(crate) async fn open(name: &str, version: u32, owner: Weak<Inner>) -> Result<Conn> {
    let factory = factory().map_err(|e| open_error(name, version, e))?;
    let sys_req = factory.open_with_u32(name, version).map_err(|e| open_error(name, version, js_parts(&e)))?;
    let done = Req::new(sys_req.clone().into());
    let req = async move { done.result().await?.dyn_into::<IdbDatabase>() };
    let (blocked_tx, blocked_rx) = sync::oneshot::<()>();
    let mut blocked_tx = Some(blocked_tx);
    let blocked = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
        if let Some(tx) = blocked_tx.take() {
            tx.send(());
        }
    });
    // A failed upgrade aborts its transaction, which fails the open; the
    // upgrade's own error is the one reported.
    let upgrade_err: Rc<RefCell<Option<JsValue>>> = Rc::default();
    let upgrade = {
        let (req, err) = (sys_req.clone(), upgrade_err.clone());
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
            if let Err(e) = upgrade(&req) {
                *err.borrow_mut() = Some(e);
                if let Some(tx) = req.transaction() {
                    let _ = tx.abort();
                }
            }
        })
    };
    sys_req.set_onblocked(Some(blocked.as_ref().unchecked_ref()));
    sys_req.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let handlers = OpenHandlers { req: sys_req, _blocked: blocked, _upgrade: upgrade };
    let res = match select(Box::pin(req), Box::pin(blocked_rx)).await {
        Either::Left((res, _)) => res,
        Either::Right(((), pending)) => {
            // The open stays queued in the browser (its upgrade still runs);
            // close it if it ever succeeds so that we never hold a
            // connection nobody uses.
            wasm_bindgen_futures::spawn_local(async move {
                let _handlers = handlers;
                if let Ok(db) = pending.await {
                    db.close();
                }
            });
            return Err(Error::Storage(format!(
                "IndexedDB {name:?}: opening at schema version {version} is blocked: another tab or worker \
                 holds the database open at an older version and does not close it; close the other tabs \
                 of this site (or reload them) and try again"
            )));
        }
    };
    drop(handlers);
    let failed = upgrade_err.borrow_mut().take();
    if let Some(e) = failed {
        if let Ok(db) = res {
            db.close();
        }
        return Err(open_error(name, version, js_parts(&e)));
    }
    let db = res.map_err(|e| open_error(name, version, js_parts(&e)))?;
    if !db.object_store_names().contains(STORE) {
        db.close();
        return Err(Error::Storage(format!(
            "IndexedDB {name:?}: the database exists at version {} without Waymark's object store {STORE:?}; \
             it belongs to other code: choose another database name",
            crate::error::Num(db.version())
        )));
    }
    // versionchange: another context upgrades or deletes the database and
    // waits for us to close. close: the browser dropped the connection.
    let handler = Closure::<dyn FnMut(web_sys::Event)>::new(move |_e: web_sys::Event| {
        if let Some(inner) = owner.upgrade() {
            IdbStorage { inner }.drop_connection();
        }
    });
    db.set_onversionchange(Some(handler.as_ref().unchecked_ref()));
    db.set_onclose(Some(handler.as_ref().unchecked_ref()));
    Ok(Conn { db, handler })
}

impl IdbStorage {
    /// The current connection, opening one if needed.
    pub(crate) async fn connection(&self) -> Result<IdbDatabase> {
        if self.inner.closed.get() {
            return Err(self.err("using the storage", "it was closed"));
        }
        if let Some(c) = self.inner.conn.borrow().as_ref() {
            return Ok(c.db.clone());
        }
        let _g = self.inner.opening.lock().await;
        if let Some(c) = self.inner.conn.borrow().as_ref() {
            return Ok(c.db.clone());
        }
        let conn = open(&self.inner.name, self.inner.version, Rc::downgrade(&self.inner)).await?;
        let db = conn.db.clone();
        *self.inner.conn.borrow_mut() = Some(conn);
        if self.inner.opened.replace(true) {
            self.bump(|s| s.reopens += 1);
        }
        Ok(db)
    }

    /// Forgets the connection (it was lost or is closing); the next call reopens.
    pub(crate) fn drop_connection(&self) {
        if let Some(c) = self.inner.conn.borrow_mut().take() {
            c.close();
        }
    }

    /// Runs `f` on a connection; a lost connection is reopened once and `f`
    /// retried. `f`'s flag says the previous attempt died while committing.
    pub(super) async fn with_retry<T>(&self, f: impl AsyncFn(&IdbDatabase, bool) -> std::result::Result<T, Fail>) -> Result<T> {
        let mut retried = false;
        let mut maybe_committed = false;
        loop {
            let db = self.connection().await?;
            match f(&db, maybe_committed).await {
                Ok(v) => return Ok(v),
                Err(Fail::Lost { at_commit, .. }) if !retried => {
                    self.drop_connection();
                    retried = true;
                    maybe_committed = at_commit;
                }
                Err(Fail::Lost { msg, .. }) => return Err(Error::Storage(msg)),
                Err(Fail::Other(e)) => return Err(e),
            }
        }
    }
}

/// `(name, message)` of a JS error value.
pub(crate) fn js_parts(v: &JsValue) -> (String, String) {
    if let Some(d) = v.dyn_ref::<web_sys::DomException>() {
        return (d.name(), d.message());
    }
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return (String::from(e.name()), String::from(e.message()));
    }
    ("Error".into(), format!("{v:?}"))
}

/// The global `indexedDB` (windows, workers, and runtimes with a `global`),
/// or `(name, message)` of why there is none.
pub(crate) fn factory() -> std::result::Result<IdbFactory, (String, String)> {
    let text = |m: &str| ("Error".to_string(), m.to_string());
    let g = js_sys::global();
    let has = |k: &str| Reflect::get(&g, &k.into()).is_ok_and(|v| !v.is_undefined());
    if !(has("Window") || has("WorkerGlobalScope") || has("global")) {
        return Err(text("IndexedDB is not available in this environment"));
    }
    let f = Reflect::get(&g, &"indexedDB".into()).map_err(|e| js_parts(&e))?;
    if f.is_undefined() || f.is_null() {
        return Err(text("the `indexedDB` getter returned null or undefined"));
    }
    Ok(f.unchecked_into())
}

fn open_error(name: &str, version: u32, (n, m): (String, String)) -> Error {
    match n.as_str() {
        "VersionError" => Error::Storage(format!(
            "IndexedDB {name:?}: the database has a newer schema than version {version} (a newer Waymark \
             upgraded it in another tab): reload this page or worker"
        )),
        "QuotaExceededError" => quota(name, "opening the database", &m),
        _ => Error::Storage(format!("IndexedDB {name:?}: opening the database failed: {n}: {m}")),
    }
}

fn quota(name: &str, what: &str, m: &str) -> Error {
    Error::Storage(format!(
        "IndexedDB {name:?}: {what} failed: the storage quota is exceeded ({m}); nothing was written. \
         Free space, delete old data, or ask for persistent storage with navigator.storage.persist()"
    ))
}

/// Sorts an error into "the connection was lost" (retried once on a new
/// connection) and everything else.
pub(crate) fn classify_parts(name: &str, what: &str, n: &str, m: &str) -> Fail {
    let lost = n == "UnknownError"
        || contains(m, "Connection to Indexed Database server lost")
        || (n == "InvalidStateError" && contains(m, "clos"));
    if lost {
        return Fail::Lost {
            msg: format!(
                "IndexedDB {name:?}: {what} failed: the connection to the database was lost ({n}: {m}) and \
                 reopening it did not help; nothing was written"
            ),
            at_commit: false,
        };
    }
    match n {
        "QuotaExceededError" => Fail::Other(quota(name, what, m)),
        _ => Fail::Other(Error::Storage(format!(
            "IndexedDB {name:?}: {what} failed, nothing of it was applied: {n}: {m}"
        ))),
    }
}

/// `str::contains` by a byte scan: messages are short and this is an error
/// path, and `str::contains(&str)` was the only user of the two-way
/// searcher in the web build (a size budget, STYLE.md habit 12).
fn contains(m: &str, needle: &str) -> bool {
    m.as_bytes().windows(needle.len()).any(|w| w == needle.as_bytes())
}

pub(crate) fn classify_js(name: &str, what: &str, e: &JsValue) -> Fail {
    let (n, m) = js_parts(e);
    classify_parts(name, what, &n, &m)
}
