//! Group commit: the write queue and the one readwrite transaction per group.
//! See the module docs of `idb` for the semantics.

use std::collections::HashMap;

use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbKeyRange};

use super::conn::{classify_js, classify_parts};
use super::req::{req, Tx};
use super::ops::{decode_key, js_bytes, js_key, js_list};
use super::{sync, Fail, IdbStorage};
use crate::error::Result;

/// A group stops growing past this many writes or value bytes (a single
/// member larger than that still goes, alone). Groups are issued one after
/// another, each as soon as the one before is stored, and the members of the
/// one before are answered meanwhile: a burst split into groups of a few
/// hundred writes lets the scopes apply and answer one group while IndexedDB
/// stores the next, where one big group would leave all of that work until
/// after its commit. (The scope pipeline's chunks, `CHUNK` in
/// store/scope/pipeline.rs, are the same size.)
const MAX_GROUP_WRITES: usize = 250;
const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;
/// A create of at least this many ascending keys is probed with one range read.
const MIN_RANGE_PROBE: usize = 4;

/// One put or delete, encoded before any transaction opens.
pub(crate) struct Write {
    pub(crate) key: String,
    jkey: JsValue,
    /// `None` deletes.
    value: Option<JsValue>,
    /// The bytes of a create, to recognise our own write after a lost connection.
    bytes: Option<Vec<u8>>,
    len: usize,
}

impl Write {
    pub(crate) fn put(key: &str, value: &[u8]) -> Write {
        Write { key: key.to_string(), jkey: js_key(key), value: Some(js_bytes(value)), bytes: None, len: value.len() }
    }

    pub(crate) fn delete(key: &str) -> Write {
        Write { key: key.to_string(), jkey: js_key(key), value: None, bytes: None, len: 0 }
    }

    pub(crate) fn create(key: &str, value: Vec<u8>) -> Write {
        Write { key: key.to_string(), jkey: js_key(key), value: Some(js_bytes(&value)), len: value.len(), bytes: Some(value) }
    }
}

pub(crate) enum Work {
    /// Applied whole, in order. Answers the number of writes.
    Batch(Vec<Write>),
    /// Creates the keys in order while they are absent, stopping at the
    /// first that exists. Answers how many were created.
    Create(Vec<Write>),
}

impl Work {
    fn writes(&self) -> &[Write] {
        match self {
            Work::Batch(w) | Work::Create(w) => w,
        }
    }
}

/// A readwrite transaction on the store; errors name the database and `what`.
pub(super) fn write_tx(db: &IdbDatabase, name: &str, what: &str, strict: bool) -> std::result::Result<Tx, Fail> {
    Tx::write(db, strict).map_err(|e| classify_js(name, what, &e))
}

/// Issues one write: an `add` for a create (`create`), else a put or a
/// delete. A synchronous failure is returned; the caller returns it too, and
/// dropping its uncommitted [`Tx`] aborts the transaction (nothing of it is
/// written).
fn issue(store: &web_sys::IdbObjectStore, w: &Write, create: bool, fail_key: Option<&str>) -> std::result::Result<(), JsValue> {
    match &w.value {
        Some(v) if create => store.add_with_key(v, &w.jkey).map(drop),
        Some(v) => store.put_with_key(v, &w.jkey).map(drop),
        None => store.delete(&w.jkey).map(drop),
    }?;
    if fail_key == Some(w.key.as_str()) {
        // Test hook: an add on the key just written fails later with
        // ConstraintError and aborts the transaction mid-way.
        let _ = store.add_with_key(&JsValue::NULL, &w.jkey);
    }
    Ok(())
}

/// Commits; an abort names its cause (quota, lost connection, …). A
/// connection lost here may have committed (`at_commit`).
pub(super) async fn commit_tx(tx: Tx, name: &str, what: &str) -> std::result::Result<(), Fail> {
    tx.commit().await.map_err(|(n, m)| at_commit(classify_parts(name, what, &n, &m)))
}

fn at_commit(fail: Fail) -> Fail {
    match fail {
        Fail::Lost { msg, .. } => Fail::Lost { msg, at_commit: true },
        other => other,
    }
}

pub(crate) struct Member {
    pub(crate) work: Work,
    pub(crate) strict: bool,
    pub(crate) reply: sync::Sender<Result<usize>>,
}

impl IdbStorage {
    /// Drains the queue, one group per transaction, until it is empty.
    pub(super) async fn flush_loop(&self) {
        loop {
            let group = self.take_group();
            if group.is_empty() {
                self.inner.flushing.set(false);
                if self.inner.closed.get() {
                    self.drop_connection();
                }
                return;
            }
            self.run_group(group).await;
        }
    }

    fn take_group(&self) -> Vec<Member> {
        let mut q = self.inner.queue.borrow_mut();
        let (mut writes, mut bytes) = (0usize, 0usize);
        let mut group = Vec::new();
        while let Some(m) = q.front() {
            let w = m.work.writes();
            let (n, b) = (w.len(), w.iter().map(|w| w.len).sum::<usize>());
            if !group.is_empty() && (writes + n > MAX_GROUP_WRITES || bytes + b > MAX_GROUP_BYTES) {
                break;
            }
            writes += n;
            bytes += b;
            group.extend(q.pop_front());
        }
        group
    }

    async fn run_group(&self, group: Vec<Member>) {
        match self.commit_members(&group).await {
            Ok(answers) => {
                for (m, a) in group.into_iter().zip(answers) {
                    m.reply.send(Ok(a));
                }
            }
            Err(e) if group.len() == 1 => {
                group.into_iter().for_each(|m| m.reply.send(Err(e.clone())));
            }
            Err(_) => {
                // Nothing of the group was applied: retry each member alone so
                // that a member fails only when it fails by itself.
                self.bump(|s| s.split_groups += 1);
                for m in group {
                    let r = self.commit_members(std::slice::from_ref(&m)).await.map(|a| a[0]);
                    m.reply.send(r);
                }
            }
        }
    }

    async fn commit_members(&self, ms: &[Member]) -> Result<Vec<usize>> {
        let strict = self.inner.opts.durability == super::Durability::Strict || ms.iter().any(|m| m.strict);
        let creates = ms.iter().any(|m| matches!(m.work, Work::Create(_)));
        let answers = self
            .with_retry(async |db, retried| {
                if creates && !retried {
                    if let Some(answers) = self.try_adds(db, ms, strict).await? {
                        return Ok(answers);
                    }
                }
                self.try_group(db, ms, strict, retried).await
            })
            .await?;
        self.bump(|s| {
            s.write_transactions += 1;
            s.writes += ms.len() as u64;
        });
        Ok(answers)
    }

    /// The optimistic form of [`IdbStorage::try_group`]: every create is an
    /// `add`, which fails if its key exists, so every write goes out at once
    /// with no probe to wait for. The probes' round trip is what kept the
    /// transaction from being issued in one go: with it, the main thread
    /// has to come back between probing and writing, and cannot do other
    /// work (apply and answer the previous chunk of a run) while IndexedDB
    /// writes. A create whose key exists makes its `add` fail, which aborts
    /// the whole transaction with `ConstraintError`: nothing was written,
    /// and `Ok(None)` sends the group to `try_group`, which probes and
    /// creates what it can (a lost seq race or step claim costs one
    /// transaction more).
    async fn try_adds(&self, db: &IdbDatabase, ms: &[Member], strict: bool) -> std::result::Result<Option<Vec<usize>>, Fail> {
        let name = self.inner.name.as_str();
        let what = "a write transaction";
        let tx = write_tx(db, name, what, strict)?;
        let fail_key = self.inner.fail_key.borrow().clone();
        let mut answers = Vec::with_capacity(ms.len());
        for m in ms {
            let (ws, create) = match &m.work {
                Work::Batch(ws) => (ws, false),
                Work::Create(ws) => (ws, true),
            };
            for w in ws {
                issue(&tx.store, w, create, fail_key.as_deref()).map_err(|e| classify_js(name, what, &e))?;
            }
            answers.push(ws.len());
        }
        if let Err((n, m)) = tx.commit().await {
            if n == "ConstraintError" && fail_key.is_none() {
                self.bump(|s| s.taken_keys += 1);
                return Ok(None);
            }
            return Err(at_commit(classify_parts(name, what, &n, &m)));
        }
        let keys: Vec<&str> = ms.iter().flat_map(|m| m.work.writes()).map(|w| w.key.as_str()).collect();
        self.inner.notifier.post(&keys);
        Ok(Some(answers))
    }

    /// One readwrite transaction: probe the creates' keys, decide every
    /// member in order, issue the writes, commit. Only IndexedDB requests are
    /// awaited in here.
    async fn try_group(&self, db: &IdbDatabase, ms: &[Member], strict: bool, verify: bool) -> std::result::Result<Vec<usize>, Fail> {
        let name = self.inner.name.as_str();
        let what = "a write transaction";
        let tx = write_tx(db, name, what, strict)?;
        let fail = |e: JsValue| classify_js(name, what, &e);

        // 1. Does each create's key exist? All probes go out at once; after a
        //    lost connection they read the value, to recognise our own write.
        //    A create of ascending keys (a scope's queued log records, from
        //    `create_all`) is probed with one `getAllKeys` over its key range
        //    instead of one request per key: requests, not bytes, are what
        //    cost here.
        let mut probe_keys: Vec<&Write> = Vec::new();
        let mut ranges: Vec<&[Write]> = Vec::new();
        {
            let mut seen = std::collections::HashSet::new();
            for m in ms {
                if let Work::Create(ws) = &m.work {
                    if !verify && ws.len() >= MIN_RANGE_PROBE && ws.windows(2).all(|p| p[0].key < p[1].key) {
                        ranges.push(ws);
                    } else {
                        probe_keys.extend(ws.iter().filter(|w| seen.insert(w.key.as_str())));
                    }
                }
            }
        }
        let mut range_reqs = Vec::with_capacity(ranges.len());
        for ws in &ranges {
            let (first, last) = (&ws[0], &ws[ws.len() - 1]);
            let range = IdbKeyRange::bound_with_lower_open_and_upper_open(&first.jkey, &last.jkey, false, false).map_err(fail)?;
            range_reqs.push(req(tx.store.get_all_keys_with_key(&range)).map_err(fail)?);
        }
        let mut probes = Vec::with_capacity(probe_keys.len());
        for w in &probe_keys {
            let r = if verify { tx.store.get(&w.jkey) } else { tx.store.get_key(&w.jkey) };
            probes.push(req(r).map_err(fail)?);
        }
        let mut existing: HashMap<&str, Option<JsValue>> = HashMap::with_capacity(probes.len());
        for (ws, req) in ranges.iter().zip(range_reqs) {
            let found = req.result().await.map_err(fail)?;
            let mut present = std::collections::HashSet::new();
            for k in js_list(found) {
                present.insert(decode_key(name, k)?);
            }
            for w in ws.iter() {
                let v = present.contains(&w.key).then_some(JsValue::TRUE);
                existing.insert(w.key.as_str(), v);
            }
        }
        for (w, p) in probe_keys.iter().zip(probes) {
            existing.insert(w.key.as_str(), p.value().await.map_err(fail)?);
        }

        // 2. Decide, in arrival order, with the group's own writes overlaid.
        let mut overlay: HashMap<&str, bool> = HashMap::new();
        let mut plan: Vec<&Write> = Vec::new();
        let mut answers = Vec::with_capacity(ms.len());
        for m in ms {
            match &m.work {
                Work::Batch(ws) => {
                    for w in ws {
                        overlay.insert(w.key.as_str(), w.value.is_some());
                        plan.push(w);
                    }
                    answers.push(ws.len());
                }
                Work::Create(ws) => {
                    let mut n = 0;
                    for w in ws {
                        let stored = existing.get(w.key.as_str()).and_then(Option::as_ref);
                        let present = overlay.get(w.key.as_str()).copied().unwrap_or(stored.is_some());
                        if present {
                            // After a lost connection: the lost transaction may have committed.
                            let ours = verify
                                && !overlay.contains_key(w.key.as_str())
                                && stored.and_then(|v| v.dyn_ref::<js_sys::Uint8Array>()).map(|a| a.to_vec())
                                    == w.bytes;
                            if !ours {
                                break;
                            }
                        } else {
                            plan.push(w);
                        }
                        overlay.insert(w.key.as_str(), true);
                        n += 1;
                    }
                    answers.push(n);
                }
            }
        }

        // 3. Issue every write; a synchronous failure aborts the whole group.
        let fail_key = self.inner.fail_key.borrow().clone();
        for w in &plan {
            issue(&tx.store, w, false, fail_key.as_deref()).map_err(fail)?;
        }

        // 4. Commit; an abort names its cause (quota, lost connection, …).
        commit_tx(tx, name, what).await?;
        let keys: Vec<&str> = plan.iter().map(|w| w.key.as_str()).collect();
        self.inner.notifier.post(&keys);
        Ok(answers)
    }
}
