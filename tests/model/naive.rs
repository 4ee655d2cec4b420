//! The naive model of the model-based tests (`main.rs`): a list of every
//! write, re-evaluated from scratch for each query, written straight from
//! API.md's "Precise semantics".

use super::*;

// ---- the naive model ----------------------------------------------------------

#[derive(Debug, Clone)]
pub struct MTx {
    pub at: f64,
    pub cause: String,
    pub actor: Option<String>,
    pub note: Option<String>,
}

/// One write of an attribute, in application order. `value: None` retracts.
#[derive(Debug, Clone)]
pub struct Write {
    pub seq: u64,
    pub e: String,
    pub a: String,
    pub value: Option<Value>,
    pub vu: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct TypeWrite {
    pub seq: u64,
    pub e: String,
    pub ty: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub txs: Vec<MTx>,
    pub writes: Vec<Write>,
    pub types: Vec<TypeWrite>,
    pub cps: Vec<Checkpoint>,
}

impl Model {
    pub fn seq(&self) -> u64 {
        self.txs.len() as u64
    }

    /// The last write of (e, a) in transactions up to `s`.
    pub fn stored(&self, e: &str, a: &str, s: u64) -> Option<&Write> {
        self.writes.iter().rev().find(|w| w.seq <= s && w.e == e && w.a == a)
    }

    /// The history of (e, a): the last write of each transaction, oldest first.
    pub fn versions(&self, e: &str, a: &str) -> Vec<&Write> {
        let mut out: Vec<&Write> = Vec::new();
        for w in self.writes.iter().filter(|w| w.e == e && w.a == a) {
            match out.last_mut() {
                Some(last) if last.seq == w.seq => *last = w,
                _ => out.push(w),
            }
        }
        out
    }

    pub fn type_at(&self, e: &str, s: u64) -> Option<String> {
        self.types.iter().rev().find(|t| t.seq <= s && t.e == e).and_then(|t| t.ty.clone())
    }

    /// The write behind the value visible at seq `s`, judging expiry at `now`.
    pub fn visible(&self, e: &str, a: &str, s: u64, now: f64) -> Option<&Write> {
        self.stored(e, a, s).filter(|w| w.value.is_some() && now < w.vu.unwrap_or(f64::INFINITY))
    }

    pub fn value(&self, e: &str, a: &str, s: u64, now: f64) -> Option<Value> {
        self.visible(e, a, s, now).and_then(|w| w.value.clone())
    }

    pub fn entity(&self, e: &str, s: u64, now: f64) -> Option<Entity> {
        let mut attributes: Vec<(String, Value)> =
            ATTRS.iter().filter_map(|a| Some((a.to_string(), self.value(e, a, s, now)?))).collect();
        attributes.sort_by(|x, y| x.0.cmp(&y.0));
        // An entity exists while at least one attribute is visible; a type alone does not keep it.
        (!attributes.is_empty()).then(|| Entity { id: e.to_string(), ty: self.type_at(e, s), attributes })
    }

    pub fn entities(&self, s: u64, now: f64) -> Vec<Entity> {
        let mut out: Vec<Entity> = ENTS.iter().filter_map(|e| self.entity(e, s, now)).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn find(&self, q: &Query, s: u64, now: f64) -> Vec<Entity> {
        self.entities(s, now)
            .into_iter()
            .filter(|e| q.ty.is_none() || e.ty == q.ty)
            .filter(|e| q.where_.iter().all(|(k, v)| e.get(k) == Some(v)))
            .collect()
    }

    pub fn version(&self, w: &Write) -> FactVersion {
        let tx = &self.txs[w.seq as usize - 1];
        FactVersion {
            entity: w.e.clone(),
            attribute: w.a.clone(),
            value: w.value.clone(),
            seq: w.seq,
            at: tx.at,
            cause: tx.cause.clone(),
            actor: tx.actor.clone(),
            note: tx.note.clone(),
            valid_until: w.vu,
            retracted: w.value.is_none(),
        }
    }

    pub fn history(&self, e: &str, a: &str) -> Vec<FactVersion> {
        self.versions(e, a).into_iter().map(|w| self.version(w)).collect()
    }

    pub fn why(&self, e: &str, a: &str, s: u64, now: f64) -> Option<FactVersion> {
        self.visible(e, a, s, now).map(|w| self.version(w))
    }

    /// Visible facts with `validUntil <= now + within`, soonest first.
    pub fn expiring(&self, now: f64, within: f64) -> Vec<FactVersion> {
        let mut out = Vec::new();
        for e in ENTS {
            for a in ATTRS {
                if let Some(w) = self.visible(e, a, self.seq(), now) {
                    if w.vu.is_some_and(|vu| vu <= now + within) {
                        out.push(self.version(w));
                    }
                }
            }
        }
        out.sort_by(|x, y| {
            x.valid_until
                .partial_cmp(&y.valid_until)
                .unwrap()
                .then_with(|| x.entity.cmp(&y.entity))
                .then_with(|| x.attribute.cmp(&y.attribute))
        });
        out
    }

    /// Stored values (expiry ignored) that differ between `from` and `to`;
    /// seq and cause of the last transaction in the range that wrote each.
    pub fn diff(&self, from: u64, to: u64) -> Vec<Change> {
        let mut out = Vec::new();
        for e in ENTS {
            for a in ATTRS {
                let before = self.stored(e, a, from).and_then(|w| w.value.clone());
                let after = self.stored(e, a, to).and_then(|w| w.value.clone());
                if before == after {
                    continue;
                }
                let last = self.versions(e, a).into_iter().rfind(|w| w.seq > from && w.seq <= to).unwrap();
                out.push(Change {
                    entity: e.to_string(),
                    attribute: a.to_string(),
                    before,
                    after,
                    seq: last.seq,
                    cause: self.txs[last.seq as usize - 1].cause.clone(),
                });
            }
        }
        out.sort_by(|x, y| x.entity.cmp(&y.entity).then_with(|| x.attribute.cmp(&y.attribute)));
        out
    }

    /// The seq and expiry time an as-of view shows.
    pub fn as_of_seq(&self, s: u64) -> (u64, f64) {
        (s, if s == 0 { f64::NEG_INFINITY } else { self.txs[s as usize - 1].at })
    }

    pub fn as_of_at(&self, t: f64) -> (u64, f64) {
        let included: Vec<u64> = (1..=self.seq()).filter(|&s| self.txs[s as usize - 1].at <= t).collect();
        assert!(included.iter().enumerate().all(|(i, &s)| s == i as u64 + 1), "the included transactions are a prefix");
        (included.len() as u64, t)
    }

    pub fn live(&self, e: &str, a: &str) -> bool {
        self.stored(e, a, u64::MAX).is_some_and(|w| w.value.is_some())
    }

    pub fn commit(&mut self, at: f64, prov: &Provenance) -> u64 {
        self.txs.push(MTx { at, cause: prov.cause.clone(), actor: prov.actor.clone(), note: prov.note.clone() });
        self.seq()
    }

    /// Applies the ops of a transaction in order.
    pub fn transact(&mut self, ops: &[Op], at: f64, prov: &Provenance) -> u64 {
        let seq = self.commit(at, prov);
        for op in ops {
            match op {
                Op::Set { entity, ty, attrs, expiry } => {
                    if let Some(t) = ty {
                        self.types.push(TypeWrite { seq, e: entity.clone(), ty: Some(t.clone()) });
                    }
                    let vu = match expiry {
                        None => None,
                        Some(Expiry::TtlMs(ms)) => Some(at + ms),
                        Some(Expiry::ValidUntil(t)) => Some(*t),
                    };
                    for (a, value) in attrs {
                        self.writes.push(Write {
                            seq,
                            e: entity.clone(),
                            a: a.clone(),
                            value: Some(value.clone()),
                            vu,
                        });
                    }
                }
                Op::Unset { entity, attrs } => {
                    for a in attrs {
                        if self.live(entity, a) {
                            self.writes.push(Write { seq, e: entity.clone(), a: a.clone(), value: None, vu: None });
                        }
                    }
                }
                Op::Delete { entity } => {
                    for a in ATTRS {
                        if self.live(entity, a) {
                            self.writes.push(Write { seq, e: entity.clone(), a: a.to_string(), value: None, vu: None });
                        }
                    }
                    if self.type_at(entity, u64::MAX).is_some() {
                        self.types.push(TypeWrite { seq, e: entity.clone(), ty: None });
                    }
                }
            }
        }
        seq
    }

    /// Puts back the stored values, their validUntil and the types of seq `c`.
    pub fn restore(&mut self, c: u64, at: f64, prov: &Provenance) -> u64 {
        let latest = self.seq();
        let seq = self.commit(at, prov);
        for e in ENTS {
            for a in ATTRS {
                let then = self.stored(e, a, c).filter(|w| w.value.is_some()).cloned();
                let now = self.stored(e, a, latest).cloned();
                match then {
                    Some(w) if now.as_ref().is_none_or(|n| n.value != w.value || n.vu != w.vu) => {
                        self.writes.push(Write { seq, ..w });
                    }
                    None if now.is_some_and(|n| n.value.is_some()) => {
                        self.writes.push(Write { seq, e: e.to_string(), a: a.to_string(), value: None, vu: None });
                    }
                    _ => {}
                }
            }
            let (then, now) = (self.type_at(e, c), self.type_at(e, latest));
            if then != now {
                self.types.push(TypeWrite { seq, e: e.to_string(), ty: then });
            }
        }
        seq
    }

    /// The model of a fork at seq `p`: the log prefix, no checkpoints.
    pub fn truncated(&self, p: u64) -> Model {
        Model {
            txs: self.txs[..p as usize].to_vec(),
            writes: self.writes.iter().filter(|w| w.seq <= p).cloned().collect(),
            types: self.types.iter().filter(|t| t.seq <= p).cloned().collect(),
            cps: Vec::new(),
        }
    }

    /// Every time at which something may change, and a little either side.
    pub fn interesting_times(&self, clock: f64) -> Vec<f64> {
        let mut ts = vec![clock, clock + 1_000.0, 0.0];
        for t in &self.txs {
            ts.extend([t.at - 1.0, t.at, t.at + 1.0]);
        }
        for w in &self.writes {
            if let Some(vu) = w.vu {
                ts.extend([vu - 1.0, vu, vu + 0.5]);
            }
        }
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        ts
    }
}
