//! The in-memory state of one scope: interned names, per-attribute version
//! histories, entity types, transaction metadata and checkpoints.
//!
//! Layout choices (measured in `BENCHMARKS.md`):
//! - entity ids, attribute names and types are interned to `u32`;
//! - facts live in one `BTreeMap<(entity, attribute), Hist>`; an attribute
//!   with a single version keeps it inline (no second allocation);
//! - every transaction remembers which `(entity, attribute)` keys it touched,
//!   so a diff or restore costs in proportion to the writes in its range and
//!   never scans the state.

use std::collections::{BTreeMap, HashMap};

use crate::dims::Dims;
pub use crate::hist::{Hist, Version, VersionRef};
pub use crate::names::Interner;
use crate::touched::Touched;
use crate::tx::{OpRecord, TxInfo, TxRecord};
use crate::error::{Error, Result};

pub type FactKey = (u32, u32);

/// Pseudo-attribute id recorded in `touched` when an entity's type changes.
pub const TYPE_ATTR: u32 = u32::MAX;

/// Metadata of one committed transaction.
#[derive(Debug, Clone)]
pub struct TxMeta {
    pub at: f64,
    pub cause: Box<str>,
    pub actor: Option<Box<str>>,
    pub note: Option<Box<str>>,
    pub touched: Touched,
}

/// A named point in a scope's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub name: String,
    pub seq: u64,
    pub at: f64,
}

/// The type versions of one entity, oldest first: `(seq, type id, or None
/// when the type was cleared)`.
pub type TypeHist = Vec<(u32, Option<u32>)>;

/// The state of one scope.
#[derive(Debug, Clone)]
pub struct ScopeState {
    pub dims: Dims,
    pub names: Interner,
    pub txs: Vec<TxMeta>,
    pub facts: BTreeMap<FactKey, Hist>,
    /// Entity → type versions.
    pub types: HashMap<u32, TypeHist>,
    /// Sorted by seq, then creation order.
    pub checkpoints: Vec<Checkpoint>,
    /// Fact keys inserted one by one since the fact map was last built or
    /// repacked (see [`ScopeState::compact`]).
    pub loose: usize,
}

impl ScopeState {
    /// An empty scope.
    pub fn new(dims: Dims) -> Self {
        ScopeState {
            dims,
            names: Interner::default(),
            txs: Vec::new(),
            facts: BTreeMap::new(),
            types: HashMap::new(),
            checkpoints: Vec::new(),
            loose: 0,
        }
    }

    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    /// The seq of the latest transaction (0 when there is none).
    pub fn seq(&self) -> u64 {
        self.txs.len() as u64
    }

    /// The time of the latest transaction, if any.
    pub fn last_at(&self) -> Option<f64> {
        self.txs.last().map(|t| t.at)
    }

    /// Info about the transaction with this seq.
    pub fn tx_info(&self, seq: u64) -> Option<TxInfo> {
        let t = self.tx(seq)?;
        Some(TxInfo { seq, at: t.at, cause: t.cause.to_string() })
    }

    pub fn tx(&self, seq: u64) -> Option<&TxMeta> {
        (seq as usize).checked_sub(1).and_then(|i| self.txs.get(i))
    }

    /// Number of attribute keys ever written (live or not).
    pub fn fact_keys(&self) -> usize {
        self.facts.len()
    }

    /// Repacks the fact map; the contents do not change. New keys mostly
    /// arrive in ascending order (new entities get new ids), which leaves
    /// B-tree leaves about half full; rebuilding from the sorted entries fills
    /// them (about 50 instead of about 90 bytes per fact, `BENCHMARKS.md`).
    /// O(n); [`ScopeState::apply`] calls it when an eighth of the entries
    /// were inserted since the last repack (amortized O(1) per write), and
    /// the store when it writes a snapshot. Nothing to do when no key was
    /// inserted one by one since the map was last built or repacked (a
    /// decoded snapshot, a bulk replay, the repack `apply` just made).
    ///
    /// `BTreeMap::append` of the rest to a map of the first entry rebuilds
    /// from both in order, filling every node, and frees the old nodes as it
    /// goes: unlike collecting and `from_iter` (a vector of every entry plus
    /// the sort's scratch copy), it never holds more than the map itself,
    /// and wasm memory keeps its high-water mark.
    pub fn compact(&mut self) {
        if self.loose == 0 {
            return;
        }
        self.loose = 0;
        let mut rest = std::mem::take(&mut self.facts);
        if let Some((k, h)) = rest.pop_first() {
            self.facts.insert(k, h);
            self.facts.append(&mut rest);
        }
    }

    /// Applies a committed transaction. Its seq must be the next one.
    pub fn apply(&mut self, rec: &TxRecord) -> Result<()> {
        let mut touched = self.apply_ops(rec)?;
        self.push_tx(rec.at, &rec.cause, rec.actor.as_deref(), rec.note.as_deref(), &mut touched);
        Ok(())
    }

    /// [`ScopeState::apply`] for a record that is not needed afterwards (a
    /// commit): its provenance moves into the state instead of being
    /// copied. Returns the transaction's answer.
    pub fn apply_owned(&mut self, rec: TxRecord) -> Result<TxInfo> {
        let mut touched = self.apply_ops(&rec)?;
        let info = rec.info();
        let (at, cause, actor, note) = (rec.at, rec.cause, rec.actor, rec.note);
        self.push_meta(at, cause.into(), actor.map(Into::into), note.map(Into::into), &mut touched);
        Ok(info)
    }

    /// Applies a record's ops; the keys they touched (the caller ends the
    /// transaction with them). Changes nothing when the record cannot follow.
    fn apply_ops(&mut self, rec: &TxRecord) -> Result<Vec<FactKey>> {
        let seq = self.check_next(rec.seq, rec.at)?;
        // Sized for the common transaction (sets, no deletes): growing it
        // from empty reallocated twice for ten attributes.
        let set = |op: &OpRecord| match op {
            OpRecord::Set { attrs, ty, .. } => attrs.len() + usize::from(ty.is_some()),
            _ => 1,
        };
        let mut touched = Vec::with_capacity(rec.ops.iter().map(set).sum());
        for op in &rec.ops {
            self.apply_op(seq, op, &mut touched);
        }
        self.ops_applied();
        Ok(touched)
    }

    /// After a transaction's ops: repacks the fact map when an eighth of
    /// its keys were inserted one by one (amortized O(1) per write).
    pub(crate) fn ops_applied(&mut self) {
        if self.loose > 1024 && self.loose * 8 > self.facts.len() {
            self.compact();
        }
    }

    /// Checks that a transaction `(seq, at)` may follow the state; its seq as stored.
    pub fn check_next(&self, seq: u64, at: f64) -> Result<u32> {
        if seq != self.seq() + 1 {
            return Err(Error::invalid(format!("transaction seq {seq} does not follow seq {}", self.seq())));
        }
        // As-of by time relies on times that never decrease (the store clamps them).
        if !at.is_finite() || self.last_at().is_some_and(|last| at < last) {
            return Err(Error::invalid(format!("transaction time {} is before the previous transaction's", crate::error::Num(at))));
        }
        u32::try_from(seq).map_err(|_| Error::invalid("a scope holds at most 2^32-1 transactions"))
    }

    /// Ends a transaction whose operations are applied.
    /// `touched` is left empty (for reuse: a reopen replays many records).
    pub fn push_tx(&mut self, at: f64, cause: &str, actor: Option<&str>, note: Option<&str>, touched: &mut Vec<FactKey>) {
        self.push_meta(at, cause.into(), actor.map(Into::into), note.map(Into::into), touched);
    }

    fn push_meta(&mut self, at: f64, cause: Box<str>, actor: Option<Box<str>>, note: Option<Box<str>>, touched: &mut Vec<FactKey>) {
        crate::sort::sort_dedup(touched);
        self.txs.push(TxMeta { at, cause, actor, note, touched: Touched::new(touched) });
        touched.clear();
    }

    fn apply_op(&mut self, seq: u32, op: &OpRecord, touched: &mut Vec<FactKey>) {
        match op {
            OpRecord::Set { entity, ty, attrs, valid_until } => {
                let e = self.set_entity(seq, entity, ty.as_deref(), touched);
                let valid_until = valid_until.unwrap_or(f64::INFINITY);
                for (name, value) in attrs {
                    let a = self.names.intern(name);
                    self.write((e, a), Version { seq, value: Some(value.clone()) }, valid_until, touched);
                }
            }
            OpRecord::Unset { entity, attrs } => {
                for name in attrs {
                    self.unset(seq, entity, name, touched);
                }
            }
            OpRecord::Delete { entity } => self.delete(seq, entity, touched),
            OpRecord::Type { entity, ty } => {
                let e = self.names.intern(entity);
                let t = ty.as_deref().map(|t| self.names.intern(t));
                self.write_type(e, seq, t, touched);
            }
        }
    }

    /// The entity of a `Set` (interned) after writing its type, if any.
    pub fn set_entity(&mut self, seq: u32, entity: &str, ty: Option<&str>, touched: &mut Vec<FactKey>) -> u32 {
        let e = self.names.intern(entity);
        if let Some(t) = ty {
            let t = self.names.intern(t);
            self.write_type(e, seq, Some(t), touched);
        }
        e
    }

    /// Retracts one attribute (`Unset`), if it is live. (Not inlined, like
    /// `delete`: rare next to sets, and called from each applier.)
    #[inline(never)]
    pub fn unset(&mut self, seq: u32, entity: &str, attr: &str, touched: &mut Vec<FactKey>) {
        if let (Some(e), Some(a)) = (self.names.get(entity), self.names.get(attr)) {
            self.retract((e, a), seq, touched);
        }
    }

    /// Retracts every attribute of an entity and clears its type (`Delete`).
    #[inline(never)]
    pub fn delete(&mut self, seq: u32, entity: &str, touched: &mut Vec<FactKey>) {
        let Some(e) = self.names.get(entity) else { return };
        let keys: Vec<FactKey> = self.facts.range((e, 0)..(e, TYPE_ATTR)).map(|(k, _)| *k).collect();
        for key in keys {
            self.retract(key, seq, touched);
        }
        self.write_type(e, seq, None, touched);
    }

    pub(crate) fn write(&mut self, key: FactKey, v: Version, until: f64, touched: &mut Vec<FactKey>) {
        touched.push(key);
        match self.facts.get_mut(&key) {
            Some(h) => h.write(v, until),
            None => {
                self.loose += 1;
                self.facts.insert(key, Hist::new(v, until));
            }
        }
    }

    fn retract(&mut self, key: FactKey, seq: u32, touched: &mut Vec<FactKey>) {
        let live = self.facts.get(&key).is_some_and(|h| h.last().value.is_some());
        if live {
            self.write(key, Version { seq, value: None }, f64::INFINITY, touched);
        }
    }

    pub fn write_type(&mut self, e: u32, seq: u32, t: Option<u32>, touched: &mut Vec<FactKey>) {
        let hist = self.types.entry(e).or_default();
        let current = hist.last().and_then(|(_, t)| *t);
        if current == t {
            return;
        }
        touched.push((e, TYPE_ATTR));
        match hist.last_mut() {
            Some(last) if last.0 == seq => last.1 = t,
            _ => hist.push((seq, t)),
        }
    }

    /// The type id of an entity as of `seq`.
    pub fn type_at(&self, e: u32, seq: u32) -> Option<u32> {
        let hist = self.types.get(&e)?;
        let n = hist.partition_point(|(s, _)| *s <= seq);
        n.checked_sub(1).and_then(|i| hist[i].1)
    }

    /// Adds a checkpoint (names are unique in a scope).
    pub fn add_checkpoint(&mut self, cp: Checkpoint) -> Result<()> {
        if self.checkpoints.iter().any(|c| c.name == cp.name) {
            return Err(Error::Conflict(format!("a checkpoint named {:?} already exists in this scope", cp.name)));
        }
        let pos = self.checkpoints.partition_point(|c| c.seq <= cp.seq);
        self.checkpoints.insert(pos, cp);
        Ok(())
    }

    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    pub fn checkpoint(&self, name: &str) -> Option<&Checkpoint> {
        self.checkpoints.iter().find(|c| c.name == name)
    }

    /// Resolves a point (a seq or a checkpoint name) to a seq of this scope.
    pub fn resolve(&self, p: &Point) -> Result<u64> {
        match p {
            Point::Seq(s) if *s <= self.seq() => Ok(*s),
            Point::Seq(s) => Err(Error::NotFound(format!("seq {s} is beyond the latest seq {}", self.seq()))),
            Point::Name(n) => self
                .checkpoint(n)
                .map(|c| c.seq)
                .ok_or_else(|| Error::NotFound(format!("no checkpoint named {n:?} in this scope"))),
        }
    }

    /// A copy of this state as it was at `seq`: the prefix of the log, no checkpoints.
    pub fn truncated(&self, seq: u64, dims: Dims) -> ScopeState {
        let s = seq as u32;
        let facts = facts_from_sorted(
            self.facts
                .iter()
                .filter_map(|(k, h)| {
                    let kept: Vec<(Version, f64)> = h
                        .iter()
                        .filter(|v| v.seq <= s)
                        .map(|v| (Version { seq: v.seq, value: v.value.cloned() }, v.valid_until))
                        .collect();
                    Hist::from_versions(kept).map(|h| (*k, h))
                })
                .collect(),
        );
        let types = self
            .types
            .iter()
            .filter_map(|(e, h)| {
                let kept: Vec<_> = h.iter().copied().filter(|(q, _)| *q <= s).collect();
                (!kept.is_empty()).then_some((*e, kept))
            })
            .collect();
        ScopeState {
            dims,
            names: self.names.clone(),
            txs: self.txs[..seq as usize].to_vec(),
            facts,
            types,
            checkpoints: Vec::new(),
            loose: 0,
        }
    }
}

/// A point in a scope's history: a seq or a checkpoint name.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    Seq(u64),
    Name(String),
}

impl From<u64> for Point {
    fn from(s: u64) -> Self {
        Point::Seq(s)
    }
}

impl From<&str> for Point {
    fn from(s: &str) -> Self {
        Point::Name(s.to_string())
    }
}

/// The fact map from entries sorted by key (snapshot decoding, [`ScopeState::compact`]):
/// `BTreeMap::from_iter` builds full leaves in O(n) from sorted input. One
/// function, so that the sort `from_iter` compiles in is compiled once.
pub fn facts_from_sorted(entries: Vec<(FactKey, Hist)>) -> BTreeMap<FactKey, Hist> {
    entries.into_iter().collect()
}
