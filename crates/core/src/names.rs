//! Interned names (entity ids, attribute names, types) of one scope.
//!
//! Every name is interned once and then stays: a scope with 20,000 entities
//! holds 20,000 of them, and a reopen interns each one. So the layout is
//! chosen for bytes and for hashing speed rather than generality:
//! - the text of all names in one `String`, with the end offset of each
//!   (an `Rc<str>` per name cost an allocation, its header and a pointer in
//!   two places: about 60 bytes per name against about 16 here);
//! - an open-addressing table of ids, probed linearly, hashed with an
//!   FxHash-style multiply-rotate over 4-byte words (std's SipHash was about
//!   a tenth of a reopen's time; names come from the scope's own writers, not
//!   from an adversary choosing collisions over the wire).

/// Interned strings; ids are dense, in order of first interning.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    text: String,
    /// `ends[i]` is where name `i` ends in `text` (it starts where `i - 1` ends).
    ends: Vec<usize>,
    /// Slot → id + 1, 0 when free; empty or a power of two, at most 3/4 full.
    table: Vec<u32>,
}

const SEED: u32 = 0x9e37_79b9;

fn hash(s: &[u8]) -> u32 {
    let mut h = s.len() as u32;
    let mut words = s.chunks_exact(4);
    for w in &mut words {
        h = (h.rotate_left(5) ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]])).wrapping_mul(SEED);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(5) ^ u32::from(b)).wrapping_mul(SEED);
    }
    h
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        self.reserve_one();
        match self.find(s.as_bytes()) {
            Ok(id) => id,
            Err(slot) => self.insert(slot, s),
        }
    }

    /// [`Interner::intern`] of a name read as bytes that may not be UTF-8:
    /// `None` when they are not. Only a new name is checked: bytes equal to
    /// an interned name are valid like it (a reopen reads each attribute
    /// name once per write, and checking them was ~5% of its time).
    pub fn intern_bytes(&mut self, b: &[u8]) -> Option<u32> {
        self.reserve_one();
        match self.find(b) {
            Ok(id) => Some(id),
            Err(slot) => Some(self.insert(slot, std::str::from_utf8(b).ok()?)),
        }
    }

    /// Room for `n` more names, so that interning them rehashes nothing (a
    /// reopen knows how many names its snapshot holds). The caller bounds
    /// `n` by what it reads them from.
    pub fn reserve(&mut self, n: usize) {
        let want = (self.ends.len() + n + 1) * 4 / 3 + 1;
        if want > self.table.len() {
            self.rehash(want.next_power_of_two());
        }
        self.ends.reserve(n);
    }

    #[inline]
    fn reserve_one(&mut self) {
        if (self.ends.len() + 1) * 4 > self.table.len() * 3 {
            self.grow();
        }
    }

    fn insert(&mut self, slot: usize, s: &str) -> u32 {
        let id = self.ends.len() as u32;
        self.text.push_str(s);
        self.ends.push(self.text.len());
        self.table[slot] = id + 1;
        id
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        self.find(s.as_bytes()).ok()
    }

    /// `Ok(id)` where `s` is, or `Err(slot)` where it would go. The table must
    /// have a free slot.
    fn find(&self, s: &[u8]) -> Result<u32, usize> {
        let mask = self.table.len() - 1;
        // The high bits: the multiply mixes every input bit into them.
        let mut slot = hash(s).rotate_left(16) as usize & mask;
        loop {
            match self.table[slot] {
                0 => return Err(slot),
                id if self.bytes_of(id - 1) == s => return Ok(id - 1),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    #[cold]
    fn grow(&mut self) {
        self.rehash((self.table.len() * 2).max(16));
    }

    fn rehash(&mut self, cap: usize) {
        self.table = vec![0; cap];
        let mask = cap - 1;
        for id in 0..self.ends.len() as u32 {
            // Names are distinct: the first free slot is the one, no compares.
            let mut slot = hash(self.bytes_of(id)).rotate_left(16) as usize & mask;
            while self.table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.table[slot] = id + 1;
        }
    }

    /// The bytes of name `id` (no char-boundary checks: they are a whole
    /// name's); empty for an unknown id.
    fn bytes_of(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.as_bytes().get(start..end).unwrap_or_default()
    }

    pub fn name(&self, id: u32) -> &str {
        let i = id as usize;
        match self.ends.get(i) {
            Some(&end) => &self.text[if i == 0 { 0 } else { self.ends[i - 1] }..end],
            None => "",
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|id| self.name(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_stable() {
        let mut n = Interner::default();
        assert_eq!(n.get("a"), None);
        let names: Vec<String> = (0..5000).map(|i| format!("task:{i:05}")).chain(["".into(), "é".into()]).collect();
        for (i, s) in names.iter().enumerate() {
            assert_eq!(n.intern(s), i as u32);
        }
        for (i, s) in names.iter().enumerate() {
            assert_eq!((n.intern(s), n.get(s), n.name(i as u32)), (i as u32, Some(i as u32), s.as_str()));
        }
        assert_eq!((n.len(), n.get("task:5000"), n.name(99_999)), (names.len(), None, ""));
        assert!(n.names().eq(names.iter().map(String::as_str)));
    }
}
