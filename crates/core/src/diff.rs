//! Attribute-level diffs between two points, and the compensating operations
//! of a restore. Both walk only the keys touched by the transactions in the
//! range (recorded per transaction), so they cost in proportion to the writes
//! in the range, not to the size of the state.

use crate::state::{FactKey, ScopeState, TYPE_ATTR};
use crate::tx::OpRecord;
use crate::value::Value;
use crate::error::{Error, Result};

/// One attribute whose stored value differs between two points.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub entity: String,
    pub attribute: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The last transaction in the range that wrote the attribute.
    pub seq: u64,
    pub cause: String,
}

impl ScopeState {
    /// The attribute keys (and, with `TYPE_ATTR`, type changes) written by
    /// transactions `from+1 ..= to`, sorted and unique.
    fn touched_between(&self, from: u64, to: u64) -> Vec<FactKey> {
        let mut keys: Vec<FactKey> =
            self.txs[from as usize..to as usize].iter().flat_map(|m| m.touched.iter()).collect();
        crate::sort::sort_dedup(&mut keys);
        keys
    }

    fn check_range(&self, from: u64, to: u64) -> Result<()> {
        if from > to {
            return Err(Error::invalid(format!("diff from seq {from} to seq {to}: the start is after the end")));
        }
        if to > self.seq() {
            return Err(Error::NotFound(format!("seq {to} is beyond the latest seq {}", self.seq())));
        }
        Ok(())
    }

    /// Changes between seq `from` and seq `to`, ordered by entity then attribute.
    /// Compares stored values and ignores expiry.
    pub fn diff(&self, from: u64, to: u64) -> Result<Vec<Change>> {
        self.check_range(from, to)?;
        let (f, t) = (from as u32, to as u32);
        let mut out: Vec<Change> = self
            .touched_between(from, to)
            .into_iter()
            .filter(|(_, a)| *a != TYPE_ATTR)
            .filter_map(|key| {
                let h = self.facts.get(&key)?;
                let before = h.at(f).and_then(|v| v.value);
                let last = h.at(t)?;
                let after = last.value;
                if before == after {
                    return None;
                }
                Some(Change {
                    entity: self.names.name(key.0).to_string(),
                    attribute: self.names.name(key.1).to_string(),
                    before: before.cloned(),
                    after: after.cloned(),
                    seq: u64::from(last.seq),
                    cause: self.tx(u64::from(last.seq)).map(|m| m.cause.to_string()).unwrap_or_default(),
                })
            })
            .collect();
        crate::sort::sort_by(&mut out, |a, b| a.entity.cmp(&b.entity).then_with(|| a.attribute.cmp(&b.attribute)));
        Ok(out)
    }

    /// The operations that bring the current state back to the one at `seq`:
    /// values, their `validUntil`, and entity types.
    pub fn restore_ops(&self, seq: u64) -> Result<Vec<OpRecord>> {
        self.check_range(seq, self.seq())?;
        let s = seq as u32;
        let mut ops = Vec::new();
        for (e, a) in self.touched_between(seq, self.seq()) {
            let entity = self.names.name(e).to_string();
            if a == TYPE_ATTR {
                let then = self.type_at(e, s);
                let now = self.type_at(e, u32::MAX);
                if then != now {
                    ops.push(OpRecord::Type { entity, ty: then.map(|t| self.names.name(t).to_string()) });
                }
                continue;
            }
            let Some(h) = self.facts.get(&(e, a)) else { continue };
            let then = h.at(s).filter(|v| v.value.is_some());
            let now = h.last();
            let attr = self.names.name(a).to_string();
            match then {
                Some(v) if v.value != now.value || v.valid_until != now.valid_until => {
                    let value = v.value.cloned().unwrap_or(Value::Null);
                    ops.push(OpRecord::Set { entity, ty: None, attrs: vec![(attr, value)], valid_until: v.valid_until_opt() });
                }
                None if now.value.is_some() => ops.push(OpRecord::Unset { entity, attrs: vec![attr] }),
                _ => {}
            }
        }
        Ok(ops)
    }
}
