//! The queue of a scope's write lock: queued transactions and turns, and
//! the small one-waiter events they wait on (see the parent module).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::MAX_RUN;
use crate::core::tx::{resolve_ops, Expiry, Op, OpRecord, Provenance, TxInfo, TxRecord};
use crate::error::Result;

/// The transactions and turns of one scope waiting for its write lock, oldest first.
#[derive(Default)]
pub(crate) struct Queue(RefCell<VecDeque<Entry>>);

pub(super) enum Entry {
    Tx(Rc<Queued>),
    Turn(Rc<Signal>),
}

/// What is at the front of a [`Queue`], for a turn's holder.
pub(super) enum Front {
    Empty,
    Tx,
    Mine,
    OtherTurn,
}

impl Queue {
    pub(super) fn push(&self, e: Entry) {
        self.0.borrow_mut().push_back(e);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    pub(super) fn front_is_tx(&self) -> bool {
        matches!(self.0.borrow().front(), Some(Entry::Tx(_)))
    }

    pub(super) fn front(&self, mine: &Rc<Signal>) -> Front {
        match self.0.borrow().front() {
            None => Front::Empty,
            Some(Entry::Tx(_)) => Front::Tx,
            Some(Entry::Turn(s)) if Rc::ptr_eq(s, mine) => Front::Mine,
            Some(Entry::Turn(_)) => Front::OtherTurn,
        }
    }

    /// The queued transactions at the front, up to the first turn, at most
    /// [`MAX_RUN`].
    pub(super) fn take_run(&self) -> VecDeque<Rc<Queued>> {
        let mut q = self.0.borrow_mut();
        let mut run = VecDeque::new();
        while run.len() < MAX_RUN {
            match q.front() {
                Some(Entry::Tx(_)) => {
                    if let Some(Entry::Tx(t)) = q.pop_front() {
                        t.taken.set(true);
                        run.push_back(t);
                    }
                }
                _ => break,
            }
        }
        run
    }

    pub(super) fn remove_turn(&self, turn: &Rc<Signal>) {
        self.0.borrow_mut().retain(|e| !matches!(e, Entry::Turn(s) if Rc::ptr_eq(s, turn)));
    }

    /// The front may have moved: wakes whoever parked for it (parked
    /// transactions before the first turn, and that turn).
    pub(super) fn kick(&self) {
        // Collected first: firing wakes tasks, which must not find the queue borrowed.
        let mut txs = Vec::new();
        let mut turn = None;
        for e in self.0.borrow().iter() {
            match e {
                Entry::Tx(t) if t.parked.get() => txs.push(t.clone()),
                Entry::Tx(_) => {}
                Entry::Turn(s) => {
                    turn = Some(s.clone());
                    break;
                }
            }
        }
        txs.iter().for_each(|t| t.signal.fire());
        if let Some(s) = turn {
            s.fire();
        }
    }
}

/// A one-bit, single-waiter event.
#[derive(Default)]
pub(super) struct Signal {
    fired: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    pub(super) fn fire(&self) {
        self.fired.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Resolves once the signal fired (and resets it).
pub(super) struct Fired<'a>(pub(super) &'a Signal);

impl Future for Fired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.replace(false) {
            return Poll::Ready(());
        }
        self.0.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// One transaction waiting in a [`Queue`], and its answer once committed.
pub(super) struct Queued {
    /// The provenance (lent to the record while a run is being created) ...
    pub(super) prov: RefCell<Provenance>,
    /// ... the ops, validated and resolved at time 0 (lent likewise) ...
    ops: RefCell<Vec<OpRecord>>,
    /// ... and the `ttlMs` of each, which [`Queued::ops_at`] adds to the
    /// transaction's time (empty when none has one).
    ttls: Vec<Option<f64>>,
    answer: RefCell<Option<Result<TxInfo>>>,
    /// Fired by the answer and by [`Queue::kick`]. (Not an `Rc` of its
    /// own: a transaction that commits at once never waits on it, and this
    /// saves it an allocation.)
    pub(super) signal: Signal,
    /// Taken into a run (out of the queue).
    pub(super) taken: Cell<bool>,
    /// Waiting for a turn ahead of it, not for the lock.
    pub(super) parked: Cell<bool>,
}

impl Queued {
    /// Validates `ops` (once: building the record later only sets times).
    pub(super) fn new(prov: Provenance, ops: Vec<Op>) -> Result<Queued> {
        let ttl = |op: &Op| match op {
            Op::Set { expiry: Some(Expiry::TtlMs(ms)), .. } => Some(*ms),
            _ => None,
        };
        // Empty (no allocation) when no op has a TTL, the common case.
        let ttls = if ops.iter().any(|op| ttl(op).is_some()) { ops.iter().map(ttl).collect() } else { Vec::new() };
        let ops = resolve_ops(ops, 0.0)?;
        Ok(Queued {
            prov: RefCell::new(prov),
            ops: RefCell::new(ops),
            ttls,
            answer: RefCell::new(None),
            signal: Signal::default(),
            taken: Cell::new(false),
            parked: Cell::new(false),
        })
    }

    /// The records of the ops at time `at`: exactly `resolve_ops(ops, at)`.
    pub(super) fn ops_at(&self, at: f64) -> Vec<OpRecord> {
        self.timed(self.ops.borrow().clone(), at)
    }

    /// The record of this transaction at `seq` and `at`, built without a
    /// copy: the provenance and ops are lent to it, and [`Queued::give_back`]
    /// returns them when the record is not committed.
    pub(super) fn lend(&self, seq: u64, at: f64) -> TxRecord {
        let Provenance { cause, actor, note } = self.prov.take();
        let ops = self.timed(self.ops.take(), at);
        TxRecord { seq, at, cause, actor, note, ops }
    }

    pub(super) fn give_back(&self, rec: TxRecord) {
        *self.prov.borrow_mut() = Provenance { cause: rec.cause, actor: rec.actor, note: rec.note };
        *self.ops.borrow_mut() = rec.ops;
    }

    fn timed(&self, mut ops: Vec<OpRecord>, at: f64) -> Vec<OpRecord> {
        for (op, ttl) in ops.iter_mut().zip(&self.ttls) {
            if let (OpRecord::Set { valid_until, .. }, Some(ms)) = (op, ttl) {
                *valid_until = Some(at + ms);
            }
        }
        ops
    }

    pub(super) fn answer(&self, r: Result<TxInfo>) {
        *self.answer.borrow_mut() = Some(r);
        self.signal.fire();
    }

    pub(super) fn take(&self) -> Option<Result<TxInfo>> {
        self.answer.borrow_mut().take()
    }

    pub(super) fn answered(&self) -> bool {
        self.answer.borrow().is_some()
    }
}

/// Pending once (waking itself at once): lets every task already scheduled
/// run before the caller continues.
pub(super) struct YieldOnce(pub(super) bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

