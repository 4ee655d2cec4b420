//! The version history of one attribute, the value of the fact map.
//!
//! Expiry is rare (a TTL on some facts), so it is not stored in every
//! version: a history whose versions have none (`One`, `Many`) holds only
//! seqs and values, and one that has (`Timed`, boxed) keeps them beside its
//! versions. That makes a version 24 bytes instead of 32 on wasm32, and a
//! fact-map entry 32 instead of 40 (`BENCHMARKS.md`).

use crate::value::Value;

/// One version of an attribute, without its expiry. `value: None` is a retraction.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub seq: u32,
    pub value: Option<Value>,
}

/// A version with its expiry, as a [`Hist`] hands them out.
#[derive(Debug, Clone, Copy)]
pub struct VersionRef<'a> {
    pub seq: u32,
    pub value: Option<&'a Value>,
    /// `f64::INFINITY` when the value does not expire.
    pub valid_until: f64,
}

impl VersionRef<'_> {
    pub fn visible_at(&self, now: f64) -> bool {
        self.value.is_some() && now < self.valid_until
    }

    pub fn valid_until_opt(&self) -> Option<f64> {
        self.valid_until.is_finite().then_some(self.valid_until)
    }
}

/// The versions of one attribute, oldest first, at most one per seq.
#[derive(Debug, Clone)]
pub enum Hist {
    One(Version),
    Many(Vec<Version>),
    /// Some version expires: `until[i]` is version `i`'s expiry.
    Timed(Box<Timed>),
}

#[derive(Debug, Clone)]
pub struct Timed {
    versions: Vec<Version>,
    until: Vec<f64>,
}

impl Hist {
    /// A history of one version expiring at `until` (`f64::INFINITY`: never).
    pub fn new(v: Version, until: f64) -> Hist {
        if until == f64::INFINITY {
            Hist::One(v)
        } else {
            Hist::Timed(Box::new(Timed { versions: vec![v], until: vec![until] }))
        }
    }

    fn versions(&self) -> &[Version] {
        match self {
            Hist::One(v) => std::slice::from_ref(v),
            Hist::Many(v) => v,
            Hist::Timed(t) => &t.versions,
        }
    }

    pub fn get(&self, i: usize) -> VersionRef<'_> {
        let v = &self.versions()[i];
        let valid_until = match self {
            Hist::Timed(t) => t.until[i],
            _ => f64::INFINITY,
        };
        VersionRef { seq: v.seq, value: v.value.as_ref(), valid_until }
    }

    pub fn iter(&self) -> impl Iterator<Item = VersionRef<'_>> {
        (0..self.versions().len()).map(|i| self.get(i))
    }

    /// The newest version. A history is never empty.
    pub fn last(&self) -> VersionRef<'_> {
        self.get(self.versions().len() - 1)
    }

    /// The version in force at `seq` (the last one written at or before it).
    pub fn at(&self, seq: u32) -> Option<VersionRef<'_>> {
        let n = self.versions().partition_point(|v| v.seq <= seq);
        n.checked_sub(1).map(|i| self.get(i))
    }

    /// Adds a version; a second write in the same transaction replaces the first.
    pub fn write(&mut self, v: Version, until: f64) {
        if until != f64::INFINITY && !matches!(self, Hist::Timed(_)) {
            let versions = match std::mem::replace(self, Hist::Many(Vec::new())) {
                Hist::One(old) => vec![old],
                Hist::Many(list) => list,
                Hist::Timed(_) => unreachable!("checked above"),
            };
            let until = vec![f64::INFINITY; versions.len()];
            *self = Hist::Timed(Box::new(Timed { versions, until }));
        }
        match self {
            Hist::One(old) if old.seq == v.seq => *old = v,
            Hist::One(old) => *self = Hist::Many(vec![old.clone(), v]),
            Hist::Many(list) => match list.last_mut() {
                Some(last) if last.seq == v.seq => *last = v,
                _ => list.push(v),
            },
            Hist::Timed(t) => match (t.versions.last_mut(), t.until.last_mut()) {
                (Some(last), Some(u)) if last.seq == v.seq => (*last, *u) = (v, until),
                _ => {
                    t.versions.push(v);
                    t.until.push(until);
                }
            },
        }
    }

    /// Writes the versions of `later` (whose seqs follow this history's,
    /// or repeat its last one) on top, in order.
    pub fn append(&mut self, later: Hist) {
        match later {
            Hist::One(v) => self.write(v, f64::INFINITY),
            Hist::Many(list) => list.into_iter().for_each(|v| self.write(v, f64::INFINITY)),
            Hist::Timed(t) => {
                let Timed { versions, until } = *t;
                versions.into_iter().zip(until).for_each(|(v, u)| self.write(v, u));
            }
        }
    }

    /// A history of these versions (oldest first, seqs increasing) with their expiries.
    pub fn from_versions(v: Vec<(Version, f64)>) -> Option<Hist> {
        let mut it = v.into_iter();
        let (first, until) = it.next()?;
        let mut h = Hist::new(first, until);
        for (v, until) in it {
            h.write(v, until);
        }
        Some(h)
    }
}

// The sizes the layout is for (checked by every wasm build): a value of 12
// bytes (`value::Num`), a version and a history of 16.
#[cfg(target_pointer_width = "32")]
const _: () = assert!(
    std::mem::size_of::<crate::value::Value>() == 12 && std::mem::size_of::<Version>() == 16 && std::mem::size_of::<Hist>() == 16
);
