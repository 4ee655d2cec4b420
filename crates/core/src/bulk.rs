//! Fact writes applied in bulk, for replaying a log tail when a scope is
//! reopened.
//!
//! [`ScopeState::apply`] inserts each write into the fact B-tree: tens of
//! thousands of inserts (most of a reopen) that also leave the leaves about
//! half full. Here writes are collected in log order; each ascending run of
//! them (new entities get new ids, so a transaction's writes mostly ascend)
//! is grouped into histories (taking out the existing history of a key it
//! extends) and appended to the map, which rebuilds it: O(n) and as packed
//! as [`ScopeState::compact`] leaves it. A run that is small against the map
//! is inserted instead, so that many short runs do not rebuild it each time.
//!
//! Only `Set` writes can wait: `Unset` and `Delete` depend on which facts are
//! live, so the replay calls [`Bulk::flush`] before them. A flush that is
//! small against the tree inserts one by one instead of rebuilding, so that a
//! log with many retractions does not rebuild the tree for each.
//!
//! A reopen from a snapshot starts with the snapshot's facts as a sorted
//! vector (the base), not a map: the first flush merges the writes into it
//! and builds the map once, instead of building the snapshot's map and then
//! rebuilding it with the tail's writes appended.

use crate::state::{facts_from_sorted, FactKey, Hist, ScopeState, Version};

/// Fact writes not yet in a state, in log order, as histories: writes to
/// the key written just before (the same attribute again, or a later
/// transaction's write to it in the same ascending run) join its history.
#[derive(Default)]
pub struct Bulk {
    pending: Vec<(FactKey, Hist)>,
    /// Facts sorted by key, unique, that belong in the state's fact map,
    /// which is empty until the first flush puts them there.
    base: Option<Vec<(FactKey, Hist)>>,
}

impl Bulk {
    /// Writes to go on top of `base` (sorted by key, no key twice), the
    /// facts of a state whose fact map is empty.
    pub fn with_base(base: Vec<(FactKey, Hist)>) -> Self {
        Bulk { pending: Vec::new(), base: Some(base) }
    }

    pub fn write(&mut self, key: FactKey, v: Version, until: f64) {
        match self.pending.last_mut() {
            Some((k, h)) if *k == key => h.write(v, until),
            _ => self.pending.push((key, Hist::new(v, until))),
        }
    }

    /// Moves the pending writes into `st`, with the result of writing them
    /// one by one in order (a second write in one transaction replaces the first).
    pub fn flush(&mut self, st: &mut ScopeState) {
        // Ascending runs (one per transaction, typically; equal neighbours
        // were joined by `write`), each applied in turn: no sort, and the
        // versions of a key stay in log order.
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=self.pending.len() {
            if i == self.pending.len() || self.pending[i].0 < self.pending[i - 1].0 {
                runs.push(i - start);
                start = i;
            }
        }
        let mut pending = std::mem::take(&mut self.pending).into_iter();
        let mut runs = runs.into_iter();
        if let Some(base) = self.base.take() {
            // The first run (often most of a tail: new entities ascend across
            // transactions too) joins the base, and the map is built once.
            let first = runs.next().unwrap_or(0);
            st.facts = facts_from_sorted(merge(base, pending.by_ref().take(first)));
            st.loose = 0;
        }
        for len in runs {
            flush_run(st, pending.by_ref().take(len), len);
        }
    }
}

/// The facts of `base` and of `run` (both sorted, unique keys), the run's
/// histories written on top of the base's: what writing them one by one
/// into a map of `base` gives, as a sorted vector.
fn merge(mut base: Vec<(FactKey, Hist)>, run: impl Iterator<Item = (FactKey, Hist)>) -> Vec<(FactKey, Hist)> {
    let mut run = run.peekable();
    // A run past the base's last key (new entities: most of a log tail) is
    // appended: one copy, no compares.
    if base.last().is_none_or(|(last, _)| run.peek().is_none_or(|(k, _)| k > last)) {
        base.extend(run);
        return base;
    }
    let mut out = Vec::with_capacity(base.len() + run.size_hint().0);
    let mut base = base.into_iter().peekable();
    for (key, h) in run {
        while let Some(b) = base.next_if(|(k, _)| *k < key) {
            out.push(b);
        }
        match base.next_if(|(k, _)| *k == key) {
            Some((_, mut old)) => {
                old.append(h);
                out.push((key, old));
            }
            None => out.push((key, h)),
        }
    }
    out.extend(base);
    out
}

/// Applies `len` histories in ascending key order.
fn flush_run(st: &mut ScopeState, run: impl Iterator<Item = (FactKey, Hist)>, len: usize) {
    if len * 8 < st.facts.len() {
        // Small against the map: inserting costs less than rebuilding it.
        for (key, h) in run {
            match st.facts.get_mut(&key) {
                Some(old) => old.append(h),
                None => {
                    st.loose += 1;
                    st.facts.insert(key, h);
                }
            }
        }
        return;
    }
    let mut hists: Vec<(FactKey, Hist)> = Vec::with_capacity(len);
    // Keys past the map's last one (new entities, most of a tail) need no lookup.
    let last = st.facts.last_key_value().map(|(k, _)| *k);
    for (key, h) in run {
        let old = if last.is_some_and(|l| key <= l) { st.facts.remove(&key) } else { None };
        hists.push((
            key,
            match old {
                Some(mut old) => {
                    old.append(h);
                    old
                }
                None => h,
            },
        ));
    }
    // Both maps are sorted and share no key: `append` rebuilds one packed
    // map from the two in order, freeing the old nodes as it goes.
    st.facts.append(&mut facts_from_sorted(hists));
    st.loose = 0;
}
