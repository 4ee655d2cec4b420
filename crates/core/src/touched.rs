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
use crate::wire::{put_u64, put_varint, Reader};

#[derive(Debug, Clone, Default)]
pub struct Touched(Box<[u8]>);

impl Touched {
    pub fn new(keys: &[FactKey]) -> Touched {
        if keys.len() <= SHORT {
            // A commit's list is short: written on the stack, then allocated
            // at its size (shrinking a vector was a `realloc` per commit).
            let mut buf = [0u8; SHORT * 10];
            let mut n = 0;
            for (de, a_rel) in deltas(keys) {
                n += put_varint(&mut buf[n..], de.into());
                n += put_varint(&mut buf[n..], a_rel.into());
            }
            return Touched(Box::from(&buf[..n]));
        }
        // A reopen's lists are long: written into room for two bytes a key
        // (what sorted lists take), then shrunk in place.
        let mut out = Vec::with_capacity(keys.len() * 2 + 1);
        for (de, a_rel) in deltas(keys) {
            put_u64(&mut out, de.into());
            put_u64(&mut out, a_rel.into());
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

/// The pairs `Touched::new` writes for `keys`: each entity's delta from the
/// previous key's, and the attribute, itself a delta (minus one) when the
/// entity repeats.
fn deltas(keys: &[FactKey]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut prev: Option<FactKey> = None;
    keys.iter().map(move |&(e, a)| {
        let (pe, pa) = prev.unwrap_or((0, 0));
        let de = e.wrapping_sub(pe);
        let a_rel = if prev.is_some() && de == 0 { a.wrapping_sub(pa).wrapping_sub(1) } else { a };
        prev = Some((e, a));
        (de, a_rel)
    })
}

/// Lists this long or shorter are written on the stack (at most 5 + 5
/// bytes a key).
const SHORT: usize = 8;

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
        let odd = vec![(5, 3), (2, 9), (2, 9), (2, 1), (0, TYPE_ATTR), (TYPE_ATTR, 0), (0, 0)];
        // Short lists (on the stack, the longest at 10 bytes a key) and long ones.
        let widest: Vec<FactKey> = (0..SHORT as u32).map(|i| (i.wrapping_mul(0x8000_0001), TYPE_ATTR)).collect();
        for odd in [vec![], vec![(0, 0)], odd.clone(), widest, [&odd[..], &odd[..]].concat()] {
            assert!(Touched::new(&odd).iter().eq(odd.iter().copied()), "{odd:?}");
        }
    }
}
