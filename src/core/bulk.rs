//! Fact writes applied in bulk, for replaying a log tail when a scope is
//! reopened.
//!
//! [`ScopeState::apply`] inserts each write into the fact B-tree: tens of
//! thousands of inserts (most of a reopen) that also leave the leaves about
//! half full. Here writes are collected in log order, sorted, grouped into
//! histories (taking out the existing history of a key they extend) and
//! appended to the map, which rebuilds it once: O(n) and as packed as
//! [`ScopeState::compact`] leaves it.
//!
//! Only `Set` writes can wait: `Unset` and `Delete` depend on which facts are
//! live, so the replay calls [`Bulk::flush`] before them. A flush that is
//! small against the tree inserts one by one instead of rebuilding, so that a
//! log with many retractions does not rebuild the tree for each.

use crate::core::sort::sort_by_key;
use crate::core::state::{facts_from_sorted, FactKey, Hist, ScopeState, Version};

/// Fact writes not yet in a state, in log order.
#[derive(Default)]
pub(crate) struct Bulk {
    pending: Vec<(FactKey, Version, f64)>,
}

impl Bulk {
    pub(crate) fn write(&mut self, key: FactKey, v: Version, until: f64) {
        self.pending.push((key, v, until));
    }

    /// Moves the pending writes into `st`, with the result of writing them
    /// one by one in order (a second write in one transaction replaces the first).
    pub(crate) fn flush(&mut self, st: &mut ScopeState) {
        let mut pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        if pending.len() * 8 < st.facts.len() {
            for (key, v, until) in pending {
                match st.facts.get_mut(&key) {
                    Some(h) => h.write(v, until),
                    None => {
                        st.loose += 1;
                        st.facts.insert(key, Hist::new(v, until));
                    }
                }
            }
            return;
        }
        // Stable: the versions of one key stay in log order.
        sort_by_key(&mut pending, |(k, _, _)| *k);
        let mut hists: Vec<(FactKey, Hist)> = Vec::with_capacity(pending.len());
        let mut new = pending.into_iter().peekable();
        while let Some((key, v, until)) = new.next() {
            let mut h = match st.facts.remove(&key) {
                Some(mut h) => {
                    h.write(v, until);
                    h
                }
                None => Hist::new(v, until),
            };
            while let Some((_, v, until)) = new.next_if(|(k, _, _)| *k == key) {
                h.write(v, until);
            }
            hists.push((key, h));
        }
        // Both maps are sorted and share no key: `append` rebuilds one packed
        // map from the two in order, freeing the old nodes as it goes.
        st.facts.append(&mut facts_from_sorted(hists));
        st.loose = 0;
    }
}
