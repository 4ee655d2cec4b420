//! Custom state machines over any entity attribute: the transition is
//! checked (states, allowed edges, guards) against the caught-up state inside
//! the commit that records it, so concurrent writers cannot both move an
//! entity out of the same state.

use std::cell::Cell;

use crate::core::tx::{OpRecord, Provenance, TxInfo};
use crate::core::value::Value;
use crate::core::workflow::Machine;
use crate::error::{Error, Result};
use crate::storage::Storage;

use super::Scope;

impl<S: Storage> Scope<S> {
    /// The state of `entity.attr` under `machine`: its stored string value,
    /// or the machine's initial state when there is none.
    pub fn machine_state(&self, machine: &Machine, entity: &str, attr: &str) -> String {
        self.value(entity, attr)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| machine.initial().to_string())
    }

    /// Moves `entity.attr` to `to` if `machine` allows it from the current
    /// state (guards see `context`), in one transaction with provenance.
    /// A refused move is `INVALID_TRANSITION` naming both states; unknown
    /// states are `INVALID_INPUT`.
    pub async fn advance(
        &self,
        machine: &Machine,
        entity: &str,
        attr: &str,
        to: &str,
        context: &Value,
        prov: Provenance,
    ) -> Result<TxInfo> {
        crate::core::tx::validate_provenance(&prov)?;
        if entity.is_empty() {
            return Err(Error::invalid("entity ids must not be empty"));
        }
        let built = self
            .commit_decision(&|st, at| {
                let current = st
                    .current(at)
                    .value(entity, attr)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| machine.initial().to_string());
                machine.transition(&current, to, context)?;
                let op = OpRecord::Set {
                    entity: entity.to_string(),
                    ty: None,
                    attrs: vec![(attr.to_string(), Value::from(to))],
                    valid_until: None,
                };
                Ok(Some((prov.clone(), vec![op])))
            })
            .await?;
        built.ok_or_else(|| Error::Storage("internal: a transition was built but not committed".into()))
    }

    /// [`Scope::commit`] for decisions that may refuse (a state machine's
    /// transition, a step claim): a refusal — an error from `build` — taken
    /// on a state that other writers have since moved on from is taken again
    /// on the caught-up state. `commit` alone re-decides only after losing a
    /// seq race, which a refusal never reaches, so a stale handle would keep
    /// refusing (a finished step's lease "still live", a resumed run "paused").
    pub(crate) async fn commit_decision(
        &self,
        build: &super::merge::Build<'_>,
    ) -> Result<Option<TxInfo>> {
        const MAX_REDECIDE: usize = 64;
        let mut tries = 0;
        loop {
            let refused = Cell::new(false);
            let result = self
                .commit(&|st, at| {
                    let r = build(st, at);
                    refused.set(r.is_err());
                    r
                })
                .await;
            match result {
                Err(e) if refused.get() && tries < MAX_REDECIDE => {
                    let decided_on = self.seq();
                    if self.refresh().await? == decided_on {
                        return Err(e);
                    }
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}
