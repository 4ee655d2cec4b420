//! The keys one transaction touched, packed.
//!
//! Every write is recorded here once more (diffs and restores walk only the
//! keys of the transactions in their range), so this list is as long as the
//! history: as `(u32, u32)` pairs it took 8 bytes per write, a tenth of a
//! fact's footprint. The lists are sorted, so they are stored as LEB128
//! deltas: the entity's delta from the previous key, then the attribute,
//! itself a delta (minus one) when the entity repeats. A transaction that
//! sets five attributes of each of its entities takes about 2 bytes per key.
//!
//! Deltas wrap, so any sequence round-trips exactly (a snapshot's list is
//! stored as it was read, unsorted or not): sorted lists are merely small.

use crate::state::FactKey;
use crate::wire::{put_u64, Reader};

#[derive(Debug, Clone, Default)]
pub struct Touched(Box<[u8]>);

impl Touched {
    pub fn new(keys: &[FactKey]) -> Touched {
        let mut out = Vec::with_capacity(keys.len() * 2 + 1);
        let mut prev: Option<FactKey> = None;
        for &(e, a) in keys {
            let (pe, pa) = prev.unwrap_or((0, 0));
            let de = e.wrapping_sub(pe);
            put_u64(&mut out, de.into());
            let a_rel = if prev.is_some() && de == 0 { a.wrapping_sub(pa).wrapping_sub(1) } else { a };
            put_u64(&mut out, a_rel.into());
            prev = Some((e, a));
        }
        Touched(out.into_boxed_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = FactKey> + '_ {
        let mut r = Reader::new(&self.0);
        let mut prev: Option<FactKey> = None;
        std::iter::from_fn(move || {
            // Written by `new`: the reads fail only at the end.
            let de = r.u32().ok()?;
            let a_rel = r.u32().ok()?;
            let (pe, pa) = prev.unwrap_or((0, 0));
            let key = if prev.is_some() && de == 0 {
                (pe, pa.wrapping_add(a_rel).wrapping_add(1))
            } else {
                (pe.wrapping_add(de), a_rel)
            };
            prev = Some(key);
            Some(key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TYPE_ATTR;

    #[test]
    fn round_trips_any_list_and_packs_sorted_ones() {
        let sorted: Vec<FactKey> = (0..200u32).flat_map(|e| (1..6).map(move |a| (e * 6, a))).chain([(1200, TYPE_ATTR)]).collect();
        let t = Touched::new(&sorted);
        assert!(t.iter().eq(sorted.iter().copied()));
        assert!(t.0.len() < sorted.len() * 3, "{} bytes for {} keys", t.0.len(), sorted.len());
        for odd in [vec![], vec![(0, 0)], vec![(5, 3), (2, 9), (2, 9), (2, 1), (0, TYPE_ATTR), (TYPE_ATTR, 0), (0, 0)]] {
            assert!(Touched::new(&odd).iter().eq(odd.iter().copied()), "{odd:?}");
        }
    }
}
