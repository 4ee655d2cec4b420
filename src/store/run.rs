//! Durable workflow runs on top of the fact store.
//!
//! A run and its steps are entities in the run's scope, so they inherit
//! provenance, history, checkpoints and diffs:
//!
//! ```text
//! run:["research","market_q1"]          type WorkflowRun:  workflow, id, status, input, output?, error?,
//!                                                          createdAt, updatedAt, steps (names, first-seen order)
//! step:["research","market_q1","search"] type WorkflowStep: run, name, state, attempts, result?, error?,
//!                                                          validUntil?, startedAt?, endedAt?, leaseHolder?,
//!                                                          leaseUntil?, transitions (those of its last tx)
//! ```
//!
//! Every decision of the pure state machine (`core::workflow`) is taken inside
//! the commit of the transaction that records it, on the caught-up state: a
//! writer that loses a seq race re-decides after reading the winner's record,
//! so two holders can never both claim a step on storage with an atomic
//! create. The user's function runs outside any lock; each transition is
//! persisted before it runs and before its result is handed back.
//!
//! The step loop is in `run/step.rs`; reading a step's record and building
//! the ops that store a new one, in `run/records.rs`.

mod records;
mod step;

use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use crate::core::state::ScopeState;
use crate::core::tx::{OpRecord, Provenance};
use crate::core::value::Value;
use crate::core::workflow::{self as wf, RetryPolicy, RunStatus, StepRecord, StepState};
use crate::error::{Error, Result};
use crate::storage::Storage;

use super::registry;
use super::{Scope, Store};
use records::{json_id, stored};

/// Waits the given number of milliseconds (a retry's backoff).
pub type Sleeper = Rc<dyn Fn(f64) -> LocalBoxFuture<'static, ()>>;

pub(crate) const RUN_TYPE: &str = "WorkflowRun";
pub(crate) const STEP_TYPE: &str = "WorkflowStep";

/// How to open or create a run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub workflow: String,
    pub id: String,
    pub scope: crate::core::dims::Dims,
    /// Stored when the run is created; ignored when it already exists.
    pub input: Option<Value>,
    pub lease_ms: Option<f64>,
}

/// Per-step options.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// The result goes stale this long after completion; the step then runs again.
    pub ttl_ms: Option<f64>,
    pub retry: RetryPolicy,
    pub lease_ms: Option<f64>,
}

/// How a step's own function failed.
#[derive(Debug)]
pub struct Failure<E> {
    pub error: E,
    /// Stored as the step's `error`.
    pub message: String,
    /// `false` ends the attempt series at once.
    pub retryable: bool,
}

impl<E: std::fmt::Display> Failure<E> {
    pub fn new(error: E) -> Self {
        let message = error.to_string();
        Failure { error, message, retryable: true }
    }
}

/// Why `step` did not return a result.
#[derive(Debug)]
pub enum StepError<E> {
    /// Waymark refused or failed (`INVALID_TRANSITION`, `CONFLICT`, `REJECTED`, `STORAGE`, …).
    Waymark(Error),
    /// The step's function failed on its last attempt: its own error, unchanged.
    Step(E),
}

impl<E> From<Error> for StepError<E> {
    fn from(e: Error) -> Self {
        StepError::Waymark(e)
    }
}

/// One entry of a run's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionInfo {
    pub step: String,
    pub from: StepState,
    pub to: StepState,
    pub at: f64,
    pub attempt: u32,
    pub cause: String,
}

/// A durable workflow run. Cheap to clone.
pub struct Run<S: Storage> {
    scope: Scope<S>,
    workflow: String,
    id: String,
    entity: String,
    run_key: String,
    lease_ms: f64,
}

impl<S: Storage> Clone for Run<S> {
    fn clone(&self) -> Self {
        Run {
            scope: self.scope.clone(),
            workflow: self.workflow.clone(),
            id: self.id.clone(),
            entity: self.entity.clone(),
            run_key: self.run_key.clone(),
            lease_ms: self.lease_ms,
        }
    }
}

impl<S: Storage> Store<S> {
    /// Opens the run `(workflow, id)` in `scope`, creating it (status
    /// `running`) if it does not exist.
    pub async fn run(&self, spec: RunSpec) -> Result<Run<S>> {
        self.check_open()?;
        if spec.workflow.is_empty() || spec.id.is_empty() {
            return Err(Error::invalid("a run needs a non-empty `workflow` and `id`"));
        }
        if let Some(v) = &spec.input {
            v.validate()?;
        }
        if spec.lease_ms.is_some() {
            super::merge::check_lease(self.storage().capabilities(), &format!("run {:?}", spec.id))?;
        }
        let lease_ms = spec.lease_ms.unwrap_or(self.options().lease_ms);
        if !(lease_ms.is_finite() && lease_ms > 0.0) {
            return Err(Error::invalid(format!("leaseMs must be a positive number, got {}", crate::error::Num(lease_ms))));
        }
        let scope = self.scope(spec.scope.clone()).await?;
        scope.refresh().await?;
        let run = Run::handle(scope, spec.workflow, spec.id, lease_ms);
        let input = spec.input.unwrap_or(Value::Null);
        let created = run
            .scope
            .commit(&|st, at| {
                if stored(st, &run.entity, "status").is_some() {
                    return Ok(None);
                }
                let attrs = vec![
                    ("workflow".to_string(), Value::from(run.workflow.as_str())),
                    ("id".to_string(), Value::from(run.id.as_str())),
                    ("status".to_string(), Value::from(RunStatus::Running.as_str())),
                    ("input".to_string(), input.clone()),
                    ("createdAt".to_string(), Value::from(at)),
                    ("updatedAt".to_string(), Value::from(at)),
                    ("steps".to_string(), Value::array([])),
                ];
                let op = OpRecord::Set { entity: run.entity.clone(), ty: Some(RUN_TYPE.into()), attrs, valid_until: None };
                Ok(Some((run.prov("create", None), vec![op])))
            })
            .await?;
        let old = if created.is_some() { None } else { run.stored_summary().await? };
        run.sync_registry(old.as_ref()).await?;
        Ok(run)
    }
}

impl<S: Storage> Run<S> {
    /// A handle on a run (existing or not) without touching storage.
    pub(crate) fn handle(scope: Scope<S>, workflow: String, id: String, lease_ms: f64) -> Self {
        Run {
            run_key: registry::run_key(&scope.dims().key(), &workflow, &id),
            entity: json_id("run", &[&workflow, &id]),
            workflow,
            id,
            scope,
            lease_ms,
        }
    }

    pub(crate) fn run_key(&self) -> &str {
        &self.run_key
    }

    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn scope(&self) -> &Scope<S> {
        &self.scope
    }

    /// The entity id of the run in its scope.
    pub fn entity_id(&self) -> &str {
        &self.entity
    }

    /// The entity id of a step of this run in its scope.
    pub fn step_entity_id(&self, name: &str) -> String {
        json_id("step", &[&self.workflow, &self.id, name])
    }

    pub(crate) fn prov(&self, what: &str, attempt: Option<u32>) -> Provenance {
        let mut cause = format!("run:{}/{} {what}", self.workflow, self.id);
        if let Some(n) = attempt {
            cause.push_str(&format!(" attempt:{n}"));
        }
        Provenance { cause, actor: Some("waymark".into()), note: None }
    }

    /// The run's status as last loaded.
    pub fn status(&self) -> RunStatus {
        self.scope.with_state(|st| self.status_in(st))
    }

    pub(crate) fn status_in(&self, st: &ScopeState) -> RunStatus {
        stored(st, &self.entity, "status").and_then(Value::as_str).and_then(RunStatus::parse).unwrap_or(RunStatus::Running)
    }

    /// The state of one step (`pending` with 0 attempts if never seen).
    pub fn step_state(&self, name: &str) -> StepRecord {
        self.scope.with_state(|st| self.record_in(st, name))
    }

    /// Every step of the run, in first-seen order.
    pub fn steps(&self) -> Vec<StepRecord> {
        self.scope.with_state(|st| self.steps_in(st))
    }

    pub(crate) fn steps_in(&self, st: &ScopeState) -> Vec<StepRecord> {
        self.step_names(st).iter().map(|n| self.record_in(st, n)).collect()
    }

    /// The state of every step, in first-seen order: what the registry counts
    /// after each transition, without reading whole step records.
    pub(crate) fn step_states_in(&self, st: &ScopeState) -> Vec<StepState> {
        let state = |n: &String| stored(st, &self.step_entity_id(n), "state").and_then(Value::as_str).and_then(StepState::parse);
        self.step_names(st).iter().map(|n| state(n).unwrap_or(StepState::Pending)).collect()
    }

    /// Whether `step(name)` would run the function (false while a completed,
    /// unexpired result exists).
    pub async fn should_run(&self, name: &str) -> Result<bool> {
        self.scope.store().check_open()?;
        self.scope.refresh().await?;
        let now = self.scope.store().now();
        Ok(self.scope.with_state(|st| wf::should_run(&self.record_in(st, name), now)))
    }
}
