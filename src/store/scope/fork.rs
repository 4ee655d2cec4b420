//! Forks: a new scope founded on this scope's log up to a point.

use crate::core::codec;
use crate::core::dims::Dims;
use crate::core::state::{Point, ScopeState};
use crate::error::{Error, Result};
use crate::storage::{keys, Storage};

use super::super::load::{encode_header, Genesis};
use super::super::SnapStats;
use super::{drop_orphan_header, Scope};

impl<S: Storage> Scope<S> {
    /// Creates scope `dims` holding this scope's log up to `at`; seqs continue
    /// from there. The target must be empty and differ from this scope.
    pub async fn fork(&self, at: &Point, dims: Dims) -> Result<Scope<S>> {
        self.store.check_open()?;
        let seq = self.cell.state.borrow().resolve(at)?;
        if dims == self.dims() {
            return Err(Error::Conflict("cannot fork a scope onto itself".into()));
        }
        let target = self.store.scope(dims.clone()).await?;
        let _guard = target.turn().await;
        target.catch_up_locked().await?;
        if target.seq() > 0 {
            return Err(Error::Conflict("the fork target scope is not empty".into()));
        }
        let mut state = self.cell.state.borrow().truncated(seq, dims.clone());
        // Checkpoints the (transaction-less) target already has are stored:
        // keep them, as a reopen would.
        state.checkpoints = target.cell.state.borrow().checkpoints().to_vec();
        if seq > 0 && self.store.inner.storage.capabilities().atomic_create {
            self.found_fork(&target, &state, seq).await?;
        } else if seq > 0 {
            // Eventually consistent storage: no atomic genesis claim is possible;
            // the merge layer owns the fork base (see store::merge).
            let storage = &self.store.inner.storage;
            let bytes = codec::encode_snapshot(&state);
            let len = bytes.len();
            storage.put(&keys::scope_header(&target.cell.key), encode_header(&dims)).await?;
            let snap_key = super::super::merge::snapshot_key(&target.cell.key, seq, 0, None);
            match storage.put_if_absent(&snap_key, bytes).await {
                Ok(true) => {}
                Ok(false) => return Err(Error::Conflict("the fork target scope is not empty".into())),
                Err(e) => {
                    drop_orphan_header(storage, &target.cell.key).await;
                    return Err(e);
                }
            }
            target.cell.snap.set(SnapStats { base_seq: seq, base_bytes: len, tail_bytes: 0 });
            super::super::merge::set_fork_base(&target.cell, seq, snap_key);
        }
        *target.cell.state.borrow_mut() = state;
        drop(_guard);
        Ok(target)
    }
    /// Founds `target` as a fork holding `state` (up to `seq`): writes the
    /// base snapshot under a key of its own, then claims the target's genesis
    /// record naming it. Losing that claim to a first transaction or another
    /// fork is `CONFLICT`, and the orphan base is removed; so a fork can never
    /// hide a transaction acknowledged to another writer.
    async fn found_fork(&self, target: &Scope<S>, state: &ScopeState, seq: u64) -> Result<()> {
        let storage = &self.store.inner.storage;
        let key = &target.cell.key;
        let bytes = codec::encode_snapshot(state);
        let len = bytes.len();
        let base = keys::fork_base(key, seq, &self.store.inner.opts.holder);
        storage.put(&keys::scope_header(key), encode_header(state.dims())).await?;
        let base_ref = &base;
        let undo = |with_genesis: bool| async move {
            let _ = storage.delete(base_ref).await;
            if with_genesis {
                let _ = storage.delete(&keys::genesis(key)).await;
            }
            drop_orphan_header(storage, key).await;
        };
        if let Err(e) = storage.put(&base, bytes).await {
            undo(false).await;
            return Err(e);
        }
        let genesis = codec::encode_record(&Genesis::Fork { base: base.clone() });
        match storage.put_if_absent(&keys::genesis(key), genesis).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = storage.delete(&base).await;
                return Err(Error::Conflict("the fork target scope is not empty".into()));
            }
            Err(e) => {
                undo(false).await;
                return Err(e);
            }
        }
        // Stores written before the genesis record existed have none: check
        // that no transaction predates ours.
        match storage.list(&keys::log_prefix(key), None, Some(1)).await {
            Ok(found) if found.is_empty() => {}
            Ok(_) => {
                undo(true).await;
                return Err(Error::Conflict("the fork target scope is not empty".into()));
            }
            Err(e) => {
                undo(true).await;
                return Err(e);
            }
        }
        target.cell.snap.set(SnapStats { base_seq: seq, base_bytes: len, tail_bytes: 0 });
        Ok(())
    }
}
