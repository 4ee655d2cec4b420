//! Reads: current state and as-of views share one implementation, a [`View`]
//! fixed at a seq and judging expiry at a time.

use crate::state::{FactKey, Hist, ScopeState, VersionRef, TYPE_ATTR};
use crate::value::Value;
use crate::error::{Error, Result};

/// An entity with its visible attributes, sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub id: String,
    pub ty: Option<String>,
    pub attributes: Vec<(String, Value)>,
}

impl Entity {
    pub fn get(&self, attr: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| k == attr).map(|(_, v)| v)
    }
}

/// One version of an attribute with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct FactVersion {
    pub entity: String,
    pub attribute: String,
    /// Absent for a retraction.
    pub value: Option<Value>,
    pub seq: u64,
    pub at: f64,
    pub cause: String,
    pub actor: Option<String>,
    pub note: Option<String>,
    pub valid_until: Option<f64>,
    pub retracted: bool,
}

/// Selects entities by type and attribute equality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub ty: Option<String>,
    pub where_: Vec<(String, Value)>,
}

/// Which moment an as-of view shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AsOf {
    /// After the transaction with this seq, judging expiry at its time.
    Seq(u64),
    /// After every transaction with `at <=` this time, judging expiry at it.
    At(f64),
}

/// A read-only view of a scope at one seq, judging expiry at `now`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    st: &'a ScopeState,
    seq: u32,
    now: f64,
}

impl ScopeState {
    /// The current state, judging expiry at `now`.
    pub fn current(&self, now: f64) -> View<'_> {
        View { st: self, seq: self.txs.len() as u32, now }
    }

    /// A view of the past. `AsOf::Seq` beyond the latest seq is `NOT_FOUND`.
    pub fn as_of(&self, when: AsOf) -> Result<View<'_>> {
        match when {
            AsOf::Seq(s) => {
                if s > self.seq() {
                    return Err(Error::NotFound(format!("seq {s} is beyond the latest seq {}", self.seq())));
                }
                let now = self.tx(s).map_or(f64::NEG_INFINITY, |t| t.at);
                Ok(View { st: self, seq: s as u32, now })
            }
            AsOf::At(t) => {
                if t.is_nan() {
                    return Err(Error::invalid("asOf({ at }) needs a number"));
                }
                // Transaction times never decrease (the store clamps them), so
                // the included transactions are a prefix.
                let n = self.txs.partition_point(|m| m.at <= t);
                Ok(View { st: self, seq: n as u32, now: t })
            }
        }
    }

    /// A view at `seq` (clamped to the latest) judging expiry at `now`.
    pub fn view_at(&self, seq: u64, now: f64) -> View<'_> {
        View { st: self, seq: seq.min(self.seq()) as u32, now }
    }

    /// Every version of an attribute, oldest first.
    pub fn history(&self, entity: &str, attr: &str) -> Vec<FactVersion> {
        self.hist(entity, attr)
            .map(|h| h.iter().map(|v| self.version(entity, attr, v)).collect())
            .unwrap_or_default()
    }

    fn hist(&self, entity: &str, attr: &str) -> Option<&Hist> {
        let key = (self.names.get(entity)?, self.names.get(attr)?);
        self.facts.get(&key)
    }

    pub fn version(&self, entity: &str, attr: &str, v: VersionRef<'_>) -> FactVersion {
        let meta = self.tx(u64::from(v.seq));
        FactVersion {
            entity: entity.to_string(),
            attribute: attr.to_string(),
            value: v.value.cloned(),
            seq: u64::from(v.seq),
            at: meta.map_or(0.0, |m| m.at),
            cause: meta.map(|m| m.cause.to_string()).unwrap_or_default(),
            actor: meta.and_then(|m| m.actor.as_deref().map(str::to_string)),
            note: meta.and_then(|m| m.note.as_deref().map(str::to_string)),
            valid_until: v.valid_until_opt(),
            retracted: v.value.is_none(),
        }
    }

    /// Visible facts at `now` whose `validUntil <= now + within`, soonest first.
    pub fn expiring(&self, now: f64, within: f64) -> Vec<FactVersion> {
        let limit = now + within;
        let mut out: Vec<FactVersion> = self
            .facts
            .iter()
            .filter_map(|(&(e, a), h)| {
                let v = h.last();
                (v.visible_at(now) && v.valid_until <= limit)
                    .then(|| self.version(self.names.name(e), self.names.name(a), v))
            })
            .collect();
        crate::sort::sort_by(&mut out, |a, b| {
            a.valid_until
                .partial_cmp(&b.valid_until)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.entity.cmp(&b.entity))
                .then_with(|| a.attribute.cmp(&b.attribute))
        });
        out
    }

    /// Number of facts visible at `now`.
    pub fn visible_facts(&self, now: f64) -> usize {
        self.facts.values().filter(|h| h.last().visible_at(now)).count()
    }
}

impl<'a> View<'a> {
    /// The seq this view shows.
    pub fn seq(&self) -> u64 {
        u64::from(self.seq)
    }

    /// The time at which this view judges expiry.
    pub fn now(&self) -> f64 {
        self.now
    }

    fn visible(&self, h: &'a Hist) -> Option<VersionRef<'a>> {
        h.at(self.seq).filter(|v| v.visible_at(self.now))
    }

    /// The visible value of one attribute.
    pub fn value(&self, entity: &str, attr: &str) -> Option<Value> {
        let key = (self.st.names.get(entity)?, self.st.names.get(attr)?);
        self.visible(self.st.facts.get(&key)?)?.value.cloned()
    }

    /// The version behind the visible value of one attribute.
    pub fn why(&self, entity: &str, attr: &str) -> Option<FactVersion> {
        let key = (self.st.names.get(entity)?, self.st.names.get(attr)?);
        let v = self.visible(self.st.facts.get(&key)?)?;
        Some(self.st.version(entity, attr, v))
    }

    /// An entity, if at least one of its attributes is visible.
    pub fn entity(&self, id: &str) -> Option<Entity> {
        let e = self.st.names.get(id)?;
        self.build(e, self.st.facts.range((e, 0)..(e, TYPE_ATTR)))
    }

    fn build<'b>(&self, e: u32, facts: impl Iterator<Item = (&'b FactKey, &'b Hist)>) -> Option<Entity>
    where
        'a: 'b,
    {
        let mut attributes: Vec<(String, Value)> = facts
            .filter_map(|(&(_, a), h)| {
                let v = self.visible(h)?;
                Some((self.st.names.name(a).to_string(), v.value.cloned()?))
            })
            .collect();
        if attributes.is_empty() {
            return None;
        }
        crate::sort::sort_by(&mut attributes, |x, y| x.0.cmp(&y.0));
        Some(Entity {
            id: self.st.names.name(e).to_string(),
            ty: self.st.type_at(e, self.seq).map(|t| self.st.names.name(t).to_string()),
            attributes,
        })
    }

    /// Every entity with a visible attribute, ordered by id.
    pub fn entities(&self) -> Vec<Entity> {
        self.find(&Query::default())
    }

    /// Entities of a type (if given) whose attributes equal every `where_` value, ordered by id.
    pub fn find(&self, q: &Query) -> Vec<Entity> {
        let ty = match &q.ty {
            Some(t) => match self.st.names.get(t) {
                Some(id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        let mut out = Vec::new();
        let mut rest = self.st.facts.iter().peekable();
        while let Some(&(&(e, _), _)) = rest.peek() {
            let group = std::iter::from_fn(|| rest.next_if(|((x, _), _)| *x == e));
            if ty.is_some() && self.st.type_at(e, self.seq) != ty {
                group.for_each(drop);
                continue;
            }
            if let Some(ent) = self.build(e, group) {
                if q.where_.iter().all(|(k, v)| ent.get(k) == Some(v)) {
                    out.push(ent);
                }
            }
        }
        crate::sort::sort_by(&mut out, |a, b| a.id.cmp(&b.id));
        out
    }
}
