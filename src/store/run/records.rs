//! A step's stored record: reading it from the run's scope state, and the
//! ops that move it to a new state (committed by the step loop, `step.rs`).

use crate::core::state::ScopeState;
use crate::core::tx::OpRecord;
use crate::core::value::Value;
use crate::core::workflow::{Outcome, StepRecord, StepState};
use crate::storage::Storage;

use super::{Run, STEP_TYPE};


/// `kind:` and the JSON array of `parts`, byte for byte what
/// `Value::array(parts).to_json()` gives (these ids are stored), without
/// pulling `to_json`'s number formatting into the wasm.
pub(super) fn json_id(kind: &str, parts: &[&str]) -> String {
    let mut out = format!("{kind}:[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::core::value::write_json_str(p, &mut out);
    }
    out.push(']');
    out
}

/// The latest stored value of an attribute, ignoring expiry.
pub(super) fn stored<'a>(st: &'a ScopeState, entity: &str, attr: &str) -> Option<&'a Value> {
    let key = (st.names.get(entity)?, st.names.get(attr)?);
    st.facts.get(&key)?.last().value
}

pub(super) fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

pub(super) fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

pub(super) fn opt_num(n: Option<f64>) -> Option<Value> {
    n.map(Value::from)
}

impl<S: Storage> Run<S> {
    pub(super) fn step_names(&self, st: &ScopeState) -> Vec<String> {
        match stored(st, &self.entity, "steps") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn record_in(&self, st: &ScopeState, name: &str) -> StepRecord {
        let e = self.step_entity_id(name);
        let get = |a: &str| stored(st, &e, a);
        let mut rec = StepRecord::new(name);
        rec.state = get("state").and_then(Value::as_str).and_then(StepState::parse).unwrap_or(StepState::Pending);
        rec.attempts = num(get("attempts")).unwrap_or(0.0) as u32;
        rec.result = get("result").cloned();
        rec.error = string(get("error"));
        rec.valid_until = num(get("validUntil"));
        rec.started_at = num(get("startedAt"));
        rec.ended_at = num(get("endedAt"));
        rec.lease_holder = string(get("leaseHolder"));
        rec.lease_until = num(get("leaseUntil"));
        rec
    }

    /// The ops that move a step's stored record from `old` to `new`, plus the
    /// run's `updatedAt` (and its step list when the step is new).
    pub(super) fn record_ops(&self, st: &ScopeState, old: &StepRecord, o: &Outcome, at: f64) -> Vec<OpRecord> {
        let new = &o.record;
        let entity = self.step_entity_id(&new.name);
        let field = |r: &StepRecord| -> Vec<(&'static str, Option<Value>)> {
            vec![
                ("state", Some(Value::from(r.state.as_str()))),
                ("attempts", Some(Value::from(r.attempts))),
                ("error", r.error.clone().map(Value::from)),
                ("validUntil", opt_num(r.valid_until)),
                ("startedAt", opt_num(r.started_at)),
                ("endedAt", opt_num(r.ended_at)),
                ("leaseHolder", r.lease_holder.clone().map(Value::from)),
                ("leaseUntil", opt_num(r.lease_until)),
            ]
        };
        let is_new = stored(st, &entity, "state").is_none();
        let mut set: Vec<(String, Value)> = Vec::new();
        let mut unset: Vec<String> = Vec::new();
        for ((name, before), (_, after)) in field(old).into_iter().zip(field(new)) {
            match after {
                Some(v) if is_new || before.as_ref() != Some(&v) => set.push((name.to_string(), v)),
                None if before.is_some() => unset.push(name.to_string()),
                _ => {}
            }
        }
        if is_new {
            set.push(("run".into(), Value::from(self.entity.as_str())));
            set.push(("name".into(), Value::from(new.name.as_str())));
        }
        let transitions = Value::array(o.transitions.iter().map(|t| {
            Value::object([
                ("from", Value::from(t.from.as_str())),
                ("to", Value::from(t.to.as_str())),
                ("at", Value::from(t.at)),
                ("attempt", Value::from(t.attempt)),
            ])
        }));
        set.push(("transitions".into(), transitions));
        let mut ops = vec![OpRecord::Set { entity: entity.clone(), ty: is_new.then(|| STEP_TYPE.into()), attrs: set, valid_until: None }];
        if !unset.is_empty() {
            ops.push(OpRecord::Unset { entity: entity.clone(), attrs: unset });
        }
        match (&new.result, old.result == new.result && old.valid_until == new.valid_until) {
            (Some(r), false) => ops.push(OpRecord::Set {
                entity: entity.clone(),
                ty: None,
                attrs: vec![("result".into(), r.clone())],
                valid_until: new.valid_until,
            }),
            (None, _) if old.result.is_some() => ops.push(OpRecord::Unset { entity, attrs: vec!["result".into()] }),
            _ => {}
        }
        let mut run_attrs = vec![("updatedAt".to_string(), Value::from(at))];
        if is_new {
            let mut names = self.step_names(st);
            names.push(new.name.clone());
            run_attrs.push(("steps".into(), Value::array(names.into_iter().map(Value::from))));
        }
        ops.push(OpRecord::Set { entity: self.entity.clone(), ty: None, attrs: run_attrs, valid_until: None });
        ops
    }
}

#[cfg(test)]
mod json_id_tests {
    use super::*;

    #[test]
    fn json_ids_are_the_json_of_their_parts() {
        for parts in [vec![], vec!["w"], vec!["a\"b\\c", "line\nbreak\t\u{1}", "ünï ✓", ""]] {
            let want = format!("step:{}", Value::array(parts.iter().map(|p| Value::from(*p))).to_json());
            assert_eq!(json_id("step", &parts), want);
        }
    }
}
