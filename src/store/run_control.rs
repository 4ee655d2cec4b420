//! Run control (pause, resume, complete, fail), the audit log, and keeping
//! the registry summary in step with the facts.

use crate::core::state::ScopeState;
use crate::core::tx::OpRecord;
use crate::core::value::Value;
use crate::core::workflow::{RunStatus, StepState};
use crate::error::{Error, Result};
use crate::storage::Storage;

use super::registry::{self, RunSummary};
use super::run::{Run, TransitionInfo};

impl<S: Storage> Run<S> {
    /// Changes the run's status with `change` (which refuses what the state
    /// machine forbids), storing `extra` attributes with it.
    async fn set_status(
        &self,
        what: &str,
        change: fn(RunStatus) -> Result<RunStatus>,
        extra: Vec<(String, Value)>,
    ) -> Result<()> {
        self.scope().store().check_open()?;
        let old = self.stored_summary().await?;
        self.scope()
            .commit(&|st, at| {
                let next = change(self.status_in(st))?;
                let mut attrs = vec![
                    ("status".to_string(), Value::from(next.as_str())),
                    ("updatedAt".to_string(), Value::from(at)),
                ];
                attrs.extend(extra.iter().cloned());
                let op = OpRecord::Set { entity: self.entity_id().to_string(), ty: None, attrs, valid_until: None };
                Ok(Some((self.prov(what, None), vec![op])))
            })
            .await?;
        self.sync_registry(old.as_ref()).await
    }

    /// `running → paused`. Steps are refused until `resume`.
    pub async fn pause(&self) -> Result<()> {
        self.set_status("pause", RunStatus::pause, vec![]).await
    }

    /// `paused → running`.
    pub async fn resume(&self) -> Result<()> {
        self.set_status("resume", RunStatus::resume, vec![]).await
    }

    /// Ends the run successfully with an output.
    pub async fn complete(&self, output: Value) -> Result<()> {
        output.validate()?;
        self.set_status("complete", RunStatus::complete, vec![("output".into(), output)]).await
    }

    /// Ends the run as failed with a reason.
    pub async fn fail(&self, reason: &str) -> Result<()> {
        self.set_status("fail", RunStatus::fail, vec![("error".into(), Value::from(reason))]).await
    }

    /// The run's output, once completed.
    pub fn output(&self) -> Option<Value> {
        self.scope().value(self.entity_id(), "output")
    }

    /// The run's input.
    pub fn input(&self) -> Option<Value> {
        self.scope().value(self.entity_id(), "input")
    }

    /// Every step transition of the run, in the order they were persisted.
    pub fn transitions(&self) -> Vec<TransitionInfo> {
        // A run id removed by cleanup and created again reuses the entity ids:
        // skip what the earlier run wrote before this one was created.
        let created = self.scope().history(self.entity_id(), "createdAt").last().map_or(0, |v| v.seq);
        let mut out: Vec<(u64, usize, TransitionInfo)> = Vec::new();
        for step in self.steps() {
            for v in self.scope().history(&self.step_entity_id(&step.name), "transitions") {
                let Some(Value::Array(items)) = &v.value else { continue };
                if v.seq < created {
                    continue;
                }
                for (i, t) in items.iter().enumerate() {
                    let state = |k: &str| t.get(k).and_then(Value::as_str).and_then(StepState::parse);
                    let (Some(from), Some(to)) = (state("from"), state("to")) else { continue };
                    out.push((
                        v.seq,
                        i,
                        TransitionInfo {
                            step: step.name.clone(),
                            from,
                            to,
                            at: t.get("at").and_then(Value::as_f64).unwrap_or(v.at),
                            attempt: t.get("attempt").and_then(Value::as_f64).unwrap_or(0.0) as u32,
                            cause: v.cause.clone(),
                        },
                    ));
                }
            }
        }
        crate::core::sort::sort_by_key(&mut out, |(seq, i, _)| (*seq, *i));
        out.into_iter().map(|(_, _, t)| t).collect()
    }

    /// The registry summary derived from the facts.
    pub(crate) fn summary_in(&self, st: &ScopeState) -> RunSummary {
        let get = |a: &str| {
            let key = (st.names.get(self.entity_id())?, st.names.get(a)?);
            st.facts.get(&key)?.last().value.cloned()
        };
        let mut steps = [0u32; 5];
        for state in self.step_states_in(st) {
            if let Some(i) = StepState::ALL.iter().position(|s| *s == state) {
                steps[i] += 1;
            }
        }
        RunSummary {
            workflow: self.workflow().to_string(),
            id: self.id().to_string(),
            scope: st.dims().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            status: self.status_in(st),
            created_at: get("createdAt").and_then(|v| v.as_f64()).unwrap_or(0.0),
            updated_at: get("updatedAt").and_then(|v| v.as_f64()).unwrap_or(0.0),
            error: get("error").and_then(|v| v.as_str().map(str::to_string)),
            steps,
        }
    }

    /// The summary currently in the registry, if any.
    pub(crate) async fn stored_summary(&self) -> Result<Option<RunSummary>> {
        if super::registry_events::events_layout(self.scope().store().storage().capabilities()) {
            return self.latest_event().await;
        }
        let key = registry::info_key(self.run_key());
        match self.scope().store().storage().get(&key).await? {
            Some(bytes) => Ok(Some(registry::decode_summary(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes the summary derived from the facts. `old` is the stored summary
    /// when the status or creation time may have changed (index keys move).
    pub(crate) async fn sync_registry(&self, old: Option<&RunSummary>) -> Result<()> {
        if super::registry_events::events_layout(self.scope().store().storage().capabilities()) {
            return self.sync_events().await;
        }
        let new = self.scope().with_state(|st| self.summary_in(st));
        if old == Some(&new) {
            return Ok(());
        }
        let ops = registry::update_ops(self.run_key(), old, &new);
        self.scope().store().storage().batch(ops).await
    }

    /// Removes the run: retracts its facts (history stays) and its registry entry.
    pub(crate) async fn remove(&self, summary: &RunSummary) -> Result<()> {
        let status = self.status();
        if !status.is_terminal() {
            return Err(Error::InvalidTransition(format!("run {}/{} is {status}; only ended runs are removed", self.workflow(), self.id())));
        }
        let names: Vec<String> = self.steps().into_iter().map(|s| s.name).collect();
        self.scope()
            .commit(&|_, _| {
                let mut ops: Vec<OpRecord> = names.iter().map(|n| OpRecord::Delete { entity: self.step_entity_id(n) }).collect();
                ops.push(OpRecord::Delete { entity: self.entity_id().to_string() });
                Ok(Some((self.prov("cleanup", None), ops)))
            })
            .await?;
        if super::registry_events::events_layout(self.scope().store().storage().capabilities()) {
            return self.remove_events().await;
        }
        self.scope().store().storage().batch(registry::remove_ops(self.run_key(), summary)).await
    }
}
