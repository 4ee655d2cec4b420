//! `Storage::append_after` on IndexedDB: one readwrite transaction that reads
//! the tail of a log (`getAllKeys` + `getAll` on one key range, issued
//! together), runs the caller's synchronous `build` on it and `add`s what it
//! returns. Readwrite transactions on the store are serialised across tabs and
//! workers, so nobody can append in between: the caller cannot lose.
//!
//! It runs in its own transaction, outside the group-commit queue, because
//! `build` borrows the caller's state; the store only uses it after losing a
//! seq claim, so the common, uncontended path stays grouped.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use super::conn::classify_js;
use super::group::commit_tx;
use super::req::req;
use super::ops::{decode_key, decode_value, js_bytes, js_key, js_list, prefix_range};
use super::{Durability, Fail, IdbStorage};
use crate::error::Result;
use crate::storage::Entries;

impl IdbStorage {
    pub(super) async fn append(
        &self,
        prefix: &str,
        after: &str,
        build: &mut dyn FnMut(Entries) -> Result<Entries>,
    ) -> Result<()> {
        let name = self.inner.name.as_str();
        let what = "an append";
        let build = RefCell::new(build);
        // The first entry the last attempt wrote: after a connection lost while
        // committing, finding it in the tail means that attempt committed.
        let last: RefCell<Option<(String, Vec<u8>)>> = RefCell::new(None);
        let strict = self.inner.opts.durability == Durability::Strict;
        self.with_retry(async |db, maybe_committed| {
            let tx = super::group::write_tx(db, name, what, strict)?;
            let fail = |e: JsValue| classify_js(name, what, &e);
            let mut tail = Vec::new();
            if let Some(range) = prefix_range(prefix, Some(after)).map_err(fail)? {
                let kreq = req(tx.store.get_all_keys_with_key(&range)).map_err(fail)?;
                let vreq = req(tx.store.get_all_with_key(&range)).map_err(fail)?;
                let ks = kreq.result().await.map_err(fail)?;
                let vs = vreq.result().await.map_err(fail)?;
                for (k, v) in js_list(ks).into_iter().zip(js_list(vs)) {
                    let k = decode_key(name, k)?;
                    let v = decode_value(&k, v)?;
                    tail.push((k, v));
                }
            }
            if maybe_committed {
                if let Some(mine) = last.borrow().as_ref() {
                    if tail.iter().any(|e| e == mine) {
                        return Ok(());
                    }
                }
            }
            // Synchronous: nothing but IndexedDB requests is awaited in here.
            let entries = (build.borrow_mut())(tail)?;
            for (k, v) in &entries {
                // A failure returns, and dropping `tx` aborts it.
                tx.store.add_with_key(&js_bytes(v), &js_key(k)).map_err(fail)?;
            }
            *last.borrow_mut() = entries.first().cloned();
            commit_tx(tx, name, what).await?;
            self.bump(|s| {
                s.write_transactions += 1;
                s.writes += 1;
                s.appends += 1;
            });
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            self.inner.notifier.post(&keys);
            Ok::<(), Fail>(())
        })
        .await
    }
}
