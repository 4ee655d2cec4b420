//! Pipelining: transactions of one scope that wait for its write lock
//! together are committed together.
//!
//! A scope commits under its write lock, one log record per transaction, each
//! created only if its seq is free. Committed one by one, a scope with many
//! transactions in flight (an agent firing writes without awaiting each, a
//! page issuing a burst) pays one storage round trip each: on IndexedDB one
//! readwrite transaction each, whose fixed cost dwarfs the bytes
//! (PLATFORMS.md "IndexedDB": 1,000 puts in one transaction ≈ 80 ms, 1,000
//! transactions ≈ 2 s).
//!
//! So `transact` does not build its record under the lock straight away: it
//! queues its provenance and ops on the scope ([`Queue`]) and then waits for
//! the lock *or* for its answer, whichever comes first. Whoever holds the lock
//! takes everything queued, oldest first, builds the records with contiguous
//! seqs (`seq + 1`, `seq + 2`, …, times never decreasing) and creates them with
//! one [`Storage::create_all`]: one IndexedDB transaction, grouped with other
//! scopes' writes. Each transaction is still its own log record, so each stays
//! atomic and is answered on its own:
//! - a transaction whose record is too large gets its own error and takes no
//!   seq; the others go on (ops are validated before they are queued);
//! - `create_all` creates a prefix: the records it created are applied and
//!   answered; the first whose seq another writer (tab, worker, store) took
//!   meanwhile, and every later one, go through the one-at-a-time path
//!   ([`Scope::commit_locked`]), which catches up and cannot starve;
//! - a storage error created nothing (the call is atomic): every transaction
//!   of that call gets it, nothing is applied;
//! - a backend without an atomic `create_all` (the default), the first
//!   transaction of a scope (it also writes the header and genesis record)
//!   and a lone transaction take the one-at-a-time path.
//!
//! On storage that is not instant (IndexedDB) a long run is created in
//! chunks of [`CHUNK`] records, one `create_all` each, each sent as soon as
//! the one before it is stored. While a chunk is being stored, the one before
//! it is applied and answered and the one after it is built
//! ([`Scope::create_run`]): IndexedDB writes in another process, and this
//! keeps Waymark's own work (encoding, applying, answering promises) from
//! adding to the burst's time. Chunks are created in order, so what is
//! created is still a prefix of the run.
//!
//! On memory storage, whose calls all complete at once, a transaction that
//! finds the queue empty and the lock free (nearly all of them: each one
//! completes within its own call) skips all this: it takes the lock and
//! creates its record there and then ([`Scope::commits_now`],
//! [`Scope::commit_alone`]), and only a lost seq claim sends it down the
//! one-at-a-time path. A transaction from the JS package's fast path does
//! the same from its packed bytes ([`Scope::commit_packed`]): its record is
//! written and applied from those bytes, without ops being built.
//!
//! Call order is kept. The queue is first in, first out, and only the lock
//! holder takes from it, so seqs follow the order of the `transact` calls.
//! Every other use of the write lock — restores and the workflow engine
//! (`commit`), `checkpoint`, `refresh`, a fork onto the scope — goes through
//! [`Scope::turn`], which queues a *turn* in the same queue: runs stop at a
//! turn, and its holder first commits every transaction queued before it
//! (`a.set(…); a.checkpoint("x"); a.set(…)` without awaiting puts the
//! checkpoint between the two). Only `transact` (and `set`) is pipelined: its
//! ops do not depend on the state, so queued records can be built back to back
//! without applying the earlier ones first; restores and workflow steps build
//! from the state, one at a time, in their turn.
//!
//! Waiting: a queued transaction waits for its answer or the lock; a turn
//! waits for the lock. Whoever holds the lock and finds someone else's turn at
//! the front of the queue lets go and *parks* until [`Queue::kick`] (run when
//! the lock is let go) says the front moved. Nothing waits on anything that
//! nobody will signal, even when a caller's future is dropped (native callers
//! can cancel; JS promises never do): a dropped turn leaves the queue, a
//! dropped transaction stays queued and is committed by the next lock holder.

use std::collections::VecDeque;
use std::pin::pin;
use std::rc::Rc;

use futures_util::future::{join, select, Either};
use futures_util::lock::MutexGuard;

use super::Scope;
use crate::core::codec;
use crate::core::state::ScopeState;
use crate::core::tx::{Op, Provenance, TxInfo, TxRecord, check_tx_size};
use crate::error::{Error, Result};
use crate::storage::{keys, Storage};
use crate::core::packed::Packed;

mod queue;

pub(crate) use queue::Queue;
use queue::{Entry, Fired, Front, Queued, Signal, YieldOnce};

/// At most this many transactions, or this many encoded bytes (a larger
/// single record still goes, alone), per `create_all`.
const MAX_RUN: usize = 1000;
const MAX_RUN_BYTES: usize = 4 * 1024 * 1024;
/// Records per `create_all` within a run on storage that is not instant
/// ([`Scope::create_run`]).
const CHUNK: usize = 250;

/// The write lock, held by a queue participant: letting go kicks the queue.
struct Held<'a> {
    queue: &'a Queue,
    _guard: MutexGuard<'a, ()>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.queue.kick();
    }
}

/// The scope's write lock, taken in call order ([`Scope::turn`]). Dropping it
/// lets the next in the queue go.
pub(crate) struct Turn<'a> {
    signal: Rc<Signal>,
    held: Held<'a>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.held.queue.remove_turn(&self.signal);
    }
}

/// A queued turn whose caller went away before its turn came.
struct Waiting<'a> {
    queue: &'a Queue,
    signal: Option<Rc<Signal>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.signal.take() {
            self.queue.remove_turn(&s);
            self.queue.kick();
        }
    }
}

/// A record built for the run, with its transaction.
struct Built {
    q: Rc<Queued>,
    rec: TxRecord,
    len: usize,
}

impl<S: Storage> Scope<S> {
    /// Validates and queues a transaction, then waits for its answer; leads
    /// the queue whenever it holds the write lock first. Bad input fails
    /// here, before any IO.
    pub(super) async fn pipelined(&self, prov: Provenance, ops: Vec<Op>) -> Result<TxInfo> {
        let me = Queued::new(prov, ops)?;
        let queue = &self.cell.queue;
        if let Some(_held) = self.hold_now() {
            if self.seq() == 0 {
                return self.commit_one(&me).await;
            }
            return self.commit_alone(&me).await;
        }
        let me = Rc::new(me);
        queue.push(Entry::Tx(me.clone()));
        loop {
            if let Some(r) = me.take() {
                return r;
            }
            if me.parked.get() {
                Fired(&me.signal).await;
                me.parked.set(false);
                continue;
            }
            // The answer first (`select` polls in order): a transaction the
            // lock holder committed returns without taking the lock.
            let guard = match select(pin!(Fired(&me.signal)), pin!(self.cell.write.lock())).await {
                Either::Left(_) => continue,
                Either::Right((guard, _)) => guard,
            };
            let _held = Held { queue, _guard: guard };
            if me.answered() {
                continue;
            }
            // Yield once first, so that transactions issued in the same turn
            // as ours (`Promise.all` of many `transact`s: their tasks are
            // already scheduled) join the run instead of waiting for the next
            // (not on instant storage: nothing to share there).
            if !self.store.inner.storage.instant() {
                YieldOnce(false).await;
            }
            while !me.answered() && queue.front_is_tx() {
                let run = queue.take_run();
                self.commit_run(run).await;
            }
            if !me.answered() {
                if me.taken.get() {
                    // Taken by a lock holder whose future was dropped mid-run.
                    me.answer(Err(Error::Storage(
                        "the commit of this transaction was cancelled; it may or may not be stored".into(),
                    )));
                } else {
                    // Someone's turn is ahead of us: it goes first.
                    me.parked.set(true);
                }
            }
        }
    }

    /// Whether a `transact` called now commits at once, in its first poll,
    /// without queueing: the storage is instant (memory), nothing is queued
    /// and the write lock is free. (The scope's first transaction, which
    /// also writes its header and genesis record, then takes the
    /// one-at-a-time path under the lock: every storage call completes at
    /// once there too.) On memory storage that is nearly every transaction: the
    /// queue, the run and the copies of the record it needs (the provenance
    /// and ops of a queued transaction are copied once per attempt,
    /// `commit_one`) are for transactions that wait. The JS
    /// bindings poll such a transaction in place instead of boxing it
    /// (`bindings::error::poll_in_place`).
    pub fn commits_now(&self) -> bool {
        self.hold_now().is_some()
    }

    /// The write lock, when a transaction [`Scope::commits_now`].
    fn hold_now(&self) -> Option<Held<'_>> {
        if !self.store.inner.storage.instant() || !self.cell.queue.is_empty() {
            return None;
        }
        self.cell.write.try_lock().map(|guard| Held { queue: &self.cell.queue, _guard: guard })
    }

    /// The seq and time of a transaction committed now, write lock held:
    /// the clock's time, or the last transaction's if the clock went back
    /// (times never go backwards within a scope).
    fn next_tx(&self) -> Result<(u64, f64)> {
        let now = self.store.now();
        if !now.is_finite() {
            return Err(Error::invalid("the clock returned a non-finite time"));
        }
        let (seq, last_at) = self.with_state(|st| (st.seq(), st.last_at()));
        Ok((seq + 1, last_at.map_or(now, |last| now.max(last))))
    }

    /// Commits `q` on its own, write lock held: its record is created with
    /// `put_if_absent` without a copy of its ops; when another writer took
    /// the seq, the one-at-a-time path catches up and retries.
    async fn commit_alone(&self, q: &Queued) -> Result<TxInfo> {
        let (seq, at) = self.next_tx()?;
        let rec = q.lend(seq, at);
        let bytes = codec::encode_tx(&rec);
        check_tx_size(bytes.len())?;
        let len = bytes.len();
        let mut key = self.cell.log_key.take();
        keys::log_into(&mut key, &self.cell.key, rec.seq);
        let created = self.store.inner.storage.put_if_absent(&key, bytes).await;
        self.cell.log_key.set(key);
        if created? {
            return self.committed(rec, len).await;
        }
        q.give_back(rec);
        self.commit_one(q).await
    }

    /// Commits a transaction packed by the JS package's fast path
    /// ([`crate::core::packed`]) as [`Scope::commit_alone`] commits one,
    /// with its log record written from the packed bytes and applied from
    /// its own bytes (`codec::apply_tx`): no ops are built. That is for a
    /// scope that [`Scope::commits_now`] and has its first transaction;
    /// otherwise, and when another writer took the seq, the transaction
    /// goes the way of [`Scope::transact`] with the ops its record holds.
    /// Answers its seq and time.
    pub async fn commit_packed(&self, mut p: Packed) -> Result<(u64, f64)> {
        if let Some(done) = self.commit_packed_now(&mut p).await? {
            return Ok(done);
        }
        let (prov, ops) = p.unpack().ok_or_else(|| Error::Storage("internal: a packed transaction does not decode".into()))?;
        self.transact(ops, prov).await.map(|t| (t.seq, t.at))
    }

    /// [`Scope::commit_packed`] at once, under the write lock; `None` (the
    /// lock let go) when the transaction must take the general path.
    async fn commit_packed_now(&self, p: &mut Packed) -> Result<Option<(u64, f64)>> {
        self.store.check_open()?;
        // Not with a queue ahead, storage that waits, or for the scope's
        // first transaction (which also writes its header).
        let Some(_held) = self.hold_now().filter(|_| self.seq() > 0) else { return Ok(None) };
        let (seq, at) = self.next_tx()?;
        let rec = p.record(seq, at);
        let len = rec.len();
        check_tx_size(len)?;
        let mut key = self.cell.log_key.take();
        keys::log_into(&mut key, &self.cell.key, seq);
        let created = self.store.inner.storage.put_if_absent(&key, rec.to_vec()).await;
        let applied = match created {
            Ok(true) => {
                let applied = p.apply(&mut self.cell.state.borrow_mut(), &key);
                if applied.is_err() {
                    // Not for a record `pack` made (it checked the input);
                    // the state may be part-way: loaded again, with the record.
                    self.reload().await;
                }
                applied.map(|()| true)
            }
            other => other,
        };
        self.cell.log_key.set(key);
        if !applied? {
            // Another writer took the seq: the general path catches up.
            return Ok(None);
        }
        self.logged(len).await;
        Ok(Some((seq, at)))
    }

    /// The write lock, in call order: waits until every transaction queued
    /// before this call is committed (committing them itself when it holds
    /// the lock first) and every earlier turn is over.
    pub(super) async fn turn(&self) -> Turn<'_> {
        let queue = &self.cell.queue;
        let signal: Rc<Signal> = Rc::default();
        queue.push(Entry::Turn(signal.clone()));
        let mut waiting = Waiting { queue, signal: Some(signal.clone()) };
        let mut parked = false;
        loop {
            if parked {
                Fired(&signal).await;
            }
            let held = Held { queue, _guard: self.cell.write.lock().await };
            loop {
                match queue.front(&signal) {
                    Front::Mine | Front::Empty => {
                        waiting.signal = None;
                        return Turn { signal, held };
                    }
                    Front::Tx => {
                        let run = queue.take_run();
                        self.commit_run(run).await;
                    }
                    Front::OtherTurn => {
                        parked = true;
                        break;
                    }
                }
            }
            drop(held);
        }
    }

    /// Commits and answers every transaction of `run` (write lock held).
    async fn commit_run(&self, mut run: VecDeque<Rc<Queued>>) {
        let storage = &self.store.inner.storage;
        while !run.is_empty() {
            if let Err(e) = self.store.check_open() {
                run.iter().for_each(|q| q.answer(Err(e.clone())));
                return;
            }
            if run.len() == 1 || self.seq() == 0 || !storage.capabilities().atomic_create {
                let q = run.pop_front().expect("non-empty");
                q.answer(self.commit_one(&q).await);
                continue;
            }
            self.create_run(&mut run).await;
        }
    }

    /// One transaction on the one-at-a-time path.
    async fn commit_one(&self, q: &Queued) -> Result<TxInfo> {
        let build = |_: &ScopeState, at: f64| Ok(Some((q.prov.borrow().clone(), q.ops_at(at))));
        let built = self.commit_locked(&build).await?;
        built.ok_or_else(|| Error::Storage("internal: a transaction was built but not committed".into()))
    }

    /// Builds records for the front of `run` on top of the loaded state,
    /// within [`MAX_RUN_BYTES`]; answers those that cannot be built.
    /// At most `limit` records, following seq `seq` at time `last_at`.
    fn build_run(&self, run: &mut VecDeque<Rc<Queued>>, (mut seq, mut last_at): (u64, Option<f64>), limit: usize) -> Vec<(Built, Vec<u8>)> {
        let now = self.store.now();
        if !now.is_finite() {
            run.drain(..).for_each(|q| q.answer(Err(Error::invalid("the clock returned a non-finite time"))));
            return Vec::new();
        }
        let mut out: Vec<(Built, Vec<u8>)> = Vec::new();
        let mut bytes_total = 0usize;
        while let Some(q) = run.front().filter(|_| out.len() < limit) {
            // Times never go backwards within a scope (as-of by time is a prefix).
            let at = last_at.map_or(now, |last| now.max(last));
            let rec = q.lend(seq + 1, at);
            let bytes = codec::encode_tx(&rec);
            if let Err(e) = check_tx_size(bytes.len()) {
                run.pop_front().expect("front").answer(Err(e));
                continue;
            }
            if !out.is_empty() && bytes_total + bytes.len() > MAX_RUN_BYTES {
                q.give_back(rec); // for the next run
                break;
            }
            bytes_total += bytes.len();
            seq = rec.seq;
            last_at = Some(at);
            let q = run.pop_front().expect("front");
            out.push((Built { q, len: bytes.len(), rec }, bytes));
        }
        out
    }

    /// Builds records for the front of `run` and creates them with
    /// [`Storage::create_all`], applies and answers the created ones; the
    /// rest of what was built goes one at a time.
    ///
    /// On storage that is not instant a long run goes in chunks of
    /// [`CHUNK`]: while a chunk is being stored, the one before it is
    /// applied and answered and the one after it is built, and it goes to
    /// storage as soon as this one is stored. IndexedDB does its part in
    /// another process, so Waymark's part (encoding, applying, answering the
    /// promises) overlaps it instead of following it. A chunk is created
    /// only after every earlier one was, so what is created is still a
    /// prefix; a chunk that fails takes its error, and what was built after
    /// it goes back to the front of `run`.
    async fn create_run(&self, run: &mut VecDeque<Rc<Queued>>) {
        let storage = &self.store.inner.storage;
        let chunk = if storage.instant() { MAX_RUN } else { CHUNK };
        let mut next = self.build_run(run, self.with_state(|st| (st.seq(), st.last_at())), chunk);
        let mut stored: Vec<Built> = Vec::new();
        let mut tail_bytes = 0;
        let mut rest: Vec<Built> = Vec::new();
        while !next.is_empty() {
            let mut entries = Vec::with_capacity(next.len());
            let mut this = Vec::with_capacity(next.len());
            for (b, bytes) in next {
                entries.push((keys::log(&self.cell.key, b.rec.seq), bytes));
                this.push(b);
            }
            let from = this.last().map(|b| (b.rec.seq, Some(b.rec.at))).unwrap_or_default();
            let previous = std::mem::take(&mut stored);
            let queued = &mut *run;
            let meanwhile = async move {
                if previous.is_empty() && queued.is_empty() {
                    return (0, Vec::new());
                }
                // Let the storage start this chunk's transaction first (its
                // queue runs as a task scheduled by `create_all`).
                YieldOnce(false).await;
                let applied = self.apply_answer(previous);
                (applied, if queued.is_empty() { Vec::new() } else { self.build_run(queued, from, chunk) })
            };
            let (created, (applied, following)) = join(storage.create_all(entries), meanwhile).await;
            tail_bytes += applied;
            next = following;
            let created = match created {
                Ok(Some(n)) => n.min(this.len()),
                Ok(None) => 0,
                Err(e) => {
                    // Atomic: nothing of this chunk was written.
                    this.iter().for_each(|b| b.q.answer(Err(e.clone())));
                    for (b, _) in next.into_iter().rev() {
                        b.q.give_back(b.rec);
                        run.push_front(b.q);
                    }
                    break;
                }
            };
            rest = this.split_off(created);
            stored = this;
            if !rest.is_empty() {
                rest.extend(next.into_iter().map(|(b, _)| b));
                break;
            }
        }
        tail_bytes += self.apply_answer(stored);
        if tail_bytes > 0 {
            self.logged(tail_bytes).await;
        }
        // Another writer took the next seq (or the backend cannot create
        // atomically): the one-at-a-time path catches up and retries.
        for b in rest {
            b.q.give_back(b.rec);
            b.q.answer(self.commit_one(&b.q).await);
        }
    }

    /// Applies created records in order and answers their transactions;
    /// returns their encoded size (for the snapshot policy).
    fn apply_answer(&self, stored: Vec<Built>) -> usize {
        let mut bytes = 0;
        for b in stored {
            let applied = self.cell.state.borrow_mut().apply_owned(b.rec);
            bytes += b.len;
            b.q.answer(applied);
        }
        bytes
    }
}
