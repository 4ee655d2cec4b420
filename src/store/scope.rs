//! A handle on one loaded scope: transactions, reads, history, checkpoints,
//! diff, restore and fork.

use std::rc::Rc;

use crate::core::codec;
use crate::core::diff::Change;
use crate::core::dims::Dims;
use crate::core::read::{AsOf, Entity, FactVersion, Query, View};
use crate::core::state::{Checkpoint, Point, ScopeState};
use crate::core::tx::{validate_provenance, Op, Provenance, TxInfo, TxRecord, check_tx_size};
use crate::core::value::Value;
use crate::error::{Error, Result};
use crate::storage::{keys, Storage};

use super::load::{apply_tail, encode_header, fetch_tail, load_checkpoints, load_scope, read_genesis, Genesis};
use super::{ScopeCell, SnapStats, Store};

mod fork;
mod pipeline;
mod view;
pub(crate) use pipeline::Queue;
pub use view::ScopeView;

/// How many times a writer re-reads the log after losing a seq claim.
const MAX_CLAIMS: usize = 64;

/// A handle on a scope. Cheap to clone; every handle on the same dimensions
/// of one store shares the loaded state.
pub struct Scope<S: Storage> {
    store: Store<S>,
    cell: Rc<ScopeCell>,
}

impl<S: Storage> Clone for Scope<S> {
    fn clone(&self) -> Self {
        Scope { store: self.store.clone(), cell: self.cell.clone() }
    }
}

impl<S: Storage> Scope<S> {
    pub(crate) fn new(store: Store<S>, cell: Rc<ScopeCell>) -> Self {
        Scope { store, cell }
    }

    pub fn store(&self) -> &Store<S> {
        &self.store
    }

    /// The scope's dimensions.
    pub fn dims(&self) -> Dims {
        self.cell.state.borrow().dims().clone()
    }

    /// The latest seq (0 before the first transaction).
    pub fn seq(&self) -> u64 {
        self.cell.state.borrow().seq()
    }

    /// A number that changes whenever the loaded state may have changed
    /// (commits, refreshes, merges, restores; never for time passing).
    pub fn generation(&self) -> u32 {
        self.cell.state.generation()
    }

    /// Runs `f` on the loaded state (no borrow escapes; never across an await).
    pub fn with_state<R>(&self, f: impl FnOnce(&ScopeState) -> R) -> R {
        f(&self.cell.state.borrow())
    }

    fn read<R>(&self, f: impl FnOnce(View<'_>) -> R) -> R {
        let now = self.store.now();
        let st = self.cell.state.borrow();
        f(st.current(now))
    }

    // ---- writing ------------------------------------------------------------

    /// Commits a transaction atomically: when this returns `Ok` it is in
    /// storage; on `Err` nothing of it is visible, now or after a reopen.
    pub async fn transact(&self, ops: Vec<Op>, prov: Provenance) -> Result<TxInfo> {
        self.store.check_open()?;
        validate_provenance(&prov)?;
        // Validated, then queued: transactions waiting together for the
        // write lock commit together, one atomic log record each (pipeline.rs).
        self.pipelined(prov, ops).await
    }

    /// Sets attributes of one entity (a one-op transaction).
    pub async fn set(
        &self,
        entity: &str,
        attrs: Vec<(String, Value)>,
        prov: Provenance,
        ty: Option<String>,
        expiry: Option<crate::core::tx::Expiry>,
    ) -> Result<TxInfo> {
        self.transact(vec![Op::Set { entity: entity.to_string(), ty, attrs, expiry }], prov).await
    }

    /// The commit path shared by transact, restore and the workflow engine.
    /// `build` makes the provenance and ops from the state and the tx time; it
    /// is re-run on the caught-up state after a lost seq claim, so decisions
    /// taken in it (a step claim, say) always see every earlier transaction.
    /// `Ok(None)` from `build` means "nothing to write" and commits nothing.
    pub(crate) async fn commit(&self, build: &super::merge::Build<'_>) -> Result<Option<TxInfo>> {
        // In call order with queued transactions (pipeline.rs).
        let _turn = self.turn().await;
        self.commit_locked(build).await
    }

    /// [`Scope::commit`] with the write lock held.
    /// `build` is a `dyn Fn`: one copy of this future serves every caller (a
    /// size budget, STYLE.md habit 12).
    async fn commit_locked(&self, build: &super::merge::Build<'_>) -> Result<Option<TxInfo>> {
        self.store.check_open()?;
        let storage = &self.store.inner.storage;
        if !storage.capabilities().atomic_create {
            // No seq to claim: writer-unique log keys, merged on read.
            return super::merge::commit(&self.store, &self.cell, build).await;
        }
        let now = self.store.now();
        if !now.is_finite() {
            return Err(Error::invalid("the clock returned a non-finite time"));
        }
        let mut genesis_claimed = false;
        for _ in 0..MAX_CLAIMS {
            let rec = {
                let st = self.cell.state.borrow();
                // Times never go backwards within a scope, so as-of by time is a prefix.
                let at = st.last_at().map_or(now, |last| now.max(last));
                let Some((prov, ops)) = build(&st, at)? else { return Ok(None) };
                TxRecord { seq: st.seq() + 1, at, cause: prov.cause, actor: prov.actor, note: prov.note, ops }
            };
            let bytes = codec::encode_tx(&rec);
            check_tx_size(bytes.len())?;
            let first = rec.seq == 1;
            if first {
                storage.put(&keys::scope_header(&self.cell.key), encode_header(&self.dims())).await?;
                if !genesis_claimed && !self.claim_genesis().await? {
                    // A fork founded this scope meanwhile: rebase onto it.
                    continue;
                }
                genesis_claimed = true;
            }
            let len = bytes.len();
            let claimed = match storage.put_if_absent(&keys::log(&self.cell.key, rec.seq), bytes).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    if first {
                        drop_orphan_header(storage, &self.cell.key).await;
                    }
                    return Err(e);
                }
            };
            if claimed {
                return self.committed(rec, len).await.map(Some);
            }
            // Lost the race. Catching up and claiming the next seq would lose
            // again, every time, to a writer committing back to back (two tabs
            // in a write loop): where the backend can, catch up and create in
            // one atomic step instead, which cannot lose.
            if let Some(done) = self.append_locked(now, build).await? {
                return Ok(done);
            }
            self.catch_up_locked().await?;
        }
        Err(Error::Conflict(format!("could not claim a seq after {MAX_CLAIMS} attempts: too many concurrent writers")))
    }

    /// Applies a record this writer created (`len` bytes stored) and
    /// snapshots when the log has grown enough (write lock held).
    async fn committed(&self, rec: TxRecord, len: usize) -> Result<TxInfo> {
        let info = self.cell.state.borrow_mut().apply_owned(rec)?;
        self.logged(len).await;
        Ok(info)
    }

    /// Before the first transaction of a scope: claims the genesis record for
    /// the log. `Ok(false)` when a fork founded the scope first; the loaded
    /// state is then replaced by the fork's (caller holds the write lock).
    async fn claim_genesis(&self) -> Result<bool> {
        let storage = &self.store.inner.storage;
        let key = &self.cell.key;
        let claimed = match storage.put_if_absent(&keys::genesis(key), codec::encode_record(&Genesis::Log)).await {
            Ok(c) => c,
            Err(e) => {
                drop_orphan_header(storage, key).await;
                return Err(e);
            }
        };
        if claimed || read_genesis(storage, key).await? == Some(Genesis::Log) {
            return Ok(true);
        }
        let (state, snap) = load_scope(storage, &self.dims(), key).await?;
        *self.cell.state.borrow_mut() = state;
        self.cell.snap.set(snap);
        Ok(false)
    }

    /// [`Storage::append_after`] on the scope's log: applies the records other
    /// writers committed, builds the transaction on the caught-up state and
    /// creates it, atomically. `None` when the backend cannot. Caller holds
    /// the write lock.
    async fn append_locked(
        &self,
        now: f64,
        build: &super::merge::Build<'_>,
    ) -> Result<Option<Option<TxInfo>>> {
        let storage = &self.store.inner.storage;
        let key = self.cell.key.clone();
        let mut built: Option<(TxRecord, usize)> = None;
        let mut caught_up = 0usize;
        let mut step = |tail: Vec<(String, Vec<u8>)>| -> Result<Vec<(String, Vec<u8>)>> {
            built = None;
            let mut recs = Vec::with_capacity(tail.len());
            for (k, v) in tail {
                let rec = codec::decode_tx(&k, &v)?;
                if keys::seq_of(&k)? != rec.seq {
                    return Err(Error::corrupt(k, format!("the record holds seq {}", rec.seq)));
                }
                recs.push((k, v.len(), rec));
            }
            caught_up += apply_tail(&mut self.cell.state.borrow_mut(), recs)?;
            let st = self.cell.state.borrow();
            let at = st.last_at().map_or(now, |last| now.max(last));
            let Some((prov, ops)) = build(&st, at)? else { return Ok(Vec::new()) };
            let rec = TxRecord { seq: st.seq() + 1, at, cause: prov.cause, actor: prov.actor, note: prov.note, ops };
            let bytes = codec::encode_tx(&rec);
            check_tx_size(bytes.len())?;
            let entry = (keys::log(&key, rec.seq), bytes);
            built = Some((rec, entry.1.len()));
            Ok(vec![entry])
        };
        let after = keys::log(&key, self.seq());
        let done = storage.append_after(&keys::log_prefix(&key), &after, &mut step).await;
        self.cell.tail_grew(caught_up);
        if !done? {
            return Ok(None);
        }
        let Some((rec, len)) = built else { return Ok(Some(None)) };
        let info = self.cell.state.borrow_mut().apply_owned(rec)?;
        self.logged(len).await;
        Ok(Some(Some(info)))
    }

    /// Reads records other writers committed and applies them. Caller holds the write lock.
    async fn catch_up_locked(&self) -> Result<usize> {
        let storage = &self.store.inner.storage;
        if !storage.capabilities().atomic_create {
            return super::merge::catch_up(storage, &self.cell).await;
        }
        let from = self.seq();
        let tail = fetch_tail(storage, &self.cell.key, from).await?;
        let bytes = apply_tail(&mut self.cell.state.borrow_mut(), tail)?;
        self.cell.tail_grew(bytes);
        Ok(bytes)
    }

    /// Loads the scope's state again from storage, after an apply that may
    /// have stopped part-way (`commit_packed`); left as it is if that fails.
    async fn reload(&self) {
        if let Ok((state, snap)) = load_scope(&self.store.inner.storage, &self.dims(), &self.cell.key).await {
            *self.cell.state.borrow_mut() = state;
            self.cell.snap.set(snap);
        }
    }

    /// Catches up with transactions and checkpoints written by other writers
    /// sharing the storage. Returns the latest seq.
    pub async fn refresh(&self) -> Result<u64> {
        self.store.check_open()?;
        let _turn = self.turn().await;
        self.catch_up_locked().await?;
        let mut st = self.cell.state.borrow().clone();
        load_checkpoints(&self.store.inner.storage, &self.cell.key, &mut st).await?;
        let seq = st.seq();
        *self.cell.state.borrow_mut() = st;
        Ok(seq)
    }

    /// After this writer stored `len` bytes of log records (write lock
    /// held): counts them and snapshots when the log has grown enough.
    async fn logged(&self, len: usize) {
        self.cell.tail_grew(len);
        self.maybe_snapshot().await;
    }

    /// Writes a snapshot when the log tail has grown enough. A failed snapshot
    /// is not an error: the log is complete and the next commit tries again.
    async fn maybe_snapshot(&self) {
        let opts = &self.store.inner.opts;
        let snap = self.cell.snap.get();
        let threshold = (snap.base_bytes as f64 * opts.snapshot_factor).max(opts.snapshot_min_bytes as f64);
        if (snap.tail_bytes as f64) < threshold {
            return;
        }
        let (seq, bytes) = {
            let st = self.cell.state.borrow();
            (st.seq(), codec::encode_snapshot(&st))
        };
        let storage = &self.store.inner.storage;
        let len = bytes.len();
        if storage.put(&keys::snapshot(&self.cell.key, seq), bytes).await.is_ok() {
            if snap.base_seq > 0 && snap.base_seq != seq {
                let _ = storage.delete(&keys::snapshot(&self.cell.key, snap.base_seq)).await;
            }
            self.cell.snap.set(SnapStats { base_seq: seq, base_bytes: len, tail_bytes: 0 });
            // Same schedule as the snapshot walk: keeps the in-memory state
            // as packed as a reopened one.
            self.cell.state.borrow_mut().compact();
        }
    }

    // ---- current state -------------------------------------------------------

    pub fn entity(&self, id: &str) -> Option<Entity> {
        self.read(|v| v.entity(id))
    }

    pub fn value(&self, entity: &str, attr: &str) -> Option<Value> {
        self.read(|v| v.value(entity, attr))
    }

    pub fn find(&self, q: &Query) -> Vec<Entity> {
        self.read(|v| v.find(q))
    }

    pub fn entities(&self) -> Vec<Entity> {
        self.read(|v| v.entities())
    }

    // ---- time, history, provenance -----------------------------------------

    /// A read-only view of the past, pinned at creation.
    pub fn as_of(&self, when: AsOf) -> Result<ScopeView> {
        let st = self.cell.state.borrow();
        let v = st.as_of(when)?;
        Ok(ScopeView { cell: self.cell.clone(), seq: v.seq(), now: v.now() })
    }

    pub fn history(&self, entity: &str, attr: &str) -> Vec<FactVersion> {
        self.cell.state.borrow().history(entity, attr)
    }

    pub fn why(&self, entity: &str, attr: &str) -> Option<FactVersion> {
        self.read(|v| v.why(entity, attr))
    }

    pub fn expiring(&self, within_ms: f64) -> Vec<FactVersion> {
        let now = self.store.now();
        self.cell.state.borrow().expiring(now, within_ms)
    }

    // ---- checkpoints, diff, restore, fork -----------------------------------

    /// Names the current seq. A second checkpoint with the same name is `CONFLICT`.
    pub async fn checkpoint(&self, name: &str) -> Result<Checkpoint> {
        self.store.check_open()?;
        let key = keys::checkpoint(&self.cell.key, name)?;
        let _turn = self.turn().await;
        if self.cell.state.borrow().checkpoint(name).is_some() {
            return Err(Error::Conflict(format!("a checkpoint named {name:?} already exists in this scope")));
        }
        let now = self.store.now();
        if !now.is_finite() {
            return Err(Error::invalid("the clock returned a non-finite time"));
        }
        let cp = Checkpoint { name: name.to_string(), seq: self.seq(), at: now };
        let ord = self.cell.state.borrow().checkpoints().len() as u64;
        // Strict durability: a checkpoint is what people roll back to.
        if !self.store.inner.storage.put_if_absent_durable(&key, codec::encode_checkpoint(&cp, ord)).await? {
            return Err(Error::Conflict(format!("a checkpoint named {name:?} already exists in this scope")));
        }
        self.cell.state.borrow_mut().add_checkpoint(cp.clone())?;
        Ok(cp)
    }

    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        self.cell.state.borrow().checkpoints().to_vec()
    }

    /// Changes from `from` to `to` (default: now), ordered by entity then attribute.
    pub fn diff(&self, from: &Point, to: Option<&Point>) -> Result<Vec<Change>> {
        let st = self.cell.state.borrow();
        let a = st.resolve(from)?;
        let b = match to {
            Some(p) => st.resolve(p)?,
            None => st.seq(),
        };
        st.diff(a, b)
    }

    /// Appends a transaction that puts back the values (and their
    /// `validUntil`) and types of `to`. History is kept.
    pub async fn restore(&self, to: &Point, prov: Provenance) -> Result<TxInfo> {
        self.store.check_open()?;
        validate_provenance(&prov)?;
        let seq = self.cell.state.borrow().resolve(to)?;
        let built = self.commit(&|st, _| Ok(Some((prov.clone(), st.restore_ops(seq)?)))).await?;
        built.ok_or_else(|| Error::Storage("internal: a restore was built but not committed".into()))
    }

}

/// Removes the scope header written just before a first log record (or a
/// fork's snapshot) whose write failed, so that a failed write does not make
/// the scope count as holding a transaction. Keeps the header if any log
/// record or snapshot shows that another writer committed meanwhile. Best
/// effort: a header left behind is harmless to loading.
pub(super) async fn drop_orphan_header<S: Storage>(storage: &S, scope: &str) {
    let log = storage.list(&keys::log_prefix(scope), None, Some(1)).await;
    let snap = storage.list(&keys::snapshot_prefix(scope), None, Some(1)).await;
    if matches!((log, snap), (Ok(l), Ok(s)) if l.is_empty() && s.is_empty()) {
        let _ = storage.delete(&keys::scope_header(scope)).await;
    }
}
